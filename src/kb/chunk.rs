//! Heading-aware chunking: a chunk is a contiguous span of one document, never crossing a
//! top-level (H1/H2) block, of at most `chunk_tokens` estimated tokens, with `overlap_tokens`
//! carried between consecutive chunks of the same block.

use unicode_segmentation::UnicodeSegmentation;

use super::parse::ParsedDoc;

#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub ordinal: u32,
    pub heading_path: Vec<String>,
    /// Byte offsets into the document text.
    pub start: usize,
    pub end: usize,
    /// Character offsets into the document text (what the API reports as a span).
    pub start_char: usize,
    pub end_char: usize,
    pub text: String,
}

/// Tokens estimated from words (≈ 4 word-piece tokens per 3 words of English).
pub fn estimate_tokens(text: &str) -> usize {
    (text.split_whitespace().count() * 4).div_ceil(3)
}

/// A piece that is never split: a paragraph, or a sentence/word window of a long one.
struct Unit {
    start: usize,
    end: usize,
    tokens: usize,
    section: usize,
}

pub fn chunk_document(doc: &ParsedDoc, chunk_tokens: usize, overlap_tokens: usize) -> Vec<Chunk> {
    let text = doc.text.as_str();
    let mut units: Vec<Unit> = Vec::new();
    for (si, s) in doc.sections.iter().enumerate() {
        split_units(text, s.start, s.end, chunk_tokens, si, &mut units);
    }
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let block = doc.sections[units[i].section].block;
        let mut j = i;
        let mut tokens = 0;
        while j < units.len()
            && doc.sections[units[j].section].block == block
            && (j == i || tokens + units[j].tokens <= chunk_tokens)
        {
            tokens += units[j].tokens;
            j += 1;
        }
        let (start, end) = (units[i].start, units[j - 1].end);
        let body = text[start..end].trim();
        if !body.is_empty() {
            let lead = text[start..end].len() - text[start..end].trim_start().len();
            let (s, e) = (start + lead, start + lead + body.len());
            chunks.push(Chunk {
                ordinal: chunks.len() as u32,
                heading_path: doc.sections[units[i].section].heading_path.clone(),
                start: s,
                end: e,
                start_char: text[..s].chars().count(),
                end_char: text[..e].chars().count(),
                text: body.to_string(),
            });
        }
        if j >= units.len() || doc.sections[units[j].section].block != block {
            i = j;
            continue;
        }
        // Overlap: start the next chunk at the trailing units that fit in `overlap_tokens`,
        // always making progress.
        let mut k = j;
        let mut carried = 0;
        while k > i + 1 && carried + units[k - 1].tokens <= overlap_tokens {
            carried += units[k - 1].tokens;
            k -= 1;
        }
        i = k.max(i + 1);
    }
    chunks
}

/// Splits `text[start..end]` into paragraphs; long paragraphs into sentences; long sentences
/// into word windows.
fn split_units(text: &str, start: usize, end: usize, max: usize, section: usize, out: &mut Vec<Unit>) {
    let slice = &text[start..end];
    let mut offset = 0;
    for part in slice.split_inclusive("\n\n") {
        let (s, e) = (start + offset, start + offset + part.len());
        offset += part.len();
        if part.trim().is_empty() {
            continue;
        }
        let tokens = estimate_tokens(part);
        if tokens <= max {
            out.push(Unit { start: s, end: e, tokens, section });
        } else {
            for (so, sent) in text[s..e].split_sentence_bound_indices() {
                let ss = s + so;
                let st = estimate_tokens(sent);
                if st <= max {
                    out.push(Unit { start: ss, end: ss + sent.len(), tokens: st, section });
                } else {
                    word_windows(text, ss, ss + sent.len(), max, section, out);
                }
            }
        }
    }
}

fn word_windows(text: &str, start: usize, end: usize, max: usize, section: usize, out: &mut Vec<Unit>) {
    let words_per = (max * 3 / 4).max(1);
    let words: Vec<(usize, &str)> =
        text[start..end].split_word_bound_indices().filter(|(_, w)| !w.trim().is_empty()).collect();
    for group in words.chunks(words_per) {
        if let (Some(first), Some(last)) = (group.first(), group.last()) {
            let (s, e) = (start + first.0, start + last.0 + last.1.len());
            out.push(Unit { start: s, end: e, tokens: estimate_tokens(&text[s..e]), section });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::parse::{parse_file, DocFormat};

    fn words(n: usize, tag: &str) -> String {
        (0..n).map(|i| format!("{tag}{i}")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn chunks_never_cross_a_top_level_section() {
        let md = format!("# T\n\n## A\n\n{}\n\n## B\n\n{}\n", words(20, "a"), words(20, "b"));
        let d = parse_file(DocFormat::Markdown, &md, "t");
        let c = chunk_document(&d, 300, 40);
        assert_eq!(c.len(), 2);
        assert!(c[0].text.contains("a0") && !c[0].text.contains("b0"));
        assert_eq!(c[1].heading_path, vec!["T".to_string(), "B".to_string()]);
    }

    #[test]
    fn long_sections_split_with_overlap_and_bounded_size() {
        let paras: Vec<String> = (0..12).map(|p| format!("{}.", words(50, &format!("p{p}w")))).collect();
        let md = format!("# T\n\n## Long\n\n{}\n", paras.join("\n\n"));
        let d = parse_file(DocFormat::Markdown, &md, "t");
        let c = chunk_document(&d, 200, 70);
        assert!(c.len() >= 4, "{}", c.len());
        for ch in &c {
            assert!(estimate_tokens(&ch.text) <= 200, "{}", estimate_tokens(&ch.text));
        }
        // Consecutive chunks share a paragraph (the overlap).
        for w in c.windows(2) {
            assert!(
                w[1].start < w[0].end,
                "no overlap between {:?} and {:?}",
                (w[0].start, w[0].end),
                (w[1].start, w[1].end)
            );
        }
        // Every paragraph is covered.
        for p in 0..12 {
            assert!(c.iter().any(|ch| ch.text.contains(&format!("p{p}w0 "))), "paragraph {p} lost");
        }
    }

    #[test]
    fn spans_are_character_offsets_into_the_document() {
        let md = "# Café\n\n## Prix\n\nUn café coûte 2 €.\n";
        let d = parse_file(DocFormat::Markdown, md, "t");
        let c = chunk_document(&d, 300, 40);
        let chars: Vec<char> = d.text.chars().collect();
        let span: String = chars[c[0].start_char..c[0].end_char].iter().collect();
        assert_eq!(span, c[0].text);
    }

    #[test]
    fn a_giant_sentence_is_split_into_word_windows() {
        let md = format!("# T\n\n{}\n", words(2000, "x"));
        let d = parse_file(DocFormat::Markdown, &md, "t");
        let c = chunk_document(&d, 300, 40);
        assert!(c.len() >= 6);
        assert!(c.iter().all(|ch| estimate_tokens(&ch.text) <= 300));
    }
}
