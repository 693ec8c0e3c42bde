//! A chat completion → a Messages reply, whole or as a stream translated chunk by chunk: the
//! text becomes a `text` block, `tool_calls` become `tool_use` blocks (streamed argument
//! deltas as `input_json_delta`s), usage and finish reasons are mapped; errors take
//! Anthropic's error shape.

use serde_json::{json, Value};

use super::super::chunk_stream::{ChunkReader, Ending, Piece};
use crate::gateway::sse::write_event;

/// OpenAI `finish_reason` → Anthropic `stop_reason`.
fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

fn usage_of(u: Option<&Value>) -> Value {
    let n = |p: &str| u.and_then(|u| u.pointer(p)).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("/prompt_tokens_details/cached_tokens");
    json!({ "input_tokens": n("/prompt_tokens").saturating_sub(cached), "output_tokens": n("/completion_tokens"),
            "cache_read_input_tokens": cached })
}

fn message_id(v: &Value) -> String {
    let id = v.get("id").and_then(Value::as_str).unwrap_or("");
    format!("msg_{}", id.trim_start_matches("chatcmpl-"))
}

/// A tool call's arguments as a `tool_use` input (an object; arguments that do not parse as
/// one are kept as text under `_arguments` rather than lost).
fn tool_input(args: Option<&str>) -> Value {
    match args.map(str::trim).filter(|a| !a.is_empty()) {
        None => json!({}),
        Some(a) => {
            serde_json::from_str::<Value>(a).ok().filter(Value::is_object).unwrap_or_else(|| json!({ "_arguments": a }))
        }
    }
}

/// A chat completion as a Messages reply (Keel's `keel` extension kept).
pub(super) fn to_message(v: &Value) -> Value {
    let choice = &v["choices"][0];
    let text = choice.pointer("/message/content").and_then(Value::as_str).unwrap_or("");
    let calls = choice.pointer("/message/tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut content = Vec::new();
    if let Some(r) = choice.pointer("/message/reasoning_content").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        // A model's reasoning (vLLM, DeepSeek, Keel's own Anthropic translation), unsigned.
        content.push(json!({ "type": "thinking", "thinking": r, "signature": "" }));
    }
    if !text.is_empty() || calls.is_empty() {
        content.push(json!({ "type": "text", "text": text }));
    }
    for c in calls {
        content.push(json!({ "type": "tool_use", "id": c.get("id").cloned().unwrap_or(Value::Null),
            "name": c.pointer("/function/name").cloned().unwrap_or(Value::Null),
            "input": tool_input(c.pointer("/function/arguments").and_then(Value::as_str)) }));
    }
    let mut out = json!({
        "id": message_id(v),
        "type": "message",
        "role": "assistant",
        "model": v.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": usage_of(v.get("usage")),
    });
    if let Some(k) = v.get("keel") {
        out["keel"] = k.clone();
    }
    out
}

/// Anthropic's error type for a status.
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

pub(super) fn error_body(status: u16, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": error_type(status), "message": message } })
}

/// What kind of block is open in a translated stream.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Thinking,
    Text,
    Tool,
}

/// Translates an OpenAI chunk stream into Anthropic's events: one block at a time, opened as
/// its first delta arrives — reasoning (`reasoning_content`) as a `thinking` block, text as a
/// `text` block, each tool call as a `tool_use` block — and closed when another opens.
#[derive(Default)]
pub(super) struct ToAnthropic {
    reader: ChunkReader,
    started: bool,
    /// The open block, with its index; `blocks` were opened so far.
    open: Option<(Open, usize)>,
    blocks: usize,
    /// Each tool call's OpenAI index and its block index, in the order they opened.
    tool_blocks: Vec<(u64, usize)>,
}

impl ToAnthropic {
    fn start(&mut self, out: &mut String, chunk: &Value) {
        if self.started {
            return;
        }
        self.started = true;
        let start = json!({ "type": "message_start", "message": {
            "id": message_id(chunk), "type": "message", "role": "assistant", "content": [],
            "model": chunk.get("model").cloned().unwrap_or(Value::Null), "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": 0, "output_tokens": 0 } } });
        write_event(out, Some("message_start"), &start.to_string());
    }

    fn close(&mut self, out: &mut String) {
        if let Some((_, index)) = self.open.take() {
            write_event(
                out,
                Some("content_block_stop"),
                &json!({ "type": "content_block_stop", "index": index }).to_string(),
            );
        }
    }

    /// The index of an open block of `kind`, opening one (`block` is its start) if the open
    /// block is of another kind.
    fn ensure(&mut self, out: &mut String, kind: Open, block: Value) -> usize {
        if let Some((_, index)) = self.open.filter(|(k, _)| *k == kind && kind != Open::Tool) {
            return index;
        }
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        self.open = Some((kind, index));
        let start = json!({ "type": "content_block_start", "index": index, "content_block": block });
        write_event(out, Some("content_block_start"), &start.to_string());
        index
    }

    fn delta(out: &mut String, index: usize, delta: Value) {
        let d = json!({ "type": "content_block_delta", "index": index, "delta": delta });
        write_event(out, Some("content_block_delta"), &d.to_string());
    }

    /// One streamed tool-call delta: a new call opens a `tool_use` block; argument text goes
    /// to its call's block.
    fn tool_delta(&mut self, out: &mut String, d: &Value) {
        let call = d.get("index").and_then(Value::as_u64).unwrap_or(0);
        let index = match self.tool_blocks.iter().find(|(i, _)| *i == call) {
            Some(&(_, b)) => b,
            None => {
                let block = json!({ "type": "tool_use", "id": d.get("id").cloned().unwrap_or(Value::Null),
                    "name": d.pointer("/function/name").cloned().unwrap_or(Value::Null), "input": {} });
                let index = self.ensure(out, Open::Tool, block);
                self.tool_blocks.push((call, index));
                index
            }
        };
        if let Some(part) = d.pointer("/function/arguments").and_then(Value::as_str).filter(|p| !p.is_empty()) {
            Self::delta(out, index, json!({ "type": "input_json_delta", "partial_json": part }));
        }
    }

    fn finish(&mut self, out: &mut String, end: Ending) {
        self.start(out, &Value::Null);
        if self.blocks == 0 {
            // A reply with nothing in it still has its (empty) text block.
            self.ensure(out, Open::Text, json!({ "type": "text", "text": "" }));
        }
        self.close(out);
        let mut delta = json!({ "type": "message_delta",
            "delta": { "stop_reason": stop_reason(end.finish.as_deref()), "stop_sequence": null },
            "usage": usage_of(end.usage.as_ref()) });
        if let Some(k) = end.keel {
            delta["keel"] = k;
        }
        write_event(out, Some("message_delta"), &delta.to_string());
        write_event(out, Some("message_stop"), &json!({ "type": "message_stop" }).to_string());
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        // The reader is taken out for the call so its pieces can change `self`.
        let mut reader = std::mem::take(&mut self.reader);
        reader.feed(bytes, |piece| match piece {
            Piece::Chunk(v) => self.start(&mut out, v),
            Piece::Reasoning(t) => {
                let index = self.ensure(&mut out, Open::Thinking, json!({ "type": "thinking", "thinking": "" }));
                Self::delta(&mut out, index, json!({ "type": "thinking_delta", "thinking": t }));
            }
            Piece::Text(t) => {
                let index = self.ensure(&mut out, Open::Text, json!({ "type": "text", "text": "" }));
                Self::delta(&mut out, index, json!({ "type": "text_delta", "text": t }));
            }
            Piece::ToolCall(d) => self.tool_delta(&mut out, d),
            Piece::Done(end) => self.finish(&mut out, end),
            Piece::Failed(e) => {
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("the stream failed");
                write_event(&mut out, Some("error"), &error_body(500, msg).to_string());
            }
        });
        self.reader = reader;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::sse::SseParser;

    #[test]
    fn replies_and_errors_take_the_messages_shape() {
        let v = json!({ "id": "chatcmpl-abc", "model": "m", "choices": [{ "message": { "content": "Hello" }, "finish_reason": "length" }],
                        "usage": { "prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": { "cached_tokens": 4 } } });
        let m = to_message(&v);
        assert_eq!((m["id"].as_str(), m["content"][0]["text"].as_str()), (Some("msg_abc"), Some("Hello")));
        assert_eq!(m["stop_reason"], "max_tokens");
        assert_eq!(m["usage"], json!({ "input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 4 }));
        assert_eq!(error_body(429, "slow down")["error"]["type"], "rate_limit_error");
        assert_eq!(error_body(504, "late")["error"]["type"], "api_error");
    }

    #[test]
    fn tool_calls_become_tool_use_blocks() {
        let v = json!({ "id": "chatcmpl-t", "model": "m", "choices": [{ "finish_reason": "tool_calls", "message": {
            "content": null, "tool_calls": [
                { "id": "call_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } },
                { "id": "call_2", "type": "function", "function": { "name": "now", "arguments": "" } }] } }] });
        let m = to_message(&v);
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(
            m["content"],
            json!([{ "type": "tool_use", "id": "call_1", "name": "get_weather", "input": { "city": "Paris" } },
                   { "type": "tool_use", "id": "call_2", "name": "now", "input": {} }])
        );
        assert_eq!(tool_input(Some("[1,2]")), json!({ "_arguments": "[1,2]" }), "kept, not lost");
    }

    /// The translated events' data, and each one's `type:index`.
    fn kinds(src: &str) -> (Vec<Value>, Vec<String>) {
        let datas: Vec<Value> = events(src).iter().map(|e| serde_json::from_str(&e.data).unwrap()).collect();
        let kinds = datas
            .iter()
            .map(|d| {
                format!("{}:{}", d["type"].as_str().unwrap(), d.get("index").map_or(String::new(), Value::to_string))
            })
            .collect();
        (datas, kinds)
    }

    fn events(src: &str) -> Vec<crate::gateway::sse::SseEvent> {
        let mut t = ToAnthropic::default();
        let mut out = String::new();
        for piece in src.as_bytes().chunks(11) {
            out.push_str(&t.feed(piece));
        }
        SseParser::default().push(out.as_bytes())
    }

    #[test]
    fn chunk_streams_become_message_events_and_errors_stay_errors() {
        let src = "data: {\"id\":\"chatcmpl-1\",\"model\":\"m\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
                   data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
                   data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                   data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        let evs = events(src);
        let names: Vec<&str> = evs.iter().filter_map(|e| e.event.as_deref()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let delta: Value = serde_json::from_str(&evs[4].data).unwrap();
        assert_eq!(
            (delta["delta"]["stop_reason"].as_str(), delta["usage"]["output_tokens"].as_u64()),
            (Some("end_turn"), Some(1))
        );

        let mut t = ToAnthropic::default();
        let out = t.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"half\"}}]}\n\n\n\ndata: {\"error\":{\"message\":\"cut\"}}\n\n");
        assert!(out.contains("event: error") && !out.contains("message_stop"), "{out}");
    }

    #[test]
    fn streamed_tool_calls_become_tool_use_blocks_with_json_deltas() {
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({ "id": "chatcmpl-2", "model": "m", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
            )
        };
        let src = [
            chunk(json!({ "role": "assistant", "content": "Checking." }), Value::Null),
            chunk(json!({ "tool_calls": [{ "index": 0, "id": "call_9", "type": "function", "function": { "name": "get_weather", "arguments": "" } }] }), Value::Null),
            chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "{\"city\":" } }] }), Value::Null),
            chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "\"Oslo\"}" } }] }), Value::Null),
            chunk(json!({ "tool_calls": [{ "index": 1, "id": "call_10", "type": "function", "function": { "name": "now", "arguments": "{}" } }] }), Value::Null),
            chunk(json!({}), json!("tool_calls")),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let (datas, kinds) = kinds(&src);
        assert_eq!(
            kinds,
            [
                "message_start:",
                "content_block_start:0",
                "content_block_delta:0",
                "content_block_stop:0",
                "content_block_start:1",
                "content_block_delta:1",
                "content_block_delta:1",
                "content_block_stop:1",
                "content_block_start:2",
                "content_block_delta:2",
                "content_block_stop:2",
                "message_delta:",
                "message_stop:"
            ]
        );
        assert_eq!(
            datas[4]["content_block"],
            json!({ "type": "tool_use", "id": "call_9", "name": "get_weather", "input": {} })
        );
        let args: String =
            datas[5..7].iter().map(|d| d["delta"]["partial_json"].as_str().unwrap().to_string()).collect();
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({ "city": "Oslo" }));
        assert_eq!(datas[11]["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn reasoning_becomes_a_thinking_block_first_plain_and_streamed() {
        let v = json!({ "id": "chatcmpl-r", "model": "m", "choices": [{ "finish_reason": "stop",
            "message": { "content": "30 days.", "reasoning_content": "The policy page says 30." } }] });
        let m = to_message(&v);
        assert_eq!(
            m["content"][0],
            json!({ "type": "thinking", "thinking": "The policy page says 30.", "signature": "" })
        );
        assert_eq!(m["content"][1], json!({ "type": "text", "text": "30 days." }));

        let chunk = |delta: Value| {
            format!("data: {}\n\n", json!({ "id": "chatcmpl-r", "choices": [{ "index": 0, "delta": delta }] }))
        };
        let src = [
            chunk(json!({ "role": "assistant", "reasoning_content": "The policy " })),
            chunk(json!({ "reasoning_content": "says 30." })),
            chunk(json!({ "content": "30 days." })),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let (datas, kinds) = kinds(&src);
        assert_eq!(
            kinds,
            [
                "message_start:",
                "content_block_start:0",
                "content_block_delta:0",
                "content_block_delta:0",
                "content_block_stop:0",
                "content_block_start:1",
                "content_block_delta:1",
                "content_block_stop:1",
                "message_delta:",
                "message_stop:"
            ]
        );
        assert_eq!(datas[1]["content_block"]["type"], "thinking");
        assert_eq!(datas[3]["delta"], json!({ "type": "thinking_delta", "thinking": "says 30." }));
        assert_eq!(datas[6]["delta"]["text"], "30 days.");
    }
}
