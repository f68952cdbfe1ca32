//! How long to keep asking when no endpoint answers: rounds over every endpoint, with
//! exponential delays between rounds, until a total time is spent (kubeadm polls every
//! 5 s for up to 5 minutes; a node that cannot reach its cluster should say so).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// No new round starts after this much time since the first.
    pub total: Duration,
    /// One request (connect, TLS, response) at most this long.
    pub request_timeout: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            total: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The pause after round `n` (1-based): first, 2×, 4×, … capped at max.
    pub fn delay(&self, round: u32) -> Duration {
        crate::backoff::doubling(self.first_delay, self.max_delay, round)
    }

    /// The pause before the next round, `elapsed` after the first began, or `None` when
    /// that round would start past the total (so the caller gives up now rather than
    /// sleep for nothing).
    pub fn next_pause(&self, elapsed: Duration, round: u32) -> Option<Duration> {
        let pause = self.delay(round);
        (elapsed + pause <= self.total).then_some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let b = Backoff {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            ..Backoff::default()
        };
        let d: Vec<u128> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 700, 700, 700]);
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(700));
    }

    #[test]
    fn no_round_past_the_total() {
        let b = Backoff {
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(4),
            total: Duration::from_secs(5),
            ..Backoff::default()
        };
        let secs = Duration::from_secs;
        assert_eq!(b.next_pause(secs(0), 1), Some(secs(2)));
        assert_eq!(b.next_pause(secs(0), 2), Some(secs(4)));
        assert_eq!(b.next_pause(secs(1), 2), Some(secs(4)));
        assert_eq!(b.next_pause(secs(2), 2), None);
    }
}
