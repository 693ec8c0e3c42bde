//! The assembled runtime: configuration, store, embedding model, index and pipeline, opened
//! once and shared by every request (server) or used once (CLI).

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::embedding::{self, Embedder, ModelError};
use crate::gateway::Gateway;
use crate::governance::approved::ApprovedSet;
use crate::guardrails::Guards;
use crate::index::{Index, IndexError};
use crate::pipeline::{Pipeline, PipelineError, TraceSink};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("loading the embedding model: {0}")]
    Task(String),
    #[error(transparent)]
    Guard(#[from] crate::guardrails::GuardrailError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub embedder: Arc<Embedder>,
    pub pipeline: Pipeline,
    pub sink: TraceSink,
    /// The approved answers the pipeline matches; refreshed by [`App::reload_approved`].
    pub approved: Arc<ApprovedSet>,
}

impl App {
    /// The model folder this configuration uses.
    pub fn model_dir(config: &Config) -> PathBuf {
        config.model_dir.clone().unwrap_or_else(embedding::default_model_dir)
    }

    /// Loads the embedding model (fails with instructions if it is not fetched).
    pub fn load_embedder(config: &Config) -> Result<Arc<Embedder>, AppError> {
        Ok(Arc::new(embedding::load(&Self::model_dir(config))?))
    }

    /// Opens everything; must run inside a Tokio runtime (it starts the trace writer).
    /// `gateway` carries the model calls of a generative `[answer] generator`.
    pub async fn open(config: Config, store: Store, gateway: Arc<Gateway>) -> Result<Self, AppError> {
        let cfg = config.clone();
        let embedder = tokio::task::spawn_blocking(move || Self::load_embedder(&cfg))
            .await
            .map_err(|e| AppError::Task(e.to_string()))??;
        Self::open_with(config, store, embedder, gateway).await
    }

    /// Opens with an already-loaded model (tests and ingest-then-serve share one).
    pub async fn open_with(
        config: Config,
        store: Store,
        embedder: Arc<Embedder>,
        gateway: Arc<Gateway>,
    ) -> Result<Self, AppError> {
        let index = Arc::new(Index::load(&store, &config.data_dir, embedder.dim()).await?);
        let sink = TraceSink::spawn(store.clone());
        let approved = Arc::new(ApprovedSet::default());
        let (cfg, model_dir) = (config.clone(), Self::model_dir(&config));
        let guards = tokio::task::spawn_blocking(move || Guards::load(&cfg, &model_dir))
            .await
            .map_err(|e| AppError::Task(e.to_string()))??;
        let pipeline = Pipeline::new(
            &config,
            index,
            embedder.clone(),
            sink.clone(),
            store.clone(),
            approved.clone(),
            guards,
            gateway,
        )?;
        let app = Self { config, store, embedder, pipeline, sink, approved };
        app.reload_approved().await?;
        Ok(app)
    }

    /// Re-reads the approved answers (embedding only new versions) and the approved flagged
    /// chunks. The admin API calls this
    /// after each change; `serve` also calls it periodically to pick up CLI edits.
    pub async fn reload_approved(&self) -> Result<(), AppError> {
        self.pipeline.reviews().replace(self.store.docs.chunk_approvals().await?);
        let corrections = self.store.snapshots.corrections().await?;
        self.approved.set_wrong_answers(corrections.into_iter().map(|c| (c.id, c.wrong_answer)).collect());
        let current = self.store.approved.approved_current().await?;
        let (set, embedder) = (self.approved.clone(), self.embedder.clone());
        tokio::task::spawn_blocking(move || set.replace(current, &embedder))
            .await
            .map_err(|e| AppError::Task(e.to_string()))?
            .map_err(|e| AppError::Task(format!("embedding approved questions: {e}")))
    }
}
