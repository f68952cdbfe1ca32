//! Threads that are reused: a connection needs two blocking threads, and spawning them
//! costs more than relaying a short request. A job goes to an idle thread when there is
//! one and to a new thread otherwise — never into a queue behind busy threads, since a
//! relay may run for hours (a watch) — and a thread idle for a while exits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct Workers {
    jobs: Mutex<Sender<Job>>,
    shared: Arc<Shared>,
    stack_size: usize,
    idle_for: Duration,
}

struct Shared {
    queue: Mutex<Receiver<Job>>,
    /// Threads waiting for a job, less the jobs already promised to them.
    idle: AtomicUsize,
}

impl Workers {
    pub fn new(stack_size: usize, idle_for: Duration) -> Workers {
        let (tx, rx) = channel();
        Workers {
            jobs: Mutex::new(tx),
            shared: Arc::new(Shared {
                queue: Mutex::new(rx),
                idle: AtomicUsize::new(0),
            }),
            stack_size,
            idle_for,
        }
    }

    /// Run `job` at once on an idle thread, or on a new one.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let job: Job = Box::new(job);
        // Promise the job to an idle thread by taking one off the count; it is then bound
        // to take a job before it may exit (see `work`).
        let mut idle = self.shared.idle.load(Ordering::Acquire);
        while idle > 0 {
            match self.shared.idle.compare_exchange(
                idle,
                idle - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let sent = self
                        .jobs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .send(job);
                    return match sent {
                        Ok(()) => Ok(()),
                        // Every thread is gone (only at shutdown): run it on a new one.
                        Err(returned) => self.spawn(returned.0),
                    };
                }
                Err(now) => idle = now,
            }
        }
        self.spawn(job)
    }

    fn spawn(&self, first: Job) -> std::io::Result<()> {
        let (shared, idle_for) = (Arc::clone(&self.shared), self.idle_for);
        std::thread::Builder::new()
            .name("api-proxy-worker".into())
            .stack_size(self.stack_size)
            .spawn(move || {
                first();
                work(&shared, idle_for);
            })
            .map(drop)
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.shared.idle.load(Ordering::Acquire)
    }
}

fn work(shared: &Shared, idle_for: Duration) {
    shared.idle.fetch_add(1, Ordering::AcqRel);
    loop {
        let next = shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv_timeout(idle_for);
        match next {
            Ok(job) => {
                job();
                shared.idle.fetch_add(1, Ordering::AcqRel);
            }
            Err(RecvTimeoutError::Disconnected) => return,
            // Leave only if no job is promised to the waiting threads; else one is on its
            // way to whoever is waiting, this thread included: wait again.
            Err(RecvTimeoutError::Timeout) => {
                let mut idle = shared.idle.load(Ordering::Acquire);
                while idle > 0 {
                    match shared.idle.compare_exchange(
                        idle,
                        idle - 1,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return,
                        Err(now) => idle = now,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::sync::Barrier;

    use super::*;

    #[test]
    fn a_job_never_waits_for_a_busy_thread() {
        let w = Workers::new(64 * 1024, Duration::from_secs(60));
        // Four jobs that only finish together: each must have a thread of its own.
        let barrier = Arc::new(Barrier::new(5));
        for _ in 0..4 {
            let b = Arc::clone(&barrier);
            w.run(move || {
                b.wait();
            })
            .unwrap();
        }
        barrier.wait();
        // The four threads come back idle and are reused.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while w.idle() < 4 {
            assert!(std::time::Instant::now() < deadline, "threads never idle");
            std::thread::sleep(Duration::from_millis(5));
        }
        let (tx, rx) = channel();
        for i in 0..4 {
            let tx = tx.clone();
            w.run(move || tx.send(i).unwrap()).unwrap();
        }
        let mut got: Vec<i32> = (0..4).map(|_| rx.recv().unwrap()).collect();
        got.sort();
        assert_eq!(got, [0, 1, 2, 3]);
    }

    #[test]
    fn idle_threads_leave_and_jobs_still_run() {
        let w = Workers::new(64 * 1024, Duration::from_millis(10));
        let (tx, rx) = channel();
        for round in 0..20 {
            let tx = tx.clone();
            w.run(move || tx.send(round).unwrap()).unwrap();
            assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(round));
            // Around the idle timeout, racing threads that are leaving.
            std::thread::sleep(Duration::from_millis(round % 3 * 5));
        }
    }
}
