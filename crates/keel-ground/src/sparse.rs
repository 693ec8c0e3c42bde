//! Hashed sparse cues of a claim for the support model: the claim's word and word-pair shape
//! (function words, negations and pronouns as themselves, e.g. "i love", "not sure, but";
//! dialogue sets count personal or generic replies as unsupported), the content words the
//! evidence lacks (as themselves, alone and in pairs: a lexicon of what may or may not be
//! missing), and their count. Content words the evidence has become a placeholder, so the cues
//! carry no topic prior. Each cue is hashed (FNV-1a) into a table of weights learned on the dev
//! halves by `examples/fit/main.rs`.

use crate::text::{self, lower_into, FastMap, Kind};

/// FNV-1a over a one-byte namespace and the parts, joined by a space.
fn fnv(ns: u8, parts: &[&str]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |b: u8| {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    };
    eat(ns);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            eat(b' ');
        }
        for &b in p.as_bytes() {
            eat(b);
        }
    }
    h
}

/// A coarse bucket of a count (0, 1, 2, 3-4, 5+) as a cue suffix.
fn bucket(n: usize) -> &'static str {
    match n {
        0 => "0",
        1 => "1",
        2 => "2",
        3 | 4 => "3",
        _ => "5",
    }
}

/// The 32-bit cue hashes (sorted, unique) of `claim`, given its content stems, which of them the
/// evidence contains (`found`, one bit per stem) and the stem index of each lowercase content
/// word (`surface`). A model keeps the low bits it was fitted with.
pub(crate) fn hashes(claim: &str, stems: &[String], found: u128, surface: &FastMap<String, usize>) -> Vec<u32> {
    let mut out = Vec::new();
    let mut toks = Vec::new();
    let mut buf = String::new();
    text::tokenize(claim, &mut toks);
    let mut words: Vec<String> = Vec::with_capacity(toks.len() + 1);
    words.push("<s>".to_string());
    for t in &toks {
        let w = &claim[t.start..t.end];
        match t.kind {
            Kind::Word => {
                let l = lower_into(w, &mut buf);
                let in_evidence = surface.get(l).is_some_and(|&k| found & (1u128 << k) != 0);
                let function = text::is_stopword(l) || text::is_negation(l);
                words.push(if in_evidence && !function { "<c>".to_string() } else { l.to_string() });
            }
            Kind::Number => words.push("<num>".to_string()),
            Kind::Punct if matches!(w, "?" | "!") => words.push(w.to_string()),
            Kind::Punct => {}
        }
    }
    for w in &words[1..] {
        out.push(fnv(b'w', &[w]));
    }
    for p in words.windows(2) {
        out.push(fnv(b'b', &[&p[0], &p[1]]));
    }
    let mut missing = 0;
    for (k, s) in stems.iter().enumerate() {
        if found & (1u128 << k) == 0 {
            missing += 1;
            out.push(fnv(b'm', &[s]));
        }
    }
    out.push(fnv(b'n', &[bucket(missing)]));
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_sorted() {
        let stems = vec!["cat".to_string(), "mat".to_string()];
        let mut surface = FastMap::default();
        surface.insert("cat".to_string(), 0);
        surface.insert("mat".to_string(), 1);
        let a = hashes("I love my cat on the mat!", &stems, 0b01, &surface);
        assert_eq!(a, hashes("I love my cat on the mat!", &stems, 0b01, &surface));
        assert!(a.windows(2).all(|p| p[0] < p[1]));
        assert_ne!(a, hashes("I love my cat on the mat!", &stems, 0b11, &surface));
        // Found content words are placeholders: no topic prior.
        let one = |w: &str| {
            let mut m = FastMap::default();
            m.insert(w.to_string(), 0);
            hashes(&format!("the {w}"), &[w.to_string()], 0b1, &m)
        };
        assert_eq!(one("cat"), one("mat"));
    }
}
