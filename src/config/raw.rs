//! The configuration file as written: strict serde structs that reject unknown keys.
//!
//! Nothing here is validated beyond types; `config::Config::from_raw` turns these into the
//! runtime objects the rest of Keel uses.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub data_dir: Option<String>,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub ingest: RawIngest,
    #[serde(default)]
    pub retrieval: RawRetrieval,
    #[serde(default)]
    pub embedding: RawEmbedding,
    #[serde(default)]
    pub answer: RawAnswer,
    #[serde(default)]
    pub governance: RawGovernance,
    #[serde(default)]
    pub guard: RawGuard,
    #[serde(default)]
    pub gateway: super::gateway::RawGateway,
    #[serde(default)]
    pub providers: Vec<super::gateway::RawProvider>,
    #[serde(default)]
    pub routes: Vec<super::gateway::RawRoute>,
    #[serde(default)]
    pub limits: super::limits::RawLimits,
    #[serde(default)]
    pub cache: super::limits::RawCache,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub max_question_chars: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngest {
    pub max_file_bytes: Option<u64>,
    pub chunk_tokens: Option<u64>,
    pub overlap_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetrieval {
    pub top_k: Option<u64>,
    pub candidates: Option<u64>,
    pub fusion: Option<String>,
    pub dense_weight: Option<f64>,
    pub rrf_k: Option<f64>,
    pub relevance_floor: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmbedding {
    pub model_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnswer {
    pub max_sentences: Option<u64>,
    pub deterministic: Option<bool>,
    pub generator: Option<String>,
    pub temperature: Option<f64>,
    pub grounding_policy: Option<String>,
    pub grounding_threshold: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGovernance {
    pub turn_limit: Option<u64>,
    pub idle_timeout: Option<String>,
    pub approved_threshold: Option<f64>,
    pub approved_margin: Option<f64>,
    pub escalate_on_no_evidence: Option<bool>,
    pub corrections: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    pub enabled: Option<bool>,
    pub injection: Option<String>,
    pub scan_documents: Option<bool>,
    pub judge: Option<String>,
    pub judge_when: Option<String>,
    pub embedding_classifier: Option<bool>,
    #[serde(default)]
    pub pii: RawPii,
    #[serde(default)]
    pub output: RawOutputGuard,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutputGuard {
    pub deny: Option<Vec<String>>,
    pub prompt_leak: Option<bool>,
    pub leak_min_words: Option<usize>,
    pub leak_coverage: Option<f32>,
    pub json: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPii {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub card: Option<String>,
    pub iban: Option<String>,
    pub ssn: Option<String>,
    pub ip: Option<String>,
    pub secret: Option<String>,
}
