//! Exponential backoff, shared by every retry loop in the agent (config fetches, the
//! metal source, the join), and the clock those loops read, so tests can drive the
//! schedule without sleeping and without depending on how busy the machine is.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// The pause after try `n` (1-based): `first`, then doubling, capped at `max`.
pub fn doubling(first: Duration, max: Duration, n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(16);
    first.saturating_mul(factor).min(max)
}

/// Time as a retry loop sees it.
pub trait Clock {
    /// Since the loop started.
    fn elapsed(&self) -> Duration;
    fn sleep(&self, pause: Duration);
}

/// The real clock, started when made.
pub struct WallClock(Instant);

impl WallClock {
    pub fn start() -> WallClock {
        WallClock(Instant::now())
    }
}

impl Clock for WallClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&self, pause: Duration) {
        std::thread::sleep(pause)
    }
}

/// A clock that moves only when slept on, and remembers each pause.
#[derive(Default)]
pub struct ManualClock {
    pub pauses: RefCell<Vec<Duration>>,
}

impl Clock for ManualClock {
    fn elapsed(&self) -> Duration {
        self.pauses.borrow().iter().sum()
    }
    fn sleep(&self, pause: Duration) {
        self.pauses.borrow_mut().push(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let ms = Duration::from_millis;
        let d: Vec<u128> = (1..=6)
            .map(|n| doubling(ms(100), ms(700), n).as_millis())
            .collect();
        assert_eq!(d, [100, 200, 400, 700, 700, 700]);
        assert_eq!(doubling(ms(100), ms(700), u32::MAX), ms(700));
    }

    #[test]
    fn the_manual_clock_advances_by_what_is_slept() {
        let clock = ManualClock::default();
        clock.sleep(Duration::from_millis(20));
        clock.sleep(Duration::from_millis(40));
        assert_eq!(clock.elapsed(), Duration::from_millis(60));
    }
}
