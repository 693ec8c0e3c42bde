//! De-confounding stacked injections for the classifier fit. Many deepset injections are an
//! ordinary question of the same file followed by the payload ("<benign question>. Forget
//! everything before that ..."), so a model trained on the whole text learns the questions'
//! topic words (German politics, newspapers) as attack evidence and flags the plain questions.
//! The attack texts are therefore trained with every benign text of the same file that they
//! contain verbatim cut out; they are still scored on the whole text.

/// For each text (detection form), the text to train on when it differs from the text itself:
/// `attack[i]` texts of `source[i]` with every benign text of the same source (at least
/// `min_chars` bytes) removed, when at least three alphanumeric characters remain.
pub fn strip_stacked(detect: &[String], source: &[usize], attack: &[bool], min_chars: usize) -> Vec<Option<String>> {
    let mut out = vec![None; detect.len()];
    for (i, text) in detect.iter().enumerate() {
        if !attack[i] {
            continue;
        }
        let mut t = text.clone();
        let mut changed = false;
        for (j, b) in detect.iter().enumerate() {
            let b = b.trim();
            if attack[j] || source[j] != source[i] || b.len() < min_chars {
                continue;
            }
            if t.contains(b) {
                t = t.replace(b, " ");
                changed = true;
            }
        }
        if changed && t.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
            out[i] = Some(t);
        }
    }
    out
}
