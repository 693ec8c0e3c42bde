//! Shared fixtures for the integration tests: the model, a knowledge base ingested into a
//! temporary data directory, and a real server on port 0.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keel::app::App;
use keel::config::Config;
use keel::embedding::Embedder;
use keel::http::ServerState;
use keel::kb::ingest::{ingest, IngestOptions, IngestReport};
use keel::store::Store;
use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The embedding model, or `None` (with a visible message) when it was not fetched.
/// The model folder tests use (`KEEL_MODEL_DIR`, else the default cache folder).
pub fn model_dir() -> PathBuf {
    std::env::var_os("KEEL_MODEL_DIR").map(PathBuf::from).unwrap_or_else(keel::embedding::default_model_dir)
}

pub fn embedder() -> Option<Arc<Embedder>> {
    let dir = model_dir();
    if !keel::embedding::is_present(&dir) {
        eprintln!("SKIPPED: embedding model not in {} (run `keel models fetch`)", dir.display());
        return None;
    }
    Some(Arc::new(keel::embedding::load(&dir).expect("model loads")))
}

pub fn config(data_dir: &Path) -> Config {
    Config { data_dir: data_dir.to_path_buf(), model_dir: Some(model_dir()), ..Config::default() }
}

pub async fn ingest_paths(cfg: &Config, embedder: &Embedder, paths: &[PathBuf], prune: bool) -> IngestReport {
    let store = Store::open_embedded(&cfg.data_dir).await.expect("store opens");
    ingest(paths, &cfg.ingest, &store, &cfg.data_dir, embedder, &IngestOptions { prune, progress: false })
        .await
        .expect("ingest succeeds")
}

pub struct Server {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start(cfg: Config, embedder: Arc<Embedder>) -> Self {
        Self::start_with(cfg, embedder, false).await
    }

    /// As `start`; with `keys`, every request needs an API key from the app's store.
    pub async fn start_with(cfg: Config, embedder: Arc<Embedder>, keys: bool) -> Self {
        let store = Store::open_embedded(&cfg.data_dir).await.expect("store");
        let gateway = Arc::new(keel::gateway::Gateway::new(&cfg.gateway, &Default::default()).expect("gateway"));
        let guard = keel::guardrails::build_guard(&cfg, None).expect("guard");
        let app = Arc::new(App::open_with(cfg, store.clone(), embedder, gateway.clone()).await.expect("app opens"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut state = ServerState::ready(app.clone(), gateway);
        if let Some(g) = guard {
            state = state.with_input_guard(g);
        }
        if keys {
            state = state.with_auth(store);
        }
        let handle = tokio::spawn(async move {
            keel::http::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Self { addr, app, stop: Some(tx), handle: Some(handle) }
    }

    /// A request's trace, once the background writer has stored it.
    pub async fn trace(&self, id: &Value) -> keel::trace::Trace {
        self.app.sink.flush().await;
        self.app.store.traces.get_trace(id.as_str().expect("a trace id")).await.expect("store").expect("trace stored")
    }

    /// The attributes of one span of a request's trace.
    pub async fn span(&self, id: &Value, name: &str) -> serde_json::Map<String, Value> {
        let t = self.trace(id).await;
        t.spans.into_iter().find(|s| s.name == name).map(|s| s.attrs).unwrap_or_else(|| panic!("no span `{name}`"))
    }

    /// The span names of a request's trace, in order.
    pub async fn span_names(&self, id: &Value) -> Vec<String> {
        self.trace(id).await.spans.into_iter().map(|s| s.name).collect()
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        reqwest::Client::new().get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        self.app.sink.flush().await;
    }
}

/// Facts from sample-kb.FACTS.md: (question, expected fact, page).
pub fn facts() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(repo().join("sample-kb.FACTS.md")).expect("facts file");
    text.lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| {
            let parts: Vec<&str> = l.split(" | ").collect();
            (parts.len() == 3).then(|| (parts[0].to_string(), parts[1].to_string(), parts[2].trim().to_string()))
        })
        .collect()
}

pub fn offtopic() -> Vec<String> {
    std::fs::read_to_string(repo().join("sample-kb.OFFTOPIC.txt"))
        .expect("off-topic file")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
