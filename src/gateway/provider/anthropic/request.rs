//! OpenAI chat request → Anthropic Messages request. System and developer messages become
//! `system`; turns of one role are merged (Anthropic wants them alternating); function tools,
//! the tool choice, an assistant's tool calls and the tool results answering them become
//! Anthropic's `tools`, `tool_choice`, `tool_use` and `tool_result` blocks; image parts become
//! `image` blocks. What the format cannot carry is the client's error (400), never dropped.

use serde_json::{json, Map, Value};

use super::super::ProviderError;

/// The tool a JSON `response_format` is asked through (Anthropic has no JSON mode): the model
/// is made to call it, and its input is the answer.
pub(super) const JSON_TOOL: &str = "json_answer";

/// Anthropic requires `max_tokens`; this is used when the client sent none.
pub(super) const DEFAULT_MAX_TOKENS: u64 = 4096;

/// A request this format cannot carry: the client's error, never retried.
pub(super) fn unsupported(msg: impl Into<String>) -> ProviderError {
    ProviderError::Status { status: 400, retry_after: None, body: msg.into() }
}

/// The text of a message whose role carries text only (system, developer, tool).
fn plain_text(c: &Value, at: &str) -> Result<String, ProviderError> {
    let mut out = String::new();
    for b in blocks(c, at)? {
        match b.get("text").and_then(Value::as_str) {
            Some(t) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(t);
            }
            None => return Err(unsupported(format!("{at}: only text content is supported here"))),
        }
    }
    Ok(out)
}

/// An OpenAI `image_url` part → an Anthropic `image` block (a `data:` URL is sent inline).
fn image_block(part: &Value, at: &str) -> Result<Value, ProviderError> {
    let url = part
        .pointer("/image_url/url")
        .or_else(|| part.get("image_url").filter(|v| v.is_string()))
        .and_then(Value::as_str)
        .ok_or_else(|| unsupported(format!("{at}: an `image_url` part needs `image_url.url`")))?;
    if let Some(rest) = url.strip_prefix("data:") {
        let (media_type, data) = rest
            .split_once(";base64,")
            .ok_or_else(|| unsupported(format!("{at}: a `data:` image URL must be base64 (`data:TYPE;base64,…`)")))?;
        return Ok(json!({ "type": "image", "source": { "type": "base64", "media_type": media_type, "data": data } }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({ "type": "image", "source": { "type": "url", "url": url } }));
    }
    Err(unsupported(format!("{at}: an image URL must be http(s) or a base64 `data:` URL")))
}

/// Appends text to blocks: joined to a text block just before it by a line break; empty text
/// is dropped (Anthropic refuses empty text blocks).
fn push_text(out: &mut Vec<Value>, t: &str) {
    if t.is_empty() {
        return;
    }
    if let Some(Value::String(prev)) = out.last_mut().filter(|b| b["type"] == "text").and_then(|b| b.get_mut("text")) {
        prev.push('\n');
        prev.push_str(t);
    } else {
        out.push(json!({ "type": "text", "text": t }));
    }
}

/// A message's content as Anthropic blocks: text (adjacent text parts joined by a line break,
/// empty text dropped, as Anthropic refuses empty text blocks) and images.
fn blocks(c: &Value, at: &str) -> Result<Vec<Value>, ProviderError> {
    let mut out: Vec<Value> = Vec::new();
    match c {
        Value::Null => {}
        Value::String(s) => push_text(&mut out, s),
        Value::Array(parts) => {
            for (k, p) in parts.iter().enumerate() {
                let at = format!("{at}.content[{k}]");
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => match p.get("text").and_then(Value::as_str) {
                        Some(t) => push_text(&mut out, t),
                        None => return Err(unsupported(format!("{at}: a text part needs `text`"))),
                    },
                    Some("image_url") => out.push(image_block(p, &at)?),
                    kind => {
                        return Err(unsupported(format!(
                            "{at}: content part `{}` is not supported by the anthropic provider (text and images)",
                            kind.unwrap_or("?")
                        )))
                    }
                }
            }
        }
        _ => return Err(unsupported(format!("{at}.content must be a string or an array of parts"))),
    }
    Ok(out)
}

/// An assistant's `tool_calls` → `tool_use` blocks (the arguments must be a JSON object).
fn tool_uses(calls: &Value, at: &str) -> Result<Vec<Value>, ProviderError> {
    let Some(calls) = calls.as_array() else {
        return Err(unsupported(format!("{at}.tool_calls must be an array")));
    };
    calls
        .iter()
        .enumerate()
        .map(|(k, call)| {
            let at = format!("{at}.tool_calls[{k}]");
            let id = call.get("id").and_then(Value::as_str).ok_or_else(|| unsupported(format!("{at}: needs `id`")))?;
            let f = call.get("function").ok_or_else(|| unsupported(format!("{at}: needs `function`")))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| unsupported(format!("{at}.function: needs `name`")))?;
            let input = match f.get("arguments") {
                None | Some(Value::Null) => json!({}),
                Some(Value::String(s)) if s.trim().is_empty() => json!({}),
                Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or_else(|| unsupported(format!("{at}.function.arguments must be a JSON object")))?,
                Some(v @ Value::Object(_)) => v.clone(),
                Some(_) => return Err(unsupported(format!("{at}.function.arguments must be a JSON object"))),
            };
            Ok(json!({ "type": "tool_use", "id": id, "name": name, "input": input }))
        })
        .collect()
}

/// OpenAI `tools` → Anthropic `tools` (function tools only).
fn tools(v: &Value) -> Result<Vec<Value>, ProviderError> {
    let Some(list) = v.as_array() else { return Err(unsupported("`tools` must be an array")) };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(unsupported(format!("tools[{i}]: only `function` tools are supported")));
            }
            let f = t.get("function").ok_or_else(|| unsupported(format!("tools[{i}]: needs `function`")))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| unsupported(format!("tools[{i}].function: needs `name`")))?;
            let schema = f.get("parameters").cloned().unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
            let mut out = json!({ "name": name, "input_schema": schema });
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                out["description"] = json!(d);
            }
            Ok(out)
        })
        .collect()
}

/// OpenAI `tool_choice` (and `parallel_tool_calls: false`) → Anthropic `tool_choice`.
fn tool_choice(choice: Option<&Value>, parallel: Option<&Value>) -> Result<Option<Value>, ProviderError> {
    let mut out = match choice {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "required" => json!({ "type": "any" }),
            "none" => json!({ "type": "none" }),
            other => return Err(unsupported(format!("tool_choice `{other}` is not one of auto, required, none"))),
        }),
        Some(v) => match (v.get("type").and_then(Value::as_str), v.pointer("/function/name").and_then(Value::as_str)) {
            (Some("function"), Some(name)) => Some(json!({ "type": "tool", "name": name })),
            _ => {
                return Err(unsupported(
                    "tool_choice must name a function: {\"type\":\"function\",\"function\":{\"name\":…}}",
                ))
            }
        },
    };
    if parallel.and_then(Value::as_bool) == Some(false) {
        let c = out.get_or_insert_with(|| json!({ "type": "auto" }));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    Ok(out)
}

/// The schema a JSON `response_format` asks for (`json_object`: any object), or `None` for
/// text. A tool's input is an object, so only an object schema can be carried.
pub(super) fn json_format(body: &Value) -> Result<Option<Value>, ProviderError> {
    let Some(f) = body.get("response_format").filter(|f| !f.is_null()) else { return Ok(None) };
    let schema = match f.get("type").and_then(Value::as_str) {
        Some("text") => return Ok(None),
        Some("json_object") => json!({ "type": "object" }),
        Some("json_schema") => f.pointer("/json_schema/schema").cloned().unwrap_or_else(|| json!({ "type": "object" })),
        other => {
            return Err(unsupported(format!(
                "response_format type `{}` is not one of text, json_object, json_schema",
                other.unwrap_or("?")
            )))
        }
    };
    if schema.get("type").is_some_and(|t| t != "object") {
        return Err(unsupported(
            "the anthropic provider answers JSON as an object: the response_format schema's type must be `object`",
        ));
    }
    Ok(Some(schema))
}

/// The thinking budget (tokens) of OpenAI's `reasoning_effort` (`minimal` and `none`: no
/// extended thinking). Anthropic counts thinking inside `max_tokens`.
fn thinking_budget(body: &Value) -> Result<Option<u64>, ProviderError> {
    match body.get("reasoning_effort") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_str() {
            Some("none" | "minimal") => Ok(None),
            Some("low") => Ok(Some(1024)),
            Some("medium") => Ok(Some(2048)),
            Some("high") => Ok(Some(4096)),
            _ => Err(unsupported(format!("reasoning_effort {v} is not one of none, minimal, low, medium, high"))),
        },
    }
}

/// Appends a message's blocks to a turn; text meeting text across messages is joined by a
/// blank line, as one turn.
fn extend_turn(turn: &mut Vec<Value>, add: Vec<Value>) {
    let mut add = add.into_iter();
    if let Some(first) = add.next() {
        match (turn.last_mut().and_then(|b| b.get_mut("text")), first.get("text").and_then(Value::as_str)) {
            (Some(Value::String(prev)), Some(t)) if first["type"] == "text" => {
                prev.push_str("\n\n");
                prev.push_str(t);
            }
            _ => turn.push(first),
        }
    }
    turn.extend(add);
}

/// A turn's content: a plain string when it is one text block (or nothing), else blocks with
/// any tool results first (Anthropic wants them before the user's text).
fn turn_content(mut blocks: Vec<Value>) -> Value {
    match blocks.as_slice() {
        [] => return Value::String(String::new()),
        [b] if b["type"] == "text" => return b["text"].clone(),
        _ => {}
    }
    blocks.sort_by_key(|b| b["type"] != "tool_result");
    Value::Array(blocks)
}

pub fn to_anthropic(body: &Value) -> Result<Value, ProviderError> {
    let msgs =
        body.get("messages").and_then(Value::as_array).ok_or_else(|| unsupported("`messages` must be an array"))?;
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n != 1) {
        return Err(unsupported("the anthropic provider returns one choice: `n` must be 1"));
    }
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let at = format!("messages[{i}]");
        let content = m.get("content").unwrap_or(&Value::Null);
        let (role, add) = match m.get("role").and_then(Value::as_str).unwrap_or("") {
            "system" | "developer" => {
                system.push(plain_text(content, &at)?);
                continue;
            }
            "user" | "function" => ("user", blocks(content, &at)?),
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| unsupported(format!("{at}: a tool message needs `tool_call_id`")))?;
                let text = plain_text(content, &at)?;
                ("user", vec![json!({ "type": "tool_result", "tool_use_id": id, "content": text })])
            }
            "assistant" => {
                let mut b = blocks(content, &at)?;
                if let Some(calls) = m.get("tool_calls").filter(|c| !c.is_null()) {
                    b.extend(tool_uses(calls, &at)?);
                }
                ("assistant", b)
            }
            other => return Err(unsupported(format!("{at}.role `{other}` is not supported"))),
        };
        match turns.last_mut() {
            Some((r, t)) if *r == role => extend_turn(t, add),
            _ => turns.push((role, add)),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), body.get("model").cloned().unwrap_or(Value::Null));
    out.insert(
        "messages".into(),
        Value::Array(turns.into_iter().map(|(role, b)| json!({ "role": role, "content": turn_content(b) })).collect()),
    );
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    let max = ["max_completion_tokens", "max_tokens"].iter().find_map(|f| body.get(*f).and_then(Value::as_u64));
    let budget = thinking_budget(body)?;
    if let Some(b) = budget {
        // A client's max_tokens may be a reservation Keel made (a metered key): never raised.
        if max.is_some_and(|m| m <= b) {
            return Err(unsupported(format!(
                "max_tokens must be above the thinking budget of reasoning_effort ({b} tokens) on an anthropic target"
            )));
        }
        out.insert("thinking".into(), json!({ "type": "enabled", "budget_tokens": b }));
    }
    out.insert("max_tokens".into(), json!(max.unwrap_or(DEFAULT_MAX_TOKENS + budget.unwrap_or(0))));
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
    if let Some(t) = body.get("tools").filter(|t| !t.is_null()) {
        let t = tools(t)?;
        if !t.is_empty() {
            out.insert("tools".into(), Value::Array(t));
        }
    }
    if let Some(c) = tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))? {
        if out.contains_key("tools") {
            out.insert("tool_choice".into(), c);
        }
    }
    if let Some(schema) = json_format(body)? {
        if out.contains_key("tools") {
            return Err(unsupported("the anthropic provider cannot combine `tools` with a JSON `response_format`"));
        }
        let tool = json!({ "name": JSON_TOOL, "input_schema": schema,
                           "description": "Give your whole answer by calling this tool: its input is the answer." });
        out.insert("tools".into(), json!([tool]));
        out.insert("tool_choice".into(), json!({ "type": "tool", "name": JSON_TOOL }));
    }
    if let Some(u) = body.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({ "user_id": u }));
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
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
        assert!(a.get("tools").is_none() && a.get("tool_choice").is_none());
        assert_eq!(to_anthropic(&json!({ "messages": [] })).unwrap()["max_tokens"], DEFAULT_MAX_TOKENS);
    }

    #[test]
    fn tools_tool_calls_and_tool_results_become_anthropic_blocks() {
        let body = json!({ "model": "claude-x", "parallel_tool_calls": false,
            "tools": [{ "type": "function", "function": { "name": "get_weather", "description": "Weather in a city",
                        "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } },
                      { "type": "function", "function": { "name": "now" } }],
            "tool_choice": { "type": "function", "function": { "name": "get_weather" } },
            "messages": [
                { "role": "user", "content": "Weather in Paris and Oslo?" },
                { "role": "assistant", "content": null, "tool_calls": [
                    { "id": "call_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } },
                    { "id": "call_2", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}" } }] },
                { "role": "tool", "tool_call_id": "call_1", "content": "18C" },
                { "role": "tool", "tool_call_id": "call_2", "content": [{ "type": "text", "text": "9C" }] },
                { "role": "user", "content": "Thanks" }
            ] });
        let a = to_anthropic(&body).unwrap();
        assert_eq!(a["tools"][0]["name"], "get_weather");
        assert_eq!(a["tools"][0]["description"], "Weather in a city");
        assert_eq!(a["tools"][0]["input_schema"]["properties"]["city"]["type"], "string");
        assert_eq!(a["tools"][1]["input_schema"], json!({ "type": "object", "properties": {} }));
        assert_eq!(
            a["tool_choice"],
            json!({ "type": "tool", "name": "get_weather", "disable_parallel_tool_use": true })
        );
        let m = a["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[1]["role"], "assistant");
        assert_eq!(
            m[1]["content"],
            json!([{ "type": "tool_use", "id": "call_1", "name": "get_weather", "input": { "city": "Paris" } },
                   { "type": "tool_use", "id": "call_2", "name": "get_weather", "input": { "city": "Oslo" } }])
        );
        assert_eq!(m[2]["role"], "user");
        assert_eq!(
            m[2]["content"],
            json!([{ "type": "tool_result", "tool_use_id": "call_1", "content": "18C" },
                   { "type": "tool_result", "tool_use_id": "call_2", "content": "9C" },
                   { "type": "text", "text": "Thanks" }])
        );
        for (choice, want) in [("auto", "auto"), ("required", "any"), ("none", "none")] {
            let b = json!({ "messages": [], "tools": body["tools"], "tool_choice": choice });
            assert_eq!(to_anthropic(&b).unwrap()["tool_choice"]["type"], want);
        }
    }

    #[test]
    fn a_json_response_format_is_asked_through_a_forced_tool() {
        let schema = json!({ "type": "object", "properties": { "days": { "type": "integer" } }, "required": ["days"] });
        let body = json!({ "messages": [{ "role": "user", "content": "Return window?" }],
            "response_format": { "type": "json_schema", "json_schema": { "name": "policy", "schema": schema } } });
        let a = to_anthropic(&body).unwrap();
        assert_eq!(a["tools"][0]["name"], JSON_TOOL);
        assert_eq!(a["tools"][0]["input_schema"], schema);
        assert_eq!(a["tool_choice"], json!({ "type": "tool", "name": JSON_TOOL }));
        let object = json!({ "messages": [], "response_format": { "type": "json_object" } });
        assert_eq!(to_anthropic(&object).unwrap()["tools"][0]["input_schema"], json!({ "type": "object" }));
        let text = json!({ "messages": [], "response_format": { "type": "text" } });
        assert!(to_anthropic(&text).unwrap().get("tools").is_none());
        for (bad, needle) in [
            (json!({ "type": "json_schema", "json_schema": { "schema": { "type": "array" } } }), "must be `object`"),
            (json!({ "type": "yaml" }), "`yaml`"),
        ] {
            match to_anthropic(&json!({ "messages": [], "response_format": bad })) {
                Err(ProviderError::Status { status: 400, body, .. }) => assert!(body.contains(needle), "{body}"),
                other => panic!("{other:?}"),
            }
        }
        let both = json!({ "messages": [], "response_format": { "type": "json_object" },
                           "tools": [{ "type": "function", "function": { "name": "f" } }] });
        assert!(matches!(to_anthropic(&both), Err(ProviderError::Status { status: 400, .. })));
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_budget_inside_max_tokens() {
        let a = to_anthropic(&json!({ "messages": [], "reasoning_effort": "medium", "max_tokens": 5000 })).unwrap();
        assert_eq!(a["thinking"], json!({ "type": "enabled", "budget_tokens": 2048 }));
        assert_eq!(a["max_tokens"], 5000, "a client's (or a reservation's) max_tokens is kept");
        let a = to_anthropic(&json!({ "messages": [], "reasoning_effort": "high" })).unwrap();
        assert_eq!(a["max_tokens"], DEFAULT_MAX_TOKENS + 4096);
        let a = to_anthropic(&json!({ "messages": [], "reasoning_effort": "minimal" })).unwrap();
        assert!(a.get("thinking").is_none());
        for (bad, needle) in [
            (json!({ "messages": [], "reasoning_effort": "low", "max_tokens": 1000 }), "above the thinking budget"),
            (json!({ "messages": [], "reasoning_effort": "extreme" }), "\"extreme\" is not one of"),
        ] {
            match to_anthropic(&bad) {
                Err(ProviderError::Status { status: 400, body, .. }) => assert!(body.contains(needle), "{body}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn images_become_image_blocks_and_what_cannot_be_carried_is_refused() {
        let body = json!({ "messages": [{ "role": "user", "content": [
            { "type": "text", "text": "What is this?" },
            { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBORw0KGgo=" } },
            { "type": "image_url", "image_url": { "url": "https://example.com/cat.jpg" } }] }] });
        let c = &to_anthropic(&body).unwrap()["messages"][0]["content"];
        assert_eq!(c[0], json!({ "type": "text", "text": "What is this?" }));
        assert_eq!(c[1]["source"], json!({ "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo=" }));
        assert_eq!(c[2]["source"], json!({ "type": "url", "url": "https://example.com/cat.jpg" }));
        let refused = |b: Value, needle: &str| match to_anthropic(&b) {
            Err(ProviderError::Status { status: 400, body, .. }) => assert!(body.contains(needle), "{body}"),
            other => panic!("{b}: {other:?}"),
        };
        refused(json!({ "messages": [{ "role": "user", "content": [{ "type": "input_audio" }] }] }), "input_audio");
        refused(json!({ "messages": [{ "role": "tool", "content": "x" }] }), "tool_call_id");
        refused(
            json!({ "messages": [{ "role": "assistant", "tool_calls": [{ "id": "c", "function": { "name": "f", "arguments": "[1" } }] }] }),
            "messages[0].tool_calls[0].function.arguments must be a JSON object",
        );
        refused(json!({ "messages": [], "tools": [{ "type": "web_search" }] }), "tools[0]");
        refused(json!({ "messages": [], "tools": [], "tool_choice": "sometimes" }), "sometimes");
        refused(json!({ "messages": [], "n": 2 }), "`n` must be 1");
        refused(
            json!({ "messages": [{ "role": "system", "content": [{ "type": "image_url", "image_url": { "url": "https://x/y.png" } }] }] }),
            "messages[0]: only text content",
        );
    }
}
