//! The Anthropic Messages wire format: `POST {base_url}/messages`, JSON or SSE. The gateway
//! speaks OpenAI's chat format inside, so this file translates the request on the way out and
//! the reply (or the stream, event by event) on the way back.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use super::transport::{body_bytes, body_stream, status_error, Endpoint, Transport};
use super::{OpenStream, ProviderError};
use crate::gateway::sse::{write_event, SseParser};
use crate::gateway::usage::asks_usage;

/// The API version this translation follows.
const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is used when the client sent none.
const DEFAULT_MAX_TOKENS: u64 = 4096;

pub struct AnthropicProvider {
    endpoint: Endpoint,
    client: Transport,
    /// Translate every stream's usage into a final usage chunk (removed by the relay when
    /// the client did not ask for it).
    stream_usage: bool,
}

/// A request this format cannot carry: the client's error, never retried.
fn unsupported(msg: impl Into<String>) -> ProviderError {
    ProviderError::Status { status: 400, retry_after: None, body: msg.into() }
}

/// The text of an OpenAI message `content` (a string or text parts).
fn content_text(c: &Value, i: usize) -> Result<String, ProviderError> {
    match c {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => out.push(t),
                    (kind, _) => {
                        return Err(unsupported(format!(
                            "messages[{i}]: content part `{}` is not supported by the anthropic provider (text only)",
                            kind.unwrap_or("?")
                        )))
                    }
                }
            }
            Ok(out.join("\n"))
        }
        _ => Err(unsupported(format!("messages[{i}].content must be a string or an array of parts"))),
    }
}

/// OpenAI chat request → Anthropic Messages request. System and developer messages become
/// `system`; consecutive turns of one role are merged (Anthropic wants them alternating).
pub fn to_anthropic(body: &Value) -> Result<Value, ProviderError> {
    let msgs =
        body.get("messages").and_then(Value::as_array).ok_or_else(|| unsupported("`messages` must be an array"))?;
    let mut system = Vec::new();
    let mut turns: Vec<(String, String)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let text = content_text(m.get("content").unwrap_or(&Value::Null), i)?;
        let role = match role {
            "system" | "developer" => {
                system.push(text);
                continue;
            }
            "user" | "tool" | "function" => "user",
            "assistant" => "assistant",
            other => return Err(unsupported(format!("messages[{i}].role `{other}` is not supported"))),
        };
        match turns.last_mut() {
            Some((r, t)) if r == role => {
                t.push_str("\n\n");
                t.push_str(&text);
            }
            _ => turns.push((role.to_string(), text)),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), body.get("model").cloned().unwrap_or(Value::Null));
    out.insert(
        "messages".into(),
        Value::Array(turns.into_iter().map(|(role, text)| json!({ "role": role, "content": text })).collect()),
    );
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    let max = ["max_completion_tokens", "max_tokens"].iter().find_map(|f| body.get(*f).and_then(Value::as_u64));
    out.insert("max_tokens".into(), json!(max.unwrap_or(DEFAULT_MAX_TOKENS)));
    for f in ["temperature", "top_p"] {
        if let Some(v) = body.get(f).filter(|v| !v.is_null()) {
            out.insert(f.into(), v.clone());
        }
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(u) = body.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({ "user_id": u }));
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

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

/// Anthropic Messages reply → OpenAI chat completion.
pub fn from_anthropic(v: &Value) -> Result<Value, ProviderError> {
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::Malformed("no `content` array".into()))?;
    let text: String = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b["text"].as_str())
        .collect();
    let mut out = json!({
        "id": v.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": unix_now(),
        "model": v.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text },
                      "finish_reason": finish_reason(v.get("stop_reason").and_then(Value::as_str)) }],
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
}

impl StreamTranslator {
    pub fn new(include_usage: bool) -> Self {
        Self {
            sse: SseParser::default(),
            id: String::new(),
            model: String::new(),
            created: unix_now(),
            include_usage,
            usage: json!({}),
            output_tokens: None,
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
                "content_block_delta" => {
                    if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
                        self.chunk(&mut out, json!({ "content": t }), Value::Null);
                    }
                }
                "message_delta" => {
                    if let Some(n) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                        self.output_tokens = Some(n);
                    }
                    let reason = finish_reason(v.pointer("/delta/stop_reason").and_then(Value::as_str));
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

impl AnthropicProvider {
    /// The path every call posts to, after the provider's base URL.
    pub const PATH: &'static str = "/messages";
    /// The API version every call names (a provider's `headers` may name another).
    pub const VERSION_HEADER: (&'static str, &'static str) = ("anthropic-version", API_VERSION);

    pub fn new(endpoint: Endpoint, client: &Transport, stream_usage: bool) -> Self {
        Self { endpoint, client: client.clone(), stream_usage }
    }

    pub async fn complete(&self, body: &Value, timeout: Duration) -> Result<Value, ProviderError> {
        let req = to_anthropic(body)?;
        let work = async {
            let res = self.client.post_json(&self.endpoint, &req).await?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            let bytes = body_bytes(res).await?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| ProviderError::Malformed(e.to_string()))?;
            from_anthropic(&v)
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| ProviderError::Timeout)?
    }

    pub async fn open_stream(&self, body: &Value, first_token_timeout: Duration) -> Result<OpenStream, ProviderError> {
        let mut req = to_anthropic(body)?;
        req["stream"] = Value::Bool(true);
        let include_usage = self.stream_usage || asks_usage(body);
        let work = async {
            let res = self.client.post_json(&self.endpoint, &req).await?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            let mut tr = StreamTranslator::new(include_usage);
            let mut upstream = body_stream(res);
            // The first translated bytes (Anthropic's `ping`s translate to nothing).
            let first = loop {
                match upstream.next().await {
                    Some(Ok(b)) => {
                        let out = tr.feed(&b)?;
                        if !out.is_empty() {
                            break out;
                        }
                    }
                    Some(Err(e)) => return Err(e),
                    None => return Err(ProviderError::StreamBroken("the stream ended before its first event".into())),
                }
            };
            let rest = upstream
                .map(move |r| r.and_then(|b| tr.feed(&b)))
                .filter(|r| std::future::ready(!matches!(r, Ok(b) if b.is_empty())))
                .boxed();
            Ok(OpenStream { first, rest })
        };
        tokio::time::timeout(first_token_timeout, work).await.map_err(|_| ProviderError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_move_system_messages_and_merge_turns() {
        let body = json!({ "model": "claude-x", "max_tokens": 50, "stop": "END", "temperature": 0.2, "user": "u1",
            "messages": [
                { "role": "system", "content": "Be brief." },
                { "role": "user", "content": "Hi" },
                { "role": "user", "content": [{ "type": "text", "text": "there" }] },
                { "role": "assistant", "content": "Hello" },
                { "role": "user", "content": "Bye" }
            ] });
        let a = to_anthropic(&body).unwrap();
        assert_eq!(a["system"], "Be brief.");
        assert_eq!(a["messages"].as_array().unwrap().len(), 3);
        assert_eq!(a["messages"][0]["content"], "Hi\n\nthere");
        assert_eq!((a["max_tokens"].as_u64(), a["stop_sequences"][0].as_str()), (Some(50), Some("END")));
        assert_eq!(a["metadata"]["user_id"], "u1");
        assert_eq!(to_anthropic(&json!({ "messages": [] })).unwrap()["max_tokens"], DEFAULT_MAX_TOKENS);
        let image = json!({ "messages": [{ "role": "user", "content": [{ "type": "image_url" }] }] });
        assert!(matches!(to_anthropic(&image), Err(ProviderError::Status { status: 400, .. })));
    }

    #[test]
    fn replies_become_chat_completions_with_usage() {
        let v = json!({ "id": "msg_1", "type": "message", "model": "claude-x", "stop_reason": "max_tokens",
            "content": [{ "type": "text", "text": "Hello" }, { "type": "text", "text": " world" }],
            "usage": { "input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 6 } });
        let o = from_anthropic(&v).unwrap();
        assert_eq!(o["choices"][0]["message"]["content"], "Hello world");
        assert_eq!(o["choices"][0]["finish_reason"], "length");
        assert_eq!(
            (o["usage"]["prompt_tokens"].as_u64(), o["usage"]["completion_tokens"].as_u64()),
            (Some(16), Some(4))
        );
        assert_eq!(o["usage"]["prompt_tokens_details"]["cached_tokens"], 6);
        assert!(matches!(from_anthropic(&json!({ "id": "x" })), Err(ProviderError::Malformed(_))));
    }

    #[test]
    fn streams_translate_event_by_event_and_errors_break_them() {
        let events = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":7}}}\n\n\
            event: ping\ndata: {\"type\":\"ping\"}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n\
            event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let mut t = StreamTranslator::new(true);
        let mut out = String::new();
        for piece in events.as_bytes().chunks(9) {
            out.push_str(std::str::from_utf8(&t.feed(piece).unwrap()).unwrap());
        }
        let mut p = SseParser::default();
        let evs = p.push(out.as_bytes());
        let datas: Vec<Value> = evs.iter().filter_map(|e| serde_json::from_str(&e.data).ok()).collect();
        assert_eq!(datas[1]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(datas[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            (datas[3]["usage"]["prompt_tokens"].as_u64(), datas[3]["usage"]["completion_tokens"].as_u64()),
            (Some(7), Some(3))
        );
        assert_eq!(evs.last().unwrap().data, "[DONE]");

        let mut t = StreamTranslator::new(false);
        let err = t.feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
        assert!(matches!(err, Err(ProviderError::StreamBroken(m)) if m.contains("Overloaded")));
    }
}
