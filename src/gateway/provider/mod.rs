//! Model providers behind one enum, dispatched in this file only. Most vendors are a
//! configuration of the OpenAI-compatible client; Anthropic has its own wire format. Adding a
//! format means a new file here and one variant; inside, every provider speaks OpenAI's shape.

mod anthropic;
mod facts;
mod openai;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use serde_json::Value;

use crate::config::gateway::{ProviderConfig, ProviderKind};

pub use facts::ReplyFacts;
use transport::Endpoint;
pub use transport::Transport;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot reach the provider: {0}")]
    Connect(String),
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider answered {status}: {body}")]
    Status { status: u16, retry_after: Option<Duration>, body: String },
    #[error("the provider's reply is not valid: {0}")]
    Malformed(String),
    #[error("the provider's stream broke: {0}")]
    StreamBroken(String),
}

impl ProviderError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A chat completion in OpenAI's shape: the provider's bytes as received (validated: JSON with
/// a `choices` array) with what the pass that validated them read (`None` for a reply too
/// unusual to read that way), or a reply translated from another wire format.
#[derive(Debug, Clone)]
pub enum Reply {
    Bytes(Bytes, Option<Arc<ReplyFacts>>),
    Json(Value),
}

impl Reply {
    /// The reply as a JSON tree.
    pub fn into_value(self) -> Result<Value, ProviderError> {
        match self {
            Reply::Json(v) => Ok(v),
            Reply::Bytes(b, _) => serde_json::from_slice(&b).map_err(|e| ProviderError::Malformed(e.to_string())),
        }
    }
}

/// A list of embeddings in OpenAI's shape: the provider's bytes as received (validated: JSON
/// with a `data` array) and the input tokens its `usage` reports, if any.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub bytes: Bytes,
    pub prompt_tokens: Option<u64>,
}

impl Embedded {
    /// Checks `bytes` in one pass that builds no tree (the vectors are skipped unread).
    pub fn read(bytes: Bytes) -> Result<Self, ProviderError> {
        #[derive(serde::Deserialize)]
        struct View {
            #[serde(rename = "data")]
            _data: Vec<serde::de::IgnoredAny>,
            /// Read loosely: a `usage` of another shape only means the input is counted here.
            #[serde(default)]
            usage: Option<Value>,
        }
        if !bytes.trim_ascii_start().starts_with(b"{") {
            return Err(ProviderError::Malformed("embeddings: not a JSON object".into()));
        }
        let view: View = serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::Malformed(format!("embeddings: no `data` array ({e})")))?;
        let prompt_tokens = view.usage.as_ref().and_then(|u| u.get("prompt_tokens")?.as_u64());
        Ok(Self { prompt_tokens, bytes })
    }
}

/// A stream whose first chunk has arrived (so the gateway may still fall back before it).
pub struct OpenStream {
    pub first: Bytes,
    pub rest: BoxStream<'static, Result<Bytes, ProviderError>>,
}

pub enum Provider {
    OpenAi(openai::OpenAiProvider),
    Anthropic(anthropic::AnthropicProvider),
}

impl Provider {
    /// Builds a provider; `api_key` was read by the caller from the configured variable.
    pub fn new(cfg: &ProviderConfig, api_key: Option<&str>, client: &Transport) -> Self {
        let ep = |path, fixed, key_header| endpoint(cfg, api_key, path, fixed, key_header);
        match cfg.kind {
            ProviderKind::OpenAi => Provider::OpenAi(openai::OpenAiProvider::new(
                ep(openai::OpenAiProvider::PATH, None, "authorization"),
                ep(openai::OpenAiProvider::EMBEDDINGS_PATH, None, "authorization"),
                client,
                cfg.stream_usage,
            )),
            ProviderKind::Anthropic => Provider::Anthropic(anthropic::AnthropicProvider::new(
                ep(anthropic::AnthropicProvider::PATH, Some(anthropic::AnthropicProvider::VERSION_HEADER), "x-api-key"),
                client,
                cfg.stream_usage,
            )),
        }
    }

    /// One non-streaming chat completion; `body` already names the target's model.
    pub async fn complete(&self, body: &Value, timeout: Duration) -> Result<Reply, ProviderError> {
        match self {
            Provider::OpenAi(p) => {
                p.complete(body, timeout).await.map(|(bytes, facts)| Reply::Bytes(bytes, facts.map(Arc::new)))
            }
            Provider::Anthropic(p) => p.complete(body, timeout).await.map(Reply::Json),
        }
    }

    /// Whether this provider's wire format has an embeddings endpoint (Anthropic's has none).
    pub fn embeds(&self) -> bool {
        matches!(self, Provider::OpenAi(_))
    }

    /// Embeddings of `body["input"]`; `body` already names the target's model. Only called on
    /// a provider that [`embeds`](Self::embeds).
    pub async fn embed(&self, body: &Value, timeout: Duration) -> Result<Embedded, ProviderError> {
        match self {
            Provider::OpenAi(p) => p.embed(body, timeout).await,
            Provider::Anthropic(_) => Err(ProviderError::Status {
                status: 400,
                retry_after: None,
                body: "the Anthropic API has no embeddings endpoint".into(),
            }),
        }
    }

    /// Starts a streaming completion and waits for its first chunk.
    pub async fn open_stream(&self, body: &Value, first_token_timeout: Duration) -> Result<OpenStream, ProviderError> {
        match self {
            Provider::OpenAi(p) => p.open_stream(body, first_token_timeout).await,
            Provider::Anthropic(p) => p.open_stream(body, first_token_timeout).await,
        }
    }
}

/// Where a provider of this kind posts: the URL (with `query`), the kind's fixed header, the
/// key in its header (`auth_header`, else the kind's; `authorization` carries `Bearer KEY`),
/// then the provider's `headers`.
fn endpoint(
    cfg: &ProviderConfig,
    api_key: Option<&str>,
    path: &str,
    fixed: Option<(&str, &str)>,
    key_header: &str,
) -> Endpoint {
    let mut endpoint = Endpoint::new(&transport::url_with_query(&cfg.base_url, path, &cfg.wire.query));
    if let Some((name, value)) = fixed {
        endpoint = endpoint.header(name, value, false);
    }
    if let Some(k) = api_key {
        endpoint = match cfg.wire.auth_header.as_deref().unwrap_or(key_header) {
            "authorization" => endpoint.header("authorization", &format!("Bearer {k}"), true),
            other => endpoint.header(other, k, true),
        };
    }
    for (name, value) in &cfg.wire.headers {
        endpoint = endpoint.header(name, value, false);
    }
    endpoint
}

/// `Retry-After` in seconds (HTTP dates are rare from model APIs and are ignored).
pub fn parse_retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let v = headers.get(hyper::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_need_a_data_array_and_their_usage_is_read_loosely() {
        let read = |s: &'static str| Embedded::read(Bytes::from_static(s.as_bytes()));
        let e = read(r#"{"data":[{"embedding":[0.1]}],"usage":{"prompt_tokens":3,"total_tokens":3}}"#).unwrap();
        assert_eq!(e.prompt_tokens, Some(3));
        for odd in
            [r#"{"data":[],"usage":null}"#, r#"{"data":[],"usage":{"prompt_tokens":1.5}}"#, r#"{"data":[],"usage":7}"#]
        {
            assert_eq!(read(odd).unwrap().prompt_tokens, None, "{odd}");
        }
        for bad in [r#"{"data":{}}"#, r#"{"object":"list"}"#, "[]", "{", ""] {
            assert!(matches!(read(bad), Err(ProviderError::Malformed(_))), "{bad}");
        }
    }
}
