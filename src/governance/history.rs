//! How an answer changed: a word-level diff between consecutive snapshots of one question,
//! for `keel answers history` and the admin API.

/// `a` → `b` as words, with removed words in `[-…-]` and added ones in `{+…+}` (the
/// `git diff --word-diff` notation). Answers are short; the table is quadratic in words.
pub fn word_diff(a: &str, b: &str) -> String {
    let (x, y): (Vec<&str>, Vec<&str>) = (a.split_whitespace().collect(), b.split_whitespace().collect());
    // lcs[i][j]: longest common subsequence of x[i..] and y[j..].
    let mut lcs = vec![vec![0u32; y.len() + 1]; x.len() + 1];
    for i in (0..x.len()).rev() {
        for j in (0..y.len()).rev() {
            lcs[i][j] = if x[i] == y[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut out: Vec<String> = Vec::new();
    let (mut removed, mut added): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let flush = |out: &mut Vec<String>, removed: &mut Vec<&str>, added: &mut Vec<&str>| {
        if !removed.is_empty() {
            out.push(format!("[-{}-]", removed.join(" ")));
            removed.clear();
        }
        if !added.is_empty() {
            out.push(format!("{{+{}+}}", added.join(" ")));
            added.clear();
        }
    };
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        if i < x.len() && j < y.len() && x[i] == y[j] {
            flush(&mut out, &mut removed, &mut added);
            out.push(x[i].to_string());
            i += 1;
            j += 1;
        } else if j < y.len() && (i == x.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(y[j]);
            j += 1;
        } else {
            removed.push(x[i]);
            i += 1;
        }
    }
    flush(&mut out, &mut removed, &mut added);
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::word_diff;

    #[test]
    fn marks_removed_and_added_words() {
        assert_eq!(word_diff("returns within 30 days", "returns within 14 days"), "returns within [-30-] {+14+} days");
        assert_eq!(word_diff("a b", "a b"), "a b");
        assert_eq!(word_diff("", "new text"), "{+new text+}");
        assert_eq!(word_diff("old", ""), "[-old-]");
    }
}
