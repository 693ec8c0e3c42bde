//! Near-duplicate groups for the classifier fit's cross-validation: texts whose word sets
//! overlap strongly (Jaccard ≥ a threshold, e.g. the same injection stacked behind different
//! questions, or a prompt and its light edit) are kept in the same fold, so out-of-fold scores
//! are not inflated by a near-copy in the training folds.

/// Sorted, de-duplicated 64-bit FNV-1a hashes of the alphanumeric words of `detect`.
pub fn word_set(detect: &str) -> Vec<u64> {
    let mut v: Vec<u64> = detect
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Group representative of each text: the smallest index of its connected component, where
/// two texts with word sets (`None` = never grouped) are linked when their Jaccard similarity
/// is at least `min_jaccard`. Deterministic.
pub fn groups(sets: &[Option<Vec<u64>>], min_jaccard: f64) -> Vec<usize> {
    let n = sets.len();
    let mut parent: Vec<usize> = (0..n).collect();
    let mut postings: std::collections::HashMap<u64, Vec<usize>> = std::collections::HashMap::new();
    for (i, s) in sets.iter().enumerate() {
        if let Some(s) = s {
            for w in s {
                postings.entry(*w).or_default().push(i);
            }
        }
    }
    let mut shared = vec![0u32; n];
    let mut touched = Vec::new();
    for (i, s) in sets.iter().enumerate() {
        let Some(s) = s else { continue };
        for w in s {
            for &j in postings.get(w).map_or(&[][..], Vec::as_slice) {
                if j >= i {
                    break;
                }
                if shared[j] == 0 {
                    touched.push(j);
                }
                shared[j] += 1;
            }
        }
        for &j in &touched {
            let c = f64::from(shared[j]);
            let other = sets[j].as_ref().map_or(0, Vec::len);
            let union = (s.len() + other) as f64 - c;
            if union > 0.0 && c / union >= min_jaccard {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
            shared[j] = 0;
        }
        touched.clear();
    }
    (0..n).map(|i| find(&mut parent, i)).collect()
}
