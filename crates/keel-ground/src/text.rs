//! Text primitives shared by claim splitting and the support check: a fast tokenizer with byte
//! spans, sentence boundaries, stop words, negation cues and number normalisation.

use std::borrow::Cow;

use crate::lexicon::ABBREVIATIONS;
pub(crate) use crate::lexicon::{is_negation, is_stopword, number_word, scale_word};

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Letters (possibly with digits, internal apostrophes or hyphens are split off).
    Word,
    /// Starts with a digit: `30`, `2.5`, `1,200`, `1990s`, `27th`.
    Number,
    /// One punctuation or symbol character.
    Punct,
}

/// One token of a text: its byte span and kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// Splits `text` into word, number and punctuation tokens. Whitespace is dropped. `n't` is its
/// own word token so that "don't" yields a negation cue.
pub(crate) fn tokenize(text: &str, out: &mut Vec<Token>) {
    out.clear();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < bytes.len() {
                let c = bytes[i];
                if c.is_ascii_alphanumeric() {
                    i += 1;
                } else if (c == b',' || c == b'.') && i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit() {
                    i += 2;
                } else {
                    break;
                }
            }
            out.push(Token { start, end: i, kind: Kind::Number });
            continue;
        }
        let ch = if b.is_ascii() {
            b as char
        } else {
            match text[i..].chars().next() {
                Some(c) => c,
                None => break,
            }
        };
        if ch.is_alphabetic() {
            let start = i;
            i += ch.len_utf8();
            while i < bytes.len() {
                let c = bytes[i];
                if c.is_ascii_alphanumeric() {
                    i += 1;
                    continue;
                }
                if c.is_ascii() {
                    break;
                }
                match text[i..].chars().next() {
                    Some(c) if c.is_alphanumeric() => i += c.len_utf8(),
                    _ => break,
                }
            }
            // "don't" / "can't": split off "n't".
            let word = &text[start..i];
            let next_is_t = i + 1 < bytes.len() && (bytes[i] == b'\'') && (bytes[i + 1] | 0x20) == b't';
            let ends_n = word.len() > 1 && word.as_bytes()[word.len() - 1] | 0x20 == b'n';
            if next_is_t && ends_n && (i + 2 >= bytes.len() || !bytes[i + 2].is_ascii_alphanumeric()) {
                out.push(Token { start, end: i - 1, kind: Kind::Word });
                out.push(Token { start: i - 1, end: i + 2, kind: Kind::Word });
                i += 2;
                continue;
            }
            out.push(Token { start, end: i, kind: Kind::Word });
            continue;
        }
        if ch.is_whitespace() {
            i += ch.len_utf8();
            continue;
        }
        let start = i;
        i += ch.len_utf8();
        out.push(Token { start, end: i, kind: Kind::Punct });
    }
}

/// Lowercases into `buf` (ASCII fast path) and returns it.
pub(crate) fn lower_into<'a>(s: &str, buf: &'a mut String) -> &'a str {
    buf.clear();
    if s.is_ascii() {
        buf.push_str(s);
        buf.make_ascii_lowercase();
    } else {
        for c in s.chars() {
            buf.extend(c.to_lowercase());
        }
    }
    buf.as_str()
}

/// Leading numeric value of a number token: "1,200" = 1200, "2.5" = 2.5, "1990s" = 1990, "27th" = 27.
/// Commas are thousands separators when followed by exactly three digits, else decimal commas.
pub(crate) fn parse_number(tok: &str) -> Option<f64> {
    let digits: String = {
        let mut s = String::with_capacity(tok.len());
        let b = tok.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_digit() {
                s.push(c as char);
            } else if c == b',' {
                let run = b[i + 1..].iter().take_while(|x| x.is_ascii_digit()).count();
                if run != 3 {
                    s.push('.');
                }
            } else if c == b'.' {
                s.push('.');
            } else {
                break;
            }
            i += 1;
        }
        s
    };
    digits.parse::<f64>().ok()
}

/// Compares two quantities with a relative tolerance (rounding in prose: 1.5 million vs 1,500,000).
pub(crate) fn same_number(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9_f64.max(a.abs().max(b.abs()) * 1e-6)
}

/// An English Snowball stemmer; creating one is cheap but not free, so callers hold one.
pub(crate) struct Stems {
    stemmer: rust_stemmers::Stemmer,
}

impl Stems {
    pub fn new() -> Self {
        Self { stemmer: rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English) }
    }

    pub fn stem<'a>(&self, lower: &'a str) -> Cow<'a, str> {
        self.stemmer.stem(lower)
    }
}

/// FNV-1a: the maps here hold a few dozen short words, where SipHash's setup dominates.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;
pub(crate) type FastSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<Fnv>>;

/// A 4096-bit filter of word prefixes: "could this evidence word match a claim word?".
#[derive(Clone)]
pub(crate) struct PrefixFilter([u64; 64]);

impl PrefixFilter {
    pub fn new() -> Self {
        Self([0; 64])
    }
    fn slot(prefix: &str) -> usize {
        use std::hash::Hasher;
        let mut h = Fnv::default();
        h.write(prefix.as_bytes());
        (h.finish() % 4096) as usize
    }
    pub fn insert(&mut self, lower: &str) {
        let s = Self::slot(prefix3(lower));
        self.0[s / 64] |= 1 << (s % 64);
    }
    pub fn may_contain(&self, lower: &str) -> bool {
        let s = Self::slot(prefix3(lower));
        self.0[s / 64] & (1 << (s % 64)) != 0
    }
}

/// First three characters of a lowercase word: a cheap key that a word and its stem share,
/// used to skip stemming evidence words that cannot match any claim word.
pub(crate) fn prefix3(lower: &str) -> &str {
    match lower.char_indices().nth(3) {
        Some((i, _)) => &lower[..i],
        None => lower,
    }
}

/// Byte ranges of the sentences of `text`. A boundary is `.`, `!` or `?` (plus closing quotes
/// and brackets, and citation markers like `[2]`) followed by whitespace and not preceded by an
/// abbreviation or an initial; a newline always ends a sentence.
pub(crate) fn sentences(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let push = |out: &mut Vec<(usize, usize)>, s: usize, e: usize| {
        let (s, e) = trim_span(text, s, e);
        if e > s {
            out.push((s, e));
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            push(&mut out, start, i);
            start = i + 1;
            i += 1;
            continue;
        }
        if c == b'.' || c == b'!' || c == b'?' {
            let mut j = i + 1;
            loop {
                while j < b.len() && matches!(b[j], b'.' | b'!' | b'?' | b'"' | b'\'' | b')') {
                    j += 1;
                }
                // Citation markers directly after the terminal punctuation belong to this sentence.
                if j < b.len() && b[j] == b'[' {
                    if let Some(k) = marker_end(b, j) {
                        j = k;
                        continue;
                    }
                }
                if j + 1 < b.len() && b[j] == b' ' && b[j + 1] == b'[' {
                    if let Some(k) = marker_end(b, j + 1) {
                        j = k;
                        continue;
                    }
                }
                break;
            }
            let at_end = j >= b.len();
            let ws_next = !at_end && b[j].is_ascii_whitespace();
            if (at_end || ws_next) && !(c == b'.' && is_abbreviation(text, start, i)) {
                push(&mut out, start, j);
                start = j;
            }
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    push(&mut out, start, b.len());
    out
}

/// If `b[j]` opens a citation marker `[12]` / `[1, 2]`, the index after its `]`.
pub(crate) fn marker_end(b: &[u8], j: usize) -> Option<usize> {
    let mut k = j + 1;
    let mut digits = 0;
    while k < b.len() && (b[k].is_ascii_digit() || b[k] == b',' || b[k] == b' ') && k - j < 24 {
        if b[k].is_ascii_digit() {
            digits += 1;
        }
        k += 1;
    }
    (digits > 0 && k < b.len() && b[k] == b']').then_some(k + 1)
}

fn is_abbreviation(text: &str, start: usize, dot: usize) -> bool {
    let before = &text[start..dot];
    let word_start =
        before.char_indices().rev().find(|(_, c)| !c.is_alphanumeric()).map_or(0, |(p, c)| p + c.len_utf8());
    let word = &before[word_start..];
    if word.is_empty() {
        return false;
    }
    // Initials ("J. Smith", "U.S.") and single letters.
    if word.chars().count() == 1 && word.chars().all(|c| c.is_alphabetic()) {
        return true;
    }
    ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(word))
}

pub(crate) fn trim_span(text: &str, s: usize, e: usize) -> (usize, usize) {
    let slice = &text[s..e];
    let lead = slice.len() - slice.trim_start().len();
    let trail = slice.len() - slice.trim_end().len();
    if lead + trail >= slice.len() {
        (s, s)
    } else {
        (s + lead, e - trail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        let mut t = Vec::new();
        tokenize(text, &mut t);
        t.iter().map(|t| &text[t.start..t.end]).collect()
    }

    #[test]
    fn tokenizer_splits_contractions_and_keeps_numbers() {
        assert_eq!(
            words("I don't pay $1,200.50 in 2020."),
            ["I", "do", "n't", "pay", "$", "1,200.50", "in", "2020", "."]
        );
        assert_eq!(words("It 's 2.5% off"), ["It", "'", "s", "2.5", "%", "off"]);
    }

    #[test]
    fn numbers_parse() {
        assert_eq!(parse_number("1,200"), Some(1200.0));
        assert_eq!(parse_number("2.5"), Some(2.5));
        assert_eq!(parse_number("1990s"), Some(1990.0));
        assert_eq!(parse_number("27th"), Some(27.0));
        assert_eq!(number_word("thirty"), Some(30.0));
    }

    #[test]
    fn sentences_respect_abbreviations_and_markers() {
        let t = "Dr. Smith arrived at 5 p.m. on Monday. He left [1]. Then? Yes! [2][3] Done";
        let s: Vec<&str> = sentences(t).into_iter().map(|(a, b)| &t[a..b]).collect();
        assert_eq!(s, ["Dr. Smith arrived at 5 p.m. on Monday.", "He left [1].", "Then?", "Yes! [2][3]", "Done"]);
    }
}
