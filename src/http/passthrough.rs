//! A provider's reply passed through as it came: its usage and text come from the provider's
//! one pass over it (`provider::ReplyFacts`, read while checking its shape), and the `keel`
//! extension is spliced in before the reply's closing brace, so the reply is neither parsed
//! into a tree nor serialised again. Anything unusual
//! (no provider usage, a `keel` field already there, a reply translated from another format)
//! is left to the tree-based path, which behaves as before.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use std::sync::Arc;

use crate::gateway::provider::ReplyFacts;
use crate::gateway::usage::Usage;
use crate::gateway::Reply;

/// A reply that can be passed through, with the provider's usage.
pub struct Passthrough {
    bytes: Bytes,
    /// Where the reply's closing brace is.
    end: usize,
    pub usage: Usage,
    /// What the provider's check read (the first choice's `message.content` among it), shared
    /// with the reply rather than copied.
    facts: Arc<ReplyFacts>,
}

impl Passthrough {
    /// `None`: use the tree-based path (the reply was translated, has no usage of its own, or
    /// already carries a `keel` field).
    pub fn read(reply: &Reply) -> Option<Self> {
        // The provider's check read the facts in its one pass over the bytes.
        let Reply::Bytes(bytes, Some(facts)) = reply else { return None };
        let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace())?;
        if bytes[end] != b'}' || facts.has_keel {
            return None;
        }
        // As `usage::provider_usage` reads it from a tree.
        let (prompt, completion, cached) = facts.usage?;
        let usage = Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached.unwrap_or(0).min(prompt),
            estimated: false,
            cost_nanodollars: 0,
        };
        Some(Self { bytes: bytes.clone(), end, usage, facts: facts.clone() })
    }

    /// The reply's text, as `chat::reply_text` reads it from a tree ("" without one).
    pub fn text(&self) -> String {
        match &self.facts.content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
            }
            _ => String::new(),
        }
    }

    /// The reply's tool-call arguments, one per line ("" without tool calls).
    pub fn tool_args(&self) -> &str {
        &self.facts.tool_args
    }

    /// The reply's reasoning ("" without).
    pub fn reasoning(&self) -> &str {
        &self.facts.reasoning
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
        let facts = ReplyFacts::read(s.as_bytes()).map(Arc::new);
        Passthrough::read(&Reply::Bytes(Bytes::from(s.to_string()), facts))
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
