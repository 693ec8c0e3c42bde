//! Gateway configuration: providers, routes (model name → fallback chain), and the controls
//! (retries, deadlines, circuit breaker, loop guard). Raw structs and validation side by side.

use std::collections::{BTreeMap, HashSet};
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
    /// What a gateway request's trace keeps: "messages", "metadata" or "off".
    pub trace: Option<String>,
    /// Share of successful gateway requests whose trace is kept (failures always are).
    pub trace_sample: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub api_key_env: Option<String>,
    /// Ask for the usage chunk of every stream (default true); see `ProviderConfig`.
    pub stream_usage: Option<bool>,
    /// The header carrying the key: `authorization` (as `Bearer KEY`) or e.g. `api-key`.
    pub auth_header: Option<String>,
    /// Headers sent on every call: `headers = { "HTTP-Referer" = "https://example.com" }`.
    pub headers: Option<BTreeMap<String, String>>,
    /// Query parameters of every call's URL: `query = { "api-version" = "2024-10-21" }`.
    pub query: Option<BTreeMap<String, String>>,
    /// This provider's attempt timeout (a slow local model), instead of `[gateway]`'s.
    pub attempt_timeout: Option<String>,
    /// This provider's time-to-first-token limit for streams, instead of `[gateway]`'s.
    pub first_token_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub model: String,
    pub targets: Vec<RawTarget>,
    /// USD per million tokens: `price = { input = "0.15", output = "0.60", cached_input = "0.075" }`.
    pub price: Option<super::limits::RawPrice>,
    /// Conditional chains, tried in order before `targets`.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// The input guard on this route: `guard = { injection = "block", pii = "redact" }`.
    pub guard: Option<RawRouteGuard>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteGuard {
    pub injection: Option<String>,
    pub pii: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub tenants: Option<Vec<String>>,
    pub min_prompt_tokens: Option<u64>,
    pub max_prompt_tokens: Option<u64>,
    pub intent: Option<String>,
    pub targets: Vec<RawTarget>,
    pub price: Option<super::limits::RawPrice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub provider: String,
    pub model: String,
    /// This model's price, when it differs from the route's (a fallback to another model).
    pub price: Option<super::limits::RawPrice>,
    /// Share of requests that try this target first (a weighted chain: every target has one).
    pub weight: Option<u32>,
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
    /// OpenAI-compatible streams: ask for the final usage chunk (`stream_options.include_usage`)
    /// even when the client did not, so a stream's tokens and cost are the provider's, not an
    /// estimate; the chunk is removed before the client sees it. Off for a server that refuses
    /// `stream_options`.
    pub stream_usage: bool,
    /// How calls to this provider are addressed beyond its URL: key header, extra headers,
    /// query parameters (Azure OpenAI, OpenRouter, gateways in front of a provider).
    pub wire: super::wire::WireOptions,
    /// Timeouts of this provider's calls that differ from `[gateway]`'s.
    pub timeouts: ProviderTimeouts,
}

/// A provider's own timeouts (`None`: the gateway's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderTimeouts {
    pub attempt: Option<Duration>,
    pub first_token: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub provider: String,
    pub model: String,
    /// Overrides the route's price when this target serves the request.
    pub price: Option<super::limits::Price>,
    /// In a weighted chain, this target's share of first tries; the others follow in order.
    pub weight: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub model: String,
    pub targets: Vec<TargetConfig>,
    /// Nano-dollars per million tokens; `None`: the route costs nothing in budgets.
    pub price: Option<super::limits::Price>,
    /// Tried in order; the first rule whose every condition holds gives the request its chain.
    pub rules: Vec<RuleConfig>,
    /// The input guard on this route's requests (off when `None`).
    pub guard: Option<RouteGuard>,
}

/// What the input guard does to a gateway route's user and tool messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteGuard {
    pub injection: RouteInjection,
    /// One action for every kind of personal data; `None`: `[guard.pii]` per kind.
    pub pii: Option<keel_guard::pii::PiiAction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteInjection {
    Off,
    /// Forwarded; the verdict in `x-keel-guard`.
    Flag,
    /// Refused with a 400 naming the reason codes.
    Block,
}

/// A conditional chain of a route. Unset conditions always hold.
#[derive(Debug, Clone, Default)]
pub struct RuleConfig {
    /// The caller's tenant is one of these.
    pub tenants: Vec<String>,
    /// The request's estimated prompt tokens are within these bounds.
    pub min_prompt_tokens: Option<u64>,
    pub max_prompt_tokens: Option<u64>,
    /// The request's `metadata.intent` equals this.
    pub intent: Option<String>,
    pub targets: Vec<TargetConfig>,
    /// The rule's price; `None`: the route's.
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
    /// What the trace of a gateway request keeps.
    pub trace: TraceCapture,
    /// Share of successful gateway requests whose trace is kept (failures always are).
    pub trace_sample: f64,
    pub providers: Vec<ProviderConfig>,
    pub routes: Vec<RouteConfig>,
    /// Default per-key limits and the completion reserve.
    pub limits: super::limits::LimitsConfig,
    /// The exact response cache.
    pub cache: super::limits::CacheConfig,
}

/// What the trace of a plain gateway request (not the grounded `keel` model) keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceCapture {
    /// No trace.
    Off,
    /// Route, tenant, targets, attempts, usage, cost, cache and guard outcomes; no text.
    Metadata,
    /// The metadata plus the messages and the reply, with personal data redacted.
    Messages,
}

/// Parses `250ms`, `30s`, `2m`, `1h`, `1d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        "d" => v * 86_400.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn route_guard(g: RawRouteGuard) -> Result<RouteGuard, (&'static str, String)> {
    use keel_guard::pii::PiiAction;
    let injection = match g.injection.as_deref().unwrap_or("block") {
        "block" => RouteInjection::Block,
        "flag" => RouteInjection::Flag,
        "off" => RouteInjection::Off,
        other => {
            return Err(("routes.guard.injection", format!("`{other}` is not one of \"block\", \"flag\", \"off\"")))
        }
    };
    let pii = match g.pii.as_deref() {
        None => None,
        Some("redact") => Some(PiiAction::Redact),
        Some("block") => Some(PiiAction::Block),
        Some("allow") => Some(PiiAction::Allow),
        Some(other) => {
            return Err(("routes.guard.pii", format!("`{other}` is not one of \"redact\", \"block\", \"allow\"")))
        }
    };
    Ok(RouteGuard { injection, pii })
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
    let trace_sample = raw.trace_sample.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&trace_sample) {
        return Err(invalid("gateway.trace_sample", format!("{trace_sample} is outside [0, 1]")));
    }
    let mut names = HashSet::new();
    let mut out_providers = Vec::new();
    for p in providers {
        if p.name.is_empty() || p.name.contains(['/', '*', '#']) || p.name.chars().any(char::is_whitespace) {
            return Err(invalid(
                "providers.name",
                format!("`{}`: a provider name is one word without `/`, `*` or `#`", p.name),
            ));
        }
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
        let wire = super::wire::wire_options(&p).map_err(|(key, message)| invalid(key, message))?;
        let own = |key: &'static str, v: Option<String>| v.map(|s| dur(key, Some(s), Duration::ZERO)).transpose();
        let timeouts = ProviderTimeouts {
            attempt: own("providers.attempt_timeout", p.attempt_timeout)?,
            first_token: own("providers.first_token_timeout", p.first_token_timeout)?,
        };
        out_providers.push(ProviderConfig {
            name: p.name,
            kind,
            base_url: p.base_url.trim_end_matches('/').to_string(),
            api_key_env: p.api_key_env,
            stream_usage: p.stream_usage.unwrap_or(true),
            wire,
            timeouts,
        });
    }
    let mut models = HashSet::new();
    let mut out_routes = Vec::new();
    for r in routes {
        if r.model == "keel" {
            return Err(invalid("routes.model", "`keel` is the grounded pipeline's name; pick another".into()));
        }
        if r.model.contains('#') {
            return Err(invalid("routes.model", format!("`{}`: `#` is reserved for rule chains", r.model)));
        }
        let wildcard = r.model.ends_with('*');
        if r.model.matches('*').count() > usize::from(wildcard) {
            return Err(invalid(
                "routes.model",
                format!("`{}`: `*` may only end a route's name (`openai/*`, or `*` for every model)", r.model),
            ));
        }
        if !models.insert(r.model.clone()) {
            return Err(invalid("routes.model", format!("route `{}` is defined twice", r.model)));
        }
        if r.targets.is_empty() {
            return Err(invalid("routes.targets", format!("route `{}` has no targets", r.model)));
        }
        let targets = |key: &'static str, ts: Vec<RawTarget>| -> Result<Vec<TargetConfig>, ConfigError> {
            if ts.is_empty() {
                return Err(invalid(key, format!("route `{}` has an empty chain", r.model)));
            }
            let weighted = ts.iter().filter(|t| t.weight.is_some()).count();
            if weighted != 0 && weighted != ts.len() {
                return Err(invalid(
                    "routes.targets.weight",
                    format!("route `{}`: give every target of a chain a weight, or none", r.model),
                ));
            }
            if weighted != 0 && ts.iter().all(|t| t.weight == Some(0)) {
                return Err(invalid(
                    "routes.targets.weight",
                    format!("route `{}`: at least one weight must be above 0", r.model),
                ));
            }
            ts.into_iter()
                .map(|t| {
                    if t.model.matches('*').count() > usize::from(wildcard) {
                        let why = if wildcard { "one `*`" } else { "no `*`: the route is not a wildcard route" };
                        return Err(invalid(
                            "routes.targets.model",
                            format!("route `{}`: target model `{}` may hold {why}", r.model, t.model),
                        ));
                    }
                    if names.contains(&t.provider) {
                        let price = t.price.as_ref().map(|p| super::limits::price(p, file)).transpose()?;
                        Ok(TargetConfig { provider: t.provider, model: t.model, price, weight: t.weight })
                    } else {
                        Err(invalid(key, format!("route `{}` names unknown provider `{}`", r.model, t.provider)))
                    }
                })
                .collect()
        };
        let price = r.price.as_ref().map(|p| super::limits::price(p, file)).transpose()?;
        let mut rules = Vec::new();
        for rule in r.rules {
            if let (Some(lo), Some(hi)) = (rule.min_prompt_tokens, rule.max_prompt_tokens) {
                if lo > hi {
                    return Err(invalid(
                        "routes.rules.min_prompt_tokens",
                        format!("route `{}`: min_prompt_tokens {lo} is above max_prompt_tokens {hi}", r.model),
                    ));
                }
            }
            rules.push(RuleConfig {
                tenants: rule.tenants.unwrap_or_default(),
                min_prompt_tokens: rule.min_prompt_tokens,
                max_prompt_tokens: rule.max_prompt_tokens,
                intent: rule.intent,
                targets: targets("routes.rules.targets.provider", rule.targets)?,
                price: rule.price.as_ref().map(|p| super::limits::price(p, file)).transpose()?.or(price),
            });
        }
        let guard = match r.guard {
            None => None,
            Some(g) => {
                Some(route_guard(g).map_err(|(key, message)| invalid(key, format!("route `{}`: {message}", r.model)))?)
            }
        };
        out_routes.push(RouteConfig {
            targets: targets("routes.targets.provider", r.targets)?,
            model: r.model.clone(),
            price,
            rules,
            guard,
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
        trace: match raw.trace.as_deref() {
            None | Some("messages") => TraceCapture::Messages,
            Some("metadata") => TraceCapture::Metadata,
            Some("off") => TraceCapture::Off,
            Some(other) => {
                return Err(invalid(
                    "gateway.trace",
                    format!("`{other}` is not one of \"messages\", \"metadata\", \"off\""),
                ))
            }
        },
        trace_sample,
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
    fn route_rules_parse_and_are_checked() {
        let head = "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://x/v1\"\n\n\
                    [[routes]]\nmodel = \"m\"\ntargets = [{ provider = \"p\", model = \"small\" }]\n";
        let ok = format!(
            "{head}[[routes.rules]]\ntenants = [\"acme\"]\nmin_prompt_tokens = 10\nintent = \"billing\"\n\
             targets = [{{ provider = \"p\", model = \"big\" }}]\n"
        );
        let c = crate::config::Config::parse(&ok, "k.toml").unwrap();
        assert!(c.gateway.providers[0].stream_usage, "streams ask for usage by default");
        let off = head.replace("base_url", "stream_usage = false\nbase_url");
        assert!(!crate::config::Config::parse(&off, "k.toml").unwrap().gateway.providers[0].stream_usage);
        let e = crate::config::Config::parse(&head.replace("base_url", "stream_usage = \"no\"\nbase_url"), "k.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stream_usage"), "{e}");
        let rule = &c.gateway.routes[0].rules[0];
        assert_eq!(
            (rule.tenants.clone(), rule.min_prompt_tokens, rule.intent.as_deref()),
            (vec!["acme".to_string()], Some(10), Some("billing"))
        );
        let inverted = format!(
            "{head}[[routes.rules]]\nmin_prompt_tokens = 10\nmax_prompt_tokens = 5\ntargets = [{{ provider = \"p\", model = \"big\" }}]\n"
        );
        let e = crate::config::Config::parse(&inverted, "k.toml").unwrap_err().to_string();
        assert!(e.contains("k.toml") && e.contains("routes.rules.min_prompt_tokens"), "{e}");
        let unknown = format!("{head}[[routes.rules]]\ntargets = [{{ provider = \"nope\", model = \"big\" }}]\n");
        let e = crate::config::Config::parse(&unknown, "k.toml").unwrap_err().to_string();
        assert!(e.contains("unknown provider `nope`"), "{e}");
        let typo = format!("{head}[[routes.rules]]\ntennants = [\"a\"]\ntargets = []\n");
        assert!(crate::config::Config::parse(&typo, "k.toml").unwrap_err().to_string().contains("tennants"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("5w"), None);
        assert_eq!(parse_duration("-1s"), None);
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

    #[test]
    fn trace_settings_are_checked() {
        let c =
            crate::config::Config::parse("[gateway]\ntrace = \"metadata\"\ntrace_sample = 0.1\n", "k.toml").unwrap();
        assert_eq!((c.gateway.trace, c.gateway.trace_sample), (TraceCapture::Metadata, 0.1));
        let e = crate::config::Config::parse("[gateway]\ntrace = \"all\"\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("k.toml") && e.contains("gateway.trace") && e.contains("`all`"), "{e}");
        let e = crate::config::Config::parse("[gateway]\ntrace_sample = 1.5\n", "k.toml").unwrap_err().to_string();
        assert!(e.contains("gateway.trace_sample") && e.contains("1.5"), "{e}");
    }

    #[test]
    fn wildcard_routes_are_checked() {
        let route = |model: &str, target: &str| {
            let toml = format!(
                "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://x/v1\"\n\n\
                 [[routes]]\nmodel = \"{model}\"\ntargets = [{{ provider = \"p\", model = \"{target}\" }}]\n"
            );
            crate::config::Config::parse(&toml, "k.toml").map_err(|e| e.to_string())
        };
        assert!(route("openai/*", "*").is_ok());
        assert!(route("*", "*").is_ok());
        assert!(route("llama-*", "meta-llama/llama-*").is_ok());
        assert!(route("big-*", "gpt-4o").is_ok(), "a wildcard route may send every model to one");
        for (model, target, key) in [
            ("open*ai/*", "*", "routes.model"),
            ("*/chat", "*", "routes.model"),
            ("gpt-4o", "*", "routes.targets.model"),
            ("openai/*", "**", "routes.targets.model"),
        ] {
            let e = route(model, target).unwrap_err();
            assert!(e.contains("k.toml") && e.contains(key) && e.contains('*'), "{model} → {target}: {e}");
        }
    }

    #[test]
    fn weights_are_all_or_none_and_not_all_zero() {
        let chain = |targets: &str| {
            let toml = format!(
                "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://x/v1\"\n\n\
                 [[routes]]\nmodel = \"m\"\ntargets = [{targets}]\n"
            );
            crate::config::Config::parse(&toml, "k.toml").map_err(|e| e.to_string())
        };
        let c =
            chain("{ provider = \"p\", model = \"a\", weight = 3 }, { provider = \"p\", model = \"b\", weight = 0 }")
                .unwrap();
        let ws: Vec<Option<u32>> = c.gateway.routes[0].targets.iter().map(|t| t.weight).collect();
        assert_eq!(ws, vec![Some(3), Some(0)]);
        let e =
            chain("{ provider = \"p\", model = \"a\", weight = 3 }, { provider = \"p\", model = \"b\" }").unwrap_err();
        assert!(e.contains("routes.targets.weight") && e.contains("every target"), "{e}");
        let e = chain("{ provider = \"p\", model = \"a\", weight = 0 }").unwrap_err();
        assert!(e.contains("routes.targets.weight") && e.contains("above 0"), "{e}");
        let e = chain("{ provider = \"p\", model = \"a\", weight = -1 }").unwrap_err();
        assert!(e.contains("weight"), "{e}");
    }

    #[test]
    fn provider_names_and_own_timeouts_are_checked() {
        let provider = |extra: &str| {
            let toml = format!("[[providers]]\n{extra}\nkind = \"openai\"\nbase_url = \"http://x/v1\"\n");
            crate::config::Config::parse(&toml, "k.toml").map_err(|e| e.to_string())
        };
        let c = provider("name = \"local\"\nattempt_timeout = \"90s\"\nfirst_token_timeout = \"250ms\"").unwrap();
        let t = c.gateway.providers[0].timeouts;
        assert_eq!((t.attempt, t.first_token), (Some(Duration::from_secs(90)), Some(Duration::from_millis(250))));
        assert_eq!(provider("name = \"p\"").unwrap().gateway.providers[0].timeouts, ProviderTimeouts::default());
        let e = provider("name = \"p\"\nattempt_timeout = \"soon\"").unwrap_err();
        assert!(e.contains("providers.attempt_timeout") && e.contains("soon"), "{e}");
        let e = provider("name = \"p\"\nfirst_token_timeout = \"0s\"").unwrap_err();
        assert!(e.contains("providers.first_token_timeout"), "{e}");
        for bad in ["a/b", "all*", "x#1", "", "two words"] {
            let e = provider(&format!("name = \"{bad}\"")).unwrap_err();
            assert!(e.contains("providers.name") && e.contains("one word"), "{bad}: {e}");
        }
    }
}
