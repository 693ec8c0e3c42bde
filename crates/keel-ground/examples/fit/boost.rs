//! Gradient-boosted regression trees for `fit`: a second-order (Newton) boosting of the weighted
//! log-loss, starting from the linear model's log-odds, with histogram splits on quantile bins.
//! The trees correct the linear model where features interact (`Model::trees`).

use keel_ground::Tree;

/// Boosting settings.
#[derive(Clone, Copy)]
pub struct BoostCfg {
    pub trees: usize,
    pub depth: u32,
    pub eta: f64,
    pub lambda: f64,
    pub min_hess: f64,
}

const BINS: usize = 32;

/// Cut points of one feature (at most `BINS - 1`, strictly increasing): midpoints between
/// distinct values when there are few, else just above each quantile value.
fn cuts(values: &mut [f64]) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let mut uniq: Vec<f64> = values.to_vec();
    uniq.dedup();
    let next_above = |v: f64| uniq.iter().find(|u| **u > v).map(|u| (v + u) / 2.0);
    if uniq.len() <= BINS {
        return uniq.windows(2).map(|p| (p[0] + p[1]) / 2.0).collect();
    }
    let mut out: Vec<f64> = Vec::new();
    for b in 1..BINS {
        let v = values[b * values.len() / BINS];
        if let Some(c) = next_above(v) {
            if out.last().is_none_or(|l| c > *l) {
                out.push(c);
            }
        }
    }
    out
}

/// Fits `cfg.trees` trees to rows `x` (raw dense features), labels `y`, weights `w` (mean 1),
/// starting from log-odds `base`.
pub fn boost(x: &[&[f64]], y: &[bool], w: &[f64], base: &[f64], cfg: BoostCfg) -> Vec<Tree> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let d = x[0].len();
    let cut: Vec<Vec<f64>> = (0..d)
        .map(|j| {
            let mut v: Vec<f64> = x.iter().map(|r| r[j]).collect();
            cuts(&mut v)
        })
        .collect();
    let bin: Vec<Vec<u8>> =
        x.iter().map(|r| (0..d).map(|j| cut[j].iter().filter(|c| r[j] >= **c).count() as u8).collect()).collect();
    let mut margin = base.to_vec();
    let inner = (1usize << cfg.depth) - 1;
    let mut trees = Vec::with_capacity(cfg.trees);
    let mut node = vec![0usize; n];
    for _ in 0..cfg.trees {
        let mut g = vec![0.0; n];
        let mut h = vec![0.0; n];
        for i in 0..n {
            let p = 1.0 / (1.0 + (-margin[i]).exp());
            g[i] = w[i] * (p - if y[i] { 1.0 } else { 0.0 });
            h[i] = (w[i] * p * (1.0 - p)).max(1e-12);
        }
        node.iter_mut().for_each(|v| *v = 0);
        let mut feature = vec![0u16; inner];
        let mut threshold = vec![f32::INFINITY; inner];
        for level in 0..cfg.depth {
            let first = (1usize << level) - 1;
            let width = 1usize << level;
            // hist[node][feature][bin] = (G, H)
            let mut hist = vec![vec![[(0.0f64, 0.0f64); BINS]; d]; width];
            for i in 0..n {
                let k = node[i] - first;
                for j in 0..d {
                    let e = &mut hist[k][j][usize::from(bin[i][j])];
                    e.0 += g[i];
                    e.1 += h[i];
                }
            }
            for (k, hk) in hist.iter().enumerate() {
                let (gt, ht) = hk[0].iter().fold((0.0, 0.0), |a, e| (a.0 + e.0, a.1 + e.1));
                let parent = gt * gt / (ht + cfg.lambda);
                let mut best = (0.0f64, 0usize, f64::INFINITY);
                for (j, hj) in hk.iter().enumerate() {
                    let (mut gl, mut hl) = (0.0, 0.0);
                    for (b, c) in cut[j].iter().enumerate() {
                        gl += hj[b].0;
                        hl += hj[b].1;
                        let (gr, hr) = (gt - gl, ht - hl);
                        if hl < cfg.min_hess || hr < cfg.min_hess {
                            continue;
                        }
                        let gain = gl * gl / (hl + cfg.lambda) + gr * gr / (hr + cfg.lambda) - parent;
                        if gain > best.0 {
                            best = (gain, j, *c);
                        }
                    }
                }
                feature[first + k] = best.1 as u16;
                threshold[first + k] = best.2 as f32;
            }
            for i in 0..n {
                let at = node[i];
                let left = (x[i][usize::from(feature[at])] as f32) < threshold[at];
                node[i] = 2 * at + if left { 1 } else { 2 };
            }
        }
        let mut leaf_g = vec![0.0; inner + 1];
        let mut leaf_h = vec![0.0; inner + 1];
        for i in 0..n {
            leaf_g[node[i] - inner] += g[i];
            leaf_h[node[i] - inner] += h[i];
        }
        let leaf: Vec<f32> =
            leaf_g.iter().zip(&leaf_h).map(|(g, h)| (-cfg.eta * g / (h + cfg.lambda)) as f32).collect();
        for i in 0..n {
            margin[i] += f64::from(leaf[node[i] - inner]);
        }
        trees.push(Tree { feature, threshold, leaf });
    }
    if std::env::var_os("BOOST_DEBUG").is_some() {
        let loss = |m: &[f64]| -> f64 {
            m.iter().zip(y).zip(w).map(|((m, y), w)| w * (1.0 + (if *y { -m } else { *m }).exp()).ln()).sum::<f64>()
                / n as f64
        };
        eprintln!("boost: loss {:.4} -> {:.4}", loss(base), loss(&margin));
    }
    trees
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boosting_learns_a_conjunction() {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..400 {
            let a = (i % 20) as f64 / 20.0;
            let b = (i / 20) as f64 / 20.0;
            rows.push(vec![a, b]);
            y.push(a < 0.3 && b > 0.6);
        }
        let x: Vec<&[f64]> = rows.iter().map(|r| r.as_slice()).collect();
        let w = vec![1.0; 400];
        let base = vec![0.0; 400];
        let cfg = BoostCfg { trees: 50, depth: 2, eta: 0.3, lambda: 1.0, min_hess: 1.0 };
        let trees = boost(&x, &y, &w, &base, cfg);
        let ok = x
            .iter()
            .zip(&y)
            .filter(|(r, y)| {
                let r32: Vec<f32> = r.iter().map(|v| *v as f32).collect();
                (trees.iter().map(|t| t.value(&r32)).sum::<f32>() > 0.0) == **y
            })
            .count();
        assert!(ok > 390, "{ok}");
    }
}
