//! The OpenAI-compatible wire format: `POST {base_url}/chat/completions`, JSON or SSE, and
//! `POST {base_url}/embeddings`.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

use super::transport::{body_bytes, body_stream, status_error, Endpoint, Transport};
use super::{Embedded, OpenStream, ProviderError, ReplyFacts};
use crate::gateway::usage::asks_usage;

pub struct OpenAiProvider {
    endpoint: Endpoint,
    /// The same provider's embeddings endpoint.
    embeddings: Endpoint,
    client: Transport,
    /// Ask every stream for its usage chunk (the relay removes it when the client did not ask).
    stream_usage: bool,
}

/// Whether `bytes` are a chat completion (JSON with a `choices` array; the rest is passed
/// through unread), and what the gateway reads from them: one pass that builds no tree, with
/// the tree-based check (and its error message) only for a reply that pass does not take.
fn check_reply(bytes: &[u8]) -> Result<Option<ReplyFacts>, ProviderError> {
    if let Some(facts) = ReplyFacts::read(bytes) {
        return Ok(Some(facts));
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| ProviderError::Malformed(e.to_string()))?;
    if v.get("choices").and_then(Value::as_array).is_none() {
        return Err(ProviderError::Malformed("no `choices` array".into()));
    }
    Ok(None)
}

/// `body` asking for the stream's usage chunk (`None`: a body whose `stream_options` is not an
/// object is sent as it is; the client's request validation refuses those anyway).
fn with_stream_usage(body: &Value) -> Option<Value> {
    let mut b = body.clone();
    let options = b.as_object_mut()?.entry("stream_options").or_insert(Value::Null);
    if options.is_null() {
        *options = Value::Object(serde_json::Map::new());
    }
    options.as_object_mut()?.insert("include_usage".into(), Value::Bool(true));
    Some(b)
}

impl OpenAiProvider {
    /// The path every chat call posts to, after the provider's base URL.
    pub const PATH: &'static str = "/chat/completions";
    /// The path embeddings are posted to, after the provider's base URL.
    pub const EMBEDDINGS_PATH: &'static str = "/embeddings";

    pub fn new(endpoint: Endpoint, embeddings: Endpoint, client: &Transport, stream_usage: bool) -> Self {
        Self { endpoint, embeddings, client: client.clone(), stream_usage }
    }

    /// The reply's bytes, as received, once they are known to be a list of embeddings.
    pub async fn embed(&self, body: &Value, timeout: Duration) -> Result<Embedded, ProviderError> {
        let work = async {
            let res = self.client.post_json(&self.embeddings, body).await?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            let bytes = body_bytes(res).await?;
            Embedded::read(bytes)
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| ProviderError::Timeout)?
    }

    /// The reply's bytes, as received, once they are known to be a chat completion, with what
    /// the check read from them.
    pub async fn complete(
        &self,
        body: &Value,
        timeout: Duration,
    ) -> Result<(Bytes, Option<ReplyFacts>), ProviderError> {
        let work = async {
            let res = self.client.post_json(&self.endpoint, body).await?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            let bytes = body_bytes(res).await?;
            let facts = check_reply(&bytes)?;
            Ok((bytes, facts))
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| ProviderError::Timeout)?
    }

    pub async fn open_stream(&self, body: &Value, first_token_timeout: Duration) -> Result<OpenStream, ProviderError> {
        let with_usage = if self.stream_usage && !asks_usage(body) { with_stream_usage(body) } else { None };
        let body = with_usage.as_ref().unwrap_or(body);
        let work = async {
            let res = self.client.post_json(&self.endpoint, body).await?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            let mut stream = body_stream(res);
            match stream.next().await {
                Some(Ok(first)) => Ok(OpenStream { first, rest: stream }),
                Some(Err(e)) => Err(e),
                None => Err(ProviderError::StreamBroken("the stream ended before its first chunk".into())),
            }
        };
        tokio::time::timeout(first_token_timeout, work).await.map_err(|_| ProviderError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::{check_reply, with_stream_usage};
    use serde_json::json;

    #[test]
    fn usage_is_asked_for_without_touching_anything_else() {
        let b = with_stream_usage(&json!({ "model": "m", "stream": true })).unwrap();
        assert_eq!(b["stream_options"], json!({ "include_usage": true }));
        let b = with_stream_usage(&json!({ "stream_options": { "include_usage": false, "x": 1 } })).unwrap();
        assert_eq!(b["stream_options"], json!({ "include_usage": true, "x": 1 }));
        assert_eq!(
            with_stream_usage(&json!({ "stream_options": null })).unwrap()["stream_options"]["include_usage"],
            true
        );
        // Not an object: left alone (no panic).
        assert!(with_stream_usage(&json!({ "stream_options": "x" })).is_none());
        assert!(with_stream_usage(&json!([1])).is_none());
    }

    #[test]
    fn replies_without_a_choices_array_are_malformed() {
        assert!(check_reply(br#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":null}"#).is_ok());
        for bad in [&br#"{"id":"x"}"#[..], br#"{"choices":null}"#, br#"{"choices":[] "#, b"[]"] {
            let e = check_reply(bad).unwrap_err().to_string();
            assert!(e.starts_with("the provider's reply is not valid"), "{e}");
        }
        assert!(check_reply(br#"{"choices":{}}"#).unwrap_err().to_string().contains("no `choices` array"));
        // A shape the one-pass reader does not take is still a reply, without facts.
        assert_eq!(check_reply(br#"{"choices":[1]}"#).unwrap(), None);
        assert!(check_reply(br#"{"choices":[{"message":{"content":"hi"}}]}"#).unwrap().is_some());
    }
}
