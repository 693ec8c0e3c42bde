//! Keel's configuration, in two steps: the strict file format (`raw`) and the validated
//! runtime objects below. Only the CLI layer reads files and environment variables; everything
//! else receives a [`Config`].

pub mod gateway;
mod guard;
pub mod limits;
mod raw;
pub mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use gateway::GatewayConfig;
pub use raw::RawConfig;

/// The commented example printed by `keel default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: `{key}`: {message}")]
    Invalid { file: String, key: &'static str, message: String },
}

/// How BM25 and dense scores are combined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Min-max normalise each list, then `w·dense + (1-w)·bm25`.
    Weighted { dense_weight: f32 },
    /// Reciprocal-rank fusion: `Σ 1/(k + rank)`.
    Rrf { k: f32 },
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub max_question_chars: usize,
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub max_file_bytes: u64,
    pub chunk_tokens: usize,
    pub overlap_tokens: usize,
}

#[derive(Debug, Clone)]
pub struct RetrievalConfig {
    pub top_k: usize,
    pub candidates: usize,
    pub fusion: Fusion,
    pub relevance_floor: f32,
}

/// Who writes the grounded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generator {
    /// The built-in extractive answerer (offline, deterministic).
    Extractive,
    /// A model behind the gateway: the name of a configured route.
    Route(String),
}

/// What happens to a generated answer the grounding check does not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroundingPolicy {
    /// The extractive answer replaces it.
    FallbackExtractive,
    /// One more model call naming the unsupported claims; extractive if still unsupported.
    Repair,
    /// No answer: an escalation with reason `low_grounding`.
    Escalate,
}

impl GroundingPolicy {
    /// The configuration spelling (also used on traces).
    pub fn as_str(self) -> &'static str {
        match self {
            GroundingPolicy::FallbackExtractive => "fallback_extractive",
            GroundingPolicy::Repair => "repair",
            GroundingPolicy::Escalate => "escalate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AnswerConfig {
    pub max_sentences: usize,
    /// The same normalised question under the same versions gets the stored answer.
    pub deterministic: bool,
    pub generator: Generator,
    /// Sampling temperature sent to a generative model.
    pub temperature: f32,
    pub grounding_policy: GroundingPolicy,
    /// Overrides the grounding checker's own threshold on the support probability.
    pub grounding_threshold: Option<f32>,
}

#[derive(Debug, Clone)]
pub struct GovernanceConfig {
    /// User turns a conversation may take; the next one gets a summary and an escalation.
    pub turn_limit: u32,
    /// A conversation idle this long is closed.
    pub idle_timeout: std::time::Duration,
    /// Cosine (normalised question vs approved question) an approved answer needs...
    pub approved_threshold: f32,
    /// ...and its lead over the best other approved answer.
    pub approved_margin: f32,
    /// Open an escalation when nothing in the knowledge base answers a question.
    pub escalate_on_no_evidence: bool,
    /// How a correction takes effect on matching questions.
    pub corrections: CorrectionMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectionMode {
    /// The correction is served verbatim as an approved-answer variant.
    Approved,
    /// The correction is injected as the top evidence and the answerer writes the answer.
    Evidence,
}

/// What the input guard does with an input its injection layers would block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectionAction {
    /// A refusal with a reason code.
    Block,
    /// Answered; the verdict is on the trace.
    Flag,
    /// Handed to a person (an escalation with reason `guard_block`).
    Escalate,
}

#[derive(Debug, Clone)]
pub struct GuardSettings {
    pub enabled: bool,
    pub injection: InjectionAction,
    /// Scan retrieved chunks for instructions aimed at an AI and keep flagged ones out.
    pub scan_documents: bool,
    pub pii: keel_guard::pii::PiiPolicy,
    pub output: OutputGuardSettings,
    /// The optional model check: a gateway route asked about inputs (off when `None`).
    pub judge: Option<String>,
    /// Ask the judge about every input, or only those the cheap layers flagged.
    pub judge_always: bool,
    /// Score the question with the embedding classifier: the vector of the injection-tuned
    /// encoder (the base model with the shipped LoRA adapter), one extra model pass.
    pub embedding_classifier: bool,
}

/// `[guard.output]`: checks on model replies before they reach a client.
#[derive(Debug, Clone)]
pub struct OutputGuardSettings {
    /// Phrases that must never reach a client (matched normalised, on word boundaries).
    pub deny: Vec<String>,
    /// Refuse replies that repeat the request's system prompt.
    pub prompt_leak: bool,
    /// A leak: a verbatim run of at least this many words of the system prompt …
    pub leak_min_words: usize,
    /// … or at least this share of its 6-word shingles.
    pub leak_coverage: f32,
    /// Validate replies when the request asked for JSON (`response_format`).
    pub json: bool,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub model_dir: Option<PathBuf>,
    pub server: ServerConfig,
    pub ingest: IngestConfig,
    pub retrieval: RetrievalConfig,
    pub answer: AnswerConfig,
    pub governance: GovernanceConfig,
    pub guard: GuardSettings,
    pub gateway: GatewayConfig,
}

impl Default for Config {
    /// The validated empty file: every default is written once, in `from_raw`.
    #[expect(clippy::expect_used, reason = "the empty configuration is valid; `defaults_are_valid` proves it")]
    fn default() -> Self {
        Self::from_raw(RawConfig::default(), "<defaults>").expect("the empty configuration is valid")
    }
}

impl Config {
    /// Loads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { file: file.clone(), message: e.to_string() })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { file: file.to_string(), message: e.to_string().trim().to_string() })?;
        Self::from_raw(raw, file)
    }

    pub fn from_raw(raw: RawConfig, file: &str) -> Result<Self, ConfigError> {
        let invalid =
            |key: &'static str, message: String| ConfigError::Invalid { file: file.to_string(), key, message };
        let listen_text = raw.server.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| invalid("server.listen", format!("`{listen_text}` is not an address like 127.0.0.1:8080")))?;
        let range = |key: &'static str, v: Option<u64>, default: u64, lo: u64, hi: u64| -> Result<u64, ConfigError> {
            let v = v.unwrap_or(default);
            if v < lo || v > hi {
                return Err(invalid(key, format!("{v} is outside {lo}..={hi}")));
            }
            Ok(v)
        };
        let server = ServerConfig {
            listen,
            max_body_bytes: range("server.max_body_bytes", raw.server.max_body_bytes, 1 << 20, 1024, 1 << 30)? as usize,
            max_question_chars: range("server.max_question_chars", raw.server.max_question_chars, 4000, 16, 1_000_000)?
                as usize,
        };
        let chunk_tokens = range("ingest.chunk_tokens", raw.ingest.chunk_tokens, 300, 32, 2000)? as usize;
        let overlap_tokens = range("ingest.overlap_tokens", raw.ingest.overlap_tokens, 40, 0, 1000)? as usize;
        if overlap_tokens * 2 >= chunk_tokens {
            return Err(invalid(
                "ingest.overlap_tokens",
                format!("{overlap_tokens} must be under half of chunk_tokens ({chunk_tokens})"),
            ));
        }
        let ingest = IngestConfig {
            max_file_bytes: range("ingest.max_file_bytes", raw.ingest.max_file_bytes, 10 << 20, 1, 1 << 32)?,
            chunk_tokens,
            overlap_tokens,
        };
        let top_k = range("retrieval.top_k", raw.retrieval.top_k, 5, 1, 100)? as usize;
        let candidates = range("retrieval.candidates", raw.retrieval.candidates, 100, 1, 10_000)? as usize;
        let fusion = match raw.retrieval.fusion.as_deref().unwrap_or("weighted") {
            "weighted" => {
                let w = raw.retrieval.dense_weight.unwrap_or(0.6);
                if !(0.0..=1.0).contains(&w) {
                    return Err(invalid("retrieval.dense_weight", format!("{w} is outside 0..=1")));
                }
                Fusion::Weighted { dense_weight: w as f32 }
            }
            "rrf" => {
                let k = raw.retrieval.rrf_k.unwrap_or(60.0);
                if !(k > 0.0 && k.is_finite()) {
                    return Err(invalid("retrieval.rrf_k", format!("{k} must be a positive number")));
                }
                Fusion::Rrf { k: k as f32 }
            }
            other => return Err(invalid("retrieval.fusion", format!("`{other}` is not one of \"weighted\", \"rrf\""))),
        };
        let floor = raw.retrieval.relevance_floor.unwrap_or(0.45);
        if !(-1.0..=1.0).contains(&floor) {
            return Err(invalid(
                "retrieval.relevance_floor",
                format!("{floor} is outside -1..=1 (a cosine similarity)"),
            ));
        }
        let retrieval =
            RetrievalConfig { top_k, candidates: candidates.max(top_k), fusion, relevance_floor: floor as f32 };
        let max_sentences = range("answer.max_sentences", raw.answer.max_sentences, 3, 1, 20)? as usize;
        let governance = governance(raw.governance, file)?;
        let guard = guard::guard(raw.guard, file)?;
        let parts = gateway::RawGatewayParts {
            gateway: raw.gateway,
            providers: raw.providers,
            routes: raw.routes,
            limits: raw.limits,
            cache: raw.cache,
        };
        let gateway = gateway::validate(parts, file)?;
        if let Some(j) = guard.judge.as_ref().filter(|j| !gateway.routes.iter().any(|r| &r.model == *j)) {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                key: "guard.judge",
                message: format!("`{j}` is not a route in [[routes]]"),
            });
        }
        let answer = answer(raw.answer, max_sentences, &gateway, file)?;
        Ok(Self {
            gateway,
            data_dir: PathBuf::from(raw.data_dir.unwrap_or_else(|| "./keel-data".into())),
            model_dir: raw.embedding.model_dir.map(PathBuf::from),
            server,
            ingest,
            retrieval,
            answer,
            governance,
            guard,
        })
    }
}

fn answer(
    raw: raw::RawAnswer,
    max_sentences: usize,
    gateway: &GatewayConfig,
    file: &str,
) -> Result<AnswerConfig, ConfigError> {
    let invalid = |key: &'static str, message: String| ConfigError::Invalid { file: file.to_string(), key, message };
    let generator = match raw.generator.as_deref().unwrap_or("extractive") {
        "extractive" => Generator::Extractive,
        name if gateway.routes.iter().any(|r| r.model == name) => Generator::Route(name.to_string()),
        other => {
            let known: Vec<&str> = gateway.routes.iter().map(|r| r.model.as_str()).collect();
            return Err(invalid(
                "answer.generator",
                format!("`{other}` is neither \"extractive\" nor a `[[routes]]` model (known: {known:?})"),
            ));
        }
    };
    let temperature = raw.temperature.unwrap_or(0.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(invalid("answer.temperature", format!("{temperature} is outside 0..=2")));
    }
    let grounding_policy = match raw.grounding_policy.as_deref().unwrap_or("fallback_extractive") {
        "fallback_extractive" => GroundingPolicy::FallbackExtractive,
        "repair" => GroundingPolicy::Repair,
        "escalate" => GroundingPolicy::Escalate,
        other => {
            return Err(invalid(
                "answer.grounding_policy",
                format!("`{other}` is not one of \"fallback_extractive\", \"repair\", \"escalate\""),
            ))
        }
    };
    let grounding_threshold = match raw.grounding_threshold {
        Some(t) if !(0.0..=1.0).contains(&t) => {
            return Err(invalid("answer.grounding_threshold", format!("{t} is outside 0..=1 (a probability)")))
        }
        t => t.map(|t| t as f32),
    };
    Ok(AnswerConfig {
        max_sentences,
        generator,
        temperature: temperature as f32,
        grounding_policy,
        grounding_threshold,
        deterministic: raw.deterministic.unwrap_or(true),
    })
}

fn governance(raw: raw::RawGovernance, file: &str) -> Result<GovernanceConfig, ConfigError> {
    let invalid = |key: &'static str, message: String| ConfigError::Invalid { file: file.to_string(), key, message };
    let turn_limit = raw.turn_limit.unwrap_or(5);
    if !(1..=1000).contains(&turn_limit) {
        return Err(invalid("governance.turn_limit", format!("{turn_limit} is outside 1..=1000")));
    }
    let idle_text = raw.idle_timeout.unwrap_or_else(|| "5m".into());
    let idle_timeout = gateway::parse_duration(&idle_text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| invalid("governance.idle_timeout", format!("`{idle_text}` is not a duration like 5m or 30s")))?;
    let unit = |key: &'static str, v: Option<f64>, default: f64| -> Result<f32, ConfigError> {
        let v = v.unwrap_or(default);
        if !(0.0..=1.0).contains(&v) {
            return Err(invalid(key, format!("{v} is outside 0..=1")));
        }
        Ok(v as f32)
    };
    Ok(GovernanceConfig {
        turn_limit: turn_limit as u32,
        idle_timeout,
        approved_threshold: unit("governance.approved_threshold", raw.approved_threshold, 0.85)?,
        approved_margin: unit("governance.approved_margin", raw.approved_margin, 0.05)?,
        escalate_on_no_evidence: raw.escalate_on_no_evidence.unwrap_or(true),
        corrections: match raw.corrections.as_deref().unwrap_or("approved") {
            "approved" => CorrectionMode::Approved,
            "evidence" => CorrectionMode::Evidence,
            other => {
                return Err(invalid(
                    "governance.corrections",
                    format!("`{other}` is not one of \"approved\", \"evidence\""),
                ))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::from_raw(RawConfig::default(), "x").is_ok());
    }

    #[test]
    fn the_printed_example_is_valid_and_equals_the_defaults() {
        let c = Config::parse(DEFAULT_CONFIG, "default.toml").unwrap();
        let d = Config::from_raw(RawConfig::default(), "x").unwrap();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_file_and_key() {
        let e = Config::parse("[retrieval]\ntop_kk = 3\n", "keel.toml").unwrap_err().to_string();
        assert!(e.starts_with("keel.toml:"), "{e}");
        assert!(e.contains("top_kk"), "{e}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let e = Config::parse("[retrieval]\nfusion = \"max\"\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("retrieval.fusion") && e.contains("max"), "{e}");
        let e = Config::parse("[server]\nlisten = \"nowhere\"\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("server.listen"), "{e}");
        let e = Config::parse("[ingest]\nchunk_tokens = 100\noverlap_tokens = 60\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("ingest.overlap_tokens"), "{e}");
    }

    #[test]
    fn the_generator_must_be_extractive_or_a_route() {
        let e = Config::parse("[answer]\ngenerator = \"gpt-x\"\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("answer.generator") && e.contains("gpt-x"), "{e}");
        let routed = "[answer]\ngenerator = \"gpt-x\"\ngrounding_policy = \"repair\"\n\
            [[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
            [[routes]]\nmodel = \"gpt-x\"\ntargets = [{ provider = \"p\", model = \"m\" }]\n";
        let c = Config::parse(routed, "k.toml").unwrap();
        assert_eq!(c.answer.generator, Generator::Route("gpt-x".into()));
        assert_eq!(c.answer.grounding_policy, GroundingPolicy::Repair);
        let e = Config::parse("[answer]\ngrounding_policy = \"ignore\"\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("answer.grounding_policy"), "{e}");
        let e = Config::parse("[answer]\ngrounding_threshold = 1.5\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("answer.grounding_threshold"), "{e}");
    }

    #[test]
    fn wrong_types_are_reported() {
        let e = Config::parse("[retrieval]\ntop_k = \"five\"\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("top_k"), "{e}");
    }
}
