//! A chat completion → a Response object, whole or as a stream of Responses events translated
//! chunk by chunk: reasoning becomes a `reasoning` item, the text a `message` item with one
//! `output_text` part, each tool call a `function_call` item (streamed arguments as
//! `function_call_arguments.delta`s); usage and finish reasons are mapped. A failure inside a
//! stream ends it with an `error` event and `response.failed`, never `response.completed`.

use serde_json::{json, Map, Value};

use super::super::chunk_stream::{ChunkReader, Ending, Piece};
use super::super::openai::unix_now;
use crate::gateway::sse::write_event;

/// A new response id: Keel's own, never the provider's (which may repeat), since stored
/// responses are found by it.
pub(super) fn new_response_id() -> String {
    format!("resp_{}", uuid::Uuid::now_v7().simple())
}

/// An output item's id from its response's id, with `prefix` (`msg_`, `rs_`).
fn id_from(prefix: &str, response_id: &str) -> String {
    format!("{prefix}{}", response_id.trim_start_matches("resp_"))
}

/// A function-call item's id, from its call id.
fn call_item_id(call_id: &str) -> String {
    format!("fc_{}", call_id.trim_start_matches("call_"))
}

/// Chat usage → Responses usage (null when the reply had none).
fn usage_of(u: Option<&Value>) -> Value {
    let Some(u) = u.filter(|u| u.is_object()) else { return Value::Null };
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (n("/prompt_tokens"), n("/completion_tokens"));
    json!({ "input_tokens": input, "input_tokens_details": { "cached_tokens": n("/prompt_tokens_details/cached_tokens") },
            "output_tokens": output, "output_tokens_details": { "reasoning_tokens": n("/completion_tokens_details/reasoning_tokens") },
            "total_tokens": u.get("total_tokens").and_then(Value::as_u64).unwrap_or(input + output) })
}

/// A finish reason → the response's status and `incomplete_details`.
fn status_of(finish: Option<&str>) -> (&'static str, Value) {
    match finish {
        Some("length") => ("incomplete", json!({ "reason": "max_output_tokens" })),
        Some("content_filter") => ("incomplete", json!({ "reason": "content_filter" })),
        _ => ("completed", Value::Null),
    }
}

fn reasoning_item(id: &str, text: &str) -> Value {
    json!({ "type": "reasoning", "id": id, "summary": [], "content": [{ "type": "reasoning_text", "text": text }] })
}

fn text_part(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
}

fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({ "type": "message", "id": id, "status": status, "role": "assistant", "content": content })
}

fn call_item(call_id: &str, name: &Value, arguments: &str, status: &str) -> Value {
    json!({ "type": "function_call", "id": call_item_id(call_id), "call_id": call_id, "name": name,
            "arguments": arguments, "status": status })
}

/// A Response object with the request's echoed fields and no output yet.
fn skeleton(id: &str, created: u64, model: &Value, echo: &Map<String, Value>, status: &str) -> Value {
    let mut r = json!({ "id": id, "object": "response", "created_at": created, "status": status, "error": null,
        "incomplete_details": null, "model": model, "output": [], "usage": null });
    if let Some(o) = r.as_object_mut() {
        o.extend(echo.clone());
    }
    r
}

/// Completes `r` (a [`skeleton`]) with its status from the finish reason, its output, usage
/// and Keel's extension; returns the status.
fn complete(
    r: &mut Value,
    finish: Option<&str>,
    output: Vec<Value>,
    usage: Option<&Value>,
    keel: Option<Value>,
) -> &'static str {
    let (status, incomplete) = status_of(finish);
    r["status"] = json!(status);
    r["incomplete_details"] = incomplete;
    r["output"] = Value::Array(output);
    r["usage"] = usage_of(usage);
    if let Some(k) = keel {
        r["keel"] = k;
    }
    status
}

/// A Response's output as the assistant's chat message (its text, and its function calls as
/// `tool_calls`): what a stored conversation keeps of the reply.
pub(super) fn assistant_message(response: &Value) -> Value {
    let items = response.get("output").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut text = Vec::new();
    let mut calls = Vec::new();
    for item in items {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                let parts = item.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                text.extend(parts.iter().filter_map(|p| p.get("text").or(p.get("refusal")).and_then(Value::as_str)));
            }
            Some("function_call") => calls.push(json!({ "id": item["call_id"], "type": "function",
                "function": { "name": item["name"], "arguments": item["arguments"] } })),
            _ => {}
        }
    }
    let mut m = json!({ "role": "assistant", "content": text.concat() });
    if !calls.is_empty() {
        if text.is_empty() {
            m["content"] = Value::Null;
        }
        m["tool_calls"] = Value::Array(calls);
    }
    m
}

/// A chat completion as a Response (Keel's `keel` extension kept).
pub(super) fn to_response(id: &str, v: &Value, echo: &Map<String, Value>) -> Value {
    let choice = &v["choices"][0];
    let message = &choice["message"];
    let mut output = Vec::new();
    if let Some(r) = message.get("reasoning_content").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        output.push(reasoning_item(&id_from("rs_", id), r));
    }
    let text = message.get("content").and_then(Value::as_str).unwrap_or("");
    let refusal = message.get("refusal").and_then(Value::as_str).filter(|r| !r.is_empty());
    let calls = message.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if let Some(r) = refusal {
        output.push(message_item(&id_from("msg_", id), "completed", vec![json!({ "type": "refusal", "refusal": r })]));
    } else if !text.is_empty() || calls.is_empty() {
        output.push(message_item(&id_from("msg_", id), "completed", vec![text_part(text)]));
    }
    for c in calls {
        let call_id = c.get("id").and_then(Value::as_str).unwrap_or("");
        let args = c.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("");
        output.push(call_item(call_id, c.pointer("/function/name").unwrap_or(&Value::Null), args, "completed"));
    }
    let created = v.get("created").and_then(Value::as_u64).unwrap_or_else(unix_now);
    let mut r = skeleton(id, created, v.get("model").unwrap_or(&Value::Null), echo, "completed");
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    complete(&mut r, finish, output, v.get("usage"), v.get("keel").cloned());
    r
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Reasoning,
    Text,
    Call,
}

/// The output item a stream is writing (its place is the end of `output`, where it goes
/// once complete): its kind, id and text so far (reasoning, message text or call arguments).
struct OpenItem {
    kind: Kind,
    id: String,
    text: String,
    call_id: String,
    name: Value,
}

/// Translates an OpenAI chunk stream into Responses events: one output item at a time, opened
/// as its first delta arrives and completed when another opens or the stream ends.
pub(super) struct ToResponses {
    reader: ChunkReader,
    echo: Map<String, Value>,
    seq: u64,
    id: String,
    created: u64,
    model: Value,
    started: bool,
    /// Completed items, in output order; the open one is `open`.
    output: Vec<Value>,
    open: Option<OpenItem>,
    /// Each tool call's chat index and its place in `output`.
    calls: Vec<(u64, usize)>,
    /// The final Response once the stream has ended cleanly, until taken.
    finished: Option<Value>,
}

impl ToResponses {
    pub(super) fn new(id: String, echo: Map<String, Value>) -> Self {
        Self {
            reader: ChunkReader::default(),
            echo,
            seq: 0,
            id,
            created: 0,
            model: Value::Null,
            started: false,
            output: Vec::new(),
            open: None,
            calls: Vec::new(),
            finished: None,
        }
    }

    fn emit(&mut self, out: &mut String, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        write_event(out, Some(kind), &data.to_string());
    }

    fn response(&self, status: &str) -> Value {
        skeleton(&self.id, self.created, &self.model, &self.echo, status)
    }

    fn start(&mut self, out: &mut String, chunk: &Value) {
        if self.started {
            return;
        }
        self.started = true;
        self.created = chunk.get("created").and_then(Value::as_u64).unwrap_or_else(unix_now);
        self.model = chunk.get("model").cloned().unwrap_or(Value::Null);
        let r = self.response("in_progress");
        self.emit(out, "response.created", json!({ "response": r }));
        self.emit(out, "response.in_progress", json!({ "response": r }));
    }

    /// Completes the open item: its `.done` events, then `response.output_item.done`.
    fn close(&mut self, out: &mut String) {
        let Some(o) = self.open.take() else { return };
        let (index, id) = (self.output.len(), o.id.as_str());
        let item = match o.kind {
            Kind::Reasoning => {
                let done = json!({ "item_id": id, "output_index": index, "content_index": 0, "text": o.text });
                self.emit(out, "response.reasoning_text.done", done);
                reasoning_item(id, &o.text)
            }
            Kind::Text => {
                let done =
                    json!({ "item_id": id, "output_index": index, "content_index": 0, "text": o.text, "logprobs": [] });
                self.emit(out, "response.output_text.done", done);
                let part =
                    json!({ "item_id": id, "output_index": index, "content_index": 0, "part": text_part(&o.text) });
                self.emit(out, "response.content_part.done", part);
                message_item(id, "completed", vec![text_part(&o.text)])
            }
            Kind::Call => {
                let done = json!({ "item_id": id, "output_index": index, "name": o.name, "arguments": o.text });
                self.emit(out, "response.function_call_arguments.done", done);
                call_item(&o.call_id, &o.name, &o.text, "completed")
            }
        };
        self.emit(out, "response.output_item.done", json!({ "output_index": index, "item": item }));
        self.output.push(item);
    }

    /// Makes an item of `kind` the open one (text and reasoning continue; a call is opened per
    /// call), closing the item of another kind; returns its place in the output.
    fn ensure(&mut self, out: &mut String, kind: Kind, call: Option<(&str, &Value)>) -> usize {
        let reuse = self.open.as_ref().is_some_and(|o| o.kind == kind && kind != Kind::Call);
        if !reuse {
            self.close(out);
            let index = self.output.len();
            let (call_id, name) = call.map(|(c, n)| (c.to_string(), n.clone())).unwrap_or_default();
            let (id, item) = match kind {
                Kind::Reasoning => {
                    let id = id_from("rs_", &self.id);
                    (id.clone(), json!({ "type": "reasoning", "id": id, "summary": [], "content": [] }))
                }
                Kind::Text => {
                    let id = id_from("msg_", &self.id);
                    (id.clone(), message_item(&id, "in_progress", Vec::new()))
                }
                Kind::Call => (call_item_id(&call_id), call_item(&call_id, &name, "", "in_progress")),
            };
            self.emit(out, "response.output_item.added", json!({ "output_index": index, "item": item }));
            if kind == Kind::Text {
                let part = json!({ "item_id": id, "output_index": index, "content_index": 0, "part": text_part("") });
                self.emit(out, "response.content_part.added", part);
            }
            self.open = Some(OpenItem { kind, id, text: String::new(), call_id, name });
        }
        self.output.len()
    }

    fn text_delta(&mut self, out: &mut String, kind: Kind, delta: &str) {
        let index = self.ensure(out, kind, None);
        let Some(o) = self.open.as_mut() else { return };
        o.text.push_str(delta);
        let id = o.id.clone();
        let (event, mut data) = match kind {
            Kind::Reasoning => ("response.reasoning_text.delta", json!({ "delta": delta })),
            _ => ("response.output_text.delta", json!({ "delta": delta, "logprobs": [] })),
        };
        data["item_id"] = json!(id);
        data["output_index"] = json!(index);
        data["content_index"] = json!(0);
        self.emit(out, event, data);
    }

    /// One streamed tool-call delta: a new call opens a `function_call` item; argument text
    /// goes to its call's item.
    fn call_delta(&mut self, out: &mut String, d: &Value) {
        let call = d.get("index").and_then(Value::as_u64).unwrap_or(0);
        let index = match self.calls.iter().find(|(c, _)| *c == call) {
            Some(&(_, i)) => i,
            None => {
                let call_id = d.get("id").and_then(Value::as_str).unwrap_or("");
                let name = d.pointer("/function/name").cloned().unwrap_or(Value::Null);
                let i = self.ensure(out, Kind::Call, Some((call_id, &name)));
                self.calls.push((call, i));
                i
            }
        };
        let Some(part) = d.pointer("/function/arguments").and_then(Value::as_str).filter(|p| !p.is_empty()) else {
            return;
        };
        let open = self.output.len();
        let id = match self.open.as_mut().filter(|_| open == index) {
            Some(o) => {
                o.text.push_str(part);
                o.id.clone()
            }
            // A delta for a call whose item is already complete (interleaved calls): its
            // arguments there grow too.
            None => match self.output.get_mut(index) {
                Some(item) => {
                    let args = format!("{}{part}", item["arguments"].as_str().unwrap_or(""));
                    item["arguments"] = json!(args);
                    item["id"].as_str().unwrap_or("").to_string()
                }
                None => return,
            },
        };
        self.emit(
            out,
            "response.function_call_arguments.delta",
            json!({ "item_id": id, "output_index": index, "delta": part }),
        );
    }

    fn finish(&mut self, out: &mut String, end: Ending) {
        self.start(out, &Value::Null);
        if self.output.is_empty() && self.open.is_none() {
            // A reply with nothing in it still has its (empty) message.
            self.ensure(out, Kind::Text, None);
        }
        self.close(out);
        let mut r = self.response("completed");
        let output = std::mem::take(&mut self.output);
        let status = complete(&mut r, end.finish.as_deref(), output, end.usage.as_ref(), end.keel);
        let event = if status == "completed" { "response.completed" } else { "response.incomplete" };
        self.emit(out, event, json!({ "response": r }));
        self.finished = Some(r);
    }

    /// The final Response, once, after the stream ended cleanly (not after a failure).
    pub(super) fn take_finished(&mut self) -> Option<Value> {
        self.finished.take()
    }

    fn fail(&mut self, out: &mut String, e: &Value) {
        self.start(out, &Value::Null);
        let message = e.get("message").and_then(Value::as_str).unwrap_or("the stream failed");
        let code = e.get("code").and_then(Value::as_str).unwrap_or("server_error");
        self.emit(out, "error", json!({ "code": code, "message": message, "param": null }));
        let mut r = self.response("failed");
        r["error"] = json!({ "code": "server_error", "message": message });
        r["output"] = Value::Array(std::mem::take(&mut self.output));
        self.emit(out, "response.failed", json!({ "response": r }));
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        // The reader is taken out for the call so its pieces can change `self`.
        let mut reader = std::mem::take(&mut self.reader);
        reader.feed(bytes, |piece| match piece {
            Piece::Chunk(v) => self.start(&mut out, v),
            Piece::Reasoning(t) => self.text_delta(&mut out, Kind::Reasoning, t),
            Piece::Text(t) => self.text_delta(&mut out, Kind::Text, t),
            Piece::ToolCall(d) => self.call_delta(&mut out, d),
            Piece::Done(end) => self.finish(&mut out, end),
            Piece::Failed(e) => self.fail(&mut out, e),
        });
        self.reader = reader;
        out
    }
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
