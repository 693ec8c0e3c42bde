//! The combined result of a guard: an action, a score, stable reason codes and every layer's
//! own score, so the caller can put the whole decision on a trace.

use serde::{Deserialize, Serialize};

/// What the caller should do with the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    Allow,
    /// Let it through but record it (and, if configured, ask a human or a model judge).
    Flag,
    Block,
}

/// Stable reason codes. Their string forms (`injection.signature`, `pii.card`) are part of
/// the API: traces, metrics and dashboards key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReasonCode {
    #[serde(rename = "injection.signature")]
    InjectionSignature,
    #[serde(rename = "injection.classifier")]
    InjectionClassifier,
    #[serde(rename = "injection.embedding")]
    InjectionEmbedding,
    #[serde(rename = "injection.override")]
    InjectionOverride,
    #[serde(rename = "injection.roleplay")]
    InjectionRoleplay,
    #[serde(rename = "injection.delimiter")]
    InjectionDelimiter,
    #[serde(rename = "injection.extraction")]
    InjectionExtraction,
    #[serde(rename = "injection.encoded")]
    InjectionEncoded,
    #[serde(rename = "injection.indirect")]
    InjectionIndirect,
    #[serde(rename = "injection.judge")]
    InjectionJudge,
    #[serde(rename = "input.hidden_text")]
    InputHiddenText,
    #[serde(rename = "pii.email")]
    PiiEmail,
    #[serde(rename = "pii.phone")]
    PiiPhone,
    #[serde(rename = "pii.card")]
    PiiCard,
    #[serde(rename = "pii.iban")]
    PiiIban,
    #[serde(rename = "pii.ssn")]
    PiiSsn,
    #[serde(rename = "pii.ipv4")]
    PiiIpv4,
    #[serde(rename = "pii.ipv6")]
    PiiIpv6,
    #[serde(rename = "pii.secret")]
    PiiSecret,
    #[serde(rename = "output.canary")]
    OutputCanary,
    #[serde(rename = "output.denylist")]
    OutputDenyList,
    #[serde(rename = "output.prompt_leak")]
    OutputPromptLeak,
}

impl ReasonCode {
    /// The stable string form, e.g. `injection.override`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InjectionSignature => "injection.signature",
            Self::InjectionClassifier => "injection.classifier",
            Self::InjectionEmbedding => "injection.embedding",
            Self::InjectionOverride => "injection.override",
            Self::InjectionRoleplay => "injection.roleplay",
            Self::InjectionDelimiter => "injection.delimiter",
            Self::InjectionExtraction => "injection.extraction",
            Self::InjectionEncoded => "injection.encoded",
            Self::InjectionIndirect => "injection.indirect",
            Self::InjectionJudge => "injection.judge",
            Self::InputHiddenText => "input.hidden_text",
            Self::PiiEmail => "pii.email",
            Self::PiiPhone => "pii.phone",
            Self::PiiCard => "pii.card",
            Self::PiiIban => "pii.iban",
            Self::PiiSsn => "pii.ssn",
            Self::PiiIpv4 => "pii.ipv4",
            Self::PiiIpv6 => "pii.ipv6",
            Self::PiiSecret => "pii.secret",
            Self::OutputCanary => "output.canary",
            Self::OutputDenyList => "output.denylist",
            Self::OutputPromptLeak => "output.prompt_leak",
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One layer's verdict: its score in [0, 1], its threshold and whether it fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerScore {
    /// Layer name: `signatures`, `classifier`, `embedding`, `heuristics`, `decoded`, `judge`, `pii`.
    pub layer: &'static str,
    pub score: f32,
    pub threshold: f32,
    pub fired: bool,
    /// Evidence: matched signature ids, rule ids, decoded encodings.
    pub detail: Vec<String>,
}

/// The combined verdict of the input guard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub action: Action,
    /// The highest layer score, in [0, 1].
    pub score: f32,
    /// Reason codes of the layers and rules that fired, sorted and de-duplicated.
    pub reasons: Vec<ReasonCode>,
    /// Every layer that ran, fired or not.
    pub layers: Vec<LayerScore>,
}
