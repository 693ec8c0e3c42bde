//! Inverse document frequency of content stems, so that a missing rare word ("Jupiter",
//! "tokenization") weighs more than a missing common one ("great", "people"). The table is
//! hashed (FNV-1a, 16 bits, one byte per slot: `round(20 * ln((N + 1) / (df + 1)))`), built by
//! `examples/fit/main.rs` from the dev halves' contexts and shipped as `idf.bin` beside this file.

use crate::text::{self, lower_into, Kind, Stems};

/// Bits of the hashed table (65,536 one-byte slots).
pub const IDF_BITS: u32 = 16;
/// Quantisation: a slot holds `IDF_SCALE * idf`.
const IDF_SCALE: f32 = 20.0;

/// The shipped table.
pub(crate) const SHIPPED_IDF: &[u8] = include_bytes!("idf.bin");

fn slot(stem: &str) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in stem.as_bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & ((1 << IDF_BITS) - 1)) as usize
}

/// The IDF of a stem under `table` (1.0 for every stem when the table is not a full one).
pub(crate) fn idf(table: &[u8], stem: &str) -> f32 {
    if table.len() != 1 << IDF_BITS {
        return 1.0;
    }
    f32::from(table[slot(stem)]) / IDF_SCALE
}

/// Builds a table from documents (each counted once per stem; pass unique documents).
pub fn build_idf<'a>(docs: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let stems = Stems::new();
    let mut df = vec![0u32; 1 << IDF_BITS];
    let mut n = 0u32;
    let mut toks = Vec::new();
    let mut buf = String::new();
    let mut seen: Vec<usize> = Vec::new();
    for doc in docs {
        n += 1;
        seen.clear();
        text::tokenize(doc, &mut toks);
        for t in &toks {
            if t.kind != Kind::Word {
                continue;
            }
            let lower = lower_into(&doc[t.start..t.end], &mut buf);
            if text::is_stopword(lower) || text::is_negation(lower) {
                continue;
            }
            seen.push(slot(&stems.stem(lower)));
        }
        seen.sort_unstable();
        seen.dedup();
        for &s in &seen {
            df[s] += 1;
        }
    }
    let top = ((n as f32 + 1.0).ln() * IDF_SCALE).round();
    df.iter()
        .map(|&d| (((n as f32 + 1.0) / (d as f32 + 1.0)).ln() * IDF_SCALE).round().clamp(0.0, top.min(255.0)) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_stems_weigh_more_and_the_shipped_table_is_whole() {
        let t = build_idf(["the cat sat", "a cat ran", "the dog barked"]);
        assert!(idf(&t, "dog") > idf(&t, "cat"));
        assert!(idf(&t, "zebra") > idf(&t, "dog"));
        assert!(SHIPPED_IDF.is_empty() || SHIPPED_IDF.len() == 1 << IDF_BITS);
    }
}
