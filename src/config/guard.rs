//! `[guard]` from its raw form: the injection action, the PII policy per kind and the output
//! checks, each error naming the file and the key.

use super::{raw, ConfigError, GuardSettings, InjectionAction, OutputGuardSettings};

pub fn guard(raw: raw::RawGuard, file: &str) -> Result<GuardSettings, ConfigError> {
    use keel_guard::pii::{PiiAction, PiiPolicy};
    let invalid = |key: &'static str, message: String| ConfigError::Invalid { file: file.to_string(), key, message };
    let injection = match raw.injection.as_deref().unwrap_or("block") {
        "block" => InjectionAction::Block,
        "flag" => InjectionAction::Flag,
        "escalate" => InjectionAction::Escalate,
        other => {
            return Err(invalid(
                "guard.injection",
                format!("`{other}` is not one of \"block\", \"flag\", \"escalate\""),
            ))
        }
    };
    let pii = |key: &'static str, v: Option<String>, default: PiiAction| -> Result<PiiAction, ConfigError> {
        match v.as_deref() {
            None => Ok(default),
            Some("redact") => Ok(PiiAction::Redact),
            Some("block") => Ok(PiiAction::Block),
            Some("allow") => Ok(PiiAction::Allow),
            Some(other) => Err(invalid(key, format!("`{other}` is not one of \"redact\", \"block\", \"allow\""))),
        }
    };
    let p = raw.pii;
    let ip = pii("guard.pii.ip", p.ip, PiiAction::Allow)?;
    let policy = PiiPolicy {
        email: pii("guard.pii.email", p.email, PiiAction::Redact)?,
        phone: pii("guard.pii.phone", p.phone, PiiAction::Redact)?,
        card: pii("guard.pii.card", p.card, PiiAction::Redact)?,
        iban: pii("guard.pii.iban", p.iban, PiiAction::Redact)?,
        ssn: pii("guard.pii.ssn", p.ssn, PiiAction::Redact)?,
        ipv4: ip,
        ipv6: ip,
        secret: pii("guard.pii.secret", p.secret, PiiAction::Redact)?,
    };
    let o = raw.output;
    let leak_coverage = o.leak_coverage.unwrap_or(0.5);
    if !(leak_coverage > 0.0 && leak_coverage <= 1.0) {
        return Err(invalid("guard.output.leak_coverage", format!("{leak_coverage} is outside (0, 1]")));
    }
    let leak_min_words = o.leak_min_words.unwrap_or(12);
    if leak_min_words < 6 {
        return Err(invalid("guard.output.leak_min_words", format!("{leak_min_words} is below 6 (one shingle)")));
    }
    let deny: Vec<String> = o.deny.unwrap_or_default();
    if let Some(i) = deny.iter().position(|d| d.trim().is_empty()) {
        return Err(invalid("guard.output.deny", format!("entry {i} is empty")));
    }
    let output = OutputGuardSettings {
        deny,
        prompt_leak: o.prompt_leak.unwrap_or(true),
        leak_min_words,
        leak_coverage,
        json: o.json.unwrap_or(true),
    };
    let judge_always = match raw.judge_when.as_deref().unwrap_or("flagged") {
        "flagged" => false,
        "always" => true,
        other => return Err(invalid("guard.judge_when", format!("`{other}` is not one of \"flagged\", \"always\""))),
    };
    Ok(GuardSettings {
        judge: raw.judge.filter(|j| !j.trim().is_empty()),
        judge_always,
        embedding_classifier: raw.embedding_classifier.unwrap_or(false),
        enabled: raw.enabled.unwrap_or(true),
        injection,
        scan_documents: raw.scan_documents.unwrap_or(true),
        pii: policy,
        output,
    })
}
