//! The Anthropic Messages wire format: `POST {base_url}/messages`, JSON or SSE. The gateway
//! speaks OpenAI's chat format inside: `request.rs` translates the request on the way out,
//! `reply.rs` the reply (or the stream, event by event) on the way back.

mod reply;
mod request;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use super::transport::{body_bytes, body_stream, status_error, Endpoint, Transport};
use super::{OpenStream, ProviderError};
use crate::gateway::usage::asks_usage;
use reply::{from_anthropic, StreamTranslator};
use request::{json_format, to_anthropic, JSON_TOOL};

/// The API version this translation follows.
const API_VERSION: &str = "2023-06-01";

pub struct AnthropicProvider {
    endpoint: Endpoint,
    client: Transport,
    /// Translate every stream's usage into a final usage chunk (removed by the relay when
    /// the client did not ask for it).
    stream_usage: bool,
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
        let json_tool = json_format(body)?.map(|_| JSON_TOOL);
        let work = async {
            let res = self.client.post_json(&self.endpoint, &req).await?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            let bytes = body_bytes(res).await?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| ProviderError::Malformed(e.to_string()))?;
            from_anthropic(&v, json_tool)
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| ProviderError::Timeout)?
    }

    pub async fn open_stream(&self, body: &Value, first_token_timeout: Duration) -> Result<OpenStream, ProviderError> {
        let mut req = to_anthropic(body)?;
        req["stream"] = Value::Bool(true);
        let include_usage = self.stream_usage || asks_usage(body);
        let json_tool = json_format(body)?.map(|_| JSON_TOOL);
        let work = async {
            let res = self.client.post_json(&self.endpoint, &req).await?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            let mut tr = StreamTranslator::new(include_usage, json_tool);
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
