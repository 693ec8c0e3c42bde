//! A provider's reply passed through as it came: the gateway reads the usage in one pass that
//! builds no JSON tree, and adds the `keel` extension by splicing it before the reply's closing
//! brace, so the reply is neither parsed into a tree nor serialised again. Anything unusual
//! (no provider usage, a `keel` field already there, a reply translated from another format)
//! is left to the tree-based path, which behaves as before.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::gateway::usage::Usage;
use crate::gateway::Reply;

/// What the gateway reads from a chat completion; every other field is skipped unread.
#[derive(Deserialize)]
struct View {
    /// Only the first choice's text is read (`chat::reply_text`).
    choices: Vec<ChoiceView>,
    #[serde(default)]
    usage: Option<UsageView>,
    #[serde(default, deserialize_with = "present")]
    keel: bool,
}

#[derive(Deserialize)]
struct ChoiceView {
    message: Option<MessageView>,
}

#[derive(Deserialize)]
struct MessageView {
    content: Option<Value>,
}

#[derive(Deserialize)]
struct UsageView {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
}

/// True whenever the field is there, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// A reply that can be passed through, with the provider's usage.
pub struct Passthrough {
    bytes: Bytes,
    /// Where the reply's closing brace is.
    end: usize,
    pub usage: Usage,
    /// The first choice's `message.content`.
    content: Option<Value>,
}

impl Passthrough {
    /// `None`: use the tree-based path (the reply was translated, has no usage of its own, or
    /// already carries a `keel` field).
    pub fn read(reply: &Reply) -> Option<Self> {
        let Reply::Bytes(bytes) = reply else { return None };
        let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace())?;
        if bytes[end] != b'}' || bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        let view: View = serde_json::from_slice(bytes).ok()?;
        if view.keel {
            return None;
        }
        // As `usage::provider_usage` reads it from a tree.
        let u = view.usage?;
        let (prompt, completion) = (u.prompt_tokens?, u.completion_tokens?);
        let cached = u.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0);
        let usage = Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached.min(prompt),
            estimated: false,
            cost_nanodollars: 0,
        };
        let content = view.choices.into_iter().next().and_then(|c| c.message?.content);
        Some(Self { bytes: bytes.clone(), end, usage, content })
    }

    /// The reply's text, as `chat::reply_text` reads it from a tree ("" without one).
    pub fn text(&self) -> String {
        match &self.content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
            }
            _ => String::new(),
        }
    }

    /// The reply with `"keel": extension` as its last field, in one body with a known length.
    pub fn respond(self, extension: &Value) -> Response {
        let ext = extension.to_string();
        let mut out = Vec::with_capacity(self.end + ext.len() + 10);
        out.extend_from_slice(&self.bytes[..self.end]);
        // The reply has at least its `choices` field, so a comma always separates.
        out.extend_from_slice(b",\"keel\":");
        out.extend_from_slice(ext.as_bytes());
        out.push(b'}');
        let mut res = Response::new(Body::from(out));
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(s: &str) -> Option<Passthrough> {
        Passthrough::read(&Reply::Bytes(Bytes::from(s.to_string())))
    }

    #[test]
    fn the_extension_is_spliced_in_and_the_rest_is_kept() {
        let reply =
            " {\"id\":\"c1\",\"choices\":[{\"message\":{\"content\":\"hi }\"}}],\"usage\":{\"prompt_tokens\":9,\
            \"completion_tokens\":4,\"prompt_tokens_details\":{\"cached_tokens\":12},\"extra\":[1]}}\n";
        let p = read(reply).unwrap();
        assert_eq!((p.usage.prompt_tokens, p.usage.completion_tokens, p.usage.cached_tokens), (9, 4, 9));
        assert_eq!(p.text(), "hi }");
        let res = p.respond(&json!({ "usage": { "estimated": false } }));
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let body =
            futures_util::FutureExt::now_or_never(axum::body::to_bytes(res.into_body(), 1 << 20)).unwrap().unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let mut want: Value = serde_json::from_str(reply).unwrap();
        want["keel"] = json!({ "usage": { "estimated": false } });
        assert_eq!(v, want);
    }

    #[test]
    fn unusual_replies_take_the_tree_path() {
        let ok = r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        assert!(read(ok).is_some());
        for s in [
            r#"{"choices":[]}"#,
            r#"{"choices":[],"usage":null}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1.5,"completion_tokens":2}}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2},"keel":null}"#,
            r#"[{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}]"#,
        ] {
            assert!(read(s).is_none(), "{s}");
        }
        assert!(Passthrough::read(&Reply::Json(serde_json::from_str(ok).unwrap())).is_none());
    }
}
