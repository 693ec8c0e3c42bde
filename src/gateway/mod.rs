//! The gateway: routes a model name to an ordered fallback chain of targets and applies every
//! control on the way (bounded retries with backoff, one total deadline, circuit breakers, a
//! loop guard). The composition order, in one place (`Gateway::call`):
//!
//! ```text
//! route = the first rule of the model whose conditions hold (tenant, prompt size, intent),
//!         else the model's own chain                                  (`Gateway::resolve`)
//! for target in route.chain:
//!     if target.breaker is open: skip
//!     if embeddings and the target's format has none (Anthropic): skip
//!     for attempt in 1..=max_attempts (≤ 5):
//!         if calls == max_model_calls: fail (loop guard)
//!         if deadline passed: fail 504
//!         result = provider call with timeout min(attempt timeout, time left)
//!         success → return; 400/413/422 → return the client error;
//!         401/403/404 → next target; transient → wait backoff (or Retry-After),
//!         unless the wait would pass the deadline → next target
//! all open → 503 fail fast; else the last error (502) or 504
//! ```

pub mod breaker;
pub mod cache;
pub mod chat;
pub mod provider;
pub mod retry;
mod routing;
pub mod sse;
pub mod usage;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::config::gateway::{ProviderTimeouts, RouteGuard, TargetConfig};
use crate::config::limits::{LimitsConfig, Price};
use crate::config::GatewayConfig;
use crate::metrics;
use breaker::{Breaker, BreakerConfig};
pub use provider::Embedded;
pub use provider::Reply;
use provider::{OpenStream, Provider, ProviderError};
use retry::Verdict;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("The model `{0}` does not exist")]
    UnknownModel(String),
    #[error("every target for `{0}` is unavailable (circuit open); retry later")]
    AllOpen(String),
    #[error("the request deadline of {0:?} passed before a provider answered")]
    Deadline(Duration),
    #[error("the request reached its limit of {0} model calls")]
    LoopGuard(u32),
    #[error("the provider rejected the request: {message}")]
    Rejected { status: u16, message: String },
    #[error("no provider could answer: {0}")]
    Exhausted(String),
    #[error("HTTP client: {0}")]
    Client(String),
}

/// Credentials by provider name, read from the environment by the CLI. Never printed.
#[derive(Default, Clone)]
pub struct Secrets(pub HashMap<String, String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

/// What happened on one attempt (for headers, traces and tests).
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub target: String,
    pub outcome: String,
    pub ms: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CallReport {
    pub attempts: Vec<Attempt>,
    /// Provider calls made (`attempts` also lists skipped targets and skipped retries).
    pub calls: u32,
    /// Time spent waiting on providers (the rest is Keel's own overhead).
    #[serde(skip)]
    pub provider_wait: Duration,
    /// The price of the target that answered, as its chain declares it (its own `price`, else
    /// the chain's); `None` until a target answers, or when neither has a price.
    #[serde(skip)]
    pub price: Option<Price>,
}

pub struct Target {
    pub label: String,
    model: String,
    provider: Arc<Provider>,
    /// The provider's own timeouts, where they differ from the gateway's.
    timeouts: ProviderTimeouts,
    pub breaker: Breaker,
}

enum Op {
    Complete,
    Stream,
    Embed,
}

enum Outcome {
    Reply(Reply),
    Stream(OpenStream),
    Embedded(Embedded),
}

/// What cost controls need to know about a route.
struct RouteMeta {
    price: Option<Price>,
    /// The input guard on the route's requests (a rule chain has its route's).
    guard: Option<RouteGuard>,
    /// A hash of the chain of targets: a cached reply is only reused for the same chain.
    version: String,
}

/// A chain of targets as the call loop reads it, in one lookup.
struct Chain {
    /// Indices into `Gateway::targets`, in configured order.
    targets: Vec<usize>,
    /// Each target's own price in this chain (the same target may be priced differently by
    /// two routes), in the same order.
    prices: Vec<Option<Price>>,
    /// A weighted chain's weights, in the same order.
    weights: Option<Vec<u32>>,
    /// A wildcard route's prefix (`openai/` of `openai/*`): what follows it in the requested
    /// model fills the `*` of the chain's target models.
    prefix: Option<String>,
}

/// A rule of a route: its conditions and the key of its chain (`model#n`).
struct Rule {
    tenants: Vec<String>,
    min_prompt_tokens: Option<u64>,
    max_prompt_tokens: Option<u64>,
    intent: Option<String>,
    key: String,
}

/// What routing rules look at: the caller's tenant and the request body.
pub struct RouteInput<'a> {
    pub tenant: &'a str,
    pub body: &'a Value,
}

pub struct Gateway {
    /// Chains by route key: the model name, or `model#n` for the n-th rule of a route.
    routes: HashMap<String, Chain>,
    rules: HashMap<String, Vec<Rule>>,
    /// Wildcard routes as (prefix, route name), longest prefix first: a model no route names
    /// exactly is served by the first whose prefix it starts with.
    wildcards: Vec<(String, String)>,
    meta: HashMap<String, RouteMeta>,
    cache: Option<cache::ResponseCache>,
    targets: Vec<Target>,
    cfg: GatewayConfig,
    storm: std::sync::Mutex<StormWindow>,
}

/// Retries and requests in the current minute, for the retry-storm alarm.
struct StormWindow {
    started: Instant,
    requests: u64,
    retries: u64,
    raised: bool,
}

/// The alarm sounds when a minute holds at least this many requests…
const STORM_MIN_REQUESTS: u64 = 20;

fn count_attempt(target: &str, outcome: &str) {
    metrics::global().inc(
        "keel_gateway_attempts_total",
        "Provider calls by target and outcome",
        &[("target", target), ("outcome", outcome)],
        1,
    );
}

impl Gateway {
    pub fn new(cfg: &GatewayConfig, secrets: &Secrets) -> Result<Self, GatewayError> {
        let client = provider::Transport::new(Duration::from_secs(90)).map_err(GatewayError::Client)?;
        let providers: HashMap<&str, (Arc<Provider>, ProviderTimeouts)> = cfg
            .providers
            .iter()
            .map(|p| {
                let provider = Provider::new(p, secrets.0.get(&p.name).map(String::as_str), &client);
                (p.name.as_str(), (Arc::new(provider), p.timeouts))
            })
            .collect();
        let bcfg = BreakerConfig {
            window: cfg.breaker_window as usize,
            min_requests: cfg.breaker_min_requests as usize,
            error_ratio: cfg.breaker_error_ratio,
            cooldown: cfg.breaker_cooldown,
        };
        let mut targets: Vec<Target> = Vec::new();
        let mut routes = HashMap::new();
        let mut meta = HashMap::new();
        let mut rules: HashMap<String, Vec<Rule>> = HashMap::new();
        /// One chain to build: its route key, targets, price and guard.
        type Spec<'a> = (String, &'a [TargetConfig], Option<Price>, Option<RouteGuard>);
        let mut chains: Vec<Spec<'_>> = Vec::new();
        for r in &cfg.routes {
            chains.push((r.model.clone(), &r.targets, r.price, r.guard));
            for (i, rule) in r.rules.iter().enumerate() {
                let key = format!("{}#{}", r.model, i + 1);
                chains.push((key.clone(), &rule.targets, rule.price, r.guard));
                rules.entry(r.model.clone()).or_default().push(Rule {
                    tenants: rule.tenants.clone(),
                    min_prompt_tokens: rule.min_prompt_tokens,
                    max_prompt_tokens: rule.max_prompt_tokens,
                    intent: rule.intent.clone(),
                    key,
                });
            }
        }
        for (key, chain_targets, price, guard) in chains {
            let chain_text: Vec<String> = chain_targets.iter().map(|t| format!("{}/{}", t.provider, t.model)).collect();
            let version = crate::digest::sha256_hex(chain_text.join("\n").as_bytes())[..12].to_string();
            meta.insert(key.clone(), RouteMeta { price, guard, version });
            let mut chain = Vec::new();
            for t in chain_targets {
                let label = format!("{}/{}", t.provider, t.model);
                let idx = match targets.iter().position(|x| x.label == label) {
                    Some(i) => i,
                    None => {
                        let Some((p, timeouts)) = providers.get(t.provider.as_str()) else {
                            return Err(GatewayError::Client(format!("unknown provider `{}`", t.provider)));
                        };
                        targets.push(Target {
                            label,
                            model: t.model.clone(),
                            provider: p.clone(),
                            timeouts: *timeouts,
                            breaker: Breaker::new(bcfg),
                        });
                        targets.len() - 1
                    }
                };
                chain.push(idx);
            }
            let prices = chain_targets.iter().map(|t| t.price).collect();
            let weights = chain_targets.iter().map(|t| t.weight).collect::<Option<Vec<u32>>>();
            let prefix = key.split('#').next().and_then(|name| name.strip_suffix('*')).map(str::to_string);
            routes.insert(key, Chain { targets: chain, prices, weights, prefix });
        }
        let storm =
            std::sync::Mutex::new(StormWindow { started: Instant::now(), requests: 0, retries: 0, raised: false });
        let cache = cfg.cache.enabled.then(|| cache::ResponseCache::new(&cfg.cache));
        // The wildcard routes themselves (their rule chains, `route#n`, share their prefix).
        let mut wildcards: Vec<(String, String)> = routes
            .iter()
            .filter(|(key, _)| !key.contains('#'))
            .filter_map(|(key, c)| c.prefix.clone().map(|p| (p, key.clone())))
            .collect();
        wildcards.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(Self { routes, rules, wildcards, meta, cache, targets, cfg: cfg.clone(), storm })
    }

    pub fn breaker_states(&self) -> Vec<(String, &'static str)> {
        self.targets.iter().map(|t| (t.label.clone(), t.breaker.state().as_str())).collect()
    }

    /// The route's price (nano-dollars per million tokens), if it has one.
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.meta.get(model)?.price.as_ref()
    }

    /// The dearest price any target of the route could charge, per component: what a
    /// reservation must assume so a fallback never spends past it.
    pub fn worst_price(&self, model: &str) -> Option<Price> {
        let mut prices: Vec<Price> = self.price(model).copied().into_iter().collect();
        prices.extend(self.routes.get(model).into_iter().flat_map(|c| c.prices.iter().flatten()));
        prices.into_iter().reduce(|a, b| Price {
            input: a.input.max(b.input),
            output: a.output.max(b.output),
            cached_input: a.cached_input.max(b.cached_input),
        })
    }

    /// The input guard policy of a route key, if the route has one.
    pub fn route_guard(&self, model: &str) -> Option<RouteGuard> {
        self.meta.get(model)?.guard
    }

    /// The route's version (a hash of its chain), part of every cache key.
    pub fn route_version(&self, model: &str) -> &str {
        self.meta.get(model).map_or("", |m| m.version.as_str())
    }

    /// The exact response cache, when `[cache] enabled`.
    pub fn cache(&self) -> Option<&cache::ResponseCache> {
        self.cache.as_ref()
    }

    pub fn limits_config(&self) -> &LimitsConfig {
        &self.cfg.limits
    }

    pub fn idle_timeout(&self) -> Duration {
        self.cfg.idle_timeout
    }

    pub async fn complete(&self, model: &str, mut body: Value, report: &mut CallReport) -> Result<Value, GatewayError> {
        self.complete_reply(model, &mut body, report)
            .await?
            .into_value()
            .map_err(|e| GatewayError::Exhausted(e.to_string()))
    }

    /// A plain call whose reply stays as the provider sent it (the HTTP gateway passes it
    /// through). `body["model"]` is left naming the target that answered.
    pub async fn complete_reply(
        &self,
        model: &str,
        body: &mut Value,
        report: &mut CallReport,
    ) -> Result<Reply, GatewayError> {
        match self.call(model, body, Op::Complete, report).await? {
            Outcome::Reply(r) => Ok(r),
            _ => Err(GatewayError::Exhausted("internal: not a reply for a plain call".into())),
        }
    }

    /// Keel's own model calls (the generative answerer, its repair, the model judge): the reply
    /// with its usage, priced at the serving target's price and counted in the metrics.
    pub async fn complete_metered(
        &self,
        model: &str,
        body: Value,
        report: &mut CallReport,
    ) -> Result<(Value, usage::Usage), GatewayError> {
        let reply = self.complete(model, body.clone(), report).await?;
        let u = usage::of_response(model, &body, &reply).priced(report.price.as_ref());
        u.count(model);
        Ok((reply, u))
    }

    /// Opens a stream; fallback happens only here, before the first byte reaches the client.
    /// `body["model"]` is left naming the target that answered.
    pub async fn stream(
        &self,
        model: &str,
        body: &mut Value,
        report: &mut CallReport,
    ) -> Result<OpenStream, GatewayError> {
        match self.call(model, body, Op::Stream, report).await? {
            Outcome::Stream(s) => Ok(s),
            _ => Err(GatewayError::Exhausted("internal: not a stream for a stream".into())),
        }
    }

    /// Embeddings through the route's chain, with every control of a plain call; targets whose
    /// wire format has no embeddings endpoint (Anthropic) are skipped. `body["model"]` is left
    /// naming the target that answered.
    pub async fn embed(
        &self,
        model: &str,
        body: &mut Value,
        report: &mut CallReport,
    ) -> Result<Embedded, GatewayError> {
        match self.call(model, body, Op::Embed, report).await? {
            Outcome::Embedded(e) => Ok(e),
            _ => Err(GatewayError::Exhausted("internal: not embeddings for an embeddings call".into())),
        }
    }

    async fn call(
        &self,
        model: &str,
        body: &mut Value,
        op: Op,
        report: &mut CallReport,
    ) -> Result<Outcome, GatewayError> {
        let result = self.call_chain(model, body, op, report).await;
        self.note_storm(u64::from(report.calls.saturating_sub(1)));
        if let Err(e) = &result {
            let reason = match e {
                GatewayError::UnknownModel(_) => "unknown_model",
                GatewayError::AllOpen(_) => "all_open",
                GatewayError::Deadline(_) => "deadline",
                GatewayError::LoopGuard(_) => "loop_guard",
                GatewayError::Rejected { .. } => "rejected",
                GatewayError::Exhausted(_) | GatewayError::Client(_) => "exhausted",
            };
            metrics::global().inc(
                "keel_gateway_failures_total",
                "Gateway requests that failed, by reason",
                &[("reason", reason)],
                1,
            );
        }
        result
    }

    /// Counts retries per request over a one-minute window; raises `keel_retry_storm_total`
    /// (once per window, with a warning) when retries per request exceed the configured ratio.
    fn note_storm(&self, retries: u64) {
        let mut w = self.storm.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if w.started.elapsed() > Duration::from_secs(60) {
            *w = StormWindow { started: Instant::now(), requests: 0, retries: 0, raised: false };
        }
        w.requests += 1;
        w.retries += retries;
        let ratio = w.retries as f64 / w.requests as f64;
        if !w.raised && w.requests >= STORM_MIN_REQUESTS && ratio > self.cfg.retry_storm_ratio {
            w.raised = true;
            tracing::warn!(
                requests = w.requests,
                retries = w.retries,
                limit = self.cfg.retry_storm_ratio,
                "retry storm"
            );
            metrics::global().inc(
                "keel_retry_storm_total",
                "Minutes in which retries per request exceeded the configured ratio",
                &[],
                1,
            );
        }
    }

    async fn call_chain(
        &self,
        model: &str,
        body: &mut Value,
        op: Op,
        report: &mut CallReport,
    ) -> Result<Outcome, GatewayError> {
        let chain = self.routes.get(model).ok_or_else(|| GatewayError::UnknownModel(model.to_string()))?;
        // A wildcard route: what the client asked for after the prefix fills each target's `*`.
        let filled = match chain.prefix.as_deref() {
            None => None,
            Some(prefix) => {
                let asked = body.get("model").and_then(Value::as_str).unwrap_or("");
                let rest = asked.strip_prefix(prefix).filter(|r| !r.is_empty());
                Some(rest.ok_or_else(|| GatewayError::UnknownModel(asked.to_string()))?.to_string())
            }
        };
        let deadline = Instant::now() + self.cfg.deadline;
        let mut tried_any = false;
        let mut last_error = String::from("no target was tried");
        for pos in chain.order() {
            let target = &self.targets[chain.targets[pos]];
            if matches!(op, Op::Embed) && !target.provider.embeds() {
                report.attempts.push(Attempt {
                    target: target.label.clone(),
                    outcome: "skipped: no embeddings endpoint".into(),
                    ms: 0,
                });
                continue;
            }
            if !target.breaker.try_acquire() {
                report.attempts.push(Attempt {
                    target: target.label.clone(),
                    outcome: "skipped: circuit open".into(),
                    ms: 0,
                });
                continue;
            }
            if tried_any {
                metrics::global().inc(
                    "keel_gateway_fallbacks_total",
                    "Moves to the next target of a chain",
                    &[("model", model)],
                    1,
                );
            }
            tried_any = true;
            // A wildcard target's attempts name the model it was asked for ("p/gpt-4o"); its
            // breaker and metrics keep the pattern ("p/*"), one per target.
            let (want, shown) = match &filled {
                Some(rest) if target.model.contains('*') => {
                    let want = target.model.replacen('*', rest, 1);
                    let provider = &target.label[..target.label.len() - target.model.len()];
                    let shown = format!("{provider}{want}");
                    (std::borrow::Cow::Owned(want), std::borrow::Cow::Owned(shown))
                }
                _ => (
                    std::borrow::Cow::Borrowed(target.model.as_str()),
                    std::borrow::Cow::Borrowed(target.label.as_str()),
                ),
            };
            if body.get("model").and_then(Value::as_str) != Some(&*want) {
                body["model"] = Value::String(want.into_owned());
            }
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                if report.calls >= self.cfg.max_model_calls {
                    target.breaker.release();
                    return Err(GatewayError::LoopGuard(self.cfg.max_model_calls));
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    target.breaker.release();
                    return Err(GatewayError::Deadline(self.cfg.deadline));
                }
                report.calls += 1;
                let started = Instant::now();
                let result = match op {
                    Op::Complete => {
                        let limit = target.timeouts.attempt.unwrap_or(self.cfg.attempt_timeout);
                        target.provider.complete(body, limit.min(left)).await.map(Outcome::Reply)
                    }
                    Op::Stream => target
                        .provider
                        .open_stream(
                            body,
                            target.timeouts.first_token.unwrap_or(self.cfg.first_token_timeout).min(left),
                        )
                        .await
                        .map(Outcome::Stream),
                    Op::Embed => {
                        let limit = target.timeouts.attempt.unwrap_or(self.cfg.attempt_timeout);
                        target.provider.embed(body, limit.min(left)).await.map(Outcome::Embedded)
                    }
                };
                let took = started.elapsed();
                report.provider_wait += took;
                let ms = took.as_millis() as u64;
                let err = match result {
                    Ok(o) => {
                        target.breaker.record_success();
                        count_attempt(&target.label, "ok");
                        report.attempts.push(Attempt { target: shown.into_owned(), outcome: "ok".into(), ms });
                        report.price = chain.prices[pos].or_else(|| self.price(model).copied());
                        return Ok(o);
                    }
                    Err(e) => e,
                };
                let retry_after = match &err {
                    ProviderError::Status { status: 429, retry_after, .. } => *retry_after,
                    _ => None,
                };
                let verdict = retry::classify(&err);
                if matches!(verdict, Verdict::Fail) {
                    // The client's error (a 400, a request the wire format cannot carry) says
                    // nothing about the target's health: it neither opens nor closes its breaker.
                    target.breaker.release();
                } else {
                    target.breaker.record_failure(retry_after);
                }
                count_attempt(&target.label, "error");
                report.attempts.push(Attempt { target: shown.to_string(), outcome: err.to_string(), ms });
                last_error = err.to_string();
                if Instant::now() >= deadline {
                    return Err(GatewayError::Deadline(self.cfg.deadline));
                }
                match verdict {
                    Verdict::Fail => {
                        let status = match &err {
                            ProviderError::Status { status, .. } => *status,
                            _ => 400,
                        };
                        return Err(GatewayError::Rejected { status, message: err.to_string() });
                    }
                    Verdict::NextTarget => break,
                    Verdict::Retry => {
                        if attempt >= self.cfg.max_attempts {
                            break;
                        }
                        let wait =
                            retry::backoff(attempt, self.cfg.backoff_base, self.cfg.backoff_max, retry::jitter_unit())
                                .max(err.retry_after().unwrap_or_default());
                        if Instant::now() + wait >= deadline {
                            report.attempts.push(Attempt {
                                target: shown.to_string(),
                                outcome: format!("retry skipped: a {wait:?} wait passes the deadline"),
                                ms: 0,
                            });
                            break;
                        }
                        tokio::time::sleep(wait).await;
                        if !target.breaker.try_acquire() {
                            break;
                        }
                    }
                }
            }
        }
        if !tried_any {
            if matches!(op, Op::Embed) && chain.targets.iter().all(|&t| !self.targets[t].provider.embeds()) {
                return Err(GatewayError::Rejected {
                    status: 400,
                    message: format!("no target of `{model}` has an embeddings endpoint"),
                });
            }
            return Err(GatewayError::AllOpen(model.to_string()));
        }
        Err(GatewayError::Exhausted(last_error))
    }
}
