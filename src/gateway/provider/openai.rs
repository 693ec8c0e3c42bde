//! The OpenAI-compatible wire format: `POST {base_url}/chat/completions`, JSON or SSE.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use super::{send_error, status_error, OpenStream, ProviderError};

pub struct OpenAiProvider {
    url: String,
    api_key: Option<String>,
    client: reqwest::Client,
}

impl OpenAiProvider {
    pub fn new(base_url: &str, api_key: Option<String>, client: reqwest::Client) -> Self {
        Self { url: format!("{base_url}/chat/completions"), api_key, client }
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut r = self.client.post(&self.url).json(body);
        if let Some(k) = &self.api_key {
            r = r.bearer_auth(k);
        }
        r
    }

    pub async fn complete(&self, body: &Value, timeout: Duration) -> Result<Value, ProviderError> {
        let work = async {
            let res = self.request(body).send().await.map_err(send_error)?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            let bytes = res.bytes().await.map_err(send_error)?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| ProviderError::Malformed(e.to_string()))?;
            if v.get("choices").and_then(Value::as_array).is_none() {
                return Err(ProviderError::Malformed("no `choices` array".into()));
            }
            Ok(v)
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| ProviderError::Timeout)?
    }

    pub async fn open_stream(&self, body: &Value, first_token_timeout: Duration) -> Result<OpenStream, ProviderError> {
        let work = async {
            let res = self.request(body).send().await.map_err(send_error)?;
            if !res.status().is_success() {
                return Err(status_error(res).await);
            }
            let mut stream =
                res.bytes_stream().map(|r| r.map_err(|e| ProviderError::StreamBroken(e.to_string()))).boxed();
            match stream.next().await {
                Some(Ok(first)) => Ok(OpenStream { first, rest: stream }),
                Some(Err(e)) => Err(e),
                None => Err(ProviderError::StreamBroken("the stream ended before its first chunk".into())),
            }
        };
        tokio::time::timeout(first_token_timeout, work).await.map_err(|_| ProviderError::Timeout)?
    }
}
