//! Writes traces to the store in the background so a response never waits on it.

use tokio::sync::{mpsc, oneshot};

use crate::store::Store;
use crate::trace::Trace;

/// Traces waiting to be written beyond this are dropped (and counted) rather than slowing
/// requests down.
const QUEUE: usize = 4096;

enum Msg {
    Trace(Box<Trace>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct TraceSink {
    tx: mpsc::Sender<Msg>,
}

impl TraceSink {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Store) -> Self {
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Trace(t) => {
                        if let Err(e) = store.traces.put_trace(&t).await {
                            tracing::warn!(trace_id = %t.id, error = %e, "trace not written");
                        }
                    }
                    Msg::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Self { tx }
    }

    pub fn record(&self, trace: Trace) {
        if self.tx.try_send(Msg::Trace(Box::new(trace))).is_err() {
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
}
