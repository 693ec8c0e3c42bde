//! Scanning retrieved document chunks for instructions aimed at an AI (indirect injection).

use serde::Serialize;

use super::input::{family_reason, InputGuard};
use crate::injection::signatures::MatchScratch;
use crate::injection::Scope;
use crate::normalize::normalize;
use crate::segment::segments;
use crate::verdict::ReasonCode;

/// The result of [`InputGuard::scan_document`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentVerdict {
    pub flagged: bool,
    /// Highest segment score, in [0, 1].
    pub score: f32,
    pub reasons: Vec<ReasonCode>,
    /// Rule ids and signature ids behind the score.
    pub evidence: Vec<String>,
    /// The segment (detection form) that scored highest, for the trace.
    pub segment: Option<String>,
}

impl InputGuard {
    /// Scan one document chunk. Each sentence-sized segment is scored on its own (rules in
    /// document scope plus signatures) so weak cues scattered over ordinary prose do not add
    /// up, while a single instruction addressed to an AI does.
    pub fn scan_document(&self, chunk: &str) -> DocumentVerdict {
        let norm = normalize(chunk);
        let mut detect = norm.detect;
        if !norm.hidden_tags.is_empty() {
            detect.push('\n');
            detect.push_str(&norm.hidden_tags.to_lowercase());
        }
        let mut best = DocumentVerdict { flagged: false, score: 0.0, reasons: vec![], evidence: vec![], segment: None };
        MatchScratch::with_thread_local(|scratch| {
            for seg in segments(&detect) {
                let h = self.heuristics.scan(seg, Scope::Document);
                let hit = self.matcher.nearest(seg, scratch);
                let sig = hit.score(self.config.signature_margin);
                let score = 1.0 - (1.0 - h.total()) * (1.0 - sig);
                if score > best.score {
                    let mut reasons: Vec<ReasonCode> =
                        h.families.iter().filter(|(_, s)| *s >= 0.3).map(|(f, _)| family_reason(*f)).collect();
                    let mut evidence: Vec<String> = h.fired.iter().map(|s| (*s).to_owned()).collect();
                    if sig >= 0.3 {
                        reasons.push(ReasonCode::InjectionSignature);
                        evidence.extend(hit.attack_id.clone());
                    }
                    best = DocumentVerdict { flagged: false, score, reasons, evidence, segment: Some(seg.to_owned()) };
                }
            }
        });
        best.flagged = best.score >= self.config.document_flag || !norm.hidden_tags.is_empty();
        if !norm.hidden_tags.is_empty() {
            best.reasons.push(ReasonCode::InputHiddenText);
        }
        if best.flagged && !best.reasons.contains(&ReasonCode::InjectionIndirect) {
            best.reasons.push(ReasonCode::InjectionIndirect);
        }
        best.reasons.sort();
        best.reasons.dedup();
        best
    }
}
