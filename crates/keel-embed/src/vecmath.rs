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

/// Vectors quantised to `i8` with one scale per row: a quarter of the memory traffic of `f32`
/// for the scan, which at 100k+ rows is bound by memory bandwidth, not arithmetic.
pub struct QuantizedRows {
    pub dim: usize,
    pub codes: Vec<i8>,
    pub scales: Vec<f32>,
}

impl QuantizedRows {
    pub fn from_f32(matrix: &[f32], dim: usize) -> Self {
        let mut codes = Vec::with_capacity(matrix.len());
        let mut scales = Vec::with_capacity(matrix.len() / dim.max(1));
        for row in matrix.chunks_exact(dim.max(1)) {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(scale);
            codes.extend(row.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
        }
        Self { dim, codes, scales }
    }

    /// Approximate dot products of every row with `query`; the best `n` as `(row, score)`.
    pub fn top_n(&self, query: &[f32], n: usize) -> Vec<(usize, f32)> {
        let dim = self.dim;
        if dim == 0 || query.len() != dim || n == 0 {
            return Vec::new();
        }
        const BLOCK: usize = 8192;
        let mut best: Vec<(usize, f32)> = self
            .codes
            .par_chunks(dim * BLOCK)
            .enumerate()
            .flat_map_iter(|(b, block)| {
                let mut scored: Vec<(usize, f32)> = block
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(i, row)| {
                        let r = b * BLOCK + i;
                        (r, dot_i8(row, query) * self.scales[r])
                    })
                    .collect();
                keep_top(&mut scored, n);
                scored
            })
            .collect();
        keep_top(&mut best, n);
        best
    }
}

#[inline]
fn dot_i8(a: &[i8], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += f32::from(x[i]) * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| f32::from(*x) * y).sum();
    acc.iter().sum::<f32>() + tail
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
    fn quantized_scores_track_exact_ones() {
        let dim = 16;
        let m: Vec<f32> = (0..500 * dim).map(|i| (((i * 7919) % 1000) as f32 / 1000.0 - 0.5) * 0.3).collect();
        let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.7).sin()).collect();
        let qr = QuantizedRows::from_f32(&m, dim);
        for (row, approx) in qr.top_n(&q, 20) {
            let exact = dot(&m[row * dim..(row + 1) * dim], &q);
            assert!((approx - exact).abs() < 0.01, "row {row}: {approx} vs {exact}");
        }
        let exact_best = top_n_dot(&m, dim, &q, 1)[0].0;
        assert!(qr.top_n(&q, 5).iter().any(|(r, _)| *r == exact_best));
    }

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
