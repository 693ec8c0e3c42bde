//! Canary tokens: a random marker placed in the system prompt; if it shows up in the output,
//! in any cheap disguise, the prompt leaked.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::decode::{decode_base64, decode_hex};
use crate::normalize::normalize;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh canary such as `kc7f3a9d2b41e06c58`: `kc` + 16 lower-case hex digits.
///
/// Randomness comes from the standard library's per-process random hash keys mixed with
/// the clock and a counter: unguessable to a user, not meant as key material.
pub fn new_canary() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("kc{:016x}", h.finish())
}

/// Lower-case ASCII alphanumerics only: removes spacing, punctuation and separators.
fn squash(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// Does `output` contain `canary`, directly or after NFKC/invisible-character removal,
/// with letters spaced out, reversed, or inside base64 or hex?
pub fn canary_in(output: &str, canary: &str) -> bool {
    let c = squash(canary);
    if c.is_empty() {
        return false;
    }
    let text = normalize(output).text;
    let flat = squash(&text);
    if flat.contains(&c) || flat.contains(&c.chars().rev().collect::<String>()) {
        return true;
    }
    // Encoded forms: decode every plausible run and look again.
    let encoded_b64 = STANDARD.encode(canary);
    if text.contains(encoded_b64.trim_end_matches('=')) {
        return true;
    }
    for run in text.split(|ch: char| !(ch.is_ascii_alphanumeric() || matches!(ch, '+' | '/' | '=' | '-' | '_'))) {
        if run.len() >= 16 {
            let decoded = decode_base64(run).or_else(|| decode_hex(run));
            if decoded.is_some_and(|d| squash(&d).contains(&c)) {
                return true;
            }
        }
    }
    let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
    flat.contains(&hex)
}

/// A rolling checker for streamed output: feed chunks as they arrive; it keeps enough of
/// the tail to catch a canary split across chunks (also in spaced-out, base64 or hex form).
pub struct CanaryStream {
    canary: String,
    buffer: String,
    keep: usize,
    found: bool,
}

impl CanaryStream {
    pub fn new(canary: impl Into<String>) -> Self {
        let canary = canary.into();
        // Hex doubles the length and spacing-out can double it again; keep generous room.
        let keep = (canary.len() * 6).max(256);
        Self { canary, buffer: String::new(), keep, found: false }
    }

    /// Feed one chunk; returns true once the canary has been seen (and stays true).
    pub fn feed(&mut self, chunk: &str) -> bool {
        if self.found {
            return true;
        }
        self.buffer.push_str(chunk);
        if canary_in(&self.buffer, &self.canary) {
            self.found = true;
            return true;
        }
        if self.buffer.len() > self.keep {
            let mut cut = self.buffer.len() - self.keep;
            while !self.buffer.is_char_boundary(cut) {
                cut += 1;
            }
            self.buffer.drain(..cut);
        }
        false
    }

    pub fn found(&self) -> bool {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canaries_are_fresh() {
        let a = new_canary();
        assert_eq!(a.len(), 18);
        assert_ne!(a, new_canary());
    }

    #[test]
    fn finds_disguised_canaries() {
        let c = "kc1234abcd5678ef90";
        assert!(canary_in(&format!("the secret is {c}."), c));
        assert!(canary_in("k c 1 2 3 4 a b c d 5 6 7 8 e f 9 0", c));
        assert!(canary_in("K-C-1234-ABCD-5678-EF90", c));
        assert!(canary_in(&c.chars().rev().collect::<String>(), c));
        assert!(canary_in(&format!("encoded: {}", STANDARD.encode(format!("token {c} end"))), c));
        let hex: String = c.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(canary_in(&hex, c));
        assert!(canary_in("kc1234ab\u{200B}cd5678ef90", c));
        assert!(!canary_in("nothing to see here kc1234abcd", c));
    }

    #[test]
    fn stream_catches_canary_split_across_chunks() {
        let c = "kc1234abcd5678ef90";
        let mut s = CanaryStream::new(c);
        let long_prefix = "lorem ipsum ".repeat(100);
        assert!(!s.feed(&long_prefix));
        assert!(!s.feed("and then kc1234"));
        assert!(!s.feed("ab"));
        assert!(s.feed("cd5678ef90 done"));
        let mut s = CanaryStream::new(c);
        let b64 = STANDARD.encode(c);
        let (a, b) = b64.split_at(10);
        assert!(!s.feed(a));
        assert!(s.feed(b));
    }
}
