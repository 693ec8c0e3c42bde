//! A thread kept beside each input guard that takes the signature layer of a long input, so
//! the two halves of its check run at once (`GuardConfig::parallel_from_bytes`) without
//! starting a thread per input.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{mpsc, Arc, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// A handed-over job: still queued, started by the helper, or withdrawn by its caller.
const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const WITHDRAWN: u8 = 2;

/// The helper thread, started on the first long input and stopped when its guard is dropped
/// (the channel closes). It holds one job at a time: while it has one, other callers run the
/// whole check on their own thread rather than queue behind it.
#[derive(Default)]
pub(super) struct Helper {
    /// `None` inside when the thread could not be started (every check then runs inline).
    jobs: OnceLock<Option<mpsc::Sender<Job>>>,
    busy: Arc<AtomicBool>,
}

/// A job handed to the helper; [`Pending::wait`] collects it.
pub(super) struct Pending<T> {
    state: Arc<AtomicU8>,
    result: mpsc::Receiver<T>,
}

impl<T> Pending<T> {
    /// The helper's result, or `None` when the caller must do the work itself: the helper had
    /// not started the job yet (it is withdrawn, so a caller never waits for a helper that is
    /// still waiting for a core), or the job panicked.
    pub(super) fn wait(self) -> Option<T> {
        if self.state.compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return None;
        }
        self.result.recv().ok()
    }
}

impl Helper {
    /// Hands the job `make` builds to the helper thread (`make` runs only when the helper is
    /// free). `None` when the helper has a job already or cannot run: the caller then does
    /// the work itself.
    pub(super) fn run<T, J>(&self, make: impl FnOnce() -> J) -> Option<Pending<T>>
    where
        T: Send + 'static,
        J: FnOnce() -> T + Send + 'static,
    {
        if self.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return None;
        }
        let Some(jobs) = self.jobs.get_or_init(start).as_ref() else {
            self.busy.store(false, Ordering::Release);
            return None;
        };
        let job = make();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let (result_tx, result) = mpsc::sync_channel(1);
        let (mine, busy) = (Arc::clone(&state), Arc::clone(&self.busy));
        let sent = jobs.send(Box::new(move || {
            if mine.compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire).is_err() {
                busy.store(false, Ordering::Release);
                return;
            }
            // A panic only closes the result channel (the caller then scans inline).
            let out = catch_unwind(AssertUnwindSafe(job));
            // Free before the result is sent, so the caller's next long input finds it free.
            busy.store(false, Ordering::Release);
            if let Ok(out) = out {
                let _ = result_tx.send(out);
            }
        }));
        if sent.is_err() {
            self.busy.store(false, Ordering::Release);
            return None;
        }
        Some(Pending { state, result })
    }
}

fn start() -> Option<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let started = std::thread::Builder::new().name("keel-guard".into()).spawn(move || {
        for job in rx {
            job();
        }
    });
    started.ok().map(|_| tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Waits (up to a second) until the helper takes a job again.
    fn run_when_free<T: Send + 'static>(h: &Helper, f: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
        let mut f = Some(f);
        for _ in 0..1000 {
            if let Some(p) = h.run(|| f.take().expect("job")) {
                return p;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("the helper stayed busy");
    }

    #[test]
    fn runs_one_job_at_a_time_and_declines_while_busy() {
        let h = Helper::default();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let first = h
            .run(move || {
                move || {
                    let _ = started_tx.send(());
                    release_rx.recv().map(|()| 1)
                }
            })
            .expect("the helper takes the first job");
        started_rx.recv().expect("started");
        let mut built = false;
        assert!(h
            .run(|| {
                built = true;
                || 2
            })
            .is_none());
        assert!(!built, "a busy helper does not even build the job");
        release_tx.send(()).expect("send");
        assert_eq!(first.wait(), Some(Ok(1)), "a started job is waited for");
        // Free as soon as the result is out.
        assert!(h.run(|| || 3).expect("free again").wait().is_none_or(|v| v == 3));
    }

    #[test]
    fn a_job_not_yet_started_is_withdrawn_by_its_caller() {
        let h = Helper::default();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        // Keep the helper thread occupied inside a job, then mark it free so a second job
        // queues behind the first without starting.
        let first = h.run(move || {
            move || {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            }
        });
        started_rx.recv().expect("started");
        h.busy.store(false, Ordering::Release);
        let second = h.run(|| || 7).expect("handed over");
        assert_eq!(second.wait(), None, "withdrawn: the caller does the work");
        release_tx.send(()).expect("release");
        assert!(first.expect("first").wait().is_some());
        // The withdrawn job is skipped and the helper is free again.
        assert_eq!(run_when_free(&h, || 9).wait().unwrap_or(9), 9);
    }

    #[test]
    fn a_panicking_job_leaves_the_work_to_the_caller_and_the_helper_alive() {
        let h = Helper::default();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let p = h
            .run(move || {
                move || -> u8 {
                    let _ = started_tx.send(());
                    panic!("boom")
                }
            })
            .expect("taken");
        started_rx.recv().expect("started");
        assert_eq!(p.wait(), None, "the result channel closes");
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let next = run_when_free(&h, move || {
            let _ = started_tx.send(());
            5
        });
        started_rx.recv().expect("the helper still runs jobs");
        assert_eq!(next.wait(), Some(5));
    }
}
