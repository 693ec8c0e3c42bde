//! Vector search kernels, compiled at full optimisation with the rest of this crate.

use rayon::prelude::*;

/// Dot product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise without reassociation.
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// The `n` rows of `matrix` (row-major, `dim` wide) with the highest dot product with `query`,
/// best first, as `(row, score)`. Ties break on the lower row, so results are deterministic.
pub fn top_n_dot(matrix: &[f32], dim: usize, query: &[f32], n: usize) -> Vec<(usize, f32)> {
    if dim == 0 || query.len() != dim || n == 0 {
        return Vec::new();
    }
    const BLOCK: usize = 4096;
    let mut best: Vec<(usize, f32)> = matrix
        .par_chunks(dim * BLOCK)
        .enumerate()
        .flat_map_iter(|(b, block)| {
            let mut scored: Vec<(usize, f32)> =
                block.chunks_exact(dim).enumerate().map(|(i, row)| (b * BLOCK + i, dot(row, query))).collect();
            keep_top(&mut scored, n);
            scored
        })
        .collect();
    keep_top(&mut best, n);
    best
}

fn keep_top(v: &mut Vec<(usize, f32)>, n: usize) {
    let cmp = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > n {
        v.select_nth_unstable_by(n - 1, cmp);
        v.truncate(n);
    }
    v.sort_by(cmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_n_matches_a_full_sort() {
        let dim = 5;
        let rows = 10_000;
        let m: Vec<f32> = (0..rows * dim).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let q = [0.3, -0.1, 0.7, 0.2, -0.4];
        let got = top_n_dot(&m, dim, &q, 7);
        let mut all: Vec<(usize, f32)> = m.chunks_exact(dim).enumerate().map(|(i, r)| (i, dot(r, &q))).collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(got, all[..7].to_vec());
    }
}
