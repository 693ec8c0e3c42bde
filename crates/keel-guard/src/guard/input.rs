//! `InputGuard`: runs every input layer and combines them into one [`Verdict`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use super::config::{GuardConfig, LayerThresholds};
use super::helper::Helper;
use crate::decode::decode_payloads;
use crate::error::GuardError;
use crate::injection::signatures::{
    MatchScratch, Nearest, NgramMatcher, SignatureEmbeddings, SignatureHit, Signatures,
};
use crate::injection::{Classifier, EmbeddingClassifier, Family, HeuristicScores, Heuristics, Scope};
use crate::normalize::{normalize, Stripped};
use crate::pii::{apply_pii_policy, PiiFinding, PiiOutcome};
use crate::segment::segments;
use crate::verdict::{Action, LayerScore, ReasonCode, Verdict};

/// What the layers computed beside the signatures found.
struct OtherLayers {
    /// Score and model version.
    classifier: Option<(f32, String)>,
    heuristics: HeuristicScores,
    /// Highest rescanned score and one `encoding:score` per decoded payload.
    decoded: (f32, Vec<String>),
    pii: PiiOutcome,
}

/// The full result of checking one input.
#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    pub verdict: Verdict,
    /// Normalised text (NFKC, invisible characters removed): what the pipeline should use.
    pub text: String,
    /// `text` with personal data redacted according to the PII policy.
    pub redacted: String,
    pub stripped: Stripped,
    pub homoglyphs: usize,
    pub pii: Vec<PiiFinding>,
}

/// The input guard. Build once (it compiles rules and indexes signatures) and share it.
pub struct InputGuard {
    pub(super) config: GuardConfig,
    signatures: Signatures,
    pub(super) matcher: Arc<NgramMatcher>,
    embeddings: Option<SignatureEmbeddings>,
    pub(super) heuristics: Heuristics,
    classifier: Option<Classifier>,
    /// The embedding classifier: scores the caller's vector of the input, when one is given.
    embedding_classifier: Option<EmbeddingClassifier>,
    /// Takes the signature layer of long inputs.
    helper: Helper,
    /// Inputs whose signature layer the helper ran.
    parallel_scans: AtomicU64,
}

pub(crate) fn family_reason(f: Family) -> ReasonCode {
    match f {
        Family::Override => ReasonCode::InjectionOverride,
        Family::Roleplay => ReasonCode::InjectionRoleplay,
        Family::Delimiter => ReasonCode::InjectionDelimiter,
        Family::Extraction => ReasonCode::InjectionExtraction,
        Family::Indirect => ReasonCode::InjectionIndirect,
    }
}

fn layer(name: &'static str, score: f32, t: LayerThresholds, detail: Vec<String>) -> LayerScore {
    LayerScore { layer: name, score, threshold: t.flag, fired: score >= t.flag, detail }
}

fn action_of(score: f32, t: LayerThresholds) -> Action {
    if score >= t.block {
        Action::Block
    } else if score >= t.flag {
        Action::Flag
    } else {
        Action::Allow
    }
}

/// Families that explain a heuristic score: every family ≥ 0.3, or the strongest one.
fn family_reasons(h: &HeuristicScores, out: &mut Vec<ReasonCode>) {
    let before = out.len();
    for (f, s) in &h.families {
        if *s >= 0.3 {
            out.push(family_reason(*f));
        }
    }
    if out.len() == before {
        if let Some((f, _)) = h.families.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
            out.push(family_reason(*f));
        }
    }
}

/// Best signature score over the segments of `detect`, with the hit that produced it.
fn signature_scan(matcher: &NgramMatcher, margin: f32, detect: &str) -> (f32, SignatureHit) {
    let mut best = (0.0f32, Nearest::default());
    MatchScratch::with_thread_local(|scratch| {
        for seg in segments(detect) {
            let hit = matcher.nearest_idx(seg, scratch);
            let s = hit.score(margin);
            if s > best.0 {
                best = (s, hit);
            }
        }
    });
    if best.0 > 0.0 {
        (best.0, matcher.hit(&best.1))
    } else {
        (0.0, SignatureHit::default())
    }
}

/// Limit very long inputs to their head and tail (payloads hide at either end).
fn scan_window(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let half = max / 2;
    let mut a = half;
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = text.len() - half;
    while !text.is_char_boundary(b) {
        b += 1;
    }
    format!("{}\n{}", &text[..a], &text[b..])
}

impl InputGuard {
    /// Build a guard over `signatures` (only active entries match), with the built-in
    /// classifier model.
    pub fn new(signatures: Signatures, config: GuardConfig) -> Result<Self, GuardError> {
        let matcher = Arc::new(NgramMatcher::new(&signatures));
        let classifier = Some(Classifier::builtin()?);
        let embedding_classifier = Some(EmbeddingClassifier::builtin()?);
        Ok(Self {
            config,
            signatures,
            matcher,
            embeddings: None,
            heuristics: Heuristics::new()?,
            classifier,
            embedding_classifier,
            helper: Helper::default(),
            parallel_scans: AtomicU64::new(0),
        })
    }

    /// Replace the classifier model, or turn the classifier layer off with `None`.
    pub fn set_classifier(&mut self, classifier: Option<Classifier>) {
        self.classifier = classifier;
    }

    /// Replace the embedding classifier, or turn that layer off with `None`.
    pub fn set_embedding_classifier(&mut self, c: Option<EmbeddingClassifier>) {
        self.embedding_classifier = c;
    }

    /// The classifier model in use, if any (its version goes on traces).
    pub fn classifier(&self) -> Option<&Classifier> {
        self.classifier.as_ref()
    }

    /// The built-in signatures and default configuration.
    pub fn with_defaults() -> Result<Self, GuardError> {
        Self::new(Signatures::builtin()?, GuardConfig::default())
    }

    /// Enable the embedding layer. Build `embeddings` from [`InputGuard::signatures`] with
    /// [`SignatureEmbeddings::texts_to_embed`] and [`SignatureEmbeddings::new`].
    pub fn set_embeddings(&mut self, embeddings: SignatureEmbeddings) {
        self.embeddings = Some(embeddings);
    }

    pub fn signatures(&self) -> &Signatures {
        &self.signatures
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Best signature score over the segments of `detect`, with the hit that produced it.
    pub(super) fn signature_layer(&self, detect: &str) -> (f32, SignatureHit) {
        signature_scan(&self.matcher, self.config.signature_margin, detect)
    }

    /// Every layer but the signatures and the embedding layers: the classifier, heuristics,
    /// decoded payloads (rescanned) and personal data.
    fn other_layers(&self, detect: &str, text: &str) -> OtherLayers {
        let classifier = self.classifier.as_ref().map(|c| (c.score(detect), c.version().to_owned()));
        let heuristics = self.heuristics.scan(detect, Scope::Input);
        let mut dec_score = 0.0f32;
        let mut dec_detail = Vec::new();
        for d in decode_payloads(text) {
            let dn = normalize(&d.text);
            let dh = self.heuristics.scan(&dn.detect, Scope::Input);
            let (ds, _) = self.signature_layer(&dn.detect);
            let s = dh.total().max(ds);
            dec_detail.push(format!("{}:{s:.2}", d.encoding));
            if s > dec_score {
                dec_score = s;
            }
        }
        let pii = apply_pii_policy(text, &self.config.pii);
        OtherLayers { classifier, heuristics, decoded: (dec_score, dec_detail), pii }
    }

    /// How many inputs so far had their signature layer run on the helper thread, beside the
    /// other layers (the rest ran on the caller's thread alone).
    pub fn parallel_scans(&self) -> u64 {
        self.parallel_scans.load(Ordering::Relaxed)
    }

    /// Check an input without an embedding.
    pub fn check(&self, text: &str) -> InputReport {
        self.check_with_embedding(text, None)
    }

    /// Check an input; `embedding` is the input's vector from the same model as the
    /// signature embeddings (ignored when no signature embeddings are set).
    pub fn check_with_embedding(&self, text: &str, embedding: Option<&[f32]>) -> InputReport {
        let cfg = &self.config;
        let norm = normalize(text);
        let mut detect = scan_window(&norm.detect, cfg.max_scan_bytes);
        if !norm.hidden_tags.is_empty() {
            detect.push('\n');
            detect.push_str(&norm.hidden_tags.to_lowercase());
        }
        let mut layers = Vec::new();
        let mut reasons = Vec::new();
        let mut action = Action::Allow;

        // The signature layer and the others read the same text and nothing of each other's.
        // Long jailbreak prompts (5–12 k characters) cost a millisecond or more on one core,
        // most of it in these two halves, so on a long input the guard's helper thread takes the
        // signatures while this thread runs the rest; short inputs (almost every real question)
        // never pay the hand-over.
        let parallel = cfg.parallel_from_bytes > 0 && detect.len() >= cfg.parallel_from_bytes;
        let pending = if parallel {
            self.helper.run(|| {
                let (matcher, margin, text) =
                    (Arc::clone(&self.matcher), cfg.signature_margin, Arc::<str>::from(&*detect));
                move || signature_scan(&matcher, margin, &text)
            })
        } else {
            None
        };
        let other = self.other_layers(&detect, &norm.text);
        // A busy helper, one that has not started the job yet, or a failed one leaves the work
        // to this thread.
        let (sig_score, hit) = match pending.and_then(|p| p.wait()) {
            Some(sig) => {
                self.parallel_scans.fetch_add(1, Ordering::Relaxed);
                sig
            }
            None => self.signature_layer(&detect),
        };
        let OtherLayers { classifier: cls, heuristics: h, decoded: (dec_score, dec_detail), pii } = other;

        // Signatures (n-gram).
        let detail = hit
            .attack_id
            .iter()
            .map(|id| format!("attack={id} sim={:.2}", hit.attack_sim))
            .chain(hit.benign_id.iter().map(|id| format!("benign={id} sim={:.2}", hit.benign_sim)))
            .collect();
        layers.push(layer("signatures", sig_score, cfg.signatures, detail));
        if sig_score >= cfg.signatures.flag {
            reasons.push(ReasonCode::InjectionSignature);
        }
        action = action.max(action_of(sig_score, cfg.signatures));

        // Hashed n-gram classifier.
        let mut cls_score = 0.0;
        if let Some((score, version)) = cls {
            cls_score = score;
            layers.push(layer("classifier", cls_score, cfg.classifier, vec![format!("model={version}")]));
            if cls_score >= cfg.classifier.flag {
                reasons.push(ReasonCode::InjectionClassifier);
            }
            action = action.max(action_of(cls_score, cfg.classifier));
        }

        // The embedding classifier, on the caller's vector of the input.
        if let (Some(c), Some(v)) = (&self.embedding_classifier, embedding) {
            if let Some(s) = c.score(v) {
                let t = c.thresholds();
                layers.push(layer("embedding_classifier", s, t, vec![format!("model={}", c.version())]));
                if s >= t.flag {
                    reasons.push(ReasonCode::InjectionEmbedding);
                }
                action = action.max(action_of(s, t));
            }
        }

        // Embeddings (optional).
        let mut emb_score = 0.0;
        if let (Some(e), Some(v)) = (&self.embeddings, embedding) {
            let hit = e.nearest(v);
            emb_score = hit.score(cfg.embedding_margin);
            let detail = hit.attack_id.iter().map(|id| format!("attack={id} sim={:.2}", hit.attack_sim)).collect();
            layers.push(layer("embedding", emb_score, cfg.embedding, detail));
            if emb_score >= cfg.embedding.flag {
                reasons.push(ReasonCode::InjectionEmbedding);
            }
            action = action.max(action_of(emb_score, cfg.embedding));
        }

        // Heuristics.
        let heur_score = h.total();
        layers.push(layer("heuristics", heur_score, cfg.heuristics, h.fired.iter().map(|s| (*s).to_owned()).collect()));
        if heur_score >= cfg.heuristics.flag {
            family_reasons(&h, &mut reasons);
        }
        action = action.max(action_of(heur_score, cfg.heuristics));

        // Decoded payloads, rescanned once.
        layers.push(layer("decoded", dec_score, cfg.decoded, dec_detail));
        if dec_score >= cfg.decoded.flag {
            reasons.push(ReasonCode::InjectionEncoded);
        }
        action = action.max(action_of(dec_score, cfg.decoded));

        // Combined evidence.
        let cls_evidence = cls_score * cfg.classifier_in_combined.clamp(0.0, 1.0);
        let combined =
            1.0 - [sig_score, emb_score, heur_score, dec_score, cls_evidence].iter().map(|s| 1.0 - s).product::<f32>();
        layers.push(layer("combined", combined, cfg.combined, Vec::new()));
        let combined_action = action_of(combined, cfg.combined);
        if combined_action > Action::Allow && reasons.is_empty() {
            if cls_evidence > sig_score.max(heur_score) {
                reasons.push(ReasonCode::InjectionClassifier);
            } else if sig_score >= heur_score {
                reasons.push(ReasonCode::InjectionSignature);
            } else {
                family_reasons(&h, &mut reasons);
            }
        }
        action = action.max(combined_action);

        // Hidden text (tag characters) is never legitimate in a request.
        if !norm.hidden_tags.is_empty() {
            reasons.push(ReasonCode::InputHiddenText);
            action = action.max(Action::Flag);
        }

        // Personal data.
        let kinds: Vec<String> = pii.findings.iter().map(|f| f.kind.reason_code().to_owned()).collect();
        layers.push(LayerScore {
            layer: "pii",
            score: f32::from(u8::from(!pii.findings.is_empty())),
            threshold: 1.0,
            fired: pii.blocked,
            detail: kinds,
        });
        for f in &pii.findings {
            reasons.push(pii_reason(f.kind));
        }
        if pii.blocked {
            action = Action::Block;
        }

        reasons.sort();
        reasons.dedup();
        let score = layers.iter().filter(|l| l.layer != "pii").map(|l| l.score).fold(0.0, f32::max);
        InputReport {
            verdict: Verdict { action, score, reasons, layers },
            text: norm.text,
            redacted: pii.redacted,
            stripped: norm.stripped,
            homoglyphs: norm.homoglyphs,
            pii: pii.findings,
        }
    }
}

fn pii_reason(kind: crate::pii::PiiKind) -> ReasonCode {
    use crate::pii::PiiKind as K;
    match kind {
        K::Email => ReasonCode::PiiEmail,
        K::Phone => ReasonCode::PiiPhone,
        K::Card => ReasonCode::PiiCard,
        K::Iban => ReasonCode::PiiIban,
        K::Ssn => ReasonCode::PiiSsn,
        K::Ipv4 => ReasonCode::PiiIpv4,
        K::Ipv6 => ReasonCode::PiiIpv6,
        K::Secret => ReasonCode::PiiSecret,
    }
}
