//! Writes traces to the store in the background so a response never waits on it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreError, TraceFilter, TraceSummary};
use crate::trace::{Recordable, Trace};

/// Traces waiting to be written beyond this many, or beyond [`QUEUE_BYTES`], are dropped (and
/// counted) rather than slowing requests down. Deep enough to ride out a checkpoint at tens of
/// thousands of requests a second (measured: 4,096 dropped 1–4 % of traces at 128 concurrent
/// requests on two cores, 16,384 none, for 5 MB more peak memory).
const QUEUE: usize = 16_384;

/// The memory the waiting traces may hold (their [`Recordable::queued_bytes`]), so a burst of
/// large requests cannot grow the queue without bound.
const QUEUE_BYTES: usize = 32 << 20;

/// Messages taken from the queue at once before the writer looks at them.
const BATCH: usize = 256;

/// How long the writer lets traces gather before it commits them (a flush commits at once):
/// under steady traffic, one commit per this much time instead of one per request.
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);

/// How many nice steps the writer thread lowers itself below the process. Linux keeps a nice
/// value per thread, and threads it starts inherit it: the trace connection's SQLite worker is
/// started by the writer's first batch, the only user of that connection. When a batch is
/// written while requests wait for a core, the scheduler runs the requests first.
const WRITER_NICE: i32 = 10;

/// Above this many waiting traces the writer (and its SQLite worker, which follows it) runs at
/// the process's own priority until the queue is below it again: at a saturated core a lowered
/// writer falls behind for good (measured: 1–2 % of traces dropped at 32 concurrent requests on
/// two busy cores), and a dropped trace is lost, where a request served a little later is not.
const CATCH_UP: usize = QUEUE / 4;

enum Msg {
    /// A trace and the bytes it counts in the queue's budget.
    Trace(Box<dyn Recordable>, usize),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct TraceSink {
    tx: mpsc::Sender<Msg>,
    store: Store,
    /// Bytes held by the traces waiting in the queue.
    queued: Arc<AtomicUsize>,
}

impl TraceSink {
    /// Starts the writer on its own thread (with its own small runtime), so serialising and
    /// committing a batch never holds up a request on the server's threads.
    pub fn spawn(store: Store) -> Self {
        let (tx, rx) = mpsc::channel::<Msg>(QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = write_batches(rx, store.clone(), queued.clone());
        let started =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string()).and_then(
                |rt| {
                    std::thread::Builder::new()
                        .name("keel-traces".into())
                        .spawn(move || {
                            lower_priority();
                            rt.block_on(writer)
                        })
                        .map_err(|e| e.to_string())
                },
            );
        if let Err(e) = started {
            tracing::error!(error = %e, "the trace writer could not start; traces will be dropped");
        }
        Self { tx, store, queued }
    }

    /// Queues a trace (a pipeline's [`Trace`] or another [`Recordable`]) for the writer.
    pub fn record(&self, trace: impl Recordable + 'static) {
        let bytes = trace.queued_bytes();
        // One trace larger than the whole budget still goes when nothing else waits.
        let before = self.queued.fetch_add(bytes, Ordering::Relaxed);
        let within = before == 0 || before + bytes <= QUEUE_BYTES;
        if !within || self.tx.try_send(Msg::Trace(Box::new(trace), bytes)).is_err() {
            self.queued.fetch_sub(bytes, Ordering::Relaxed);
            crate::metrics::global().inc(
                "keel_traces_dropped_total",
                "Traces dropped because the writer fell behind",
                &[],
                1,
            );
            tracing::warn!("trace queue full; a trace was dropped");
        }
    }

    /// Waits until every trace recorded before this call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Stored traces, newest first, once every trace recorded before this call is written.
    pub async fn list(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>, StoreError> {
        self.flush().await;
        self.store.traces.list_traces(filter).await
    }

    /// A stored trace, once every trace recorded before this call is written.
    pub async fn get(&self, id: &str) -> Result<Option<Trace>, StoreError> {
        self.flush().await;
        self.store.traces.get_trace(id).await
    }
}

/// Lowers the calling thread's priority by [`WRITER_NICE`] steps (Linux: the thread alone;
/// elsewhere the call would lower the whole process, so it is not made). A failure only leaves
/// the writer competing with requests as an equal, so it is ignored.
fn lower_priority() {
    set_lowered(true, None);
}

/// The process's own nice value, read once (the writer's thread changes only its own).
fn process_nice() -> i32 {
    static NICE: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        *NICE.get_or_init(|| rustix::process::getpriority_process(None).unwrap_or(0))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        *NICE.get_or_init(|| 0)
    }
}

fn lowered_nice() -> i32 {
    (process_nice() + WRITER_NICE).min(19)
}

/// Puts the calling thread (and `worker`, the trace connection's SQLite thread, once known)
/// [`WRITER_NICE`] steps below the process (`lowered`) or back at the process's priority
/// (Linux only; a failure leaves a thread where it was).
fn set_lowered(lowered: bool, worker: Option<i32>) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::process::{setpriority_process, Pid};
        let nice = if lowered { lowered_nice() } else { process_nice() };
        let _ = setpriority_process(None, nice);
        if let Some(pid) = worker.and_then(Pid::from_raw) {
            let _ = setpriority_process(Some(pid), nice);
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (lowered, worker);
}

/// The thread id of the trace connection's SQLite worker: the `sqlx-sqlite` thread that
/// inherited the writer's lowered priority (the store's other connections run at the
/// process's). Linux only; read from `/proc/self/task`.
fn trace_worker_tid() -> Option<i32> {
    let want = lowered_nice();
    if want == process_nice() {
        return None;
    }
    std::fs::read_dir("/proc/self/task").ok()?.flatten().find_map(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
        let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
        // Fields after the parenthesised name start at field 3 (state); nice is field 19.
        let nice: i32 = stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok()?;
        (comm.starts_with("sqlx-sqlite") && nice == want).then(|| t.file_name().to_str()?.parse().ok()).flatten()
    })
}

/// The writer: one transaction for what arrived within `LINGER` of the first trace (a flush
/// is answered once everything before it is written). It sleeps through the linger instead of
/// waiting on the queue, so a request that records a trace never wakes this thread.
async fn write_batches(mut rx: mpsc::Receiver<Msg>, store: Store, queued: Arc<AtomicUsize>) {
    let mut msgs = Vec::with_capacity(BATCH);
    let mut lowered = true;
    // The trace connection's SQLite thread, found after the first batch started it.
    let mut worker: Option<Option<i32>> = None;
    while rx.recv_many(&mut msgs, BATCH).await > 0 {
        // Behind: catch up at the process's priority, with the SQLite thread.
        let behind = rx.len() > CATCH_UP;
        if behind == lowered {
            lowered = !behind;
            set_lowered(lowered, *worker.get_or_insert_with(trace_worker_tid));
        }
        if !msgs.iter().any(|m| matches!(m, Msg::Flush(_))) {
            tokio::time::sleep(LINGER).await;
        }
        while msgs.len() < QUEUE {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut traces = Vec::with_capacity(msgs.len());
        let mut flushes = Vec::new();
        for m in msgs.drain(..) {
            match m {
                // Serialised here, on the writer's thread, not on a request's.
                Msg::Trace(t, bytes) => {
                    queued.fetch_sub(bytes, Ordering::Relaxed);
                    traces.push(t.into_row());
                }
                Msg::Flush(done) => flushes.push(done),
            }
        }
        if !traces.is_empty() {
            if let Err(e) = store.traces.put_traces(&traces).await {
                tracing::warn!(traces = traces.len(), error = %e, "traces not written");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Trace, TraceBuilder, TraceRow};

    /// A trace that counts for `bytes` in the queue's budget.
    struct Sized(Trace, usize);

    impl Recordable for Sized {
        fn into_row(self: Box<Self>) -> TraceRow {
            Box::new(self.0).into_row()
        }
        fn queued_bytes(&self) -> usize {
            self.1
        }
    }

    fn sized(bytes: usize) -> (Sized, String) {
        let t = TraceBuilder::new("test", serde_json::json!({})).finish("ok", serde_json::json!({}));
        let id = t.id.clone();
        (Sized(t, bytes), id)
    }

    #[tokio::test]
    async fn the_queue_is_bounded_by_bytes_and_frees_them_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let sink = TraceSink::spawn(Store::open_embedded(dir.path()).await.unwrap());
        let dropped = || crate::metrics::global().counter("keel_traces_dropped_total", "");
        let before = dropped();
        // The writer lingers before it takes a batch's bytes off the budget, so the second
        // half-budget trace finds the first still counted.
        let (a, a_id) = sized(QUEUE_BYTES / 2 + 1);
        let (b, b_id) = sized(QUEUE_BYTES / 2 + 1);
        sink.record(a);
        sink.record(b);
        assert!(sink.get(&a_id).await.unwrap().is_some());
        assert!(sink.get(&b_id).await.unwrap().is_none(), "over the byte budget: dropped");
        assert!(dropped() > before, "the drop is counted");
        assert_eq!(sink.queued.load(Ordering::Relaxed), 0, "written traces free their bytes");
        // With nothing waiting, even one trace larger than the budget goes.
        let (c, c_id) = sized(QUEUE_BYTES * 2);
        sink.record(c);
        assert!(sink.get(&c_id).await.unwrap().is_some());
    }

    /// The nice value in a `/proc/.../stat` file.
    #[cfg(target_os = "linux")]
    fn nice_in(stat: &std::path::Path) -> i32 {
        let stat = std::fs::read_to_string(stat).unwrap();
        // Fields after the parenthesised name start at field 3 (state); nice is field 19.
        stat.rsplit_once(')').unwrap().1.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    /// Nice values (Linux) of this process's threads whose name starts with `prefix`.
    #[cfg(target_os = "linux")]
    fn nice_of_threads(prefix: &str) -> Vec<i32> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().starts_with(prefix))
            .map(|t| nice_in(&t.path().join("stat")))
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_writer_and_its_sqlite_worker_yield_to_requests() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_embedded(dir.path()).await.unwrap();
        let sink = TraceSink::spawn(store.clone());
        let trace = crate::trace::TraceBuilder::new("test", serde_json::json!({})).finish("ok", serde_json::json!({}));
        let id = trace.id.clone();
        sink.record(trace);
        // Written, so the trace connection (and its SQLite worker thread) exists.
        assert!(sink.get(&id).await.unwrap().is_some());
        let lowered = (nice_in(std::path::Path::new("/proc/self/stat")) + WRITER_NICE).min(19);
        assert!(nice_of_threads("keel-traces").contains(&lowered), "writer thread not lowered");
        assert!(
            nice_of_threads("sqlx-sqlite").contains(&lowered),
            "the trace connection's SQLite worker did not inherit the writer's priority"
        );

        // Catching up: the worker is found by its lowered priority and raised with the writer
        // (raising a priority needs privileges: without them both stay lowered, as before).
        let tid = trace_worker_tid().expect("the lowered SQLite worker is found");
        let stat = std::path::PathBuf::from(format!("/proc/self/task/{tid}/stat"));
        assert_eq!(nice_in(&stat), lowered);
        std::thread::spawn(move || {
            set_lowered(true, None);
            set_lowered(false, Some(tid));
            let raised = nice_in(&stat);
            if raised == lowered {
                eprintln!("skipped: this user may not raise a thread's priority");
                return;
            }
            assert_eq!(raised, process_nice(), "raised back to the process's priority");
            set_lowered(true, Some(tid));
            assert_eq!(nice_in(&stat), lowered, "lowered again once caught up");
        })
        .join()
        .unwrap();
    }
}
