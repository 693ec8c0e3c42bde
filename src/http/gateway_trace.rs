//! The trace of a plain gateway request (any model but the grounded `keel`): one span per step
//! the request went through (input guard, limits, cache, provider attempts, output guard), its
//! usage and cost, and, with `[gateway] trace = "messages"`, the messages and the reply with
//! personal data redacted. Written in the background like the pipeline's traces; its id goes
//! back in `x-keel-trace-id`.

use std::sync::Arc;

use axum::http::HeaderValue;
use axum::response::Response;
use keel_guard::pii::{apply_pii_policy, PiiPolicy};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::auth::Caller;
use crate::config::gateway::TraceCapture;
use crate::gateway::usage::Usage;
use crate::gateway::{Attempt, CallReport};
use crate::pipeline::TraceSink;
use crate::trace::{Recordable, TraceRow};

/// A stored reply keeps at most this many characters.
const MAX_REPLY_CHARS: usize = 16_384;

/// Where gateway traces go and what they keep (one per server, shared by its requests).
#[derive(Clone)]
pub struct GatewayTraces(Arc<Shared>);

struct Shared {
    sink: TraceSink,
    capture: TraceCapture,
    /// Share of successful requests whose trace is kept.
    sample: f64,
    /// `[guard.pii]` for storage: every kind not allowed is redacted (a kind that blocks
    /// requests is still redacted here, whatever the route did).
    pii: PiiPolicy,
}

impl GatewayTraces {
    pub fn new(sink: TraceSink, capture: TraceCapture, sample: f64, pii: &PiiPolicy) -> Self {
        Self(Arc::new(Shared { sink, capture, sample, pii: pii.for_storage() }))
    }

    /// The sink gateway traces are written through.
    pub fn sink(&self) -> &TraceSink {
        &self.0.sink
    }

    /// Opens the trace of one request (a no-op trace when traces are off).
    pub fn start(this: Option<&Self>, caller: &Caller, requested: &str, route: &str, stream: bool) -> GatewayTrace {
        let Some(t) = this.filter(|t| t.0.capture != TraceCapture::Off) else { return GatewayTrace::off() };
        let head = Head {
            shared: t.0.clone(),
            started: std::time::Instant::now(),
            created_at_ms: crate::trace::now_ms(),
            requested: requested.to_string(),
            route: route.to_string(),
            tenant: caller.tenant.clone(),
            stream,
        };
        if t.0.sample < 1.0 && crate::gateway::retry::jitter_unit() >= t.0.sample {
            // Not sampled: only what a failure's trace needs is kept, at almost no cost.
            return GatewayTrace(State::Lite(Box::new(Lite { head, attempts: None })));
        }
        GatewayTrace(State::Full(Box::new(Open {
            head,
            id: crate::trace::new_trace_id(),
            mark: 0,
            key_id: caller.key_id.clone(),
            messages_count: 0,
            max_tokens: None,
            messages: None,
            spans: Vec::new(),
            target: None,
            usage: None,
            reply: None,
            reasoning: None,
        })))
    }
}

/// A sampled request's trace while it runs: plain fields, no JSON trees. Redacting and
/// serialising happen on the trace writer's thread ([`Recordable`]), not the request's.
struct Open {
    head: Head,
    id: String,
    /// Where the next span starts (µs from the start of the request).
    mark: u64,
    key_id: Option<String>,
    messages_count: usize,
    max_tokens: Option<Value>,
    /// Role and text of each message as the provider got them, not yet redacted (`messages`
    /// capture only).
    messages: Option<Vec<(Value, Option<String>)>>,
    spans: Vec<SpanRec>,
    target: Option<String>,
    usage: Option<Usage>,
    /// The reply's text, not yet redacted or cut (`messages` capture only).
    reply: Option<String>,
    /// The reply's reasoning, when it has some, likewise.
    reasoning: Option<String>,
}

struct SpanRec {
    name: &'static str,
    start_us: u64,
    duration_us: u64,
    attrs: Attrs,
}

enum Attrs {
    Pairs(Vec<(&'static str, Value)>),
    Provider(ProviderAttrs),
}

#[derive(Serialize)]
struct ProviderAttrs {
    attempts: Vec<Attempt>,
    calls: u32,
    provider_ms: f64,
}

impl ProviderAttrs {
    fn of(report: &CallReport) -> Self {
        Self {
            attempts: report.attempts.clone(),
            calls: report.calls,
            provider_ms: report.provider_wait.as_secs_f64() * 1000.0,
        }
    }
}

impl Serialize for SpanRec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeStruct};
        struct Pairs<'a>(&'a [(&'static str, Value)]);
        impl Serialize for Pairs<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        let mut st = s.serialize_struct("Span", 4)?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("start_us", &self.start_us)?;
        st.serialize_field("duration_us", &self.duration_us)?;
        match &self.attrs {
            Attrs::Pairs(p) => st.serialize_field("attrs", &Pairs(p))?,
            Attrs::Provider(p) => st.serialize_field("attrs", p)?,
        }
        st.end()
    }
}

/// What a request's trace starts with, sampled or not.
struct Head {
    shared: Arc<Shared>,
    started: std::time::Instant,
    created_at_ms: i64,
    requested: String,
    route: String,
    tenant: String,
    stream: bool,
}

/// A request outside the sample: its trace is written only if it fails.
struct Lite {
    head: Head,
    /// The provider span's attributes, once the provider was called.
    attempts: Option<ProviderAttrs>,
}

impl Lite {
    fn into_trace(self, id: String, status: &str, output: Value) -> crate::trace::Trace {
        let spans = self
            .attempts
            .and_then(|a| match serde_json::to_value(a) {
                Ok(Value::Object(attrs)) => {
                    Some(vec![crate::trace::Span { name: "provider".into(), start_us: 0, duration_us: 0, attrs }])
                }
                _ => None,
            })
            .unwrap_or_default();
        let h = self.head;
        crate::trace::Trace {
            id,
            created_at_ms: h.created_at_ms,
            route: "gateway".into(),
            status: status.to_string(),
            duration_us: h.started.elapsed().as_micros() as u64,
            input: json!({ "model": h.requested, "route": h.route, "tenant": h.tenant,
                           "stream": h.stream, "sampled": false }),
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
    fn elapsed_us(&self) -> u64 {
        self.head.started.elapsed().as_micros() as u64
    }

    /// Closes a span from the end of the previous one to now, with `attrs`.
    fn close(&mut self, name: &'static str, attrs: Attrs) {
        let now = self.elapsed_us();
        self.spans.push(SpanRec { name, start_us: self.mark, duration_us: now.saturating_sub(self.mark), attrs });
        self.mark = now;
    }
}

/// A finished sampled trace on its way to the writer.
struct Finished {
    open: Open,
    status: String,
    http: u16,
    error: Option<String>,
    duration_us: u64,
}

#[derive(Serialize)]
struct InputRow<'a> {
    model: &'a str,
    route: &'a str,
    tenant: &'a str,
    key_id: Option<&'a str>,
    stream: bool,
    messages_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<MessageRow<'a>>>,
}

#[derive(Serialize)]
struct MessageRow<'a> {
    role: &'a Value,
    content: Option<String>,
}

#[derive(Serialize)]
struct OutputRow<'a> {
    http_status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reply_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<String>,
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl Recordable for Finished {
    fn queued_bytes(&self) -> usize {
        let o = &self.open;
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        let messages = o.messages.iter().flatten().map(|(_, t)| 32 + text(t)).sum::<usize>();
        768 + messages + text(&o.reply) + text(&o.reasoning) + 192 * o.spans.len()
    }

    fn into_row(self: Box<Self>) -> TraceRow {
        let o = &self.open;
        let pii = &o.head.shared.pii;
        let redact = |t: &str| apply_pii_policy(t, pii).redacted;
        let messages = o.messages.as_ref().map(|ms| {
            ms.iter().map(|(role, text)| MessageRow { role, content: text.as_deref().map(redact) }).collect()
        });
        let input = InputRow {
            model: &o.head.requested,
            route: &o.head.route,
            tenant: &o.head.tenant,
            key_id: o.key_id.as_deref(),
            stream: o.head.stream,
            messages_count: o.messages_count,
            max_tokens: o.max_tokens.as_ref(),
            messages,
        };
        let mut reply_truncated = false;
        // Redacted, then cut to `MAX_REPLY_CHARS` (noted in `reply_truncated`).
        let mut kept = |text: &str| {
            let mut t = redact(text);
            if let Some((cut, _)) = t.char_indices().nth(MAX_REPLY_CHARS) {
                t.truncate(cut);
                reply_truncated = true;
            }
            t
        };
        let reply = o.reply.as_deref().map(&mut kept);
        let reasoning = o.reasoning.as_deref().map(&mut kept);
        let output = OutputRow {
            http_status: self.http,
            error: self.error.as_deref(),
            target: o.target.as_deref(),
            usage: o.usage.as_ref(),
            reply,
            reply_truncated,
            reasoning,
        };
        TraceRow {
            input: to_json(&input),
            output: to_json(&output),
            spans: to_json(&o.spans),
            id: o.id.clone(),
            created_at_ms: o.head.created_at_ms,
            route: "gateway".into(),
            status: self.status.clone(),
            duration_us: self.duration_us,
        }
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
    pub fn span<const N: usize>(&mut self, name: &'static str, attrs: [(&'static str, Value); N]) {
        if let Some(o) = self.open() {
            o.close(name, Attrs::Pairs(attrs.into()));
        }
    }

    /// Moves the start of the next span to now (time spent elsewhere is not a span).
    pub fn skip(&mut self) {
        if let Some(o) = self.open() {
            o.mark = o.elapsed_us();
        }
    }

    /// The request's messages as the provider gets them (after the route's guard; redacted
    /// when written); with `metadata` capture, only their count.
    pub fn messages(&mut self, body: &Value) {
        let Some(o) = self.open() else { return };
        let messages = body.get("messages").and_then(Value::as_array);
        o.messages_count = messages.map_or(0, Vec::len);
        o.max_tokens = ["max_completion_tokens", "max_tokens"].iter().find_map(|f| body.get(*f)).cloned();
        if o.head.shared.capture != TraceCapture::Messages {
            return;
        }
        let kept = messages
            .into_iter()
            .flatten()
            .map(|m| {
                let role = m.get("role").cloned().unwrap_or(Value::Null);
                let content = match m.get("content") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Array(parts)) => Some(
                        parts
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ),
                    _ => None,
                };
                (role, content)
            })
            .collect();
        o.messages = Some(kept);
    }

    /// The provider calls: every attempt (target, outcome, ms), calls made, time waited.
    pub fn provider(&mut self, report: &CallReport) {
        match &mut self.0 {
            State::Off => {}
            // Only a failure's trace is written: the attempts are read when it fails.
            State::Lite(l) => l.attempts = Some(ProviderAttrs::of(report)),
            State::Full(o) => {
                o.close("provider", Attrs::Provider(ProviderAttrs::of(report)));
                o.target = report.attempts.last().map(|a| a.target.clone());
            }
        }
    }

    pub fn usage(&mut self, u: &Usage) {
        if let Some(o) = self.open() {
            o.usage = Some(*u);
        }
    }

    /// The reply's text (with `messages` capture; redacted and cut to 16 k characters when
    /// written).
    pub fn reply(&mut self, text: impl FnOnce() -> String) {
        let Some(o) = self.open().filter(|o| o.head.shared.capture == TraceCapture::Messages) else { return };
        o.reply = Some(text());
    }

    /// The reply's reasoning, when it has some (kept like the reply).
    pub fn reasoning(&mut self, text: &str) {
        let Some(o) = self.open().filter(|o| o.head.shared.capture == TraceCapture::Messages) else { return };
        if !text.is_empty() {
            o.reasoning = Some(text.to_owned());
        }
    }

    /// Puts the id of a trace that will be kept on a response whose outcome is not known yet
    /// (a stream): only a sampled request's.
    pub fn stamp_sampled(&mut self, res: &mut Response) {
        if let Some(o) = self.open() {
            name_on(res, &o.id);
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
        match std::mem::replace(&mut self.0, State::Off) {
            State::Off => None,
            State::Lite(_) if status == "ok" => None,
            State::Lite(l) => {
                let id = crate::trace::new_trace_id();
                let mut output = Map::new();
                output.insert("http_status".into(), json!(http));
                if let Some(e) = error {
                    output.insert("error".into(), json!(e));
                }
                let shared = l.head.shared.clone();
                shared.sink.record(l.into_trace(id.clone(), status, Value::Object(output)));
                Some(id)
            }
            State::Full(o) => {
                let id = o.id.clone();
                let shared = o.head.shared.clone();
                let duration_us = o.elapsed_us();
                shared.sink.record(Finished {
                    open: *o,
                    status: status.to_string(),
                    http,
                    error: error.map(str::to_string),
                    duration_us,
                });
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
