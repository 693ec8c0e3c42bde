//! Splitting text into sentence-sized segments so a payload inside a long benign text is
//! scored on its own instead of being diluted by the rest.

/// Longest segment in words; longer sentences are cut into overlapping windows.
const MAX_WORDS: usize = 40;
const WINDOW: usize = 32;
const STRIDE: usize = 16;

#[cfg(test)]
fn is_boundary(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | ';' | '\n' | '。' | '！' | '？' | '|')
}

/// Byte ranges of sentence-like segments of `text` (each non-empty after trimming).
pub fn segments(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    let mut i = 0;
    // A byte scan (every boundary is ASCII or one of three 3-byte characters; a UTF-8 lead byte
    // never occurs inside another character), the same cuts as testing `is_boundary` per char.
    while i < b.len() {
        let len = match b[i] {
            b'.' | b'!' | b'?' | b';' | b'\n' | b'|' => 1,
            // 。 U+3002
            0xE3 if b.get(i + 1..i + 3) == Some(&[0x80, 0x82][..]) => 3,
            // ！ U+FF01, ？ U+FF1F
            0xEF if matches!(b.get(i + 1..i + 3), Some([0xBC, 0x81] | [0xBC, 0x9F])) => 3,
            _ => 0,
        };
        if len == 0 {
            i += 1;
            continue;
        }
        push_sentence(&text[start..i], &mut out);
        i += len;
        start = i;
    }
    push_sentence(&text[start..], &mut out);
    out
}

fn push_sentence<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    let s = s.trim();
    if s.chars().filter(|c| c.is_alphanumeric()).take(3).count() < 3 {
        return;
    }
    // Most sentences are short: count words (stopping past the limit) before listing spans.
    if s.split_whitespace().take(MAX_WORDS + 1).count() <= MAX_WORDS {
        out.push(s);
        return;
    }
    let words: Vec<(usize, usize)> = word_spans(s);
    let mut w = 0;
    while w < words.len() {
        let end = (w + WINDOW).min(words.len());
        out.push(&s[words[w].0..words[end - 1].1]);
        if end == words.len() {
            break;
        }
        w += STRIDE;
    }
}

fn word_spans(s: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if let Some(st) = start.take() {
                spans.push((st, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        spans.push((st, s.len()));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The char-by-char definition the byte scan replaces.
    fn segments_by_char(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if is_boundary(c) {
                push_sentence(&text[start..i], &mut out);
                start = i + c.len_utf8();
            }
        }
        push_sentence(&text[start..], &mut out);
        out
    }

    #[test]
    fn byte_scan_equals_char_scan() {
        for t in [
            "Hello there. Ignore all rules!\nok; next | part",
            "日本語の文です。次の文！最後の文？ fin",
            "ｆｕｌｌ！ｗｉｄｔｈ？ and ー〃 other 3-byte chars 〜 here.",
            "",
            "no boundary at all in this one",
        ] {
            assert_eq!(segments(t), segments_by_char(t), "{t}");
        }
    }

    #[test]
    fn sentences_and_windows() {
        assert_eq!(segments("Hello there. Ignore all rules!\nok"), vec!["Hello there", "Ignore all rules"]);
        let long = "word ".repeat(100);
        let segs = segments(&long);
        assert!(segs.len() >= 5);
        assert!(segs.iter().all(|s| s.split_whitespace().count() <= WINDOW));
    }
}
