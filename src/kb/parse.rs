//! File formats → a document's plain text with its heading structure.
//!
//! Markdown is read line by line (headings outside code fences); HTML is flattened to the
//! same Markdown-like text (scripts and styles dropped) so one sectioner serves both; plain
//! text is one section. Every offset is a byte offset into `ParsedDoc::text`.

use scraper::{ElementRef, Html, Node};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    Markdown,
    Text,
    Html,
    /// One document per line: `{"id", "title"?, "text"}` (benchmark corpora).
    Jsonl,
}

impl DocFormat {
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "md" | "markdown" => Some(Self::Markdown),
            "txt" => Some(Self::Text),
            "html" | "htm" => Some(Self::Html),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

/// A run of text under one heading.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Headings from the top-level one down to this section's own.
    pub heading_path: Vec<String>,
    /// Index of the top-level block (H1/H2) this section belongs to; chunks never span two.
    pub block: usize,
    /// Body only (the heading line itself is excluded).
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDoc {
    pub title: String,
    pub text: String,
    pub sections: Vec<Section>,
}

/// Parses one document's text. `stem` is the fallback title.
pub fn parse_file(format: DocFormat, raw: &str, stem: &str) -> ParsedDoc {
    match format {
        DocFormat::Markdown => parse_markdown(&raw.replace("\r\n", "\n"), stem),
        DocFormat::Html => {
            let (title, text) = html_to_markdown(raw);
            let mut doc = parse_markdown(&text, stem);
            if let Some(t) = title {
                doc.title = t;
            }
            doc
        }
        DocFormat::Text | DocFormat::Jsonl => parse_text(&raw.replace("\r\n", "\n"), stem),
    }
}

fn heading_of(line: &str) -> Option<(usize, &str)> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
        let text = line[hashes..].trim().trim_end_matches('#').trim();
        if !text.is_empty() {
            return Some((hashes, text));
        }
    }
    None
}

fn parse_markdown(text: &str, stem: &str) -> ParsedDoc {
    let mut sections: Vec<Section> = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut title: Option<String> = None;
    let mut block = 0usize;
    let mut body_start = 0usize;
    let mut in_fence = false;
    let mut pos = 0usize;
    let mut current_path: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        let line_start = pos;
        pos += line.len();
        let trimmed = line.trim_end();
        if trimmed.trim_start().starts_with("```") || trimmed.trim_start().starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let Some((level, heading)) = heading_of(trimmed) else { continue };
        push_section(&mut sections, text, &current_path, block, body_start, line_start);
        if level == 1 && title.is_none() {
            title = Some(heading.to_string());
        }
        while path.last().is_some_and(|(l, _)| *l >= level) {
            path.pop();
        }
        path.push((level, heading.to_string()));
        if level <= 2 {
            block += 1;
        }
        current_path = path.iter().map(|(_, h)| h.clone()).collect();
        body_start = pos;
    }
    push_section(&mut sections, text, &current_path, block, body_start, text.len());
    ParsedDoc { title: title.unwrap_or_else(|| stem.to_string()), text: text.to_string(), sections }
}

fn push_section(out: &mut Vec<Section>, text: &str, path: &[String], block: usize, start: usize, end: usize) {
    if end > start && !text[start..end].trim().is_empty() {
        out.push(Section { heading_path: path.to_vec(), block, start, end });
    }
}

fn parse_text(text: &str, stem: &str) -> ParsedDoc {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or(stem);
    let title = if first.chars().count() <= 120 { first.to_string() } else { stem.to_string() };
    let mut sections = Vec::new();
    push_section(&mut sections, text, &[], 0, 0, text.len());
    ParsedDoc { title, text: text.to_string(), sections }
}

const SKIP: [&str; 8] = ["script", "style", "noscript", "template", "head", "svg", "iframe", "nav"];
const BLOCKS: [&str; 12] =
    ["p", "li", "td", "th", "dd", "dt", "pre", "blockquote", "figcaption", "div", "section", "tr"];

/// Flattens HTML into Markdown-like text: headings become `#` lines, block elements paragraphs.
fn html_to_markdown(raw: &str) -> (Option<String>, String) {
    let doc = Html::parse_document(raw);
    let title = doc
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "title")
        .map(|e| collapse(&e.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    let mut out = String::new();
    let mut inline = String::new();
    walk(doc.root_element(), &mut out, &mut inline);
    flush(&mut out, &mut inline, "");
    (title, out)
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn flush(out: &mut String, inline: &mut String, prefix: &str) {
    let t = collapse(inline);
    if !t.is_empty() {
        out.push_str(prefix);
        out.push_str(&t);
        out.push_str("\n\n");
    }
    inline.clear();
}

fn walk(el: ElementRef<'_>, out: &mut String, inline: &mut String) {
    for child in el.children() {
        match child.value() {
            Node::Text(t) => {
                inline.push_str(t);
            }
            Node::Element(e) => {
                let name = e.name();
                if SKIP.contains(&name) {
                    continue;
                }
                let Some(child_el) = ElementRef::wrap(child) else { continue };
                if let Some(level) =
                    name.strip_prefix('h').and_then(|d| d.parse::<usize>().ok()).filter(|l| (1..=6).contains(l))
                {
                    flush(out, inline, "");
                    let text = collapse(&child_el.text().collect::<String>());
                    if !text.is_empty() {
                        out.push_str(&"#".repeat(level));
                        out.push(' ');
                        out.push_str(&text);
                        out.push_str("\n\n");
                    }
                } else if BLOCKS.contains(&name) {
                    flush(out, inline, "");
                    walk(child_el, out, inline);
                    flush(out, inline, if name == "li" { "- " } else { "" });
                } else if name == "br" {
                    inline.push('\n');
                } else {
                    inline.push(' ');
                    walk(child_el, out, inline);
                    inline.push(' ');
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_sections_follow_headings_and_skip_code_fences() {
        let md = "# Returns\n\nIntro text.\n\n## Window\n\n30 days.\n\n```\n# not a heading\n```\n\n### Members\n\n60 days.\n\n## Fees\n\nNone.\n";
        let d = parse_file(DocFormat::Markdown, md, "x");
        assert_eq!(d.title, "Returns");
        let paths: Vec<String> = d.sections.iter().map(|s| s.heading_path.join(" > ")).collect();
        assert_eq!(paths, ["Returns", "Returns > Window", "Returns > Window > Members", "Returns > Fees"]);
        // H3 stays in its H2 block; a new H2 opens a new block.
        assert_eq!(d.sections[1].block, d.sections[2].block);
        assert_ne!(d.sections[2].block, d.sections[3].block);
        assert!(d.text[d.sections[1].start..d.sections[1].end].contains("# not a heading"));
    }

    #[test]
    fn html_drops_scripts_and_styles_and_keeps_headings() {
        let html = "<html><head><title>Fees</title><style>body{color:red}</style></head><body>\
            <h1>Fees</h1><p>A fee of <b>$5</b> applies.</p><script>var secret = 1;</script>\
            <h2>Waivers</h2><ul><li>Members pay nothing.</li></ul></body></html>";
        let d = parse_file(DocFormat::Html, html, "x");
        assert_eq!(d.title, "Fees");
        assert!(d.text.contains("A fee of $5 applies."), "{}", d.text);
        assert!(d.text.contains("- Members pay nothing."), "{}", d.text);
        assert!(!d.text.contains("secret") && !d.text.contains("color"), "{}", d.text);
        assert_eq!(d.sections.last().map(|s| s.heading_path.clone()), Some(vec!["Fees".into(), "Waivers".into()]));
    }

    #[test]
    fn text_title_is_first_line() {
        let d = parse_file(DocFormat::Text, "Store hours\n\nWe open at 9.\n", "stem");
        assert_eq!(d.title, "Store hours");
        assert_eq!(d.sections.len(), 1);
    }
}
