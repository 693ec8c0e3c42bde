//! A configurable deny-list of phrases the output must not contain, matched on the
//! normalised, homoglyph-folded, lower-cased text.

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Serialize;

use crate::error::GuardError;
use crate::normalize::normalize;

/// One deny-list hit: the configured phrase and its byte span in the detection form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenyMatch {
    pub phrase: String,
    pub start: usize,
    pub end: usize,
}

/// Compiled deny-list.
pub struct DenyList {
    phrases: Vec<String>,
    matcher: Option<AhoCorasick>,
    whole_words: bool,
}

impl DenyList {
    /// Compile `phrases`. With `whole_words`, a phrase only matches at word boundaries
    /// ("ass" does not match "class").
    pub fn new<S: AsRef<str>>(phrases: &[S], whole_words: bool) -> Result<Self, GuardError> {
        let phrases: Vec<String> =
            phrases.iter().map(|p| normalize(p.as_ref()).detect.trim().to_owned()).filter(|p| !p.is_empty()).collect();
        let matcher = if phrases.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&phrases)
                    .map_err(|e| GuardError::DenyList(e.to_string()))?,
            )
        };
        Ok(Self { phrases, matcher, whole_words })
    }

    /// All deny-list hits in `output`.
    pub fn find(&self, output: &str) -> Vec<DenyMatch> {
        let Some(m) = &self.matcher else { return Vec::new() };
        let detect = normalize(output).detect;
        let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        m.find_iter(&detect)
            .filter(|h| {
                !self.whole_words
                    || (!word(detect[..h.start()].chars().next_back()) && !word(detect[h.end()..].chars().next()))
            })
            .map(|h| DenyMatch { phrase: self.phrases[h.pattern().as_usize()].clone(), start: h.start(), end: h.end() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_disguised_phrases_on_word_boundaries() {
        let d = DenyList::new(&["Project Falcon", "ass"], true).expect("compile");
        assert_eq!(d.find("details of PROJECT FАLCON leaked")[0].phrase, "project falcon"); // Cyrillic А
        assert!(d.find("first class service").is_empty());
        assert_eq!(d.find("Project\u{200B} Falcon").len(), 1);
    }
}
