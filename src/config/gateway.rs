//! Gateway configuration: providers, routes (model name → fallback chain), and the controls
//! (retries, deadlines, circuit breaker, loop guard). Raw structs and validation side by side.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// Retries per target may never exceed this, whatever the file says.
pub const MAX_ATTEMPTS_CAP: u32 = 5;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub deadline: Option<String>,
    pub attempt_timeout: Option<String>,
    pub first_token_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_attempts: Option<u32>,
    pub backoff_base: Option<String>,
    pub backoff_max: Option<String>,
    pub max_model_calls: Option<u32>,
    pub breaker_window: Option<u32>,
    pub breaker_min_requests: Option<u32>,
    pub breaker_error_ratio: Option<f64>,
    pub breaker_cooldown: Option<String>,
    pub retry_storm_ratio: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub api_key_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub model: String,
    pub targets: Vec<RawTarget>,
    /// USD per million tokens: `price = { input = "0.15", output = "0.60", cached_input = "0.075" }`.
    pub price: Option<super::limits::RawPrice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub provider: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// Any OpenAI-compatible endpoint (OpenAI, Azure OpenAI, vLLM, llama.cpp, Ollama, TGI…).
    OpenAi,
    /// Anthropic's Messages API (`{base_url}/messages`, `x-api-key`).
    Anthropic,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    /// Name of the environment variable holding the credential (read by the CLI, never stored).
    pub api_key_env: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub provider: String,
    pub model: String,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub model: String,
    pub targets: Vec<TargetConfig>,
    /// Nano-dollars per million tokens; `None`: the route costs nothing in budgets.
    pub price: Option<super::limits::Price>,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub deadline: Duration,
    pub attempt_timeout: Duration,
    pub first_token_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub max_model_calls: u32,
    pub breaker_window: u32,
    pub breaker_min_requests: u32,
    pub breaker_error_ratio: f64,
    pub breaker_cooldown: Duration,
    /// Retries per request over a minute above which `keel_retry_storm_total` is raised.
    pub retry_storm_ratio: f64,
    pub providers: Vec<ProviderConfig>,
    pub routes: Vec<RouteConfig>,
    /// Default per-key limits and the completion reserve.
    pub limits: super::limits::LimitsConfig,
    /// The exact response cache.
    pub cache: super::limits::CacheConfig,
}

/// Parses `250ms`, `30s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Everything the gateway section of the file holds.
pub struct RawGatewayParts {
    pub gateway: RawGateway,
    pub providers: Vec<RawProvider>,
    pub routes: Vec<RawRoute>,
    pub limits: super::limits::RawLimits,
    pub cache: super::limits::RawCache,
}

pub fn validate(parts: RawGatewayParts, file: &str) -> Result<GatewayConfig, ConfigError> {
    let RawGatewayParts { gateway: raw, providers, routes, limits, cache } = parts;
    let invalid = |key: &'static str, message: String| ConfigError::Invalid { file: file.to_string(), key, message };
    let dur = |key: &'static str, v: Option<String>, default: Duration| -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration(&s).filter(|d| !d.is_zero()).ok_or_else(|| {
                invalid(key, format!("`{s}` is not a positive duration like \"250ms\", \"30s\", \"2m\""))
            }),
        }
    };
    let max_attempts = raw.max_attempts.unwrap_or(3);
    if max_attempts == 0 || max_attempts > MAX_ATTEMPTS_CAP {
        return Err(invalid(
            "gateway.max_attempts",
            format!("{max_attempts} is outside 1..={MAX_ATTEMPTS_CAP} (attempts per target are capped at {MAX_ATTEMPTS_CAP})"),
        ));
    }
    let ratio = raw.breaker_error_ratio.unwrap_or(0.5);
    if !(ratio > 0.0 && ratio <= 1.0) {
        return Err(invalid("gateway.breaker_error_ratio", format!("{ratio} is outside (0, 1]")));
    }
    let mut names = HashSet::new();
    let mut out_providers = Vec::new();
    for p in providers {
        if !names.insert(p.name.clone()) {
            return Err(invalid("providers.name", format!("provider `{}` is defined twice", p.name)));
        }
        let kind = match p.kind.as_str() {
            "openai" => ProviderKind::OpenAi,
            "anthropic" => ProviderKind::Anthropic,
            other => {
                return Err(invalid("providers.kind", format!("`{other}` is not one of \"openai\", \"anthropic\"")))
            }
        };
        if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
            return Err(invalid("providers.base_url", format!("`{}` must start with http:// or https://", p.base_url)));
        }
        out_providers.push(ProviderConfig {
            name: p.name,
            kind,
            base_url: p.base_url.trim_end_matches('/').to_string(),
            api_key_env: p.api_key_env,
        });
    }
    let mut models = HashSet::new();
    let mut out_routes = Vec::new();
    for r in routes {
        if r.model == "keel" {
            return Err(invalid("routes.model", "`keel` is the grounded pipeline's name; pick another".into()));
        }
        if !models.insert(r.model.clone()) {
            return Err(invalid("routes.model", format!("route `{}` is defined twice", r.model)));
        }
        if r.targets.is_empty() {
            return Err(invalid("routes.targets", format!("route `{}` has no targets", r.model)));
        }
        for t in &r.targets {
            if !names.contains(&t.provider) {
                return Err(invalid(
                    "routes.targets.provider",
                    format!("route `{}` names unknown provider `{}`", r.model, t.provider),
                ));
            }
        }
        let price = r.price.as_ref().map(|p| super::limits::price(p, file)).transpose()?;
        out_routes.push(RouteConfig {
            model: r.model,
            targets: r.targets.into_iter().map(|t| TargetConfig { provider: t.provider, model: t.model }).collect(),
            price,
        });
    }
    Ok(GatewayConfig {
        deadline: dur("gateway.deadline", raw.deadline, Duration::from_secs(30))?,
        attempt_timeout: dur("gateway.attempt_timeout", raw.attempt_timeout, Duration::from_secs(15))?,
        first_token_timeout: dur("gateway.first_token_timeout", raw.first_token_timeout, Duration::from_secs(10))?,
        idle_timeout: dur("gateway.idle_timeout", raw.idle_timeout, Duration::from_secs(10))?,
        max_attempts,
        backoff_base: dur("gateway.backoff_base", raw.backoff_base, Duration::from_millis(100))?,
        backoff_max: dur("gateway.backoff_max", raw.backoff_max, Duration::from_secs(2))?,
        max_model_calls: raw.max_model_calls.unwrap_or(8).max(1),
        breaker_window: raw.breaker_window.unwrap_or(20).max(1),
        breaker_min_requests: raw.breaker_min_requests.unwrap_or(10).max(1),
        breaker_error_ratio: ratio,
        breaker_cooldown: dur("gateway.breaker_cooldown", raw.breaker_cooldown, Duration::from_secs(30))?,
        retry_storm_ratio: raw.retry_storm_ratio.filter(|r| r.is_finite() && *r > 0.0).unwrap_or(0.5),
        providers: out_providers,
        routes: out_routes,
        limits: super::limits::limits(limits, file)?,
        cache: super::limits::cache(cache, file)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5d"), None);
    }

    #[test]
    fn attempts_above_the_cap_are_a_config_error() {
        let raw = RawGateway { max_attempts: Some(6), ..Default::default() };
        let parts = RawGatewayParts {
            gateway: raw,
            providers: vec![],
            routes: vec![],
            limits: Default::default(),
            cache: Default::default(),
        };
        let e = validate(parts, "keel.toml").unwrap_err().to_string();
        assert!(e.contains("gateway.max_attempts") && e.contains("capped at 5"), "{e}");
    }
}
