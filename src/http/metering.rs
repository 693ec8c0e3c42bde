//! Cost controls around a gateway call: the reservation before it (with the `max_tokens` cap),
//! the usage after it (the provider's, or an estimate), the settlement, the `keel.usage`
//! extension, and the meter that watches a stream's SSE events for its text and usage.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::gateway_trace::GatewayTrace;
use crate::config::limits::Price;
use crate::gateway::usage::{self, Usage};
use crate::gateway::Gateway;
use crate::limits::{Limiter, Reservation, UsageRecord};

/// One metered request, from its reservation to its settlement.
pub struct Meter {
    limiter: Option<Arc<Limiter>>,
    reservation: Option<Reservation>,
    tenant: String,
    key_id: String,
    pub model: String,
    /// The route's price; a serving target's own price replaces it (`served_by`).
    price: Option<Price>,
    /// The dearest price of the chain: what the reservation assumes.
    worst: Option<Price>,
    /// The key's cap when the client's `max_tokens` was lowered to it.
    pub capped: Option<u64>,
}

fn requested_completion(body: &Value) -> Option<u64> {
    ["max_completion_tokens", "max_tokens"].iter().find_map(|f| body.get(*f).and_then(Value::as_u64))
}

/// What a request will use, for its reservation.
enum Ask<'a> {
    /// A chat completion: its body, whose `max_tokens` is capped in place.
    Chat(&'a mut Value),
    /// Embeddings: the input's tokens, and no completion.
    Input(u64),
}

/// Reserves the request under its key's limits (capping `max_tokens` in `body`), or returns
/// the 429 (with `Retry-After`) that refuses it.
pub async fn begin(
    gateway: &Gateway,
    limiter: Option<&Arc<Limiter>>,
    caller: &Caller,
    model: &str,
    body: &mut Value,
) -> Result<Meter, Response> {
    reserve(gateway, limiter, caller, model, Ask::Chat(body)).await
}

/// Reserves an embeddings request (`prompt` input tokens, no completion) under its key's
/// limits, or returns the 429 that refuses it.
pub async fn begin_embedding(
    gateway: &Gateway,
    limiter: Option<&Arc<Limiter>>,
    caller: &Caller,
    model: &str,
    prompt: u64,
) -> Result<Meter, Response> {
    reserve(gateway, limiter, caller, model, Ask::Input(prompt)).await
}

async fn reserve(
    gateway: &Gateway,
    limiter: Option<&Arc<Limiter>>,
    caller: &Caller,
    model: &str,
    mut ask: Ask<'_>,
) -> Result<Meter, Response> {
    let mut meter = Meter {
        limiter: limiter.cloned(),
        reservation: None,
        tenant: caller.tenant.clone(),
        key_id: caller.key_id.clone().unwrap_or_else(|| "-".into()),
        model: model.to_string(),
        price: gateway.price(model).copied(),
        worst: gateway.worst_price(model),
        capped: None,
    };
    let (Some(limiter), Some(key_id)) = (limiter, caller.key_id.as_deref()) else { return Ok(meter) };
    let requested = match &ask {
        Ask::Chat(body) => requested_completion(body),
        Ask::Input(_) => Some(0),
    };
    let plan = limiter.plan(key_id, requested).await.map_err(|e| ApiError::from(e).into_response())?;
    if plan.limits == Default::default() {
        return Ok(meter);
    }
    if let (Ask::Chat(body), true) = (&mut ask, plan.limits.meters_tokens()) {
        // The reservation is only exact if the provider cannot write more than it reserved.
        let field = if body.get("max_completion_tokens").is_some() { "max_completion_tokens" } else { "max_tokens" };
        body[field] = json!(plan.completion_cap);
    }
    if plan.capped {
        meter.capped = Some(plan.completion_cap);
    }
    let prompt = match &ask {
        Ask::Chat(body) => usage::estimate_prompt(model, body),
        Ask::Input(tokens) => *tokens,
    };
    let tokens = prompt + plan.completion_cap;
    let nanos = usage::worst_case_nanodollars(meter.worst.as_ref(), prompt, plan.completion_cap);
    match limiter.reserve(key_id, &plan.limits, tokens, nanos).await {
        Ok(Ok(r)) => {
            meter.reservation = Some(r);
            Ok(meter)
        }
        Ok(Err(denial)) => {
            let mut res =
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded", denial.to_string()).into_response();
            if let Ok(v) = HeaderValue::from_str(&denial.retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Err(res)
        }
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

impl Meter {
    /// The usage of a reply, priced for this route.
    pub fn price(&self, u: Usage) -> Usage {
        u.priced(self.price.as_ref())
    }

    /// From now on, price usage at what the target that served the request charges in its
    /// chain (`CallReport::price`), when one answered.
    pub fn served_by(&mut self, served: Option<Price>) {
        if served.is_some() {
            self.price = served;
        }
    }

    /// Settles a grounded-pipeline request: `usage` is what its model calls used (already
    /// counted in the metrics per route by the gateway), else an estimate of the answer's
    /// tokens at no cost (the extractive answerer, a snapshot, a cache hit).
    pub async fn finish_grounded(mut self, usage: Option<Usage>, estimate: (u64, u64)) {
        let u = usage.unwrap_or(Usage {
            prompt_tokens: estimate.0,
            completion_tokens: estimate.1,
            cached_tokens: 0,
            estimated: true,
            cost_nanodollars: 0,
        });
        let Some(limiter) = self.limiter.take() else { return };
        let record = UsageRecord {
            tenant: self.tenant.clone(),
            key_id: self.key_id.clone(),
            model: self.model.clone(),
            usage: u,
            cache_hit: false,
        };
        if let Err(e) = limiter.settle(self.reservation.as_ref(), Some(&record)).await {
            tracing::warn!(error = %e, key = %self.key_id, "settling usage (the reservation stays counted)");
        }
    }

    /// Settles the reservation with `usage` (`None`: the call failed) and counts it.
    pub async fn finish(mut self, usage: Option<Usage>, cache_hit: bool) {
        if let Some(u) = &usage {
            if !cache_hit {
                u.count(&self.model);
            }
        }
        let Some(limiter) = self.limiter.take() else { return };
        let record = usage.map(|u| UsageRecord {
            tenant: self.tenant.clone(),
            key_id: self.key_id.clone(),
            model: self.model.clone(),
            usage: if cache_hit { Usage { cost_nanodollars: 0, ..Default::default() } } else { u },
            cache_hit,
        });
        if let Err(e) = limiter.settle(self.reservation.as_ref(), record.as_ref()).await {
            tracing::warn!(error = %e, key = %self.key_id, "settling usage (the reservation stays counted)");
        }
    }
}

/// The `keel` extension of a reply: `{"usage": {...}}`.
pub fn extension(u: &Usage, cache: Option<&str>) -> Value {
    let mut usage = json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "cached_tokens": u.cached_tokens,
        "estimated": u.estimated,
        "cost_nanodollars": u.cost_nanodollars,
    });
    if let Some(c) = cache {
        usage["cache"] = json!(c);
    }
    json!({ "usage": usage })
}

/// Watches a stream's SSE events: the text of content deltas and a final `usage`, if sent.
/// When the stream ends (or the client goes away) it settles the meter in the background.
pub struct StreamMeter {
    meter: Option<Meter>,
    request: Value,
    line: Vec<u8>,
    text: String,
    usage: Option<Usage>,
    trace: GatewayTrace,
    /// How the stream ended when it did not end cleanly: trace status and error code.
    ended: Option<(&'static str, &'static str)>,
}

impl StreamMeter {
    pub fn new(meter: Meter, request: Value, trace: GatewayTrace) -> Self {
        Self { meter: Some(meter), request, line: Vec::new(), text: String::new(), usage: None, trace, ended: None }
    }

    /// The stream ended with an error event (`status` `error` or `blocked`, and its code).
    pub fn ended(&mut self, status: &'static str, code: &'static str) {
        self.ended = Some((status, code));
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.event_line(&line);
            } else {
                self.line.push(b);
            }
        }
    }

    fn event_line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else { return };
        let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii()) else { return };
        if let Some(u) = usage::provider_usage(v.get("usage")) {
            self.usage = Some(u);
        }
        for c in v.get("choices").and_then(Value::as_array).into_iter().flatten() {
            // Reasoning deltas come before the content's and are text the model wrote too.
            for field in ["/delta/reasoning_content", "/delta/reasoning", "/delta/content"] {
                if let Some(t) = c.pointer(field).and_then(Value::as_str) {
                    self.text.push_str(t);
                }
            }
            // Tool-call arguments are text the model wrote too: guarded, counted, traced.
            for call in c.pointer("/delta/tool_calls").and_then(Value::as_array).into_iter().flatten() {
                if let Some(a) = call.pointer("/function/arguments").and_then(Value::as_str) {
                    self.text.push_str(a);
                }
            }
        }
    }

    /// The reply's text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn usage(&self, model: &str) -> Usage {
        self.usage.unwrap_or_else(|| Usage {
            prompt_tokens: usage::estimate_prompt(model, &self.request),
            completion_tokens: usage::count_text(model, &self.text),
            cached_tokens: 0,
            estimated: true,
            cost_nanodollars: 0,
        })
    }
}

impl Drop for StreamMeter {
    fn drop(&mut self) {
        let Some(meter) = self.meter.take() else { return };
        let u = meter.price(self.usage(&meter.model));
        self.trace.skip();
        self.trace.span("stream", [("chars", json!(self.text.chars().count())), ("done", json!(self.ended.is_none()))]);
        self.trace.usage(&u);
        let text = &self.text;
        self.trace.reply(|| text.clone());
        match self.ended {
            None => self.trace.finish("ok", 200, None),
            Some((status, code)) => self.trace.finish(status, 200, Some(code)),
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(meter.finish(Some(u), false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> Meter {
        Meter {
            limiter: None,
            reservation: None,
            tenant: "t".into(),
            key_id: "-".into(),
            model: "gpt-4o".into(),
            price: None,
            worst: None,
            capped: None,
        }
    }

    #[test]
    fn the_stream_meter_reads_split_events_and_prefers_the_providers_usage() {
        let req = json!({ "messages": [{ "role": "user", "content": "hi" }] });
        let mut m = StreamMeter::new(meter(), req.clone(), GatewayTrace::off());
        let events = "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\n\
                      data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
        for piece in events.as_bytes().chunks(5) {
            m.feed(piece);
        }
        assert_eq!(m.text, "Hello world");
        let u = m.usage("gpt-4o");
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.estimated), (7, 2, false));
        m.meter = None;

        let mut m = StreamMeter::new(meter(), req, GatewayTrace::off());
        m.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hello world\"}}]}\n\ndata: [DONE]\n\n");
        let u = m.usage("gpt-4o");
        assert_eq!((u.completion_tokens, u.estimated), (2, true));
        m.meter = None;
    }
}
