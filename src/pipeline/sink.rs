//! Writes traces to the store in the background so a response never waits on it.

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreError};
use crate::trace::Trace;

/// Traces waiting to be written beyond this are dropped (and counted) rather than slowing
/// requests down.
const QUEUE: usize = 4096;

/// Traces written per transaction at most (under load, one commit carries many traces).
const BATCH: usize = 256;

/// How long the writer waits for more traces before it commits a batch (a flush commits at
/// once): at a steady trickle of requests, one commit per this much time instead of one each.
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);

enum Msg {
    Trace(Box<Trace>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct TraceSink {
    tx: mpsc::Sender<Msg>,
    store: Store,
}

impl TraceSink {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Store) -> Self {
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        let writer = store.clone();
        tokio::spawn(async move {
            let mut msgs = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut msgs, BATCH).await > 0 {
                let deadline = tokio::time::Instant::now() + LINGER;
                while msgs.len() < BATCH && !msgs.iter().any(|m| matches!(m, Msg::Flush(_))) {
                    let room = BATCH - msgs.len();
                    match tokio::time::timeout_at(deadline, rx.recv_many(&mut msgs, room)).await {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                }
                let mut traces = Vec::with_capacity(msgs.len());
                let mut flushes = Vec::new();
                for m in msgs.drain(..) {
                    match m {
                        Msg::Trace(t) => traces.push(*t),
                        Msg::Flush(done) => flushes.push(done),
                    }
                }
                if !traces.is_empty() {
                    if let Err(e) = writer.traces.put_traces(&traces).await {
                        tracing::warn!(traces = traces.len(), error = %e, "traces not written");
                    }
                }
                // A flush is answered after every trace received before it is written.
                for done in flushes {
                    let _ = done.send(());
                }
            }
        });
        Self { tx, store }
    }

    pub fn record(&self, trace: Trace) {
        if self.tx.try_send(Msg::Trace(Box::new(trace))).is_err() {
            crate::metrics::global().inc(
                "keel_traces_dropped_total",
                "Traces dropped because the writer fell behind",
                String::new(),
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

    /// A stored trace, once every trace recorded before this call is written.
    pub async fn get(&self, id: &str) -> Result<Option<Trace>, StoreError> {
        self.flush().await;
        self.store.traces.get_trace(id).await
    }
}
