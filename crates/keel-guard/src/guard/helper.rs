//! A thread kept beside each input guard that takes the signature layer of a long input, so
//! the two halves of its check run at once (`GuardConfig::parallel_from_bytes`) without
//! starting a thread per input.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// The helper thread, started on the first long input and stopped when its guard is dropped
/// (the channel closes). It takes one input at a time: while it is busy, other callers run
/// the whole check on their own thread rather than queue behind it.
#[derive(Default)]
pub(super) struct Helper {
    /// `None` inside when the thread could not be started (every check then runs inline).
    jobs: OnceLock<Option<mpsc::Sender<Job>>>,
    busy: Arc<AtomicBool>,
}

impl Helper {
    /// Starts `job` on the helper thread; the result comes on the returned channel. `None`
    /// when the helper is busy or cannot run: the caller then does the work itself. A job
    /// that panics closes the channel (the caller again does the work itself) and leaves the
    /// helper marked busy, so later inputs run inline.
    pub(super) fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Option<mpsc::Receiver<T>> {
        if self.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return None;
        }
        let (result_tx, result_rx) = mpsc::sync_channel(1);
        let sent = self.jobs.get_or_init(|| start(Arc::clone(&self.busy))).as_ref().is_some_and(|jobs| {
            jobs.send(Box::new(move || {
                let _ = result_tx.send(job());
            }))
            .is_ok()
        });
        if !sent {
            self.busy.store(false, Ordering::Release);
            return None;
        }
        Some(result_rx)
    }
}

fn start(busy: Arc<AtomicBool>) -> Option<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("keel-guard".into())
        .spawn(move || {
            for job in rx {
                job();
                busy.store(false, Ordering::Release);
            }
        })
        .ok()?;
    Some(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_jobs_one_at_a_time_and_declines_while_busy() {
        let h = Helper::default();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let first = h.run(move || release_rx.recv().map(|()| 1)).expect("the helper takes the first job");
        assert!(h.run(|| 2).is_none(), "a busy helper declines");
        release_tx.send(()).expect("send");
        assert_eq!(first.recv().expect("result"), Ok(1));
        // Free again once the job is done (it is marked free just after sending the result).
        let mut next = None;
        for _ in 0..1000 {
            next = h.run(|| 3);
            if next.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(next.expect("free again").recv().expect("result"), 3);
    }

    #[test]
    fn a_panicking_job_leaves_the_work_to_the_caller() {
        let h = Helper::default();
        let rx = h.run(|| -> u8 { panic!("boom") }).expect("taken");
        assert!(rx.recv().is_err(), "the result channel closes");
        assert!(h.run(|| 1).is_none(), "later inputs run inline");
    }
}
