//! Cost-control configuration: model prices (`price` on a route), default per-key limits
//! (`[limits]`) and the exact response cache (`[cache]`). Money is parsed from decimal strings
//! or integers into integer nano-dollars; a float never enters accounting.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// A dollar amount as written: `"0.15"` or `2` (a TOML float is rejected on purpose).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawMoney {
    Int(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    /// USD per million prompt tokens.
    pub input: RawMoney,
    /// USD per million completion tokens.
    pub output: RawMoney,
    /// USD per million cached prompt tokens (default: the input price).
    pub cached_input: Option<RawMoney>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub daily_tokens: Option<u64>,
    pub monthly_tokens: Option<u64>,
    pub daily_budget_usd: Option<RawMoney>,
    pub monthly_budget_usd: Option<RawMoney>,
    pub max_tokens: Option<u64>,
    pub completion_reserve: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    pub enabled: Option<bool>,
    pub ttl: Option<String>,
    pub max_entries: Option<u64>,
    pub semantic: Option<bool>,
    pub semantic_threshold: Option<f32>,
}

/// Nano-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    pub cached_input: u64,
}

/// Limits of one key; `None` is unlimited. Budgets are in nano-dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub daily_tokens: Option<u64>,
    pub monthly_tokens: Option<u64>,
    pub daily_budget_nanos: Option<u64>,
    pub monthly_budget_nanos: Option<u64>,
    /// Completion tokens a request may ask for; larger `max_tokens` are capped to it.
    pub max_tokens: Option<u64>,
}

impl KeyLimits {
    /// Field by field: `self` where set, else `defaults`.
    pub fn or(self, defaults: KeyLimits) -> KeyLimits {
        KeyLimits {
            rpm: self.rpm.or(defaults.rpm),
            tpm: self.tpm.or(defaults.tpm),
            daily_tokens: self.daily_tokens.or(defaults.daily_tokens),
            monthly_tokens: self.monthly_tokens.or(defaults.monthly_tokens),
            daily_budget_nanos: self.daily_budget_nanos.or(defaults.daily_budget_nanos),
            monthly_budget_nanos: self.monthly_budget_nanos.or(defaults.monthly_budget_nanos),
            max_tokens: self.max_tokens.or(defaults.max_tokens),
        }
    }

    /// Whether any token or money limit applies (then completions are capped upstream too).
    pub fn meters_tokens(&self) -> bool {
        self.tpm.is_some()
            || self.daily_tokens.is_some()
            || self.monthly_tokens.is_some()
            || self.daily_budget_nanos.is_some()
            || self.monthly_budget_nanos.is_some()
            || self.max_tokens.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Limits of keys that set none of their own.
    pub defaults: KeyLimits,
    /// Completion tokens reserved for a request that names no `max_tokens` (and no key cap).
    pub completion_reserve: u64,
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub enabled: bool,
    pub ttl: Duration,
    pub max_entries: u64,
    /// The grounded pipeline's semantic cache (`model: "keel"`).
    pub semantic: bool,
    /// Cosine similarity between question embeddings at or above which an answer is reused.
    pub semantic_threshold: f32,
}

/// `"0.15"` → 150_000_000 nano-dollars; at most 9 decimals; no sign, no exponent.
pub fn parse_usd_nanos(text: &str) -> Option<u64> {
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let w: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let f: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    w.checked_mul(1_000_000_000)?.checked_add(f)
}

fn money(v: &RawMoney) -> Option<u64> {
    match v {
        RawMoney::Int(i) => i.checked_mul(1_000_000_000),
        RawMoney::Text(t) => parse_usd_nanos(t),
    }
}

pub fn price(raw: &RawPrice, file: &str) -> Result<Price, ConfigError> {
    let bad = |key: &'static str| ConfigError::Invalid {
        file: file.to_string(),
        key,
        message: "not a dollar amount like \"0.15\" or 2 (at most 9 decimals)".into(),
    };
    let input = money(&raw.input).ok_or_else(|| bad("routes.price.input"))?;
    let output = money(&raw.output).ok_or_else(|| bad("routes.price.output"))?;
    let cached_input = match &raw.cached_input {
        Some(c) => money(c).ok_or_else(|| bad("routes.price.cached_input"))?,
        None => input,
    };
    Ok(Price { input, output, cached_input })
}

pub fn limits(raw: RawLimits, file: &str) -> Result<LimitsConfig, ConfigError> {
    let usd = |key: &'static str, v: &Option<RawMoney>| -> Result<Option<u64>, ConfigError> {
        v.as_ref()
            .map(|m| {
                money(m).ok_or_else(|| ConfigError::Invalid {
                    file: file.to_string(),
                    key,
                    message: "not a dollar amount like \"5.00\" or 5".into(),
                })
            })
            .transpose()
    };
    let completion_reserve = raw.completion_reserve.unwrap_or(4096);
    if completion_reserve == 0 {
        return Err(ConfigError::Invalid {
            file: file.to_string(),
            key: "limits.completion_reserve",
            message: "must be at least 1".into(),
        });
    }
    Ok(LimitsConfig {
        defaults: KeyLimits {
            rpm: raw.rpm,
            tpm: raw.tpm,
            daily_tokens: raw.daily_tokens,
            monthly_tokens: raw.monthly_tokens,
            daily_budget_nanos: usd("limits.daily_budget_usd", &raw.daily_budget_usd)?,
            monthly_budget_nanos: usd("limits.monthly_budget_usd", &raw.monthly_budget_usd)?,
            max_tokens: raw.max_tokens,
        },
        completion_reserve,
    })
}

pub fn cache(raw: RawCache, file: &str) -> Result<CacheConfig, ConfigError> {
    let ttl_text = raw.ttl.unwrap_or_else(|| "10m".into());
    let ttl =
        super::gateway::parse_duration(&ttl_text).filter(|d| !d.is_zero()).ok_or_else(|| ConfigError::Invalid {
            file: file.to_string(),
            key: "cache.ttl",
            message: format!("`{ttl_text}` is not a positive duration like \"10m\""),
        })?;
    let semantic_threshold = raw.semantic_threshold.unwrap_or(0.95);
    if !(semantic_threshold > 0.5 && semantic_threshold <= 1.0) {
        return Err(ConfigError::Invalid {
            file: file.to_string(),
            key: "cache.semantic_threshold",
            message: format!("{semantic_threshold} is outside (0.5, 1]"),
        });
    }
    Ok(CacheConfig {
        enabled: raw.enabled.unwrap_or(false),
        ttl,
        max_entries: raw.max_entries.unwrap_or(10_000).max(1),
        semantic: raw.semantic.unwrap_or(false),
        semantic_threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_parse_to_nanos_without_floats() {
        assert_eq!(parse_usd_nanos("0.15"), Some(150_000_000));
        assert_eq!(parse_usd_nanos("2"), Some(2_000_000_000));
        assert_eq!(parse_usd_nanos("0.000000001"), Some(1));
        assert_eq!(parse_usd_nanos(".5"), Some(500_000_000));
        assert_eq!(parse_usd_nanos("0.0000000001"), None, "more than 9 decimals");
        assert_eq!(parse_usd_nanos("-1"), None);
        assert_eq!(parse_usd_nanos("1e3"), None);
        assert_eq!(parse_usd_nanos("."), None);
    }

    #[test]
    fn route_prices_and_default_limits_parse_and_floats_are_refused() {
        use crate::config::Config;
        let text = "[limits]\nrpm = 60\ndaily_budget_usd = \"2.5\"\n[cache]\nenabled = true\nttl = \"30s\"\n\
                    [[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://x\"\n\
                    [[routes]]\nmodel = \"m\"\ntargets = [{ provider = \"p\", model = \"x\" }]\n\
                    price = { input = \"0.15\", output = 2 }\n";
        let c = Config::parse(text, "k.toml").unwrap();
        let want = Price { input: 150_000_000, output: 2_000_000_000, cached_input: 150_000_000 };
        assert_eq!(c.gateway.routes[0].price, Some(want));
        assert_eq!(c.gateway.limits.defaults.rpm, Some(60));
        assert_eq!(c.gateway.limits.defaults.daily_budget_nanos, Some(2_500_000_000));
        assert!(c.gateway.cache.enabled);
        assert_eq!(c.gateway.cache.ttl, Duration::from_secs(30));
        assert!(Config::parse(&text.replace("\"0.15\"", "0.15"), "k.toml").is_err(), "a float price");
        let e = Config::parse(&text.replace("\"0.15\"", "\"cheap\""), "k.toml").unwrap_err().to_string();
        assert!(e.contains("routes.price.input"), "{e}");
    }
}
