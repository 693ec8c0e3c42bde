//! Support features of one claim against its evidence text: content-word recall (whole evidence,
//! best sentence, best 3-sentence window; plain and IDF-weighted), morphological near misses,
//! bigram overlap, numbers, named entities, negation, a few shape cues, and the hashed sparse
//! cues of `sparse.rs`. The evidence is scanned once and only words that could match a claim word
//! are stemmed, so long pages cost little more than tokenizing them.

use crate::text::{
    self, lower_into, number_word, parse_number, same_number, scale_word, FastMap, FastSet, Kind, PrefixFilter, Stems,
    Token,
};

/// Unique content stems tracked per claim (bit sets are `u128`).
const MAX_STEMS: usize = 128;
/// Evidence sentences considered; longer evidence is cut (the caps keep latency bounded).
pub(crate) const MAX_EVIDENCE_SENTENCES: usize = 4000;
/// Bytes of evidence considered in all (about 0.5 ms of scanning on this machine's cores).
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024;

/// Names of the features, in the order of [`Features::values`].
pub const FEATURE_NAMES: [&str; 30] = [
    "recall_all",
    "recall_sent_mean",
    "recall_sent_min",
    "recall_win3_mean",
    "recall_win3_min",
    "bigram_all",
    "bigram_best",
    "missing_content_log",
    "claim_content_log",
    "numbers_missing_any",
    "numbers_missing_frac",
    "entities_missing_any",
    "entities_missing_frac",
    "negation_mismatch",
    "best_sentence_precision",
    "first_person",
    "question",
    "evidence_log",
    "long_word_recall",
    "has_numbers",
    "skip_bigram_recall",
    "repeat_frac",
    "all_found",
    "length_ratio_log",
    "idf_recall_all",
    "idf_recall_best",
    "idf_missing_max",
    "idf_missing_log",
    "near_missing_frac",
    "recall_with_near",
];

/// Feature values and the findings behind them.
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub values: [f32; FEATURE_NAMES.len()],
    /// Human-readable reasons: "number 45", "entity Paris", "negation".
    pub missing: Vec<String>,
    /// Hard failures: a number or entity absent from the evidence, or a negation flipped.
    pub hard_fail: bool,
    /// Hashed sparse cues (words, word pairs, stems the evidence lacks), see `sparse.rs`.
    pub sparse: Vec<u32>,
}

struct ClaimNumber {
    value: f64,
    base: f64,
    label: String,
}

/// One claim, tokenized and indexed for matching.
struct ClaimIndex {
    /// Unique content stems.
    stems: Vec<String>,
    /// Their inverse document frequencies (see `idf.rs`).
    idf: Vec<f32>,
    stem_ix: FastMap<String, usize>,
    /// Lowercase surface form -> stem index (saves stemming evidence words seen in the claim).
    surface: FastMap<String, usize>,
    prefixes: PrefixFilter,
    /// First four characters of claim words of five or more -> stems (morphological near misses).
    near: FastMap<String, u128>,
    /// Per claim sentence: its content-stem mask and its stem sequence (for bigrams).
    sentence_masks: Vec<u128>,
    bigrams: FastSet<(usize, usize)>,
    /// Ordered pairs of claim stems at most [`SKIP`] content words apart.
    skips: FastSet<(usize, usize)>,
    content_tokens: u32,
    repeats: u32,
    numbers: Vec<ClaimNumber>,
    /// (stem index, surface form) of capitalised words.
    entities: Vec<(usize, String)>,
    negations: usize,
    first_person: bool,
    question: bool,
}

fn number_at(text: &str, toks: &[Token], i: usize, buf: &mut String) -> Option<(f64, f64, usize)> {
    let t = toks[i];
    let s = &text[t.start..t.end];
    let (base, mut next) = match t.kind {
        Kind::Number => (parse_number(s)?, i + 1),
        Kind::Word => {
            let mut v = number_word(lower_into(s, buf))?;
            let mut n = i + 1;
            // "twenty five" / "twenty-five"
            if (20.0..100.0).contains(&v) && v % 10.0 == 0.0 {
                let mut k = n;
                if k < toks.len() && &text[toks[k].start..toks[k].end] == "-" {
                    k += 1;
                }
                if k < toks.len() && toks[k].kind == Kind::Word {
                    if let Some(u) = number_word(lower_into(&text[toks[k].start..toks[k].end], buf)) {
                        if u < 10.0 {
                            v += u;
                            n = k + 1;
                        }
                    }
                }
            }
            (v, n)
        }
        Kind::Punct => return None,
    };
    let mut value = base;
    while next < toks.len() && toks[next].kind == Kind::Word {
        match scale_word(lower_into(&text[toks[next].start..toks[next].end], buf)) {
            Some(sc) => {
                value *= sc;
                next += 1;
            }
            None => break,
        }
    }
    Some((value, base, next))
}

impl ClaimIndex {
    /// The claim stem an evidence word (lowercase) matches, if any; stems only plausible words.
    fn lookup(&self, lower: &str, stems: &Stems) -> Option<usize> {
        if !self.prefixes.may_contain(lower) {
            return None;
        }
        match self.surface.get(lower) {
            Some(&k) => Some(k),
            None => self.stem_ix.get(stems.stem(lower).as_ref()).copied(),
        }
    }

    fn new(claim: &str, stems: &Stems, idf: &[u8]) -> Self {
        let mut ix = ClaimIndex {
            stems: Vec::new(),
            idf: Vec::new(),
            stem_ix: FastMap::default(),
            surface: FastMap::default(),
            prefixes: PrefixFilter::new(),
            near: FastMap::default(),
            sentence_masks: Vec::new(),
            bigrams: FastSet::default(),
            skips: FastSet::default(),
            content_tokens: 0,
            repeats: 0,
            numbers: Vec::new(),
            entities: Vec::new(),
            negations: 0,
            first_person: false,
            question: claim.contains('?'),
        };
        let mut toks = Vec::new();
        let mut buf = String::new();
        let mut buf2 = String::new();
        for (s, e) in text::sentences(claim) {
            let sent = &claim[s..e];
            text::tokenize(sent, &mut toks);
            let mut mask = 0u128;
            let mut prev: Option<usize> = None;
            let mut recent: Vec<usize> = Vec::new();
            let mut i = 0;
            let mut first_word = true;
            while i < toks.len() {
                let t = toks[i];
                let w = &sent[t.start..t.end];
                if let Some((value, base, next)) = number_at(sent, &toks, i, &mut buf2) {
                    let label = sent[t.start..toks[next - 1].end].to_string();
                    let prefix = if t.start > 0 && sent[..t.start].ends_with('$') { "$" } else { "" };
                    ix.numbers.push(ClaimNumber { value, base, label: format!("{prefix}{label}") });
                    i = next;
                    first_word = false;
                    continue;
                }
                if t.kind != Kind::Word {
                    i += 1;
                    continue;
                }
                let lower = lower_into(w, &mut buf);
                if matches!(lower, "i" | "my" | "me" | "we" | "our" | "mine") {
                    ix.first_person = true;
                }
                let capital = w.chars().next().is_some_and(char::is_uppercase);
                let negation = text::is_negation(lower);
                if negation {
                    ix.negations += 1;
                }
                if negation || text::is_stopword(lower) {
                    first_word = false;
                    i += 1;
                    continue;
                }
                let stem = stems.stem(lower).into_owned();
                let k = match ix.stem_ix.get(&stem) {
                    Some(&k) => k,
                    None => {
                        if ix.stems.len() >= MAX_STEMS {
                            i += 1;
                            continue;
                        }
                        let k = ix.stems.len();
                        ix.stem_ix.insert(stem.clone(), k);
                        ix.idf.push(crate::idf::idf(idf, &stem));
                        ix.stems.push(stem);
                        k
                    }
                };
                ix.surface.insert(lower.to_string(), k);
                ix.prefixes.insert(lower);
                if let Some(p4) = prefix4(lower) {
                    *ix.near.entry(p4.to_string()).or_default() |= 1u128 << k;
                }
                ix.content_tokens += 1;
                if mask & (1u128 << k) != 0 {
                    ix.repeats += 1;
                }
                mask |= 1u128 << k;
                for &j in recent.iter().rev().take(SKIP) {
                    if j != k {
                        ix.skips.insert((j, k));
                    }
                }
                recent.push(k);
                if let Some(p) = prev {
                    ix.bigrams.insert((p, k));
                }
                prev = Some(k);
                let next_capital = toks.get(i + 1).is_some_and(|n| {
                    n.kind == Kind::Word && sent[n.start..].chars().next().is_some_and(char::is_uppercase)
                });
                if capital && (!first_word || next_capital) && !ix.entities.iter().any(|(e, _)| *e == k) {
                    ix.entities.push((k, w.to_string()));
                }
                first_word = false;
                i += 1;
            }
            if mask != 0 {
                ix.sentence_masks.push(mask);
            }
        }
        ix
    }
}

/// The first four characters of a word of at least five characters.
fn prefix4(lower: &str) -> Option<&str> {
    let (fifth, _) = lower.char_indices().nth(4)?;
    Some(&lower[..fifth])
}

/// Window (in content words) of the ordered pairs that [`ClaimIndex::skips`] tracks; evidence
/// pairs may be one word further apart.
const SKIP: usize = 3;

/// One evidence sentence as seen from a claim.
#[derive(Clone, Copy, Default)]
struct EvSentence {
    mask: u128,
    content: u32,
    negations: u32,
}

/// Computes the features of `claim` against `evidence` (the cited chunks, joined).
pub(crate) fn features(claim: &str, evidence: &[&str], stems: &Stems, idf: &[u8]) -> Features {
    let ix = ClaimIndex::new(claim, stems, idf);
    let mut sents: Vec<EvSentence> = Vec::new();
    let mut ev_bigrams: FastSet<(usize, usize)> = FastSet::default();
    let mut ev_skips: FastSet<(usize, usize)> = FastSet::default();
    let mut best_bigram_sentence: Vec<FastSet<(usize, usize)>> = Vec::new();
    let mut num_found = vec![false; ix.numbers.len()];
    let mut toks = Vec::new();
    let mut buf = String::new();
    let mut buf2 = String::new();
    let mut ev_content: u32 = 0;
    let mut near: u128 = 0;
    let mut budget = MAX_EVIDENCE_BYTES;
    'outer: for chunk in evidence {
        let chunk = cap(chunk, budget);
        budget -= chunk.len();
        for (s, e) in text::sentences(chunk) {
            if sents.len() >= MAX_EVIDENCE_SENTENCES {
                break 'outer;
            }
            let sent = &chunk[s..e];
            text::tokenize(sent, &mut toks);
            let mut es = EvSentence::default();
            let mut prev: Option<usize> = None;
            let mut recent: Vec<(u32, usize)> = Vec::new();
            let mut sb: FastSet<(usize, usize)> = FastSet::default();
            let mut i = 0;
            while i < toks.len() {
                let t = toks[i];
                if !ix.numbers.is_empty() && (t.kind == Kind::Number || t.kind == Kind::Word) {
                    if let Some((value, base, next)) = number_at(sent, &toks, i, &mut buf2) {
                        for (f, n) in num_found.iter_mut().zip(&ix.numbers) {
                            if same_number(n.value, value)
                                || same_number(n.value, base)
                                || same_number(n.base, value)
                                || same_number(n.base, base)
                            {
                                *f = true;
                            }
                        }
                        if t.kind == Kind::Number {
                            i = next;
                            prev = None;
                            continue;
                        }
                    }
                }
                if t.kind != Kind::Word {
                    i += 1;
                    continue;
                }
                let lower = lower_into(&sent[t.start..t.end], &mut buf);
                if text::is_negation(lower) {
                    es.negations += 1;
                    i += 1;
                    continue;
                }
                if text::is_stopword(lower) {
                    i += 1;
                    continue;
                }
                es.content += 1;
                let k = ix.lookup(lower, stems);
                if k.is_none() {
                    if let Some(m) = prefix4(lower).and_then(|p| ix.near.get(p)) {
                        near |= m;
                    }
                }
                if let Some(k) = k {
                    es.mask |= 1u128 << k;
                    for &(pos, j) in recent.iter().rev().take(SKIP + 1) {
                        if es.content - pos <= SKIP as u32 + 1 && j != k && ix.skips.contains(&(j, k)) {
                            ev_skips.insert((j, k));
                        }
                    }
                    recent.push((es.content, k));
                    if let Some(p) = prev {
                        if ix.bigrams.contains(&(p, k)) {
                            sb.insert((p, k));
                            ev_bigrams.insert((p, k));
                        }
                    }
                }
                prev = k;
                i += 1;
            }
            ev_content += es.content;
            sents.push(es);
            best_bigram_sentence.push(sb);
        }
    }
    let skip_recall = ratio(ev_skips.len() as u32, ix.skips.len() as u32);
    let scan =
        Scan { sents, ev_bigrams, sentence_bigrams: best_bigram_sentence, num_found, ev_content, skip_recall, near };
    let mut f = combine(&ix, &scan);
    let found = scan.sents.iter().fold(0u128, |a, s| a | s.mask);
    f.sparse = crate::sparse::hashes(claim, &ix.stems, found, &ix.surface);
    f
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn ratio(a: u32, b: u32) -> f32 {
    if b == 0 {
        1.0
    } else {
        a as f32 / b as f32
    }
}

/// What one scan of the evidence found for a claim.
struct Scan {
    sents: Vec<EvSentence>,
    ev_bigrams: FastSet<(usize, usize)>,
    /// Per evidence sentence: the claim bigrams it contains.
    sentence_bigrams: Vec<FastSet<(usize, usize)>>,
    num_found: Vec<bool>,
    ev_content: u32,
    skip_recall: f32,
    /// Claim stems with a morphological near miss (same first four letters) in the evidence.
    near: u128,
}

fn combine(ix: &ClaimIndex, scan: &Scan) -> Features {
    let (sents, ev_bigrams, sentence_bigrams, num_found) =
        (&scan.sents, &scan.ev_bigrams, &scan.sentence_bigrams, &scan.num_found);
    let (ev_content, skip_recall, near) = (scan.ev_content, scan.skip_recall, scan.near);
    let all_mask: u128 = ix.sentence_masks.iter().fold(0, |a, m| a | m);
    let k_all = all_mask.count_ones();
    let found_all: u128 = sents.iter().fold(0, |a, s| a | s.mask) & all_mask;
    let recall_all = ratio(found_all.count_ones(), k_all);

    // Per claim sentence: best single evidence sentence and best window of three.
    let (mut s_sum, mut s_min, mut w_sum, mut w_min, mut weight) = (0.0f32, 1.0f32, 0.0f32, 1.0f32, 0.0f32);
    for &m in &ix.sentence_masks {
        let k = m.count_ones();
        let best1 = sents.iter().map(|s| (s.mask & m).count_ones()).max().unwrap_or(0);
        let mut best3 = 0;
        for j in 0..sents.len() {
            let mut w = sents[j].mask;
            if j + 1 < sents.len() {
                w |= sents[j + 1].mask;
            }
            if j + 2 < sents.len() {
                w |= sents[j + 2].mask;
            }
            best3 = best3.max((w & m).count_ones());
        }
        let (r1, r3) = (ratio(best1, k), ratio(best3, k));
        s_sum += r1 * k as f32;
        w_sum += r3 * k as f32;
        weight += k as f32;
        s_min = s_min.min(r1);
        w_min = w_min.min(r3);
    }
    let (s_mean, w_mean) = if weight > 0.0 { (s_sum / weight, w_sum / weight) } else { (1.0, 1.0) };

    // The evidence sentence that matches the whole claim best (for negation and precision).
    let best = sents.iter().enumerate().max_by_key(|(j, s)| ((s.mask & all_mask).count_ones(), std::cmp::Reverse(*j)));
    let (best_ix, best_sent) = match best {
        Some((j, s)) => (Some(j), *s),
        None => (None, EvSentence::default()),
    };
    let precision = ratio((best_sent.mask & all_mask).count_ones(), best_sent.content.max(1));

    let n_bi = ix.bigrams.len() as u32;
    let bigram_all = ratio(ev_bigrams.len() as u32, n_bi);
    let bigram_best =
        best_ix.map_or(if n_bi == 0 { 1.0 } else { 0.0 }, |j| ratio(sentence_bigrams[j].len() as u32, n_bi));

    let mut missing = Vec::new();
    let mut hard_fail = false;
    let n_missing_num = num_found.iter().filter(|f| !**f).count();
    for (n, f) in ix.numbers.iter().zip(num_found) {
        if !*f {
            missing.push(format!("number {}", n.label));
            hard_fail = true;
        }
    }
    let mut n_missing_ent = 0;
    for (k, surface) in &ix.entities {
        if found_all & (1u128 << k) == 0 {
            n_missing_ent += 1;
            missing.push(format!("entity {surface}"));
            hard_fail = true;
        }
    }
    // Negation: does the claim's polarity differ from the best-matching evidence sentence's?
    let neg_mismatch = best_ix.is_some() && (ix.negations % 2) != (best_sent.negations as usize % 2);
    if neg_mismatch && recall_all > 0.5 {
        missing.push("negation".to_string());
        hard_fail = true;
    }

    let long: u128 = ix.stems.iter().enumerate().filter(|(_, s)| s.len() >= 6).fold(0, |a, (k, _)| a | (1u128 << k));
    let long_recall = ratio((found_all & long).count_ones(), (all_mask & long).count_ones());
    let missing_content = k_all - found_all.count_ones();

    // IDF-weighted support: the claim's idf mass found anywhere / in the best sentence, and missing.
    let mass =
        |m: u128| -> f32 { ix.idf.iter().enumerate().filter(|(k, _)| m & (1u128 << k) != 0).map(|(_, v)| v).sum() };
    let total_idf = mass(all_mask);
    let idf_ratio = |m: u128| if total_idf > 0.0 { mass(m & all_mask) / total_idf } else { 1.0 };
    let idf_all = idf_ratio(found_all);
    let idf_best = sents.iter().filter(|s| s.mask & all_mask != 0).map(|s| idf_ratio(s.mask)).fold(0.0f32, f32::max);
    let idf_best = if total_idf > 0.0 { idf_best } else { 1.0 };
    let missing_mask = all_mask & !found_all;
    let idf_missing_max = ix
        .idf
        .iter()
        .enumerate()
        .filter(|(k, _)| missing_mask & (1u128 << k) != 0)
        .map(|(_, v)| *v)
        .fold(0.0f32, f32::max);

    let n_num = ix.numbers.len() as u32;
    let n_ent = ix.entities.len() as u32;
    let values = [
        recall_all,
        s_mean,
        s_min,
        w_mean,
        w_min,
        bigram_all,
        bigram_best,
        (missing_content as f32).ln_1p(),
        (k_all as f32).ln_1p(),
        (n_missing_num > 0) as u8 as f32,
        if n_num == 0 { 0.0 } else { n_missing_num as f32 / n_num as f32 },
        (n_missing_ent > 0) as u8 as f32,
        if n_ent == 0 { 0.0 } else { n_missing_ent as f32 / n_ent as f32 },
        neg_mismatch as u8 as f32,
        precision,
        ix.first_person as u8 as f32,
        ix.question as u8 as f32,
        (ev_content as f32).ln_1p(),
        long_recall,
        (n_num > 0) as u8 as f32,
        skip_recall,
        ratio(ix.repeats, ix.content_tokens.max(1)),
        (missing_content == 0) as u8 as f32,
        ((k_all as f32 + 1.0) / (best_sent.content as f32 + 1.0)).ln(),
        idf_all,
        idf_best,
        idf_missing_max,
        mass(missing_mask).ln_1p(),
        ratio((missing_mask & near).count_ones(), k_all),
        ratio(((found_all | near) & all_mask).count_ones(), k_all),
    ];
    Features { values, missing, hard_fail, sparse: Vec::new() }
}

/// Missing content words of `claim` in `evidence` (for repair prompts), at most `limit`.
pub(crate) fn missing_words(claim: &str, evidence: &[&str], stems: &Stems, limit: usize) -> Vec<String> {
    let ix = ClaimIndex::new(claim, stems, &[]);
    let mut found = 0u128;
    let mut toks = Vec::new();
    let mut buf = String::new();
    for chunk in evidence {
        text::tokenize(chunk, &mut toks);
        for t in &toks {
            if t.kind != Kind::Word {
                continue;
            }
            let lower = lower_into(&chunk[t.start..t.end], &mut buf);
            let k = ix.lookup(lower, stems);
            if let Some(k) = k {
                found |= 1u128 << k;
            }
        }
    }
    let mut by_stem: Vec<Option<&str>> = vec![None; ix.stems.len()];
    for (surface, &k) in &ix.surface {
        if by_stem[k].is_none_or(|s| surface.as_str() < s) {
            by_stem[k] = Some(surface.as_str());
        }
    }
    by_stem
        .iter()
        .enumerate()
        .filter(|(k, _)| found & (1u128 << k) == 0)
        .filter_map(|(_, s)| s.map(str::to_string))
        .take(limit)
        .collect()
}
