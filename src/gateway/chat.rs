//! The gateway's request and reply shape for Keel's own model calls: an OpenAI chat
//! completion body built from domain messages, and the reply text read back out of one.

use serde_json::{json, Value};

use crate::answer::prompt::Message;

/// A non-streaming chat completion body (`model` is set per target by the gateway).
pub fn body(messages: &[Message], temperature: f32) -> Value {
    let messages: Vec<Value> = messages.iter().map(|m| json!({ "role": m.role, "content": m.content })).collect();
    json!({ "messages": messages, "temperature": temperature, "stream": false })
}

/// The assistant text of a chat completion, if the reply has one.
pub fn reply_text(reply: &Value) -> Option<String> {
    let content = &reply.get("choices")?.get(0)?.get("message")?.get("content")?;
    match content {
        Value::String(s) => Some(s.clone()),
        // Content parts: keep the text ones.
        Value::Array(parts) => {
            Some(parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(""))
        }
        _ => None,
    }
}

/// The first choice's reasoning (`reasoning_content`, then `reasoning`), one per line (""
/// without), as `ReplyFacts::read` reads it from the reply's bytes.
pub fn reply_reasoning(reply: &Value) -> String {
    let message = reply.pointer("/choices/0/message");
    let parts: Vec<&str> = ["reasoning_content", "reasoning"]
        .iter()
        .filter_map(|f| message.and_then(|m| m.get(*f)).and_then(Value::as_str))
        .collect();
    parts.join("\n")
}

/// The first choice's tool-call arguments, one per line ("" without tool calls).
pub fn reply_tool_args(reply: &Value) -> String {
    let calls = reply.pointer("/choices/0/message/tool_calls").and_then(Value::as_array);
    let args: Vec<&str> =
        calls.into_iter().flatten().filter_map(|c| c.pointer("/function/arguments").and_then(Value::as_str)).collect();
    args.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_and_reply_round_trip() {
        let m = [Message { role: "system", content: "rules".into() }, Message { role: "user", content: "q".into() }];
        let b = body(&m, 0.0);
        assert_eq!(b["messages"][1], json!({ "role": "user", "content": "q" }));
        assert_eq!(b["temperature"], json!(0.0));
        let r = json!({ "choices": [{ "message": { "role": "assistant", "content": "Yes [1]." } }] });
        assert_eq!(reply_text(&r).as_deref(), Some("Yes [1]."));
        assert_eq!(reply_text(&json!({ "choices": [] })), None);
    }
}
