//! A Responses request → a chat request: `instructions` becomes a system message; `input` (a
//! string, or message, `function_call` and `function_call_output` items) becomes messages;
//! function tools, `tool_choice`, `text.format` and `reasoning.effort` become their chat
//! equivalents; a `previous_response_id`'s stored conversation goes before the new input.
//! What needs state Keel does not keep (`conversation` objects, `background`, stored prompts)
//! and OpenAI's hosted tools are a 400 naming the field.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::super::error::ApiError;

/// The Responses request. Unknown fields are rejected, like on the chat face.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResponsesRequest {
    model: String,
    input: Input,
    instructions: Option<String>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    #[serde(default)]
    stream: bool,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    text: Option<TextOptions>,
    reasoning: Option<Reasoning>,
    metadata: Option<Map<String, Value>>,
    user: Option<String>,
    safety_identifier: Option<String>,
    service_tier: Option<String>,
    /// The stored response this one continues.
    previous_response_id: Option<String>,
    /// `false`: the response is not kept (it cannot be continued or fetched).
    store: Option<bool>,
    /// Needs state Keel does not keep: refused when set.
    conversation: Option<Value>,
    background: Option<bool>,
    prompt: Option<Value>,
    /// Accepted and without effect: Keel has no encrypted reasoning or log-probabilities to
    /// include, never truncates a conversation, and bounds model calls with its own loop guard.
    #[expect(dead_code, reason = "accepted for compatibility; see the field's comment")]
    include: Option<Vec<String>>,
    #[expect(dead_code, reason = "accepted for compatibility")]
    truncation: Option<String>,
    #[expect(dead_code, reason = "accepted for compatibility")]
    stream_options: Option<Value>,
    #[expect(dead_code, reason = "accepted for compatibility")]
    prompt_cache_key: Option<String>,
    #[expect(dead_code, reason = "accepted for compatibility")]
    max_tool_calls: Option<u64>,
    #[expect(dead_code, reason = "accepted for compatibility")]
    top_logprobs: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<Item>),
}

/// An input item. Items carry other keys (`id`, `status`) that a stateless face ignores.
#[derive(Debug, Deserialize)]
struct Item {
    #[serde(rename = "type")]
    kind: Option<String>,
    role: Option<String>,
    content: Option<Content>,
    call_id: Option<String>,
    name: Option<String>,
    arguments: Option<String>,
    output: Option<Content>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    refusal: Option<String>,
    image_url: Option<String>,
    detail: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextOptions {
    format: Option<Value>,
    verbosity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reasoning {
    effort: Option<String>,
    /// Summaries are the provider's to write; chat-shaped targets return reasoning as it is.
    #[expect(dead_code, reason = "accepted for compatibility")]
    summary: Option<String>,
    #[expect(dead_code, reason = "accepted for compatibility (older name of `summary`)")]
    generate_summary: Option<String>,
}

fn invalid(msg: String, param: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "unsupported_value", msg).param(param)
}

fn stateless(field: &str, instead: &str) -> ApiError {
    invalid(format!("`{field}` is not supported by Keel; {instead}"), field)
}

impl ResponsesRequest {
    pub(super) fn previous_response_id(&self) -> Option<&str> {
        self.previous_response_id.as_deref()
    }

    /// Whether the client lets the response be kept (OpenAI's default: yes).
    pub(super) fn may_store(&self) -> bool {
        self.store != Some(false)
    }

    /// The request fields a Response object repeats back (`stored`: whether it is kept).
    pub(super) fn echo(&self, stored: bool) -> Map<String, Value> {
        let mut e = Map::new();
        e.insert("instructions".into(), json!(self.instructions));
        e.insert("max_output_tokens".into(), json!(self.max_output_tokens));
        e.insert("temperature".into(), json!(self.temperature));
        e.insert("top_p".into(), json!(self.top_p));
        e.insert("tools".into(), json!(self.tools.clone().unwrap_or_default()));
        e.insert("tool_choice".into(), self.tool_choice.clone().unwrap_or_else(|| json!("auto")));
        e.insert("parallel_tool_calls".into(), json!(self.parallel_tool_calls.unwrap_or(true)));
        let format = self.text.as_ref().and_then(|t| t.format.clone()).unwrap_or_else(|| json!({ "type": "text" }));
        e.insert("text".into(), json!({ "format": format }));
        let effort = self.reasoning.as_ref().and_then(|r| r.effort.clone());
        e.insert("reasoning".into(), json!({ "effort": effort, "summary": null }));
        e.insert("metadata".into(), Value::Object(self.metadata.clone().unwrap_or_default()));
        e.insert("user".into(), json!(self.user));
        e.insert("previous_response_id".into(), json!(self.previous_response_id));
        e.insert("store".into(), json!(stored));
        e.insert("truncation".into(), json!("disabled"));
        e
    }
}

/// A content's text, where only text can go (assistant turns, tool outputs).
fn text_of(c: &Content, at: &str) -> Result<String, ApiError> {
    match c {
        Content::Text(t) => Ok(t.clone()),
        Content::Parts(parts) => {
            let mut out = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                match (p.kind.as_str(), &p.text, &p.refusal) {
                    ("input_text" | "output_text" | "text", Some(t), _) | ("refusal", _, Some(t)) => {
                        out.push(t.clone())
                    }
                    (kind, ..) => {
                        return Err(invalid(
                            format!("`{at}[{i}]`: a `{kind}` part is not supported here (text parts only)"),
                            &format!("{at}[{i}].type"),
                        ))
                    }
                }
            }
            Ok(out.join("\n"))
        }
    }
}

/// User (and system) content as chat content: a string when it is only text, else parts.
fn user_content(c: &Content, at: &str) -> Result<Value, ApiError> {
    let parts = match c {
        Content::Text(t) => return Ok(json!(t)),
        Content::Parts(p) => p,
    };
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match p.kind.as_str() {
            "input_text" => {
                let t =
                    p.text.as_ref().ok_or_else(|| invalid(format!("`{at}` needs `text`"), &format!("{at}.text")))?;
                out.push(json!({ "type": "text", "text": t }));
            }
            "input_image" => {
                let url = p.image_url.as_ref().ok_or_else(|| {
                    invalid(
                        format!("`{at}`: an image needs `image_url` (files are not supported)"),
                        &format!("{at}.image_url"),
                    )
                })?;
                let mut image = json!({ "url": url });
                if let Some(d) = &p.detail {
                    image["detail"] = json!(d);
                }
                out.push(json!({ "type": "image_url", "image_url": image }));
            }
            kind => {
                return Err(invalid(
                    format!("`{at}`: a `{kind}` part is not supported (input_text, input_image)"),
                    &format!("{at}.type"),
                ))
            }
        }
    }
    if out.iter().all(|p| p["type"] == "text") {
        let text: Vec<&str> = out.iter().filter_map(|p| p["text"].as_str()).collect();
        return Ok(json!(text.join("\n")));
    }
    Ok(Value::Array(out))
}

/// A `function_call` item joins the assistant message just before it (a turn's text and its
/// parallel calls are one chat message), or starts one.
fn push_call(messages: &mut Vec<Value>, call: Value) {
    if let Some(last) = messages.last_mut().filter(|m| m["role"] == "assistant") {
        if let Some(calls) = last.get_mut("tool_calls").and_then(Value::as_array_mut) {
            calls.push(call);
        } else {
            if last["content"] == "" {
                last["content"] = Value::Null;
            }
            last["tool_calls"] = json!([call]);
        }
        return;
    }
    messages.push(json!({ "role": "assistant", "content": null, "tool_calls": [call] }));
}

fn item_messages(items: &[Item], messages: &mut Vec<Value>) -> Result<(), ApiError> {
    if items.is_empty() {
        return Err(invalid("`input` must not be empty".into(), "input"));
    }
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let need = |v: &Option<String>, f: &str| {
            v.clone().ok_or_else(|| invalid(format!("`{at}` needs `{f}`"), &format!("{at}.{f}")))
        };
        match item.kind.as_deref() {
            None | Some("message") => {
                let role = need(&item.role, "role")?;
                let content = item
                    .content
                    .as_ref()
                    .ok_or_else(|| invalid(format!("`{at}` needs `content`"), &format!("{at}.content")))?;
                let at = format!("{at}.content");
                let m = match role.as_str() {
                    "user" => json!({ "role": "user", "content": user_content(content, &at)? }),
                    // `developer` is OpenAI's newer name for system; every chat server knows `system`.
                    "system" | "developer" => json!({ "role": "system", "content": text_of(content, &at)? }),
                    "assistant" => json!({ "role": "assistant", "content": text_of(content, &at)? }),
                    other => {
                        return Err(invalid(
                            format!("`input[{i}].role` `{other}` is not one of user, assistant, system, developer"),
                            &format!("input[{i}].role"),
                        ))
                    }
                };
                messages.push(m);
            }
            Some("function_call") => {
                let call = json!({ "id": need(&item.call_id, "call_id")?, "type": "function",
                    "function": { "name": need(&item.name, "name")?, "arguments": item.arguments.clone().unwrap_or_default() } });
                push_call(messages, call);
            }
            Some("function_call_output") => {
                let output = match &item.output {
                    Some(o) => text_of(o, &format!("{at}.output"))?,
                    None => return Err(invalid(format!("`{at}` needs `output`"), &format!("{at}.output"))),
                };
                messages.push(json!({ "role": "tool", "tool_call_id": need(&item.call_id, "call_id")?, "content": output }));
            }
            // An earlier turn's reasoning: no chat request can carry it back.
            Some("reasoning") => {}
            Some(kind) => {
                return Err(invalid(
                    format!("`{at}`: items of type `{kind}` are not supported (message, function_call, function_call_output, reasoning)"),
                    &format!("{at}.type"),
                ))
            }
        }
    }
    Ok(())
}

/// Function tools → chat tools; OpenAI's hosted tools (web search, file search…) run on
/// OpenAI's side only.
fn tools(list: &[Value]) -> Result<Vec<Value>, ApiError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let at = format!("tools[{i}]");
            match t.get("type").and_then(Value::as_str) {
                Some("function") => {}
                Some(kind) => {
                    return Err(invalid(
                        format!("`{at}`: hosted tools (`{kind}`) are not supported; only `function` tools"),
                        &format!("{at}.type"),
                    ))
                }
                None => return Err(invalid(format!("`{at}` needs `type`"), &format!("{at}.type"))),
            }
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("`{at}` needs `name`"), &format!("{at}.name")))?;
            let mut f = json!({ "name": name,
                "parameters": t.get("parameters").cloned().filter(|p| !p.is_null()).unwrap_or_else(|| json!({ "type": "object", "properties": {} })) });
            for k in ["description", "strict"] {
                if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
                    f[k] = v.clone();
                }
            }
            Ok(json!({ "type": "function", "function": f }))
        })
        .collect()
}

fn tool_choice(c: &Value) -> Result<Value, ApiError> {
    match (c.as_str(), c.get("type").and_then(Value::as_str), c.get("name").and_then(Value::as_str)) {
        (Some(s @ ("auto" | "none" | "required")), ..) => Ok(json!(s)),
        (None, Some("function"), Some(name)) => Ok(json!({ "type": "function", "function": { "name": name } })),
        _ => Err(invalid(
            "`tool_choice` must be auto, none, required or {\"type\":\"function\",\"name\":…}".into(),
            "tool_choice",
        )),
    }
}

/// `text.format` → `response_format` (none for plain text).
fn response_format(f: &Value) -> Result<Option<Value>, ApiError> {
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({ "type": "json_object" }))),
        Some("json_schema") => {
            let (Some(name), Some(schema)) = (f.get("name").and_then(Value::as_str), f.get("schema")) else {
                return Err(invalid(
                    "`text.format`: a json_schema format needs `name` and `schema`".into(),
                    "text.format",
                ));
            };
            let mut s = json!({ "name": name, "schema": schema });
            for k in ["strict", "description"] {
                if let Some(v) = f.get(k).filter(|v| !v.is_null()) {
                    s[k] = v.clone();
                }
            }
            Ok(Some(json!({ "type": "json_schema", "json_schema": s })))
        }
        _ => Err(invalid("`text.format.type` must be text, json_object or json_schema".into(), "text.format.type")),
    }
}

/// The chat request, and (with `keep`) the conversation it carries without the request's
/// `instructions` (`prior`, a stored response's messages, then the new input): what is kept if
/// the response is. Without `keep` the conversation moves into the request uncopied.
pub(super) fn to_chat(
    req: &ResponsesRequest,
    prior: Vec<Value>,
    keep: bool,
) -> Result<(Value, Option<Vec<Value>>), ApiError> {
    if req.conversation.is_some() {
        return Err(stateless(
            "conversation",
            "send the whole conversation in `input`, or continue a stored response with `previous_response_id`",
        ));
    }
    if req.prompt.is_some() {
        return Err(stateless("prompt", "send the prompt as `instructions` and `input`"));
    }
    if req.background == Some(true) {
        return Err(stateless("background", "ask without it (or with `stream: true`)"));
    }
    let mut conversation = prior;
    match &req.input {
        Input::Text(t) => conversation.push(json!({ "role": "user", "content": t })),
        Input::Items(items) => item_messages(items, &mut conversation)?,
    }
    let mut messages = Vec::with_capacity(conversation.len() + 1);
    if let Some(s) = &req.instructions {
        messages.push(json!({ "role": "system", "content": s }));
    }
    let kept = if keep {
        messages.extend(conversation.iter().cloned());
        Some(conversation)
    } else {
        messages.extend(conversation);
        None
    };
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(n) = req.max_output_tokens {
        body.insert("max_completion_tokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(t) = req.tools.as_deref().filter(|t| !t.is_empty()) {
        body.insert("tools".into(), Value::Array(tools(t)?));
        if let Some(c) = &req.tool_choice {
            body.insert("tool_choice".into(), tool_choice(c)?);
        }
        if let Some(p) = req.parallel_tool_calls {
            body.insert("parallel_tool_calls".into(), json!(p));
        }
    }
    if let Some(t) = &req.text {
        if t.verbosity.is_some() {
            return Err(invalid("`text.verbosity` is not supported by chat-shaped targets".into(), "text.verbosity"));
        }
        if let Some(f) = t.format.as_ref().map(response_format).transpose()?.flatten() {
            body.insert("response_format".into(), f);
        }
    }
    if let Some(e) = req.reasoning.as_ref().and_then(|r| r.effort.as_ref()) {
        body.insert("reasoning_effort".into(), json!(e));
    }
    if let Some(m) = req.metadata.as_ref().filter(|m| !m.is_empty()) {
        body.insert("metadata".into(), Value::Object(m.clone()));
    }
    if let Some(u) = req.user.as_ref().or(req.safety_identifier.as_ref()) {
        body.insert("user".into(), json!(u));
    }
    if let Some(t) = &req.service_tier {
        body.insert("service_tier".into(), json!(t));
    }
    if req.stream {
        super::super::chunk_stream::ask_for_chunks(&mut body);
    }
    Ok((Value::Object(body), kept))
}

#[cfg(test)]
mod tests {
    use super::super::super::extract::parse_value;
    use super::*;

    fn chat(raw: Value) -> Result<Value, ApiError> {
        Ok(to_chat(&parse_value::<ResponsesRequest>(&raw)?, Vec::new(), false)?.0)
    }

    #[test]
    fn a_string_input_with_instructions_becomes_two_messages() {
        let c = chat(json!({ "model": "m", "input": "Hi", "instructions": "Be brief.", "max_output_tokens": 50,
            "reasoning": { "effort": "low" }, "stream": true, "store": true, "metadata": { "conversation_id": "c1" } }))
        .unwrap();
        assert_eq!(
            c["messages"],
            json!([{ "role": "system", "content": "Be brief." }, { "role": "user", "content": "Hi" }])
        );
        assert_eq!((c["max_completion_tokens"].as_u64(), c["reasoning_effort"].as_str()), (Some(50), Some("low")));
        assert_eq!(c["stream_options"], json!({ "include_usage": true }));
        assert_eq!(c["metadata"], json!({ "conversation_id": "c1" }));
        assert!(c.get("store").is_none(), "Keel stores no response");
    }

    #[test]
    fn a_previous_conversation_goes_between_the_instructions_and_the_new_input() {
        let req: ResponsesRequest =
            parse_value(&json!({ "model": "m", "input": "And in May?", "instructions": "Be brief.", "previous_response_id": "resp_1" }))
                .unwrap();
        let prior = vec![
            json!({ "role": "user", "content": "Rain in April?" }),
            json!({ "role": "assistant", "content": "Yes." }),
        ];
        let (c, conversation) = to_chat(&req, prior.clone(), true).unwrap();
        let conversation = conversation.unwrap();
        let m = c["messages"].as_array().unwrap();
        assert_eq!((m.len(), m[0]["content"].as_str(), &m[1..3]), (4, Some("Be brief."), &prior[..]));
        assert_eq!(m[3], json!({ "role": "user", "content": "And in May?" }));
        assert_eq!(conversation, m[1..].to_vec(), "what is kept has no instructions: the next request brings its own");
        assert_eq!((req.previous_response_id(), req.may_store()), (Some("resp_1"), true));
    }

    #[test]
    fn items_become_messages_with_tool_calls_and_results() {
        let c = chat(json!({ "model": "m", "input": [
            { "role": "developer", "content": "Use tools." },
            { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "Weather?" },
                { "type": "input_image", "image_url": "https://x/y.png", "detail": "low" }] },
            { "type": "reasoning", "id": "rs_1", "summary": [] },
            { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": "Checking.", "annotations": [] }] },
            { "type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}", "id": "fc_1", "status": "completed" },
            { "type": "function_call", "call_id": "call_2", "name": "now", "arguments": "{}" },
            { "type": "function_call_output", "call_id": "call_1", "output": "rain" },
            { "type": "function_call_output", "call_id": "call_2", "output": [{ "type": "input_text", "text": "noon" }] }],
            "tools": [{ "type": "function", "name": "weather", "parameters": { "type": "object" }, "strict": true }],
            "tool_choice": { "type": "function", "name": "weather" },
            "text": { "format": { "type": "json_schema", "name": "w", "schema": { "type": "object" }, "strict": true } } }))
        .unwrap();
        let m = c["messages"].as_array().unwrap();
        assert_eq!(m[0], json!({ "role": "system", "content": "Use tools." }));
        assert_eq!(
            m[1]["content"][1],
            json!({ "type": "image_url", "image_url": { "url": "https://x/y.png", "detail": "low" } })
        );
        assert_eq!(m[2]["content"], "Checking.");
        let calls = m[2]["tool_calls"].as_array().unwrap();
        assert_eq!((calls.len(), calls[1]["function"]["name"].as_str()), (2, Some("now")));
        assert_eq!(m[3], json!({ "role": "tool", "tool_call_id": "call_1", "content": "rain" }));
        assert_eq!(m[4]["content"], "noon");
        assert_eq!(m.len(), 5);
        assert_eq!(
            c["tools"][0]["function"],
            json!({ "name": "weather", "parameters": { "type": "object" }, "strict": true })
        );
        assert_eq!(c["tool_choice"], json!({ "type": "function", "function": { "name": "weather" } }));
        assert_eq!(c["response_format"]["json_schema"]["name"], "w");
    }

    #[test]
    fn what_needs_state_or_hosted_tools_is_a_400_naming_the_field() {
        for (raw, param, says) in [
            (json!({ "model": "m", "input": "x", "conversation": "conv_1" }), "conversation", "whole conversation"),
            (json!({ "model": "m", "input": "x", "background": true }), "background", "not supported by Keel"),
            (json!({ "model": "m", "input": [] }), "input", "must not be empty"),
            (
                json!({ "model": "m", "input": [{ "type": "item_reference", "id": "x" }] }),
                "input[0].type",
                "item_reference",
            ),
            (
                json!({ "model": "m", "input": "x", "tools": [{ "type": "web_search" }] }),
                "tools[0].type",
                "hosted tools",
            ),
            (
                json!({ "model": "m", "input": [{ "role": "user", "content": [{ "type": "input_file", "file_id": "f" }] }] }),
                "input[0].content[0].type",
                "input_file",
            ),
            (
                json!({ "model": "m", "input": "x", "tool_choice": "any", "tools": [{ "type": "function", "name": "f" }] }),
                "tool_choice",
                "auto, none",
            ),
            (
                json!({ "model": "m", "input": "x", "text": { "format": { "type": "yaml" } } }),
                "text.format.type",
                "json_schema",
            ),
        ] {
            let e = chat(raw.clone()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{raw}");
            assert!(e.message.contains(says), "{raw}: {}", e.message);
        }
        let e = parse_value::<ResponsesRequest>(&json!({ "model": "m", "input": "x", "temprature": 1 })).unwrap_err();
        assert!(e.message.contains("temprature"), "{}", e.message);
    }
}
