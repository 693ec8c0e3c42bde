//! Reads a chat-completion chunk stream (SSE bytes, as they arrive) into the pieces the other
//! wire faces translate it into: reasoning, text and tool-call deltas, then the end (finish
//! reason, usage, Keel's extension) or a failure. The Anthropic and Responses faces share it,
//! so both read a stream the same way.

use serde_json::{json, Map, Value};

use crate::gateway::sse::SseParser;

/// Whether a response from the chat path is a chunk stream (else it is one JSON body).
pub(super) fn is_event_stream(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"))
}

/// Makes a translated request a chat stream that ends with its usage chunk (the translated
/// stream's last event carries the usage).
pub(super) fn ask_for_chunks(body: &mut Map<String, Value>) {
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({ "include_usage": true }));
}

/// One thing a chunk stream said, in order.
pub(super) enum Piece<'a> {
    /// A chunk, before its deltas (its `id`, `model` and `created` start a translated stream).
    Chunk(&'a Value),
    Reasoning(&'a str),
    Text(&'a str),
    /// One entry of a chunk's `delta.tool_calls`.
    ToolCall(&'a Value),
    /// `[DONE]`: the stream ended cleanly.
    Done(Ending),
    /// An error event (its `error` object): the stream failed.
    Failed(&'a Value),
}

/// What a stream said about itself by its end.
#[derive(Default)]
pub(super) struct Ending {
    pub finish: Option<String>,
    pub usage: Option<Value>,
    pub keel: Option<Value>,
}

/// The reader's state between byte slices; after `Done` or `Failed` it reads nothing more.
#[derive(Default)]
pub(super) struct ChunkReader {
    sse: SseParser,
    ending: Ending,
    ended: bool,
}

impl ChunkReader {
    /// Reads `bytes` (any slice of the stream) and hands each piece to `on`.
    pub(super) fn feed(&mut self, bytes: &[u8], mut on: impl FnMut(Piece<'_>)) {
        for ev in self.sse.push(bytes) {
            if self.ended {
                break;
            }
            if ev.data.trim() == "[DONE]" {
                self.ended = true;
                on(Piece::Done(std::mem::take(&mut self.ending)));
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else { continue };
            if let Some(e) = v.get("error") {
                self.ended = true;
                on(Piece::Failed(e));
                continue;
            }
            on(Piece::Chunk(&v));
            if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                self.ending.usage = Some(u.clone());
            }
            if let Some(k) = v.get("keel") {
                self.ending.keel = Some(k.clone());
            }
            let choice = &v["choices"][0];
            let text_at = |f: &str| choice.pointer(f).and_then(Value::as_str).filter(|t| !t.is_empty());
            if let Some(t) = text_at("/delta/reasoning_content") {
                on(Piece::Reasoning(t));
            }
            if let Some(t) = text_at("/delta/content") {
                on(Piece::Text(t));
            }
            for d in
                choice.pointer("/delta/tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
            {
                on(Piece::ToolCall(d));
            }
            if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                self.ending.finish = Some(f.to_string());
            }
        }
    }
}
