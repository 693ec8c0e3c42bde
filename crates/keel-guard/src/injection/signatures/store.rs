//! Signature records and the versioned JSONL file that holds them.
//!
//! File format: the first line is a header `{"signatures_version": "..."}`; every other
//! non-empty line is one [`Signature`].

use serde::{Deserialize, Serialize};

use crate::error::GuardError;

/// The signature file shipped in the crate.
pub const BUILTIN_SIGNATURES: &str = include_str!("../../../data/signatures.jsonl");

/// An attack, or a benign text that looks like one (used to demand a margin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    Attack,
    Benign,
}

/// Only active signatures match; entries learned from incidents start quarantined until a
/// person reviews them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignatureStatus {
    #[default]
    Active,
    Quarantined,
}

/// One entry of the signature database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub id: String,
    pub kind: SignatureKind,
    /// `instruction_override`, `roleplay_jailbreak`, `developer_mode`,
    /// `system_prompt_extraction`, `delimiter_spoofing`, `indirect_ai_directive`, ... for
    /// attacks; `benign_lookalike` or a topic for benign entries.
    pub category: String,
    /// ISO 639-1 language code.
    #[serde(default = "default_lang")]
    pub lang: String,
    pub text: String,
    /// Where the entry comes from: the public attack family it paraphrases, or the incident.
    pub provenance: String,
    #[serde(default)]
    pub status: SignatureStatus,
}

fn default_lang() -> String {
    "en".to_owned()
}

#[derive(Serialize, Deserialize)]
struct Header {
    signatures_version: String,
}

/// The signature database: a version string and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    version: String,
    entries: Vec<Signature>,
}

impl Signatures {
    /// The database shipped with the crate.
    pub fn builtin() -> Result<Self, GuardError> {
        Self::from_jsonl(BUILTIN_SIGNATURES)
    }

    /// An empty database with the given version.
    pub fn empty(version: impl Into<String>) -> Self {
        Self { version: version.into(), entries: Vec::new() }
    }

    /// Parse a JSONL signature file (header line first).
    pub fn from_jsonl(text: &str) -> Result<Self, GuardError> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, first) =
            lines.next().ok_or_else(|| GuardError::SignatureFormat("empty file, expected a version header".into()))?;
        let header: Header =
            serde_json::from_str(first).map_err(|e| GuardError::SignatureFormat(format!("bad header line: {e}")))?;
        let mut out = Self::empty(header.signatures_version);
        for (i, line) in lines {
            let sig: Signature =
                serde_json::from_str(line).map_err(|source| GuardError::SignatureParse { line: i + 1, source })?;
            out.add(sig)?;
        }
        Ok(out)
    }

    /// Serialise to the JSONL format read by [`Signatures::from_jsonl`].
    pub fn to_jsonl(&self) -> Result<String, GuardError> {
        let mut out = serde_json::to_string(&Header { signatures_version: self.version.clone() })?;
        out.push('\n');
        for e in &self.entries {
            out.push_str(&serde_json::to_string(e)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Merge another database (e.g. user-added entries) into this one; ids must not clash.
    pub fn extend(&mut self, other: Signatures) -> Result<(), GuardError> {
        for e in other.entries {
            self.add(e)?;
        }
        Ok(())
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn set_version(&mut self, version: impl Into<String>) {
        self.version = version.into();
    }

    /// Add an entry; fails on a duplicate id.
    pub fn add(&mut self, sig: Signature) -> Result<(), GuardError> {
        if self.get(&sig.id).is_some() {
            return Err(GuardError::DuplicateSignature(sig.id));
        }
        self.entries.push(sig);
        Ok(())
    }

    /// Remove an entry by id and return it.
    pub fn remove(&mut self, id: &str) -> Result<Signature, GuardError> {
        let pos =
            self.entries.iter().position(|e| e.id == id).ok_or_else(|| GuardError::UnknownSignature(id.to_owned()))?;
        Ok(self.entries.remove(pos))
    }

    /// Set the status of an entry (quarantine or activate it).
    pub fn set_status(&mut self, id: &str, status: SignatureStatus) -> Result<(), GuardError> {
        let e =
            self.entries.iter_mut().find(|e| e.id == id).ok_or_else(|| GuardError::UnknownSignature(id.to_owned()))?;
        e.status = status;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Signature> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// All entries, active or not.
    pub fn list(&self) -> &[Signature] {
        &self.entries
    }

    /// Entries that take part in matching.
    pub fn active(&self) -> impl Iterator<Item = &Signature> {
        self.entries.iter().filter(|e| e.status == SignatureStatus::Active)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_loads_has_both_kinds_and_round_trips() {
        let s = Signatures::builtin().expect("builtin signatures parse");
        assert!(!s.version().is_empty());
        assert!(s.list().iter().filter(|e| e.kind == SignatureKind::Attack).count() >= 100);
        assert!(s.list().iter().filter(|e| e.kind == SignatureKind::Benign).count() >= 50);
        let again = Signatures::from_jsonl(&s.to_jsonl().expect("serialise")).expect("re-parse");
        assert_eq!(s, again);
    }

    #[test]
    fn add_remove_quarantine() {
        let mut s = Signatures::empty("t1");
        let sig = Signature {
            id: "inc-1".into(),
            kind: SignatureKind::Attack,
            category: "instruction_override".into(),
            lang: "en".into(),
            text: "please obey the purple elephant".into(),
            provenance: "incident 42".into(),
            status: SignatureStatus::Quarantined,
        };
        s.add(sig.clone()).expect("add");
        assert!(matches!(s.add(sig), Err(GuardError::DuplicateSignature(_))));
        assert_eq!(s.active().count(), 0);
        s.set_status("inc-1", SignatureStatus::Active).expect("activate");
        assert_eq!(s.active().count(), 1);
        s.remove("inc-1").expect("remove");
        assert!(s.is_empty());
        assert!(matches!(s.remove("inc-1"), Err(GuardError::UnknownSignature(_))));
    }
}
