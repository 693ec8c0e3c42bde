//! Compiling the crate's built-in regular expressions without panicking.

use regex::Regex;

/// Compile a built-in pattern. Built-in patterns are covered by tests, so `None` only
/// happens after a bad edit; checks then skip that pattern instead of panicking.
pub(crate) fn compile(pattern: &str) -> Option<Regex> {
    Regex::new(&ascii_boundaries(pattern)).ok()
}

/// Rewrite `\b` as the ASCII word boundary `(?-u:\b)`. A Unicode `\b` makes the regex
/// engine leave its fast DFA on any non-ASCII input, which costs milliseconds on long texts;
/// patterns therefore never put `\b` next to a non-ASCII letter.
pub(crate) fn ascii_boundaries(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)")
}
