//! Finding personal data and credentials in text: regex candidates, then checksums and shape
//! rules to keep order numbers, dates and amounts out.

use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::validate::{iban_valid, luhn_valid};
use crate::regexes::compile;

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    Card,
    Iban,
    Ssn,
    Ipv4,
    Ipv6,
    /// A credential of a well-known format: API keys (OpenAI, Anthropic, AWS, GitHub, Slack,
    /// Google, Stripe), JSON web tokens and PEM private keys.
    Secret,
}

impl PiiKind {
    /// Every kind, in priority order for overlapping matches.
    pub const ALL: [PiiKind; 8] =
        [Self::Secret, Self::Email, Self::Iban, Self::Card, Self::Ssn, Self::Ipv6, Self::Ipv4, Self::Phone];

    /// The placeholder that replaces a redacted value, e.g. `[EMAIL]`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Self::Email => "[EMAIL]",
            Self::Phone => "[PHONE]",
            Self::Card => "[CARD]",
            Self::Iban => "[IBAN]",
            Self::Ssn => "[SSN]",
            Self::Ipv4 => "[IPV4]",
            Self::Ipv6 => "[IPV6]",
            Self::Secret => "[SECRET]",
        }
    }

    /// The stable reason code, e.g. `pii.card`.
    pub fn reason_code(self) -> &'static str {
        match self {
            Self::Email => "pii.email",
            Self::Phone => "pii.phone",
            Self::Card => "pii.card",
            Self::Iban => "pii.iban",
            Self::Ssn => "pii.ssn",
            Self::Ipv4 => "pii.ipv4",
            Self::Ipv6 => "pii.ipv6",
            Self::Secret => "pii.secret",
        }
    }
}

/// One piece of personal data: its kind and byte span in the scanned text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PiiFinding {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

static EMAIL: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}\b"));
static CARD: LazyLock<Option<Regex>> = LazyLock::new(|| compile(r"\b\d(?:[ -]?\d){12,18}\b"));
static IBAN: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(r"(?i)\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,3})?\b"));
static SSN: LazyLock<Option<Regex>> = LazyLock::new(|| compile(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b"));
static IPV4: LazyLock<Option<Regex>> = LazyLock::new(|| compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"));
static IPV6: LazyLock<Option<Regex>> = LazyLock::new(|| compile(r"(?i)(?:[0-9a-f]{1,4})?(?::[0-9a-f]{0,4}){2,7}"));
static PHONE: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]?\d{2,5}){1,4}\b"));
/// Credentials by their published prefixes (one alternation, so the regex engine's literal
/// prefilter skips text holding none of them); `sk-` keys are checked further in
/// [`secret_valid`].
static SECRET: LazyLock<Option<Regex>> = LazyLock::new(|| {
    compile(concat!(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[\s\S]*)",
        r"|\bsk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}",
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}",
        r"|\bAIza[0-9A-Za-z_-]{35}",
        r"|\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}",
        r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ))
});
static DATE_LIKE: LazyLock<Option<Regex>> = LazyLock::new(|| compile(r"^\d{1,4}([-./])\d{1,2}([-./])\d{1,4}$"));

fn candidates<'a>(
    re: &'a LazyLock<Option<Regex>>,
    text: &'a str,
) -> impl Iterator<Item = (usize, usize, &'a str)> + 'a {
    re.as_ref().into_iter().flat_map(move |r| r.find_iter(text).map(|m| (m.start(), m.end(), m.as_str())))
}

/// Cards are written as one run or in groups of 3–6 digits (4-4-4-4, 4-6-5); a short
/// trailing group means some other number (e.g. the tail of an IBAN).
fn card_shaped(s: &str) -> bool {
    let groups: Vec<&str> = s.split([' ', '-']).collect();
    groups.len() == 1 || groups.iter().all(|g| (3..=6).contains(&g.len()))
}

/// An `sk-` match is a key only when its body mixes digits, upper- and lower-case letters
/// (keys are random; "sk-learn-is-a-python-library" is prose).
fn secret_valid(s: &str) -> bool {
    let Some(body) = s.strip_prefix("sk-") else { return true };
    body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase())
}

fn ssn_valid(s: &str) -> bool {
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    let (area, group, serial) = (&d[..3], &d[3..5], &d[5..]);
    let sep_consistent = s.as_bytes()[3] == s.as_bytes()[6];
    sep_consistent && area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

fn ipv4_valid(s: &str) -> bool {
    s.split('.').all(|p| p.parse::<u16>().is_ok_and(|v| v <= 255) && !(p.len() > 1 && p.starts_with('0')))
}

fn ipv6_valid(text: &str, start: usize, end: usize) -> bool {
    let s = &text[start..end];
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
    !glued(text[..start].chars().next_back())
        && !glued(text[end..].chars().next())
        && s.matches(':').count() >= 2
        && s.chars().any(|c| c.is_ascii_digit())
        && s.parse::<Ipv6Addr>().is_ok()
}

fn phone_valid(text: &str, start: usize, s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    if DATE_LIKE.as_ref().is_some_and(|r| r.is_match(s)) {
        return false;
    }
    // Part of a longer token (a decimal number, version, amount): not a phone number.
    let before = text[..start].chars().next_back();
    if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | '$' | '€' | '£' | '#' | '/')) {
        return false;
    }
    let intl = s.starts_with('+');
    let separated = s.chars().any(|c| matches!(c, ' ' | '-' | '.' | '(' | ')'));
    if intl {
        (8..=15).contains(&digits)
    } else if separated {
        (10..=13).contains(&digits) || (digits == 7 && s.len() == 8)
    } else {
        false
    }
}

/// Candidates of the kinds that contain digits (all but e-mail), validated.
fn digit_candidates(text: &str, push: &mut impl FnMut(PiiKind, usize, usize)) {
    for (s, e, m) in candidates(&IBAN, text) {
        if iban_valid(m) {
            push(PiiKind::Iban, s, e);
        }
    }
    for (s, e, m) in candidates(&CARD, text) {
        if card_shaped(m) && luhn_valid(m) {
            push(PiiKind::Card, s, e);
        }
    }
    for (s, e, m) in candidates(&SSN, text) {
        if ssn_valid(m) {
            push(PiiKind::Ssn, s, e);
        }
    }
    for (s, e, _) in candidates(&IPV6, text) {
        if ipv6_valid(text, s, e) {
            push(PiiKind::Ipv6, s, e);
        }
    }
    for (s, e, m) in candidates(&IPV4, text) {
        if ipv4_valid(m) {
            push(PiiKind::Ipv4, s, e);
        }
    }
    for (s, e, m) in candidates(&PHONE, text) {
        if phone_valid(text, s, m) {
            push(PiiKind::Phone, s, e);
        }
    }
}

/// Find personal data and credentials in `text` (use the normalised text). Overlaps are
/// resolved by kind priority (secret, e-mail, IBAN, card, SSN, IPv6, IPv4, phone); findings
/// are sorted by start.
pub fn detect_pii(text: &str) -> Vec<PiiFinding> {
    let mut raw: Vec<PiiFinding> = Vec::new();
    let mut push = |kind, start, end| raw.push(PiiFinding { kind, start, end });
    for (s, e, m) in candidates(&SECRET, text) {
        if secret_valid(m) {
            push(PiiKind::Secret, s, e);
        }
    }
    // Every pattern but the e-mail one needs a digit (`\d` is Unicode: any numeric character
    // is a superset; IPv6 candidates without an ASCII digit are rejected below), and the
    // e-mail one needs an `@`. Skipping the scans that cannot match keeps long prompts cheap.
    if text.contains('@') {
        for (s, e, _) in candidates(&EMAIL, text) {
            push(PiiKind::Email, s, e);
        }
    }
    let has_digit =
        if text.is_ascii() { text.bytes().any(|b| b.is_ascii_digit()) } else { text.chars().any(char::is_numeric) };
    if has_digit {
        digit_candidates(text, &mut push);
    }
    let mut kept: Vec<PiiFinding> = Vec::new();
    for kind in PiiKind::ALL {
        for f in raw.iter().filter(|f| f.kind == kind) {
            if !kept.iter().any(|k| f.start < k.end && k.start < f.end) {
                kept.push(f.clone());
            }
        }
    }
    kept.sort_by_key(|f| f.start);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &str) -> Vec<PiiKind> {
        detect_pii(t).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn finds_each_kind() {
        assert_eq!(kinds("mail me at jane.doe@example.co.uk please"), vec![PiiKind::Email]);
        assert_eq!(kinds("card 4111 1111 1111 1111 exp 12/27"), vec![PiiKind::Card]);
        assert_eq!(kinds("IBAN DE89 3704 0044 0532 0130 00."), vec![PiiKind::Iban]);
        assert_eq!(kinds("my ssn is 123-45-6789"), vec![PiiKind::Ssn]);
        assert_eq!(kinds("server 192.168.1.20 is down"), vec![PiiKind::Ipv4]);
        assert_eq!(kinds("host 2001:db8::8a2e:370:7334 up"), vec![PiiKind::Ipv6]);
        assert_eq!(kinds("call +44 20 7946 0958 today"), vec![PiiKind::Phone]);
        assert_eq!(kinds("call (555) 123-4567"), vec![PiiKind::Phone]);
    }

    #[test]
    fn avoids_look_alikes() {
        // Order number that fails Luhn; a date; an amount; invalid IBAN; an invalid IP; a time.
        assert!(kinds("order 4111 1111 1111 1112 shipped").is_empty());
        assert!(kinds("order number 1234567890123").is_empty());
        assert!(kinds("it arrived on 2023-10-12 and 12.10.2023").is_empty());
        assert!(kinds("I was charged $2,099.00 twice").is_empty());
        assert!(kinds("IBAN DE89 3704 0044 0532 0130 01").is_empty());
        assert!(kinds("version 300.1.2.999").is_empty());
        assert!(kinds("meet at 12:30:45").is_empty());
        assert!(kinds("use std::net::Ipv6Addr").is_empty());
    }

    #[test]
    fn finds_credentials_and_leaves_prose_alone() {
        let keys = [
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
            "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe-AbCdEf",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
            "xoxb-123456789012-abcdefghij",
            "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
            "sk_live_51H8abcdEFGHijklMNOP",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ];
        for k in keys {
            let text = format!("my key is {k} thanks");
            let f = detect_pii(&text);
            assert_eq!(f.len(), 1, "{k}: {f:?}");
            assert_eq!((f[0].kind, &text[f[0].start..f[0].end]), (PiiKind::Secret, k));
        }
        let pem =
            "here:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234\nabcd\n-----END RSA PRIVATE KEY-----\nbye";
        let f = detect_pii(pem);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(pem[f[0].start..f[0].end].ends_with("END RSA PRIVATE KEY-----"));
        // A block cut off before its end line is redacted to the end of the text.
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
        assert_eq!(detect_pii(cut).first().map(|f| (f.start, f.end)), Some((0, cut.len())));
        for prose in [
            "sk-learn-is-a-python-library-for-machine-learning",
            "how do I rotate my sk- key?",
            "AKIA is how AWS access keys start",
            "the ghp_ prefix marks GitHub tokens",
            "eyJ is base64 for {\"",
            "my task-based workflow uses skills",
        ] {
            assert!(kinds(prose).is_empty(), "{prose}: {:?}", kinds(prose));
        }
    }

    #[test]
    fn spans_are_byte_offsets() {
        let t = "é x@y.com";
        let f = &detect_pii(t)[0];
        assert_eq!(&t[f.start..f.end], "x@y.com");
    }
}
