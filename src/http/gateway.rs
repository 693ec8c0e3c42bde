//! Plain gateway mode: `/v1/chat/completions` for a configured model name goes through the
//! key's limits, the exact cache and the gateway's routes and controls; streams pass through
//! chunk by chunk while their usage is metered. The output guard checks every reply (and every
//! stream as it goes) before it reaches the client.

use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::gateway_trace::{GatewayTrace, GatewayTraces};
use super::metering::{self, StreamMeter};
use super::passthrough::Passthrough;
use super::relay::{relay, OutputWatch, UsageStrip};
use super::ServerState;
use crate::gateway::cache::{count as count_cache, CacheMode, Cached, ResponseCache};
use crate::gateway::chat;
use crate::gateway::usage::{asks_usage, Usage};
use crate::gateway::{CallReport, GatewayError, RouteInput};
use crate::guardrails::output::{system_prompt, Format, OutputBlock};
use crate::guardrails::request::check_request;

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let msg = e.to_string();
        match e {
            GatewayError::UnknownModel(m) => {
                ApiError::new(StatusCode::NOT_FOUND, "model_not_found", msg).param(format!("model={m}"))
            }
            GatewayError::AllOpen(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "all_targets_unavailable", msg),
            GatewayError::Deadline(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded", msg),
            GatewayError::LoopGuard(_) => ApiError::new(StatusCode::BAD_GATEWAY, "model_call_limit", msg),
            GatewayError::Rejected { status, .. } => {
                let s = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                ApiError::new(s, "upstream_rejected", msg)
            }
            GatewayError::Exhausted(_) | GatewayError::Client(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream_failed", msg)
            }
        }
    }
}

pub(super) fn stamp(res: &mut Response, report: &CallReport, started: Instant) {
    let overhead = started.elapsed().saturating_sub(report.provider_wait);
    let h = res.headers_mut();
    if let Some(t) = report.attempts.last() {
        if let Ok(v) = HeaderValue::from_str(&t.target) {
            h.insert("x-keel-target", v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&report.calls.to_string()) {
        h.insert("x-keel-attempts", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)) {
        h.insert("x-keel-overhead-ms", v);
    }
}

pub(super) fn header(res: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(name, v);
    }
}

/// Stamps cost headers: `x-keel-cost-nanodollars`, `x-keel-tokens` (prompt/completion) and,
/// when the usage was estimated, `x-keel-usage-estimated: true`.
pub(super) fn stamp_usage(res: &mut Response, u: &Usage, capped: Option<u64>) {
    header(res, "x-keel-cost-nanodollars", &u.cost_nanodollars.to_string());
    header(res, "x-keel-tokens", &format!("{}/{}", u.prompt_tokens, u.completion_tokens));
    if u.estimated {
        header(res, "x-keel-usage-estimated", "true");
    }
    if let Some(c) = capped {
        header(res, "x-keel-max-tokens-capped", &c.to_string());
    }
}

/// A plain completion: reserve under the key's limits, answer from the cache or the provider,
/// settle the actual usage, and return it in `keel.usage` and the cost headers.
pub async fn complete(
    state: &ServerState,
    caller: &Caller,
    headers: &HeaderMap,
    model: &str,
    mut body: Value,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let gateway = &state.gateway;
    let route = gateway.resolve(model, &RouteInput { tenant: &caller.tenant, body: &body });
    let requested = model;
    let model = route.as_str();
    let mut trace = GatewayTraces::start(state.traces.as_ref(), caller, requested, model, false);
    let guarded = guard_request(state, model, &mut body, &mut trace)?;
    trace.messages(&body);
    let mut meter = match metering::begin(gateway, state.limiter.as_ref(), caller, model, &mut body).await {
        Ok(m) => m,
        Err(mut refused) => {
            trace.span("limits", [("outcome", json!("refused"))]);
            trace.finish_with(&mut refused);
            return Ok(refused);
        }
    };
    let capped = meter.capped;
    trace.span("limits", [("outcome", json!("reserved")), ("capped", json!(capped))]);
    let mode = CacheMode::from_header(headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()));
    let cache = gateway.cache();
    let key = cache.map(|_| ResponseCache::key(&caller.tenant, gateway.route_version(model), &body));
    let mut cache_label = None;
    if let (Some(c), Some(k)) = (cache, &key) {
        let hit = if mode == CacheMode::Normal { c.get(k) } else { None };
        if let Some(entry) = hit {
            count_cache("hit");
            trace.span("cache", [("cache", json!("hit"))]);
            let usage = Usage { cost_nanodollars: 0, ..entry.usage };
            meter.finish(Some(usage), true).await;
            trace.usage(&usage);
            trace.reply(|| chat::reply_text(&entry.body).unwrap_or_default());
            let mut v = entry.body.clone();
            v["keel"] = metering::extension(&usage, Some("hit"));
            let mut res = Json(v).into_response();
            header(&mut res, "x-keel-cache", "hit");
            if let Some(g) = &guarded {
                header(&mut res, "x-keel-guard", g);
            }
            stamp_usage(&mut res, &usage, capped);
            stamp(&mut res, &CallReport::default(), started);
            trace.finish_with(&mut res);
            return Ok(res);
        }
        let label = if mode == CacheMode::Normal { "miss" } else { "bypass" };
        count_cache(label);
        trace.span("cache", [("cache", json!(label))]);
        cache_label = Some(label);
    }
    let mut report = CallReport::default();
    let result = gateway.complete_reply(model, &mut body, &mut report).await;
    trace.provider(&report);
    meter.served_by(report.price);
    // Passed through as it came when nothing needs the reply as a tree (no cache to store it,
    // and the provider's own usage in it); the output guard reads only the reply's text.
    let passthrough = match &result {
        Ok(reply) if cache.is_none() => Passthrough::read(reply),
        _ => None,
    };
    if let Some(p) = passthrough {
        let usage = meter.price(p.usage);
        meter.finish(Some(usage), false).await;
        trace.usage(&usage);
        // The reply's text is extracted once, only if the trace or the output guard reads it.
        let text = std::cell::OnceCell::new();
        let reply = || text.get_or_init(|| p.text()).as_str();
        let beside = Beside { tool_args: p.tool_args(), reasoning: p.reasoning() };
        trace.reply(|| with_args(reply(), beside.tool_args));
        trace.reasoning(beside.reasoning);
        if let Some(block) = check_output(state, &body, reply, beside, &mut trace) {
            return Ok(withheld(&block, &usage, capped, &report, started, &mut trace));
        }
        let mut res = p.respond(&metering::extension(&usage, cache_label));
        stamp_usage(&mut res, &usage, capped);
        if let Some(g) = &guarded {
            header(&mut res, "x-keel-guard", g);
        }
        stamp(&mut res, &report, started);
        trace.finish_with(&mut res);
        return Ok(res);
    }
    let result = result.and_then(|r| r.into_value().map_err(|e| GatewayError::Exhausted(e.to_string())));
    let mut res = match result {
        Ok(mut v) => {
            let usage = meter.price(crate::gateway::usage::of_response(model, &body, &v));
            meter.finish(Some(usage), false).await;
            trace.usage(&usage);
            let text = std::cell::OnceCell::new();
            let reply = || text.get_or_init(|| chat::reply_text(&v).unwrap_or_default()).as_str();
            let (args, reasoning) = (chat::reply_tool_args(&v), chat::reply_reasoning(&v));
            let beside = Beside { tool_args: &args, reasoning: &reasoning };
            trace.reply(|| with_args(reply(), beside.tool_args));
            trace.reasoning(beside.reasoning);
            if let Some(block) = check_output(state, &body, reply, beside, &mut trace) {
                return Ok(withheld(&block, &usage, capped, &report, started, &mut trace));
            }
            if let (Some(c), Some(k)) = (cache, key) {
                if mode != CacheMode::Off {
                    c.put(k, Cached { body: v.clone(), usage });
                }
            }
            v["keel"] = metering::extension(&usage, cache_label);
            let mut res = Json(v).into_response();
            stamp_usage(&mut res, &usage, capped);
            res
        }
        Err(e) => {
            meter.finish(None, false).await;
            let e = ApiError::from(e);
            let code = e.code;
            let mut res = e.into_response();
            trace.fail(&mut res, "error", code);
            res
        }
    };
    if let Some(l) = cache_label {
        header(&mut res, "x-keel-cache", l);
    }
    if let Some(g) = &guarded {
        header(&mut res, "x-keel-guard", g);
    }
    stamp(&mut res, &report, started);
    trace.finish_with(&mut res);
    Ok(res)
}

/// The route's input guard: the request is refused (400 naming the reason codes) or rewritten
/// in place (personal data redacted); what to report in `x-keel-guard` comes back.
pub(super) fn guard_request(
    state: &ServerState,
    route: &str,
    body: &mut Value,
    trace: &mut GatewayTrace,
) -> Result<Option<String>, ApiError> {
    let (Some(guard), Some(policy)) = (state.input_guard.as_ref(), state.gateway.route_guard(route)) else {
        return Ok(None);
    };
    let v = check_request(guard, policy, &guard.config().pii, body);
    let outcome = if !v.refused.is_empty() {
        "refused"
    } else if !v.flagged.is_empty() {
        "flagged"
    } else if v.redacted > 0 {
        "redacted"
    } else {
        "passed"
    };
    crate::metrics::global().inc(
        "keel_gateway_guard_total",
        "Gateway requests checked by a route's input guard, by outcome",
        &[("outcome", outcome)],
        1,
    );
    trace.span(
        "guard",
        [
            ("outcome", json!(outcome)),
            ("refused", json!(v.refused)),
            ("flagged", json!(v.flagged)),
            ("redacted", json!(v.redacted)),
        ],
    );
    if !v.refused.is_empty() {
        tracing::warn!(route, reasons = ?v.refused, "gateway request refused by the input guard");
        trace.messages(body);
        let msg = format!("The request was refused by the input guard ({})", v.refused.join(", "));
        let e = ApiError::new(StatusCode::BAD_REQUEST, "guard_block", msg);
        let id = trace.fail_id("blocked", 400, "guard_block");
        return Err(e.trace_id(id.as_deref()));
    }
    let mut parts = Vec::new();
    if !v.flagged.is_empty() {
        parts.push(format!("flagged {}", v.flagged.join(",")));
    }
    if v.redacted > 0 {
        parts.push(format!("redacted {}", v.redacted));
    }
    Ok((!parts.is_empty()).then(|| parts.join("; ")))
}

/// A reply's text as traced: its content, then its tool calls' arguments.
fn with_args(text: &str, tool_args: &str) -> String {
    if tool_args.is_empty() {
        return text.to_owned();
    }
    format!("{text}\n{tool_args}")
}

/// What a model wrote beside its reply's content, which reaches the client too.
#[derive(Clone, Copy)]
struct Beside<'a> {
    /// Its tool calls' arguments, one per line.
    tool_args: &'a str,
    /// Its reasoning.
    reasoning: &'a str,
}

/// The output guard's verdict on a whole reply (`None`: it may be served); `text` is only
/// read when a check applies to this request. Tool-call arguments and reasoning (`beside`)
/// are checked for deny-listed phrases and prompt leaks like the text; the JSON format
/// applies to the text.
fn check_output<'t>(
    state: &ServerState,
    request: &Value,
    text: impl FnOnce() -> &'t str,
    beside: Beside<'_>,
    trace: &mut GatewayTrace,
) -> Option<OutputBlock> {
    let guard = state.output.as_ref().filter(|g| g.applies_to(request))?;
    trace.skip();
    let system = system_prompt(request);
    let text = text();
    // A reply that only calls tools has no text to hold the JSON asked for.
    let only_calls = text.is_empty() && !beside.tool_args.is_empty();
    let format = if only_calls { Format::Text } else { Format::of_request(request) };
    let verdict = guard.check(text, system.as_deref(), &format).and_then(|()| {
        [beside.tool_args, beside.reasoning]
            .into_iter()
            .filter(|t| !t.is_empty())
            .try_for_each(|t| guard.check_text(t, system.as_deref()))
    });
    let reason = verdict.as_ref().err().map(|b| b.reason_code());
    trace.span(
        "output_guard",
        [("outcome", json!(if reason.is_some() { "blocked" } else { "passed" })), ("reason", json!(reason))],
    );
    let block = verdict.err()?;
    block.count();
    tracing::warn!(reason = block.reason_code(), "gateway reply withheld by the output guard");
    Some(block)
}

/// A reply withheld by the output guard (and never cached); the provider's usage still counts.
fn withheld(
    block: &OutputBlock,
    usage: &Usage,
    capped: Option<u64>,
    report: &CallReport,
    started: Instant,
    trace: &mut GatewayTrace,
) -> Response {
    let mut res = ApiError::new(StatusCode::BAD_GATEWAY, block.reason_code(), block.to_string()).into_response();
    stamp_usage(&mut res, usage, capped);
    stamp(&mut res, report, started);
    trace.fail(&mut res, "blocked", block.reason_code());
    res
}

/// The answer to a call no target could serve: the reservation released, the error stamped
/// with the attempts made, and the trace failed with its code.
pub(super) async fn failed(
    meter: metering::Meter,
    e: GatewayError,
    report: &CallReport,
    started: Instant,
    trace: &mut GatewayTrace,
) -> Response {
    meter.finish(None, false).await;
    let e = ApiError::from(e);
    let code = e.code;
    let mut res = e.into_response();
    stamp(&mut res, report, started);
    trace.fail(&mut res, "error", code);
    res
}

/// A stream: reserved like a plain call, never cached; its usage (the provider's final
/// `usage` chunk, which providers are asked for and which reaches the client only when it asked
/// too; else an estimate) is settled when it ends.
pub async fn stream(state: &ServerState, caller: &Caller, model: &str, mut body: Value) -> Result<Response, ApiError> {
    let started = Instant::now();
    let gateway = &state.gateway;
    let route = gateway.resolve(model, &RouteInput { tenant: &caller.tenant, body: &body });
    let requested = model;
    let model = route.as_str();
    let mut trace = GatewayTraces::start(state.traces.as_ref(), caller, requested, model, true);
    let guarded = guard_request(state, model, &mut body, &mut trace)?;
    trace.messages(&body);
    let mut meter = match metering::begin(gateway, state.limiter.as_ref(), caller, model, &mut body).await {
        Ok(m) => m,
        Err(mut refused) => {
            trace.span("limits", [("outcome", json!("refused"))]);
            trace.finish_with(&mut refused);
            return Ok(refused);
        }
    };
    let capped = meter.capped;
    trace.span("limits", [("outcome", json!("reserved")), ("capped", json!(capped))]);
    let mut report = CallReport::default();
    let opened = gateway.stream(model, &mut body, &mut report).await;
    trace.provider(&report);
    let open = match opened {
        Ok(s) => s,
        Err(e) => return Ok(failed(meter, e, &report, started, &mut trace).await),
    };
    meter.served_by(report.price);
    let watch = state.output.clone().filter(|g| g.watches_text()).map(|g| OutputWatch::new(g, system_prompt(&body)));
    let mut res = Response::new(Body::empty());
    trace.stamp_sampled(&mut res);
    let strip = (!asks_usage(&body)).then(UsageStrip::default);
    let watcher = StreamMeter::new(meter, body, trace);
    *res.body_mut() = Body::from_stream(relay(open.first, open.rest, gateway.idle_timeout(), watcher, watch, strip));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if gateway.cache().is_some() {
        count_cache("bypass");
        header(&mut res, "x-keel-cache", "bypass");
    }
    if let Some(c) = capped {
        header(&mut res, "x-keel-max-tokens-capped", &c.to_string());
    }
    if let Some(g) = &guarded {
        header(&mut res, "x-keel-guard", g);
    }
    stamp(&mut res, &report, started);
    Ok(res)
}
