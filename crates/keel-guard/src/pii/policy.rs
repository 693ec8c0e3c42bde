//! What to do with each kind of personal data, and applying that decision to text.

use serde::{Deserialize, Serialize};

use super::detector::{detect_pii, PiiFinding, PiiKind};

/// The action for one kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    /// Replace the value with its placeholder (`[CARD]`).
    #[default]
    Redact,
    /// Refuse the whole input.
    Block,
    /// Leave the value as it is (still reported).
    Allow,
}

/// Per-kind actions; the caller builds it from configuration. Defaults to redact everything
/// except IP addresses, which are allowed (common in technical support questions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PiiPolicy {
    pub email: PiiAction,
    pub phone: PiiAction,
    pub card: PiiAction,
    pub iban: PiiAction,
    pub ssn: PiiAction,
    pub ipv4: PiiAction,
    pub ipv6: PiiAction,
    /// Credentials (API keys, tokens, private keys).
    pub secret: PiiAction,
}

impl Default for PiiPolicy {
    fn default() -> Self {
        Self {
            email: PiiAction::Redact,
            phone: PiiAction::Redact,
            card: PiiAction::Redact,
            iban: PiiAction::Redact,
            ssn: PiiAction::Redact,
            ipv4: PiiAction::Allow,
            ipv6: PiiAction::Allow,
            secret: PiiAction::Redact,
        }
    }
}

impl PiiPolicy {
    /// The same action for every kind.
    pub fn uniform(action: PiiAction) -> Self {
        Self {
            email: action,
            phone: action,
            card: action,
            iban: action,
            ssn: action,
            ipv4: action,
            ipv6: action,
            secret: action,
        }
    }

    /// The policy for what is kept (traces, stored conversations): every kind not allowed is
    /// redacted, including kinds that block requests (whatever a route did with them).
    pub fn for_storage(&self) -> Self {
        let redact = |a: PiiAction| if a == PiiAction::Allow { PiiAction::Allow } else { PiiAction::Redact };
        Self {
            email: redact(self.email),
            phone: redact(self.phone),
            card: redact(self.card),
            iban: redact(self.iban),
            ssn: redact(self.ssn),
            ipv4: redact(self.ipv4),
            ipv6: redact(self.ipv6),
            secret: redact(self.secret),
        }
    }

    /// The action for `kind`.
    pub fn action(&self, kind: PiiKind) -> PiiAction {
        match kind {
            PiiKind::Email => self.email,
            PiiKind::Phone => self.phone,
            PiiKind::Card => self.card,
            PiiKind::Iban => self.iban,
            PiiKind::Ssn => self.ssn,
            PiiKind::Ipv4 => self.ipv4,
            PiiKind::Ipv6 => self.ipv6,
            PiiKind::Secret => self.secret,
        }
    }
}

/// The outcome of [`apply_pii_policy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PiiOutcome {
    /// All findings, with spans into the input text.
    pub findings: Vec<PiiFinding>,
    /// The text with every `Redact` finding replaced by its placeholder.
    pub redacted: String,
    /// True when any finding's kind has the `Block` action.
    pub blocked: bool,
}

/// Detect personal data in `text` and apply `policy`.
pub fn apply_pii_policy(text: &str, policy: &PiiPolicy) -> PiiOutcome {
    let findings = detect_pii(text);
    let mut redacted = String::with_capacity(text.len());
    let mut last = 0;
    let mut blocked = false;
    for f in &findings {
        match policy.action(f.kind) {
            PiiAction::Redact => {
                redacted.push_str(&text[last..f.start]);
                redacted.push_str(f.kind.placeholder());
                last = f.end;
            }
            PiiAction::Block => blocked = true,
            PiiAction::Allow => {}
        }
    }
    redacted.push_str(&text[last..]);
    PiiOutcome { findings, redacted, blocked }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_blocks_and_allows_per_kind() {
        let text = "card 4111111111111111, mail a@b.org, ip 10.0.0.1";
        let out = apply_pii_policy(text, &PiiPolicy::default());
        assert_eq!(out.redacted, "card [CARD], mail [EMAIL], ip 10.0.0.1");
        assert!(!out.blocked);
        let strict = PiiPolicy { card: PiiAction::Block, ..PiiPolicy::default() };
        assert!(apply_pii_policy(text, &strict).blocked);
    }
}
