//! The per-request trace: one record per request, one span per pipeline stage.
//!
//! Stages never time themselves: the pipeline runner opens and closes each span, and a stage
//! only adds attributes to the span it is running in.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What one pipeline stage did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Span {
    pub name: String,
    /// Microseconds from the start of the request.
    pub start_us: u64,
    pub duration_us: u64,
    pub attrs: Map<String, Value>,
}

/// A whole request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trace {
    pub id: String,
    pub created_at_ms: i64,
    pub route: String,
    /// `ok`, `escalated`, `error`.
    pub status: String,
    pub duration_us: u64,
    pub input: Value,
    pub output: Value,
    pub spans: Vec<Span>,
}

/// A trace as the store writes it: input, output and spans already JSON text, serialised on the
/// trace writer's thread rather than a request's.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    pub id: String,
    pub created_at_ms: i64,
    pub route: String,
    pub status: String,
    pub duration_us: u64,
    pub input: String,
    pub output: String,
    pub spans: String,
}

/// What the trace writer turns into a row: a pipeline's [`Trace`], or a lighter record a
/// request filled in without building JSON trees (the gateway's).
pub trait Recordable: Send {
    fn into_row(self: Box<Self>) -> TraceRow;

    /// About how many bytes of memory this record holds while it waits for the writer (the
    /// writer's queue is bounded by bytes as well as by count).
    fn queued_bytes(&self) -> usize {
        1024
    }
}

impl Recordable for Trace {
    fn into_row(self: Box<Self>) -> TraceRow {
        TraceRow {
            input: self.input.to_string(),
            output: self.output.to_string(),
            spans: serde_json::to_string(&self.spans).unwrap_or_else(|_| "[]".into()),
            id: self.id,
            created_at_ms: self.created_at_ms,
            route: self.route,
            status: self.status,
            duration_us: self.duration_us,
        }
    }
}

/// Builds a trace while a request runs.
#[derive(Debug)]
pub struct TraceBuilder {
    id: String,
    started: Instant,
    created_at_ms: i64,
    route: String,
    input: Value,
    spans: Vec<Span>,
    current: Map<String, Value>,
}

/// A fresh trace id (URL-safe): a UUIDv7, so ids rise with time and the store appends them to
/// its index instead of splitting pages all over it; its 74 random bits keep it unguessable.
pub fn new_trace_id() -> String {
    format!("tr_{}", uuid::Uuid::now_v7().simple())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl TraceBuilder {
    pub fn new(route: &str, input: Value) -> Self {
        Self {
            id: new_trace_id(),
            started: Instant::now(),
            created_at_ms: now_ms(),
            route: route.to_string(),
            input,
            spans: Vec::new(),
            current: Map::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Microseconds since the request started.
    pub fn elapsed_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Sets a field of the trace's input (the input stage records the question only after
    /// redacting personal data from it).
    pub fn set_input(&mut self, key: &str, value: impl Into<Value>) {
        if let Value::Object(m) = &mut self.input {
            m.insert(key.to_string(), value.into());
        }
    }

    /// Adds an attribute to the span being recorded.
    pub fn attr(&mut self, key: &str, value: impl Into<Value>) {
        self.current.insert(key.to_string(), value.into());
    }

    /// Closes the current span (called by the pipeline runner only) and returns its duration.
    pub fn close_span(&mut self, name: &str, start_us: u64) -> std::time::Duration {
        let attrs = std::mem::take(&mut self.current);
        let duration_us = self.elapsed_us().saturating_sub(start_us);
        self.spans.push(Span { name: name.to_string(), start_us, duration_us, attrs });
        std::time::Duration::from_micros(duration_us)
    }

    pub fn finish(self, status: &str, output: Value) -> Trace {
        Trace {
            duration_us: self.started.elapsed().as_micros() as u64,
            id: self.id,
            created_at_ms: self.created_at_ms,
            route: self.route,
            status: status.to_string(),
            input: self.input,
            output,
            spans: self.spans,
        }
    }
}

/// Human-readable rendering for `keel trace ID`.
pub fn render(trace: &Trace) -> String {
    let mut out = format!(
        "trace {}  route {}  status {}  total {:.2} ms\ninput: {}\n",
        trace.id,
        trace.route,
        trace.status,
        trace.duration_us as f64 / 1000.0,
        trace.input
    );
    for s in &trace.spans {
        out.push_str(&format!(
            "  {:<10} +{:>9.2} ms  {:>9.2} ms  {}\n",
            s.name,
            s.start_us as f64 / 1000.0,
            s.duration_us as f64 / 1000.0,
            Value::Object(s.attrs.clone())
        ));
    }
    out
}
