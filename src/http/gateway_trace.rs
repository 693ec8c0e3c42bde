//! The trace of a plain gateway request (any model but the grounded `keel`): one span per step
//! the request went through (input guard, limits, cache, provider attempts, output guard), its
//! usage and cost, and, with `[gateway] trace = "messages"`, the messages and the reply with
//! personal data redacted. Written in the background like the pipeline's traces; its id goes
//! back in `x-keel-trace-id`.

use std::sync::Arc;

use axum::http::HeaderValue;
use axum::response::Response;
use keel_guard::pii::{apply_pii_policy, PiiAction, PiiPolicy};
use serde_json::{json, Map, Value};

use super::auth::Caller;
use crate::config::gateway::TraceCapture;
use crate::gateway::usage::Usage;
use crate::gateway::CallReport;
use crate::pipeline::TraceSink;
use crate::trace::TraceBuilder;

/// A stored reply keeps at most this many characters.
const MAX_REPLY_CHARS: usize = 16_384;

/// Where gateway traces go and what they keep (one per server).
#[derive(Clone)]
pub struct GatewayTraces {
    pub sink: TraceSink,
    capture: TraceCapture,
    /// Share of successful requests whose trace is kept.
    sample: f64,
    /// `[guard.pii]` for storage: every kind not allowed is redacted (a kind that blocks
    /// requests is still redacted here, whatever the route did).
    pii: Arc<PiiPolicy>,
}

impl GatewayTraces {
    pub fn new(sink: TraceSink, capture: TraceCapture, sample: f64, pii: &PiiPolicy) -> Self {
        let redact = |a: PiiAction| if a == PiiAction::Allow { PiiAction::Allow } else { PiiAction::Redact };
        let pii = PiiPolicy {
            email: redact(pii.email),
            phone: redact(pii.phone),
            card: redact(pii.card),
            iban: redact(pii.iban),
            ssn: redact(pii.ssn),
            ipv4: redact(pii.ipv4),
            ipv6: redact(pii.ipv6),
        };
        Self { sink, capture, sample, pii: Arc::new(pii) }
    }

    /// Opens the trace of one request (a no-op trace when traces are off).
    pub fn start(this: Option<&Self>, caller: &Caller, requested: &str, route: &str, stream: bool) -> GatewayTrace {
        let Some(t) = this.filter(|t| t.capture != TraceCapture::Off) else { return GatewayTrace::off() };
        let input = json!({
            "model": requested,
            "route": route,
            "tenant": caller.tenant,
            "key_id": caller.key_id,
            "stream": stream,
        });
        let builder = TraceBuilder::new("gateway", input);
        let sampled = t.sample >= 1.0 || sample_point(builder.id()) < t.sample;
        GatewayTrace(Some(Box::new(Open { builder, traces: t.clone(), mark: 0, output: Map::new(), sampled })))
    }
}

struct Open {
    builder: TraceBuilder,
    traces: GatewayTraces,
    /// Where the next span starts (µs from the start of the request).
    mark: u64,
    output: Map<String, Value>,
    /// Kept even if the request succeeds (a failure is always kept).
    sampled: bool,
}

/// Where a trace id falls in `[0, 1)`, from its last (random) hex digits.
fn sample_point(id: &str) -> f64 {
    let tail = id.get(id.len().saturating_sub(8)..).unwrap_or("");
    u32::from_str_radix(tail, 16).map_or(0.0, |n| f64::from(n) / (f64::from(u32::MAX) + 1.0))
}

impl Open {
    fn redact(&self, text: &str) -> String {
        apply_pii_policy(text, &self.traces.pii).redacted
    }
}

/// One request's trace while it runs; every method is a no-op when traces are off.
pub struct GatewayTrace(Option<Box<Open>>);

impl GatewayTrace {
    /// A trace that records nothing.
    pub fn off() -> Self {
        Self(None)
    }

    pub fn id(&self) -> Option<&str> {
        self.0.as_ref().map(|o| o.builder.id())
    }

    /// Closes a span from the end of the previous one to now, with `attrs`.
    pub fn span(&mut self, name: &str, attrs: &[(&str, Value)]) {
        let Some(o) = self.0.as_mut() else { return };
        for (k, v) in attrs {
            o.builder.attr(k, v.clone());
        }
        let start = o.mark;
        o.builder.close_span(name, start);
        o.mark = o.builder.elapsed_us();
    }

    /// Moves the start of the next span to now (time spent elsewhere is not a span).
    pub fn skip(&mut self) {
        if let Some(o) = self.0.as_mut() {
            o.mark = o.builder.elapsed_us();
        }
    }

    /// The request's messages as the provider gets them (after the route's guard), redacted;
    /// with `metadata` capture, only their count.
    pub fn messages(&mut self, body: &Value) {
        let Some(o) = self.0.as_mut() else { return };
        let messages = body.get("messages").and_then(Value::as_array);
        o.builder.set_input("messages_count", messages.map_or(0, Vec::len));
        if let Some(cap) = ["max_completion_tokens", "max_tokens"].iter().find_map(|f| body.get(*f)) {
            o.builder.set_input("max_tokens", cap.clone());
        }
        if o.traces.capture != TraceCapture::Messages {
            return;
        }
        let kept: Vec<Value> = messages
            .into_iter()
            .flatten()
            .map(|m| {
                let role = m.get("role").cloned().unwrap_or(Value::Null);
                let content = match m.get("content") {
                    Some(Value::String(s)) => Value::String(o.redact(s)),
                    Some(Value::Array(parts)) => Value::String(
                        parts
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .map(|t| o.redact(t))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ),
                    _ => Value::Null,
                };
                json!({ "role": role, "content": content })
            })
            .collect();
        o.builder.set_input("messages", kept);
    }

    /// The provider calls: every attempt (target, outcome, ms), calls made, time waited.
    pub fn provider(&mut self, report: &CallReport) {
        let attempts = serde_json::to_value(&report.attempts).unwrap_or(Value::Null);
        self.span(
            "provider",
            &[
                ("attempts", attempts),
                ("calls", json!(report.calls)),
                ("provider_ms", json!(report.provider_wait.as_secs_f64() * 1000.0)),
            ],
        );
        if let (Some(o), Some(a)) = (self.0.as_mut(), report.attempts.last()) {
            o.output.insert("target".into(), json!(a.target));
        }
    }

    pub fn usage(&mut self, u: &Usage) {
        if let Some(o) = self.0.as_mut() {
            o.output.insert("usage".into(), serde_json::to_value(u).unwrap_or(Value::Null));
        }
    }

    /// The reply's text (with `messages` capture; redacted, at most 16 k characters).
    pub fn reply(&mut self, text: impl FnOnce() -> String) {
        let Some(o) = self.0.as_mut().filter(|o| o.traces.capture == TraceCapture::Messages) else { return };
        let mut t = o.redact(&text());
        if let Some((cut, _)) = t.char_indices().nth(MAX_REPLY_CHARS) {
            t.truncate(cut);
            o.output.insert("reply_truncated".into(), json!(true));
        }
        o.output.insert("reply".into(), json!(t));
    }

    /// Puts the trace id on a failed response (its trace is always kept).
    pub fn stamp(&self, res: &mut Response) {
        if let Some(v) = self.id().and_then(|id| HeaderValue::from_str(id).ok()) {
            res.headers_mut().insert("x-keel-trace-id", v);
        }
    }

    /// Puts the trace id on a response whose outcome is not known yet (a stream), when the
    /// trace is kept whatever the outcome.
    pub fn stamp_sampled(&self, res: &mut Response) {
        if self.0.as_ref().is_some_and(|o| o.sampled) {
            self.stamp(res);
        }
    }

    /// Ends the trace: `status` is `ok`, `error`, `blocked` (a guard) or `refused` (limits);
    /// `http` the status code the client got; `error` its error code.
    pub fn finish(&mut self, status: &str, http: u16, error: Option<&str>) {
        let Some(o) = self.0.take() else { return };
        let Open { builder, traces, mut output, sampled, .. } = *o;
        if !sampled && status == "ok" {
            return;
        }
        output.insert("http_status".into(), json!(http));
        if let Some(e) = error {
            output.insert("error".into(), json!(e));
        }
        traces.sink.record(builder.finish(status, Value::Object(output)));
    }

    /// Ends the trace from the response the client gets.
    pub fn finish_with(&mut self, res: &mut Response) {
        let http = res.status();
        let (status, error) = if http.is_success() {
            ("ok", None)
        } else if http.as_u16() == 429 {
            ("refused", Some("rate_limit_exceeded"))
        } else {
            ("error", None)
        };
        if status == "ok" {
            self.stamp_sampled(res);
        } else {
            self.stamp(res);
        }
        self.finish(status, http.as_u16(), error);
    }
}

impl Drop for GatewayTrace {
    /// A request abandoned half-way (the client went away) still leaves its trace.
    fn drop(&mut self) {
        self.finish("error", 499, Some("client_closed_request"));
    }
}
