//! Anthropic Messages reply → OpenAI chat completion, whole or as a stream translated event by
//! event: text blocks become the message's content, `tool_use` blocks its `tool_calls` (their
//! streamed `input_json_delta`s become argument deltas), usage and stop reasons are mapped.

use bytes::Bytes;
use serde_json::{json, Value};

use super::super::ProviderError;
use crate::gateway::sse::{write_event, SseParser};

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub fn finish_reason(stop: Option<&str>) -> &'static str {
    match stop {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic usage → OpenAI usage (cache reads and writes count as prompt tokens).
fn usage_of(u: &Value, output_tokens: Option<u64>) -> Value {
    let n = |f: &str| u.get(f).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("cache_read_input_tokens");
    let prompt = n("input_tokens") + cached + n("cache_creation_input_tokens");
    let completion = output_tokens.unwrap_or_else(|| n("output_tokens"));
    json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": { "cached_tokens": cached } })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A `tool_use` block → an OpenAI tool call (its input as a JSON string of arguments).
fn tool_call(b: &Value) -> Value {
    json!({ "id": b.get("id").cloned().unwrap_or(Value::Null), "type": "function",
            "function": { "name": b.get("name").cloned().unwrap_or(Value::Null),
                          "arguments": b.get("input").map_or_else(|| "{}".to_string(), Value::to_string) } })
}

/// The reply as a chat completion; with `json_tool`, the call of that tool (asked for a JSON
/// `response_format`) is the answer: its input becomes the message's content.
pub fn from_anthropic(v: &Value, json_tool: Option<&str>) -> Result<Value, ProviderError> {
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::Malformed("no `content` array".into()))?;
    let of_type = |t: &'static str| blocks.iter().filter(move |b| b.get("type").and_then(Value::as_str) == Some(t));
    // The forced JSON tool's input is the answer, not a call for the client.
    let answer =
        json_tool.and_then(|tool| of_type("tool_use").find(|b| b["name"] == tool)).and_then(|b| b.get("input"));
    let (text, calls): (String, Vec<Value>) = match answer {
        Some(input) => (input.to_string(), Vec::new()),
        None => {
            (of_type("text").filter_map(|b| b["text"].as_str()).collect(), of_type("tool_use").map(tool_call).collect())
        }
    };
    let thinking: String = of_type("thinking").filter_map(|b| b["thinking"].as_str()).collect();
    let mut message = json!({ "role": "assistant", "content": text });
    if !thinking.is_empty() {
        // Where OpenAI-compatible servers (vLLM, DeepSeek) put a model's reasoning.
        message["reasoning_content"] = Value::String(thinking);
    }
    if !calls.is_empty() {
        // OpenAI's shape: no text beside tool calls is `null`, not "".
        if text.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    let mut out = json!({
        "id": v.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": unix_now(),
        "model": v.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{ "index": 0, "message": message,
                      "finish_reason": if answer.is_some() { "stop" } else { finish_reason(v.get("stop_reason").and_then(Value::as_str)) } }],
    });
    if let Some(u) = v.get("usage") {
        out["usage"] = usage_of(u, None);
    }
    Ok(out)
}

/// Translates an Anthropic event stream into OpenAI `chat.completion.chunk` events, ending
/// with `[DONE]` only when Anthropic sent `message_stop`. An `error` event is an error.
pub struct StreamTranslator {
    sse: SseParser,
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Value,
    output_tokens: Option<u64>,
    /// Anthropic's block index of each tool call so far, in order: a call's position here is
    /// its OpenAI `tool_calls[].index`.
    tool_blocks: Vec<u64>,
    /// The tool a JSON `response_format` was asked through, and its block once it opened: its
    /// input streams as the message's content.
    json_tool: Option<&'static str>,
    json_block: Option<u64>,
}

impl StreamTranslator {
    pub fn new(include_usage: bool, json_tool: Option<&'static str>) -> Self {
        Self {
            sse: SseParser::default(),
            id: String::new(),
            model: String::new(),
            created: unix_now(),
            include_usage,
            usage: json!({}),
            output_tokens: None,
            tool_blocks: Vec::new(),
            json_tool,
            json_block: None,
        }
    }

    fn chunk(&self, out: &mut String, delta: Value, finish: Value) {
        let c = json!({ "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] });
        write_event(out, None, &c.to_string());
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Result<Bytes, ProviderError> {
        let mut out = String::new();
        for ev in self.sse.push(bytes) {
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else { continue };
            match v.get("type").and_then(Value::as_str).unwrap_or_default() {
                "message_start" => {
                    let m = &v["message"];
                    self.id = m["id"].as_str().unwrap_or_default().to_string();
                    self.model = m["model"].as_str().unwrap_or_default().to_string();
                    self.usage = m.get("usage").cloned().unwrap_or_else(|| json!({}));
                    self.chunk(&mut out, json!({ "role": "assistant", "content": "" }), Value::Null);
                }
                "content_block_start"
                    if self.json_tool.is_some()
                        && v.pointer("/content_block/name").and_then(Value::as_str) == self.json_tool =>
                {
                    self.json_block = v.get("index").and_then(Value::as_u64);
                }
                "content_block_start"
                    if v.pointer("/content_block/type").and_then(Value::as_str) == Some("tool_use") =>
                {
                    let index = self.tool_blocks.len();
                    self.tool_blocks.push(v.get("index").and_then(Value::as_u64).unwrap_or(u64::MAX));
                    let mut call = tool_call(&v["content_block"]);
                    // The arguments come as deltas; the start carries none.
                    call["function"]["arguments"] = json!("");
                    call["index"] = json!(index);
                    self.chunk(&mut out, json!({ "tool_calls": [call] }), Value::Null);
                }
                "content_block_delta" => match v.pointer("/delta/type").and_then(Value::as_str) {
                    Some("input_json_delta") => {
                        let block = v.get("index").and_then(Value::as_u64).unwrap_or(u64::MAX);
                        let part = v.pointer("/delta/partial_json").and_then(Value::as_str).unwrap_or_default();
                        if self.json_block == Some(block) {
                            if !part.is_empty() {
                                self.chunk(&mut out, json!({ "content": part }), Value::Null);
                            }
                        } else if let Some(index) = self.tool_blocks.iter().position(|&b| b == block) {
                            if !part.is_empty() {
                                let call = json!({ "index": index, "function": { "arguments": part } });
                                self.chunk(&mut out, json!({ "tool_calls": [call] }), Value::Null);
                            }
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = v.pointer("/delta/thinking").and_then(Value::as_str) {
                            self.chunk(&mut out, json!({ "reasoning_content": t }), Value::Null);
                        }
                    }
                    _ => {
                        if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
                            self.chunk(&mut out, json!({ "content": t }), Value::Null);
                        }
                    }
                },
                "message_delta" => {
                    if let Some(n) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                        self.output_tokens = Some(n);
                    }
                    let mut reason = finish_reason(v.pointer("/delta/stop_reason").and_then(Value::as_str));
                    if self.json_block.is_some() && self.tool_blocks.is_empty() && reason == "tool_calls" {
                        // The forced JSON tool's call is the answer, not a call for the client.
                        reason = "stop";
                    }
                    self.chunk(&mut out, json!({}), json!(reason));
                }
                "message_stop" => {
                    if self.include_usage {
                        let c = json!({ "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                        "model": self.model, "choices": [], "usage": usage_of(&self.usage, self.output_tokens) });
                        write_event(&mut out, None, &c.to_string());
                    }
                    write_event(&mut out, None, "[DONE]");
                }
                "error" => {
                    let msg = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("error event");
                    return Err(ProviderError::StreamBroken(format!("anthropic: {msg}")));
                }
                _ => {}
            }
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_become_chat_completions_with_usage() {
        let v = json!({ "id": "msg_1", "type": "message", "model": "claude-x", "stop_reason": "max_tokens",
            "content": [{ "type": "text", "text": "Hello" }, { "type": "text", "text": " world" }],
            "usage": { "input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 6 } });
        let o = from_anthropic(&v, None).unwrap();
        assert_eq!(o["choices"][0]["message"]["content"], "Hello world");
        assert!(o["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(o["choices"][0]["finish_reason"], "length");
        assert_eq!(
            (o["usage"]["prompt_tokens"].as_u64(), o["usage"]["completion_tokens"].as_u64()),
            (Some(16), Some(4))
        );
        assert_eq!(o["usage"]["prompt_tokens_details"]["cached_tokens"], 6);
        assert!(matches!(from_anthropic(&json!({ "id": "x" }), None), Err(ProviderError::Malformed(_))));
    }

    #[test]
    fn thinking_becomes_reasoning_content_plain_and_streamed() {
        let v = json!({ "id": "msg_t", "model": "m", "stop_reason": "end_turn", "content": [
            { "type": "thinking", "thinking": "The policy says 30 days.", "signature": "sig" },
            { "type": "text", "text": "30 days." }] });
        let m = &from_anthropic(&v, None).unwrap()["choices"][0]["message"];
        assert_eq!(
            (m["content"].as_str(), m["reasoning_content"].as_str()),
            (Some("30 days."), Some("The policy says 30 days."))
        );
        assert!(from_anthropic(&json!({ "content": [] }), None).unwrap()["choices"][0]["message"]
            .get("reasoning_content")
            .is_none());

        let ev = |data: &str| format!("data: {data}\n\n");
        let events = [
            ev(r#"{"type":"message_start","message":{"id":"msg_t","model":"m","usage":{"input_tokens":5}}}"#),
            ev(r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#),
            ev(r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Policy: 30"}}"#),
            ev(r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}"#),
            ev(r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"30 days."}}"#),
            ev(r#"{"type":"message_stop"}"#),
        ]
        .concat();
        let chunks: Vec<Value> =
            translate(&events, false, None).iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
        let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
        assert_eq!(deltas[1], &json!({ "reasoning_content": "Policy: 30" }));
        assert_eq!(deltas[2], &json!({ "content": "30 days." }), "a signature carries no text");
    }

    #[test]
    fn tool_use_blocks_become_tool_calls() {
        let v = json!({ "id": "msg_2", "model": "claude-x", "stop_reason": "tool_use", "content": [
            { "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": { "city": "Paris" } },
            { "type": "tool_use", "id": "toolu_2", "name": "now", "input": {} }] });
        let o = from_anthropic(&v, None).unwrap();
        let m = &o["choices"][0]["message"];
        assert_eq!(m["content"], Value::Null, "no text beside tool calls");
        assert_eq!(o["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(m["tool_calls"][0]["id"], "toolu_1");
        assert_eq!(m["tool_calls"][0]["function"]["name"], "get_weather");
        let args: Value = serde_json::from_str(m["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({ "city": "Paris" }));
        assert_eq!(m["tool_calls"][1]["function"]["arguments"], "{}");
    }

    /// Feeds events in 9-byte pieces and returns the translated events' data.
    fn translate(events: &str, include_usage: bool, json_tool: Option<&'static str>) -> Vec<String> {
        let mut t = StreamTranslator::new(include_usage, json_tool);
        let mut out = String::new();
        for piece in events.as_bytes().chunks(9) {
            out.push_str(std::str::from_utf8(&t.feed(piece).unwrap()).unwrap());
        }
        SseParser::default().push(out.as_bytes()).into_iter().map(|e| e.data).collect()
    }

    #[test]
    fn streams_translate_event_by_event_and_errors_break_them() {
        let events = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":7}}}\n\n\
            event: ping\ndata: {\"type\":\"ping\"}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n\
            event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let out = translate(events, true, None);
        let datas: Vec<Value> = out.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
        assert_eq!(datas[1]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(datas[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            (datas[3]["usage"]["prompt_tokens"].as_u64(), datas[3]["usage"]["completion_tokens"].as_u64()),
            (Some(7), Some(3))
        );
        assert_eq!(out.last().unwrap(), "[DONE]");

        let mut t = StreamTranslator::new(false, None);
        let err = t.feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
        assert!(matches!(err, Err(ProviderError::StreamBroken(m)) if m.contains("Overloaded")));
    }

    #[test]
    fn streamed_tool_use_becomes_tool_call_deltas() {
        let ev = |data: &str| format!("data: {data}\n\n");
        let events = [
            ev(r#"{"type":"message_start","message":{"id":"msg_3","model":"m","usage":{"input_tokens":5}}}"#),
            ev(r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
            ev(r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}"#),
            ev(r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_9","name":"get_weather","input":{}}}"#),
            ev(r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#),
            ev(r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}"#),
            ev(r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}}"#),
            ev(r#"{"type":"content_block_stop","index":1}"#),
            ev(r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":12}}"#),
            ev(r#"{"type":"message_stop"}"#),
        ]
        .concat();
        let out = translate(&events, false, None);
        let deltas: Vec<Value> =
            out.iter().filter_map(|d| serde_json::from_str::<Value>(d).ok()).map(|c| c["choices"][0].clone()).collect();
        assert_eq!(deltas[1]["delta"]["content"], "Checking.");
        let start = &deltas[2]["delta"]["tool_calls"][0];
        assert_eq!((start["index"].as_u64(), start["id"].as_str()), (Some(0), Some("toolu_9")));
        assert_eq!(
            (start["function"]["name"].as_str(), start["function"]["arguments"].as_str()),
            (Some("get_weather"), Some(""))
        );
        let args: String = deltas[3..]
            .iter()
            .filter_map(|d| d.pointer("/delta/tool_calls/0/function/arguments").and_then(Value::as_str))
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({ "city": "Paris" }));
        assert_eq!(deltas.last().unwrap()["finish_reason"], "tool_calls");
        assert_eq!(out.last().unwrap(), "[DONE]");
    }

    #[test]
    fn the_forced_json_tool_becomes_the_answer_plain_and_streamed() {
        let v = json!({ "id": "msg_j", "model": "m", "stop_reason": "tool_use", "content": [
            { "type": "tool_use", "id": "toolu_j", "name": "json_answer", "input": { "days": 30 } }] });
        let o = from_anthropic(&v, Some("json_answer")).unwrap();
        let m = &o["choices"][0];
        assert_eq!(m["finish_reason"], "stop");
        assert!(m["message"].get("tool_calls").is_none());
        let answer: Value = serde_json::from_str(m["message"]["content"].as_str().unwrap()).unwrap();
        assert_eq!(answer, json!({ "days": 30 }));
        assert_eq!(o["id"], "msg_j");

        let ev = |data: &str| format!("data: {data}\n\n");
        let events = [
            ev(r#"{"type":"message_start","message":{"id":"msg_j","model":"m","usage":{"input_tokens":5}}}"#),
            ev(r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_j","name":"json_answer","input":{}}}"#),
            ev(r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"days\": "}}"#),
            ev(r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"30}"}}"#),
            ev(r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":4}}"#),
            ev(r#"{"type":"message_stop"}"#),
        ]
        .concat();
        let out = translate(&events, false, Some("json_answer"));
        let chunks: Vec<Value> = out.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
        let text: String =
            chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({ "days": 30 }));
        assert!(chunks.iter().all(|c| c.pointer("/choices/0/delta/tool_calls").is_none()));
        assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
    }
}
