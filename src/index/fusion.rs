//! Combining the lexical and dense rankings into one.
//!
//! Both methods are deterministic: ties break on the lower row number.

use std::collections::HashMap;

use super::Hit;

fn sorted(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row.cmp(&b.row)));
    hits
}

/// Min-max normalises each candidate list, then `w·dense + (1-w)·bm25`. The dense score of a
/// candidate is its exact cosine (every vector is in memory); a chunk BM25 did not retrieve
/// scores BM25's minimum.
pub fn weighted(lexical: &[(usize, f32)], dense: &[(usize, f32)], cosine: impl Fn(usize) -> f32, w: f32) -> Vec<Hit> {
    let bm25: HashMap<usize, f32> = lexical.iter().copied().collect();
    let mut rows: Vec<usize> = lexical.iter().chain(dense).map(|(r, _)| *r).collect();
    rows.sort_unstable();
    rows.dedup();
    let cos: Vec<f32> = rows.iter().map(|&r| cosine(r)).collect();
    let (cmin, cmax) = min_max(cos.iter().copied());
    let (bmin, bmax) = min_max(lexical.iter().map(|(_, s)| *s));
    let norm = |v: f32, lo: f32, hi: f32| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
    sorted(
        rows.iter()
            .zip(cos)
            .map(|(&row, c)| {
                let b = bm25.get(&row).copied();
                let score = w * norm(c, cmin, cmax) + (1.0 - w) * b.map_or(0.0, |b| norm(b, bmin, bmax));
                Hit { row, score, cosine: c, bm25: b.unwrap_or(0.0) }
            })
            .collect(),
    )
}

/// Reciprocal-rank fusion: `Σ 1/(k + rank)` over the lists that retrieved the chunk.
pub fn rrf(lexical: &[(usize, f32)], dense: &[(usize, f32)], cosine: impl Fn(usize) -> f32, k: f32) -> Vec<Hit> {
    let mut acc: HashMap<usize, (f32, f32)> = HashMap::new();
    for (rank, (row, s)) in lexical.iter().enumerate() {
        let e = acc.entry(*row).or_insert((0.0, 0.0));
        e.0 += 1.0 / (k + rank as f32 + 1.0);
        e.1 = *s;
    }
    for (rank, (row, _)) in dense.iter().enumerate() {
        acc.entry(*row).or_insert((0.0, 0.0)).0 += 1.0 / (k + rank as f32 + 1.0);
    }
    sorted(acc.into_iter().map(|(row, (score, b))| Hit { row, score, cosine: cosine(row), bm25: b }).collect())
}

fn min_max(it: impl Iterator<Item = f32>) -> (f32, f32) {
    it.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_fusion_rewards_agreement_and_respects_the_weight() {
        let lexical = [(1, 10.0), (2, 5.0), (3, 1.0)];
        let dense = [(2, 0.9), (4, 0.8), (1, 0.1)];
        let cos = |r: usize| match r {
            1 => 0.1,
            2 => 0.9,
            3 => 0.05,
            4 => 0.8,
            _ => 0.0,
        };
        let only_bm25: Vec<usize> = weighted(&lexical, &dense, cos, 0.0).iter().map(|h| h.row).collect();
        assert_eq!(only_bm25[0], 1);
        let only_dense: Vec<usize> = weighted(&lexical, &dense, cos, 1.0).iter().map(|h| h.row).collect();
        assert_eq!(&only_dense[..2], &[2, 4]);
        let mixed = weighted(&lexical, &dense, cos, 0.5);
        assert_eq!(mixed[0].row, 2, "high on both lists wins");
    }

    #[test]
    fn rrf_is_rank_based_and_deterministic() {
        let lexical = [(7, 100.0), (8, 1.0)];
        let dense = [(8, 0.9), (7, 0.1)];
        let a = rrf(&lexical, &dense, |_| 0.0, 60.0);
        let b = rrf(&lexical, &dense, |_| 0.0, 60.0);
        assert_eq!(a.iter().map(|h| h.row).collect::<Vec<_>>(), vec![7, 8], "equal scores tie-break on row");
        assert_eq!(a.iter().map(|h| h.row).collect::<Vec<_>>(), b.iter().map(|h| h.row).collect::<Vec<_>>());
    }
}
