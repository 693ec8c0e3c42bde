//! The HTTP client every provider calls through: hyper's pooled HTTP/1.1 client (TLS by rustls
//! with the platform's roots, `TCP_NODELAY` on), used directly. A provider's URL is parsed
//! once, when the gateway starts, and a call crosses no redirect, proxy or cookie layer it has
//! no use for (reqwest's redirect layer alone parsed each call's URL twice more: 6.6 % of a
//! traced gateway request's instructions).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{parse_retry_after, ProviderError};

/// An error reply's body is read up to this many bytes (its first 500 characters are kept).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// One connection pool shared by every provider of a gateway (cheap to clone).
#[derive(Clone)]
pub struct Transport(Client<HttpsConnector<HttpConnector>, Full<Bytes>>);

impl Transport {
    /// A client trusting the platform's root certificates. Certificates that do not load are
    /// skipped, and a machine with none can still call plain-HTTP providers (an HTTPS call then
    /// fails with a certificate error naming the host).
    pub fn new(idle_timeout: Duration) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(idle_timeout)
            .pool_timer(TokioTimer::new())
            .build(https);
        Ok(Self(client))
    }

    /// POSTs `body` as JSON to `to`; the reply once its head has arrived (any status).
    pub async fn post_json(
        &self,
        to: &Endpoint,
        body: &serde_json::Value,
    ) -> Result<Response<Incoming>, ProviderError> {
        let uri = to.uri.clone().map_err(ProviderError::Connect)?;
        let json = serde_json::to_vec(body).map_err(|e| ProviderError::Malformed(e.to_string()))?;
        let mut req =
            Request::post(uri).body(Full::new(Bytes::from(json))).map_err(|e| ProviderError::Connect(e.to_string()))?;
        let headers = req.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &to.headers {
            headers.insert(name.clone(), value.clone());
        }
        self.0.request(req).await.map_err(|e| ProviderError::Connect(chain(&e)))
    }
}

/// Where a provider posts, with the headers every call to it carries (credentials marked
/// sensitive, so they never appear in a debug print).
pub struct Endpoint {
    /// The parsed URL, or why it does not parse (then every call fails with that reason).
    uri: Result<Uri, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Endpoint {
    pub fn new(url: &str) -> Self {
        let uri =
            url.parse::<Uri>().map_err(|e| format!("the provider URL {url:?} is not valid: {e}")).and_then(|u| match u
                .scheme_str()
            {
                Some("http" | "https") if u.authority().is_some() => Ok(u),
                _ => Err(format!("the provider URL {url:?} is not an http(s) URL")),
            });
        Self { uri, headers: Vec::new() }
    }

    /// Adds a header sent on every call; `secret` hides its value from debug output. A value
    /// that is not a valid header (a key with a newline) makes every call fail with a clear
    /// error rather than sending a request without it.
    pub fn header(mut self, name: &'static str, value: &str, secret: bool) -> Self {
        match HeaderValue::from_str(value) {
            Ok(mut v) => {
                v.set_sensitive(secret);
                self.headers.push((HeaderName::from_static(name), v));
            }
            Err(_) => self.uri = Err(format!("the value of the {name} header is not a valid HTTP header value")),
        }
        self
    }
}

/// The whole body of a successful reply.
pub async fn body_bytes(res: Response<Incoming>) -> Result<Bytes, ProviderError> {
    res.into_body().collect().await.map(|c| c.to_bytes()).map_err(|e| ProviderError::Connect(chain(&e)))
}

/// The body of a reply as it arrives, chunk by chunk.
pub fn body_stream(res: Response<Incoming>) -> BoxStream<'static, Result<Bytes, ProviderError>> {
    res.into_body().into_data_stream().map(|r| r.map_err(|e| ProviderError::StreamBroken(chain(&e)))).boxed()
}

/// A non-success reply: its status, `Retry-After` and the start of its body.
pub async fn status_error(res: Response<Incoming>) -> ProviderError {
    let status = res.status().as_u16();
    let retry_after = parse_retry_after(res.headers());
    let bytes = Limited::new(res.into_body(), MAX_ERROR_BODY).collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let body = String::from_utf8_lossy(&bytes).chars().take(500).collect();
    ProviderError::Status { status, retry_after, body }
}

/// An error and its causes, outermost first ("client error (Connect): tcp connect error:
/// Connection refused ..."): hyper's own message names only the kind.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_once_and_explain_themselves() {
        assert!(Endpoint::new("http://127.0.0.1:8080/v1/chat/completions").uri.is_ok());
        assert!(Endpoint::new("https://api.openai.com/v1/chat/completions").uri.is_ok());
        let e = Endpoint::new("ftp://host/x").uri.unwrap_err();
        assert!(e.contains("not an http(s) URL"), "{e}");
        let e = Endpoint::new("not a url").uri.unwrap_err();
        assert!(e.contains("is not valid"), "{e}");
        let e = Endpoint::new("http://h/x").header("authorization", "Bearer a\nb", true).uri.unwrap_err();
        assert!(e.contains("authorization"), "{e}");
    }

    #[test]
    fn secret_headers_are_hidden_from_debug_output() {
        let ep = Endpoint::new("http://h/x").header("authorization", "Bearer sk-secret", true);
        let (_, v) = &ep.headers[0];
        assert!(v.is_sensitive());
        assert!(!format!("{v:?}").contains("sk-secret"));
    }

    #[test]
    fn an_error_names_its_causes() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        #[derive(Debug, thiserror::Error)]
        #[error("tcp connect error")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(chain(&Outer(inner)), "tcp connect error: connection refused");
    }
}
