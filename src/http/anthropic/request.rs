//! A Messages request → a chat request: `system` becomes a system message; text and image
//! blocks become message content; tools, the tool choice, an assistant's `tool_use` blocks and
//! the `tool_result` blocks answering them become OpenAI's function tools, `tool_choice`,
//! `tool_calls` and `tool` messages. What a chat request cannot carry is a 400 naming the field.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::super::error::ApiError;

/// The Messages request. Unknown fields are rejected, like on the OpenAI face.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MessagesRequest {
    model: String,
    messages: Vec<InMessage>,
    max_tokens: u64,
    #[serde(default)]
    system: Option<InContent>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    stream: bool,
    temperature: Option<f64>,
    top_p: Option<f64>,
    /// Accepted; OpenAI-shaped targets have no equivalent, so it is dropped.
    #[expect(dead_code, reason = "accepted for compatibility; no OpenAI equivalent")]
    top_k: Option<u64>,
    metadata: Option<Value>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    /// Extended thinking: its budget becomes OpenAI's `reasoning_effort`.
    thinking: Option<Value>,
    #[expect(dead_code, reason = "accepted for compatibility")]
    service_tier: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InMessage {
    role: InRole,
    content: InContent,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum InRole {
    User,
    Assistant,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum InContent {
    Text(String),
    Blocks(Vec<Block>),
}

/// A content block; extra keys (`cache_control`, `citations`…) are accepted and ignored.
#[derive(Debug, Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    /// `image`: where the image is.
    #[serde(default)]
    source: Option<Value>,
    /// `tool_use`: the call's id, tool name and arguments.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
    /// `tool_result`: the call it answers, its content and whether the tool failed.
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    content: Option<InContent>,
    #[serde(default)]
    is_error: bool,
}

pub(super) fn invalid(msg: String, param: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "unsupported_value", msg).param(param)
}

fn unsupported_block(kind: &str, at: &str, allowed: &str) -> ApiError {
    invalid(
        format!("`{at}`: content blocks of type `{kind}` are not supported here ({allowed})"),
        &format!("{at}.type"),
    )
}

fn text_block(b: &Block, at: &str) -> Result<String, ApiError> {
    b.text.clone().ok_or_else(|| invalid(format!("`{at}`: a text block needs `text`"), &format!("{at}.text")))
}

impl InContent {
    /// The content where only text can go (system, tool results): text blocks joined by line breaks.
    fn text(&self, at: &str) -> Result<String, ApiError> {
        match self {
            InContent::Text(t) => Ok(t.clone()),
            InContent::Blocks(blocks) => {
                let mut out = Vec::new();
                for (i, b) in blocks.iter().enumerate() {
                    let at = format!("{at}[{i}]");
                    match b.kind.as_str() {
                        "text" => out.push(text_block(b, &at)?),
                        kind => return Err(unsupported_block(kind, &at, "text only")),
                    }
                }
                Ok(out.join("\n"))
            }
        }
    }
}

/// An `image` block → an OpenAI `image_url` part (base64 sources as a `data:` URL).
fn image_part(b: &Block, at: &str) -> Result<Value, ApiError> {
    let src = b.source.as_ref();
    let field = |f: &str| src.and_then(|s| s.get(f)).and_then(Value::as_str);
    let url = match field("type") {
        Some("base64") => match (field("media_type"), field("data")) {
            (Some(m), Some(d)) => format!("data:{m};base64,{d}"),
            _ => return Err(invalid(format!("`{at}`: a base64 image needs `media_type` and `data`"), at)),
        },
        Some("url") => field("url").ok_or_else(|| invalid(format!("`{at}`: a url image needs `url`"), at))?.to_string(),
        _ => {
            return Err(invalid(format!("`{at}`: an image source must be `base64` or `url`"), &format!("{at}.source")))
        }
    };
    Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
}

/// User content as chat messages: each `tool_result` becomes a `tool` message (first, right
/// after the assistant's calls), the rest one user message (a string when it is only text).
fn user_messages(content: &InContent, at: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let blocks = match content {
        InContent::Text(t) => {
            out.push(json!({ "role": "user", "content": t }));
            return Ok(());
        }
        InContent::Blocks(b) => b,
    };
    let mut parts = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match b.kind.as_str() {
            "text" => parts.push(json!({ "type": "text", "text": text_block(b, &at)? })),
            "image" => parts.push(image_part(b, &at)?),
            "tool_result" => {
                let id = b.tool_use_id.as_deref().ok_or_else(|| {
                    invalid(format!("`{at}`: a tool_result needs `tool_use_id`"), &format!("{at}.tool_use_id"))
                })?;
                let text = match &b.content {
                    Some(c) => c.text(&format!("{at}.content"))?,
                    None => String::new(),
                };
                let text = if b.is_error { format!("Error: {text}") } else { text };
                out.push(json!({ "role": "tool", "tool_call_id": id, "content": text }));
            }
            kind => return Err(unsupported_block(kind, &at, "text, image, tool_result")),
        }
    }
    if parts.iter().all(|p| p["type"] == "text") {
        if !parts.is_empty() {
            let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
            out.push(json!({ "role": "user", "content": text.join("\n") }));
        }
    } else {
        out.push(json!({ "role": "user", "content": parts }));
    }
    Ok(())
}

/// Assistant content as one chat message: its text, and its `tool_use` blocks as `tool_calls`.
fn assistant_message(content: &InContent, at: &str) -> Result<Value, ApiError> {
    let blocks = match content {
        InContent::Text(t) => return Ok(json!({ "role": "assistant", "content": t })),
        InContent::Blocks(b) => b,
    };
    let mut text = Vec::new();
    let mut calls = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match b.kind.as_str() {
            "text" => text.push(text_block(b, &at)?),
            "tool_use" => {
                let (Some(id), Some(name)) = (&b.id, &b.name) else {
                    return Err(invalid(format!("`{at}`: a tool_use block needs `id` and `name`"), &at));
                };
                let args = b.input.as_ref().map_or_else(|| "{}".to_string(), Value::to_string);
                calls.push(json!({ "id": id, "type": "function", "function": { "name": name, "arguments": args } }));
            }
            // Earlier turns' reasoning: no OpenAI-shaped request can carry it back.
            "thinking" | "redacted_thinking" => {}
            kind => return Err(unsupported_block(kind, &at, "text, tool_use, thinking")),
        }
    }
    let mut m = json!({ "role": "assistant", "content": text.join("\n") });
    if !calls.is_empty() {
        if text.is_empty() {
            m["content"] = Value::Null;
        }
        m["tool_calls"] = Value::Array(calls);
    }
    Ok(m)
}

/// Anthropic tools → OpenAI function tools (client tools only).
fn tools(list: &[Value]) -> Result<Vec<Value>, ApiError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let at = format!("tools[{i}]");
            if let Some(kind) = t.get("type").and_then(Value::as_str).filter(|k| *k != "custom") {
                return Err(invalid(format!("`{at}`: server tools (`{kind}`) are not supported"), &format!("{at}.type")));
            }
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("`{at}`: needs `name`"), &format!("{at}.name")))?;
            let mut f = json!({ "name": name,
                "parameters": t.get("input_schema").cloned().unwrap_or_else(|| json!({ "type": "object", "properties": {} })) });
            if let Some(d) = t.get("description").and_then(Value::as_str) {
                f["description"] = json!(d);
            }
            Ok(json!({ "type": "function", "function": f }))
        })
        .collect()
}

/// Anthropic `tool_choice` → OpenAI `tool_choice` and `parallel_tool_calls`.
fn tool_choice(c: &Value, body: &mut Map<String, Value>) -> Result<(), ApiError> {
    let choice = match (c.get("type").and_then(Value::as_str), c.get("name").and_then(Value::as_str)) {
        (Some("auto"), _) => json!("auto"),
        (Some("any"), _) => json!("required"),
        (Some("none"), _) => json!("none"),
        (Some("tool"), Some(name)) => json!({ "type": "function", "function": { "name": name } }),
        _ => {
            return Err(invalid(
                "`tool_choice` must be auto, any, none or {\"type\":\"tool\",\"name\":…}".into(),
                "tool_choice",
            ))
        }
    };
    body.insert("tool_choice".into(), choice);
    if c.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
        body.insert("parallel_tool_calls".into(), json!(false));
    }
    Ok(())
}

pub(super) fn to_chat(req: &MessagesRequest) -> Result<Value, ApiError> {
    let mut messages = Vec::new();
    if let Some(s) = &req.system {
        messages.push(json!({ "role": "system", "content": s.text("system")? }));
    }
    for (i, m) in req.messages.iter().enumerate() {
        let at = format!("messages[{i}].content");
        match m.role {
            InRole::User => user_messages(&m.content, &at, &mut messages)?,
            InRole::Assistant => messages.push(assistant_message(&m.content, &at)?),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("max_tokens".into(), json!(req.max_tokens));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(s) = req.stop_sequences.as_ref().filter(|s| !s.is_empty()) {
        body.insert("stop".into(), json!(s));
    }
    if let Some(t) = req.tools.as_deref().filter(|t| !t.is_empty()) {
        body.insert("tools".into(), Value::Array(tools(t)?));
        if let Some(c) = &req.tool_choice {
            tool_choice(c, &mut body)?;
        }
    }
    if let Some(t) = &req.thinking {
        match (t.get("type").and_then(Value::as_str), t.get("budget_tokens").and_then(Value::as_u64)) {
            (Some("disabled"), _) => {}
            (Some("enabled"), Some(b)) => {
                let effort = match b {
                    0..=1024 => "low",
                    1025..=2048 => "medium",
                    _ => "high",
                };
                body.insert("reasoning_effort".into(), json!(effort));
            }
            _ => {
                return Err(invalid(
                    "`thinking` must be {\"type\":\"enabled\",\"budget_tokens\":N} or {\"type\":\"disabled\"}".into(),
                    "thinking",
                ))
            }
        }
    }
    if let Some(u) = req.metadata.as_ref().and_then(|m| m.get("user_id")).and_then(Value::as_str) {
        body.insert("user".into(), json!(u));
    }
    if req.stream {
        super::super::chunk_stream::ask_for_chunks(&mut body);
    }
    Ok(Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::super::super::extract::parse_value;
    use super::*;

    #[test]
    fn requests_become_chat_requests() {
        let raw = json!({ "model": "m", "max_tokens": 20, "system": [{ "type": "text", "text": "Be brief." }],
            "messages": [{ "role": "user", "content": [{ "type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"} }] }],
            "stop_sequences": ["END"], "metadata": { "user_id": "u1" }, "stream": true, "top_k": 5 });
        let req: MessagesRequest = parse_value(&raw).unwrap();
        let chat = to_chat(&req).unwrap();
        assert_eq!(chat["messages"][0], json!({ "role": "system", "content": "Be brief." }));
        assert_eq!(chat["messages"][1], json!({ "role": "user", "content": "Hi" }));
        assert_eq!((chat["stop"][0].as_str(), chat["user"].as_str()), (Some("END"), Some("u1")));
        assert_eq!(chat["stream_options"]["include_usage"], true);
        assert!(chat.get("tools").is_none());

        let typo = json!({ "model": "m", "max_tokens": 5, "messages": [], "temprature": 1 });
        assert_eq!(parse_value::<MessagesRequest>(&typo).unwrap_err().status, StatusCode::UNPROCESSABLE_ENTITY);
        let doc = json!({ "model": "m", "max_tokens": 5, "messages": [{ "role": "user", "content": [{ "type": "document" }] }] });
        let err = to_chat(&parse_value(&doc).unwrap()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].content[0].type"));
    }

    #[test]
    fn tools_tool_use_and_tool_results_become_function_calls_and_tool_messages() {
        let raw = json!({ "model": "m", "max_tokens": 100,
            "tools": [{ "name": "get_weather", "description": "Weather in a city",
                        "input_schema": { "type": "object", "properties": { "city": { "type": "string" } } } }],
            "tool_choice": { "type": "any", "disable_parallel_tool_use": true },
            "messages": [
                { "role": "user", "content": "Weather in Paris?" },
                { "role": "assistant", "content": [{ "type": "text", "text": "Checking." },
                    { "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": { "city": "Paris" } }] },
                { "role": "user", "content": [
                    { "type": "tool_result", "tool_use_id": "toolu_1", "content": [{ "type": "text", "text": "18C" }] },
                    { "type": "text", "text": "And tomorrow?" },
                    { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "AAAA" } }] }
            ] });
        let chat = to_chat(&parse_value(&raw).unwrap()).unwrap();
        assert_eq!(chat["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(chat["tools"][0]["function"]["parameters"]["properties"]["city"]["type"], "string");
        assert_eq!(
            (chat["tool_choice"].as_str(), chat["parallel_tool_calls"].as_bool()),
            (Some("required"), Some(false))
        );
        let m = chat["messages"].as_array().unwrap();
        assert_eq!(m[1]["content"], "Checking.");
        assert_eq!(m[1]["tool_calls"][0]["id"], "toolu_1");
        let args: Value =
            serde_json::from_str(m[1]["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({ "city": "Paris" }));
        assert_eq!(m[2], json!({ "role": "tool", "tool_call_id": "toolu_1", "content": "18C" }));
        assert_eq!(m[3]["content"][0], json!({ "type": "text", "text": "And tomorrow?" }));
        assert_eq!(m[3]["content"][1]["image_url"]["url"], "data:image/png;base64,AAAA");

        let server = json!({ "model": "m", "max_tokens": 5, "messages": [],
                             "tools": [{ "type": "web_search_20250305", "name": "web_search" }] });
        assert_eq!(to_chat(&parse_value(&server).unwrap()).unwrap_err().param.as_deref(), Some("tools[0].type"));
        let orphan = json!({ "model": "m", "max_tokens": 5,
                             "messages": [{ "role": "user", "content": [{ "type": "tool_result", "content": "x" }] }] });
        let err = to_chat(&parse_value(&orphan).unwrap()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].content[0].tool_use_id"));
    }

    #[test]
    fn thinking_becomes_a_reasoning_effort_and_earlier_thinking_is_dropped() {
        let raw = json!({ "model": "m", "max_tokens": 8000, "thinking": { "type": "enabled", "budget_tokens": 2000 },
            "messages": [{ "role": "user", "content": "Q" },
                         { "role": "assistant", "content": [{ "type": "thinking", "thinking": "hmm", "signature": "s" },
                                                            { "type": "text", "text": "A" }] },
                         { "role": "user", "content": "Q2" }] });
        let chat = to_chat(&parse_value(&raw).unwrap()).unwrap();
        assert_eq!(chat["reasoning_effort"], "medium");
        assert_eq!(chat["messages"][1], json!({ "role": "assistant", "content": "A" }));
        let off = json!({ "model": "m", "max_tokens": 5, "messages": [], "thinking": { "type": "disabled" } });
        assert!(to_chat(&parse_value(&off).unwrap()).unwrap().get("reasoning_effort").is_none());
        let bad = json!({ "model": "m", "max_tokens": 5, "messages": [], "thinking": { "type": "enabled" } });
        assert_eq!(to_chat(&parse_value(&bad).unwrap()).unwrap_err().param.as_deref(), Some("thinking"));
    }
}
