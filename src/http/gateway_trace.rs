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
        if t.sample < 1.0 && crate::gateway::retry::jitter_unit() >= t.sample {
            // Not sampled: only what a failure's trace needs is kept, at almost no cost.
            return GatewayTrace(State::Lite(Box::new(Lite {
                sink: t.sink.clone(),
                started: std::time::Instant::now(),
                created_at_ms: crate::trace::now_ms(),
                requested: requested.to_string(),
                route: route.to_string(),
                tenant: caller.tenant.clone(),
                stream,
                attempts: None,
            })));
        }
        let input = json!({
            "model": requested,
            "route": route,
            "tenant": caller.tenant,
            "key_id": caller.key_id,
            "stream": stream,
        });
        let builder = TraceBuilder::new("gateway", input);
        GatewayTrace(State::Full(Box::new(Open { builder, traces: t.clone(), mark: 0, output: Map::new() })))
    }
}

struct Open {
    builder: TraceBuilder,
    traces: GatewayTraces,
    /// Where the next span starts (µs from the start of the request).
    mark: u64,
    output: Map<String, Value>,
}

/// A request outside the sample: its trace is written only if it fails.
struct Lite {
    sink: TraceSink,
    started: std::time::Instant,
    created_at_ms: i64,
    requested: String,
    route: String,
    tenant: String,
    stream: bool,
    /// The provider span's attributes, once the provider was called.
    attempts: Option<Value>,
}

impl Lite {
    fn into_trace(self, id: String, status: &str, output: Value) -> crate::trace::Trace {
        let spans = self
            .attempts
            .map(|a| {
                let Value::Object(attrs) = a else { return Vec::new() };
                vec![crate::trace::Span { name: "provider".into(), start_us: 0, duration_us: 0, attrs }]
            })
            .unwrap_or_default();
        crate::trace::Trace {
            id,
            created_at_ms: self.created_at_ms,
            route: "gateway".into(),
            status: status.to_string(),
            duration_us: self.started.elapsed().as_micros() as u64,
            input: json!({ "model": self.requested, "route": self.route, "tenant": self.tenant,
                           "stream": self.stream, "sampled": false }),
            output,
            spans,
        }
    }
}

enum State {
    Off,
    /// Sampled: everything is recorded.
    Full(Box<Open>),
    Lite(Box<Lite>),
}

impl Open {
    fn redact(&self, text: &str) -> String {
        apply_pii_policy(text, &self.traces.pii).redacted
    }

    /// Closes a span from the end of the previous one to now, with `attrs`.
    fn close(&mut self, name: &str, attrs: impl IntoIterator<Item = (String, Value)>) {
        for (k, v) in attrs {
            self.builder.attr(&k, v);
        }
        let start = self.mark;
        self.builder.close_span(name, start);
        self.mark = self.builder.elapsed_us();
    }
}

/// Names a kept trace on the response the client gets.
fn name_on(res: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        res.headers_mut().insert("x-keel-trace-id", v);
    }
}

/// One request's trace while it runs; every method is a no-op when traces are off (and most
/// are when the request is outside the sample).
pub struct GatewayTrace(State);

impl GatewayTrace {
    /// A trace that records nothing.
    pub fn off() -> Self {
        Self(State::Off)
    }

    fn open(&mut self) -> Option<&mut Open> {
        match &mut self.0 {
            State::Full(o) => Some(o),
            _ => None,
        }
    }

    /// Closes a span from the end of the previous one to now, with `attrs`.
    pub fn span<const N: usize>(&mut self, name: &str, attrs: [(&str, Value); N]) {
        if let Some(o) = self.open() {
            o.close(name, attrs.map(|(k, v)| (k.to_string(), v)));
        }
    }

    /// Moves the start of the next span to now (time spent elsewhere is not a span).
    pub fn skip(&mut self) {
        if let Some(o) = self.open() {
            o.mark = o.builder.elapsed_us();
        }
    }

    /// The request's messages as the provider gets them (after the route's guard), redacted;
    /// with `metadata` capture, only their count.
    pub fn messages(&mut self, body: &Value) {
        let Some(o) = self.open() else { return };
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
        let attrs = || {
            json!({
                "attempts": serde_json::to_value(&report.attempts).unwrap_or(Value::Null),
                "calls": report.calls,
                "provider_ms": report.provider_wait.as_secs_f64() * 1000.0,
            })
        };
        match &mut self.0 {
            State::Off => {}
            // Only a failure's trace is written: the attempts are read when it fails.
            State::Lite(l) => l.attempts = Some(attrs()),
            State::Full(o) => {
                if let Value::Object(m) = attrs() {
                    o.close("provider", m);
                }
                if let Some(a) = report.attempts.last() {
                    o.output.insert("target".into(), json!(a.target));
                }
            }
        }
    }

    pub fn usage(&mut self, u: &Usage) {
        if let Some(o) = self.open() {
            o.output.insert("usage".into(), serde_json::to_value(u).unwrap_or(Value::Null));
        }
    }

    /// The reply's text (with `messages` capture; redacted, at most 16 k characters).
    pub fn reply(&mut self, text: impl FnOnce() -> String) {
        let Some(o) = self.open().filter(|o| o.traces.capture == TraceCapture::Messages) else { return };
        let mut t = o.redact(&text());
        if let Some((cut, _)) = t.char_indices().nth(MAX_REPLY_CHARS) {
            t.truncate(cut);
            o.output.insert("reply_truncated".into(), json!(true));
        }
        o.output.insert("reply".into(), json!(t));
    }

    /// Puts the id of a trace that will be kept on a response whose outcome is not known yet
    /// (a stream): only a sampled request's.
    pub fn stamp_sampled(&mut self, res: &mut Response) {
        if let Some(o) = self.open() {
            name_on(res, o.builder.id());
        }
    }

    /// Ends a failed request's trace (always kept) and returns its id.
    pub fn fail_id(&mut self, status: &str, http: u16, error: &str) -> Option<String> {
        self.end(status, http, Some(error))
    }

    /// Ends a failed request's trace (always kept) and names it on `res`.
    pub fn fail(&mut self, res: &mut Response, status: &str, error: &str) {
        if let Some(id) = self.end(status, res.status().as_u16(), Some(error)) {
            name_on(res, &id);
        }
    }

    /// Ends the trace: `status` is `ok`, `error`, `blocked` (a guard) or `refused` (limits);
    /// `http` the status code the client got; `error` its error code.
    pub fn finish(&mut self, status: &str, http: u16, error: Option<&str>) {
        self.end(status, http, error);
    }

    /// Ends the trace from the response the client gets (and names it there when kept).
    pub fn finish_with(&mut self, res: &mut Response) {
        let http = res.status();
        let (status, error) = if http.is_success() {
            ("ok", None)
        } else if http.as_u16() == 429 {
            ("refused", Some("rate_limit_exceeded"))
        } else {
            ("error", None)
        };
        if let Some(id) = self.end(status, http.as_u16(), error) {
            name_on(res, &id);
        }
    }

    /// Records the trace (a request outside the sample only when it failed); its id if kept.
    fn end(&mut self, status: &str, http: u16, error: Option<&str>) -> Option<String> {
        let outcome = |mut output: Map<String, Value>| {
            output.insert("http_status".into(), json!(http));
            if let Some(e) = error {
                output.insert("error".into(), json!(e));
            }
            Value::Object(output)
        };
        match std::mem::replace(&mut self.0, State::Off) {
            State::Off => None,
            State::Lite(_) if status == "ok" => None,
            State::Lite(l) => {
                let id = crate::trace::new_trace_id();
                let sink = l.sink.clone();
                sink.record(l.into_trace(id.clone(), status, outcome(Map::new())));
                Some(id)
            }
            State::Full(o) => {
                let Open { builder, traces, output, .. } = *o;
                let id = builder.id().to_string();
                traces.sink.record(builder.finish(status, outcome(output)));
                Some(id)
            }
        }
    }
}

impl Drop for GatewayTrace {
    /// A request abandoned half-way (the client went away) still leaves its trace.
    fn drop(&mut self) {
        self.end("error", 499, Some("client_closed_request"));
    }
}
