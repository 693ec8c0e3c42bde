//! The HTTP client every provider calls through: hyper's pooled HTTP/1.1 client (TLS by rustls
//! with the platform's roots, `TCP_NODELAY` on), used directly. A provider's URL is parsed
//! once, when the gateway starts, and a call crosses no redirect or cookie layer it has no use
//! for (reqwest's redirect layer alone parsed each call's URL twice more: 6.6 % of a traced
//! gateway request's instructions). Egress proxies come from `HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY` and `NO_PROXY`, as curl reads them; a proxied connection is an HTTP `CONNECT`
//! tunnel, opened once per pooled connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{parse_retry_after, ProviderError};

/// An error reply's body is read up to this many bytes (its first 500 characters are kept).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// One connection pool shared by every provider of a gateway (cheap to clone).
#[derive(Clone)]
pub struct Transport(Client<HttpsConnector<Connector>, Full<Bytes>>);

impl Transport {
    /// A client trusting the platform's root certificates. Certificates that do not load are
    /// skipped, and a machine with none can still call plain-HTTP providers (an HTTPS call then
    /// fails with a certificate error naming the host).
    pub fn new(idle_timeout: Duration) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        Self::with(idle_timeout, Matcher::from_env(), roots)
    }

    /// [`Transport::new`] with the proxies and trusted roots given rather than read from the
    /// environment and the platform.
    fn with(idle_timeout: Duration, proxies: Matcher, roots: rustls::RootCertStore) -> Result<Self, String> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = Connector { direct: http, proxies: Arc::new(proxies) };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
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
        let uri = to.uri_for(body).map_err(ProviderError::Connect)?;
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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens a provider connection: straight to the host, or through a `CONNECT` tunnel when the
/// proxy settings cover it (TLS, for `https` providers, then runs inside the tunnel).
#[derive(Clone)]
pub struct Connector {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // `HttpConnector` is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut direct = self.direct.clone();
        let Some(proxy) = self.proxies.intercept(&dst) else {
            return Box::pin(async move { direct.call(dst).await.map_err(Into::into) });
        };
        // Named by host and port only: the proxy URL may carry credentials.
        let name = format!("{}:{}", proxy.uri().host().unwrap_or("?"), proxy.uri().port_u16().unwrap_or(80));
        if proxy.uri().scheme_str() != Some("http") {
            let msg = format!("the proxy at {name} is not supported: only http:// proxies (HTTP CONNECT) are");
            return Box::pin(async move { Err(msg.into()) });
        }
        // The tunnel's target port: a plain-HTTP provider without one is on 80, not 443.
        let target = match (dst.port_u16(), dst.scheme_str(), dst.host()) {
            (None, Some("http"), Some(host)) => format!("http://{host}:80/").parse::<Uri>().unwrap_or(dst),
            _ => dst,
        };
        let mut tunnel = Tunnel::new(proxy.uri().clone(), direct);
        if let Some(auth) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        Box::pin(
            async move { tunnel.call(target).await.map_err(|e| format!("through the proxy at {name}: {e}").into()) },
        )
    }
}

/// Where a provider posts, with the headers every call to it carries (credentials marked
/// sensitive, so they never appear in a debug print).
pub struct Endpoint {
    /// The parsed URL (checked with a stand-in model when it holds `{model}`), or why it is
    /// not valid (then every call fails with that reason).
    uri: Result<Uri, String>,
    /// The URL with `{model}` still in it (Azure OpenAI deployments): each call's URL is built
    /// from it and the call's model.
    template: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The placeholder a provider URL may hold for the target's model.
const MODEL_SLOT: &str = "{model}";

/// What a URL path segment or query component keeps unencoded (RFC 3986 unreserved).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn parse_url(url: &str) -> Result<Uri, String> {
    url.parse::<Uri>().map_err(|e| format!("the provider URL {url:?} is not valid: {e}")).and_then(|u| {
        match u.scheme_str() {
            Some("http" | "https") if u.authority().is_some() => Ok(u),
            _ => Err(format!("the provider URL {url:?} is not an http(s) URL")),
        }
    })
}

/// `base` + `path`, with the query parameters percent-encoded after a `?`.
pub fn url_with_query(base: &str, path: &str, query: &[(String, String)]) -> String {
    let mut url = format!("{base}{path}");
    for (i, (k, v)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.extend(utf8_percent_encode(k, COMPONENT));
        url.push('=');
        url.extend(utf8_percent_encode(v, COMPONENT));
    }
    url
}

impl Endpoint {
    pub fn new(url: &str) -> Self {
        let template = url.contains(MODEL_SLOT).then(|| url.to_string());
        Self { uri: parse_url(&url.replace(MODEL_SLOT, "model")), template, headers: Vec::new() }
    }

    /// Adds a header sent on every call (after the earlier ones: a later value of the same
    /// name wins); `secret` hides its value from debug output. A name or value that is not
    /// valid HTTP (a key with a newline) makes every call fail with a clear error rather than
    /// sending a request without it.
    pub fn header(mut self, name: &str, value: &str, secret: bool) -> Self {
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            (Ok(n), Ok(mut v)) => {
                v.set_sensitive(secret);
                self.headers.push((n, v));
            }
            (Err(_), _) => self.uri = Err(format!("`{name}` is not a valid HTTP header name")),
            (_, Err(_)) => self.uri = Err(format!("the value of the {name} header is not a valid HTTP header value")),
        }
        self
    }

    /// The URL of a call with `body` (its `model` filled in, percent-encoded, when the URL
    /// has `{model}`).
    fn uri_for(&self, body: &serde_json::Value) -> Result<Uri, String> {
        let uri = self.uri.clone()?;
        let Some(t) = &self.template else { return Ok(uri) };
        let model = body
            .get("model")
            .and_then(serde_json::Value::as_str)
            .ok_or("the provider URL needs a model, and the request names none")?;
        parse_url(&t.replace(MODEL_SLOT, &utf8_percent_encode(model, COMPONENT).to_string()))
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
    fn query_and_model_are_encoded_into_each_calls_url() {
        let q = [("api-version".to_string(), "2024-10-21".to_string()), ("x y".to_string(), "a&b=c".to_string())];
        let url = url_with_query("https://r.example/openai/deployments/{model}", "/chat/completions", &q);
        assert_eq!(
            url,
            "https://r.example/openai/deployments/{model}/chat/completions?api-version=2024-10-21&x%20y=a%26b%3Dc"
        );
        let ep = Endpoint::new(&url);
        let uri = ep.uri_for(&serde_json::json!({ "model": "gpt 4o/prod" })).unwrap();
        assert_eq!(uri.path(), "/openai/deployments/gpt%204o%2Fprod/chat/completions");
        assert_eq!(uri.query(), Some("api-version=2024-10-21&x%20y=a%26b%3Dc"));
        let e = ep.uri_for(&serde_json::json!({})).unwrap_err();
        assert!(e.contains("needs a model"), "{e}");
        // Without the placeholder the URL parsed at start-up is used as it is.
        let fixed = Endpoint::new(&url_with_query("http://h/v1", "/chat/completions", &[]));
        assert_eq!(fixed.uri_for(&serde_json::json!({})).unwrap().to_string(), "http://h/v1/chat/completions");
        let e = Endpoint::new("http://h/x").header("bad name", "v", false).uri_for(&serde_json::json!({})).unwrap_err();
        assert!(e.contains("not a valid HTTP header name"), "{e}");
    }

    #[test]
    fn secret_headers_are_hidden_from_debug_output() {
        let ep = Endpoint::new("http://h/x").header("authorization", "Bearer sk-secret", true);
        let (_, v) = &ep.headers[0];
        assert!(v.is_sensitive());
        assert!(!format!("{v:?}").contains("sk-secret"));
    }

    /// Reads from `s` until the end of an HTTP head ("" at the end of the stream).
    async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
        use tokio::io::AsyncReadExt;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).await.unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    /// Answers every request on `s` with the JSON `reply`, keeping the connection open until
    /// the client closes it.
    async fn serve_json<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, reply: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let head = read_head(&mut s).await.to_ascii_lowercase();
            if head.is_empty() {
                return;
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).await.unwrap();
            let res = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                reply.len()
            );
            s.write_all(res.as_bytes()).await.unwrap();
        }
    }

    /// A provider that answers every request with `{"ok":true}`, and an HTTP CONNECT proxy that
    /// records the targets it was asked to tunnel to.
    #[tokio::test]
    async fn calls_go_through_the_configured_proxy_tunnel() {
        use tokio::io::AsyncWriteExt;
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = upstream.accept().await {
                tokio::spawn(serve_json(s, "{\"ok\":true}"));
            }
        });
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let px = proxy.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = proxy.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let head = read_head(&mut client).await;
                    let target = head.split_whitespace().nth(1).unwrap().to_string();
                    log.lock().unwrap().push(head.lines().next().unwrap().to_string());
                    let mut server = tokio::net::TcpStream::connect(&target).await.unwrap();
                    client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });

        let proxies = Matcher::builder().http(format!("http://{px}")).build();
        let t = Transport::with(Duration::from_secs(5), proxies, rustls::RootCertStore::empty()).unwrap();
        let ep = Endpoint::new(&format!("http://{up}/v1/chat/completions"));
        for _ in 0..2 {
            let res = t.post_json(&ep, &serde_json::json!({ "model": "m" })).await.unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(&body_bytes(res).await.unwrap()[..], b"{\"ok\":true}");
        }
        // One tunnel, reused by the pool for the second call.
        assert_eq!(*seen.lock().unwrap(), vec![format!("CONNECT {up} HTTP/1.1")]);

        // A proxy this client cannot speak to is a clear error, without the proxy's credentials.
        let socks = Matcher::builder().http("socks5://user:secret@127.0.0.1:1080").build();
        let t = Transport::with(Duration::from_secs(5), socks, rustls::RootCertStore::empty()).unwrap();
        let e = t.post_json(&ep, &serde_json::json!({})).await.unwrap_err().to_string();
        assert!(e.contains("only http:// proxies") && !e.contains("secret"), "{e}");
    }

    /// The test CA and the `localhost` certificate it signed (`tests/fixtures/tls`).
    const CA: &[u8] = include_bytes!("../../../tests/fixtures/tls/ca.der");
    const LEAF: &[u8] = include_bytes!("../../../tests/fixtures/tls/localhost.der");
    const LEAF_KEY: &[u8] = include_bytes!("../../../tests/fixtures/tls/localhost.key.der");

    /// An HTTPS provider on `ip` answering `{"tls":true}` to each request, over keep-alive
    /// (`None` if `ip` cannot be bound here).
    async fn https_provider(ip: &str) -> Option<std::net::SocketAddr> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(LEAF_KEY.to_vec()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(LEAF.to_vec())], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.ok()?;
        let addr = listener.local_addr().ok()?;
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to serve.
                    if let Ok(s) = acceptor.accept(tcp).await {
                        serve_json(s, "{\"tls\":true}").await;
                    }
                });
            }
        });
        Some(addr)
    }

    /// HTTPS calls verify the provider's certificate against the trusted roots and its name.
    #[tokio::test]
    async fn https_calls_verify_the_certificate_and_the_host_name() {
        let addr = https_provider("127.0.0.1").await.unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from(CA.to_vec())).unwrap();
        let no_proxy = || Matcher::builder().build();
        let trusting = Transport::with(Duration::from_secs(5), no_proxy(), roots).unwrap();
        for host in ["localhost", "127.0.0.1"] {
            let ep = Endpoint::new(&format!("https://{host}:{}/v1/chat/completions", addr.port()));
            let res = trusting.post_json(&ep, &serde_json::json!({ "model": "m" })).await.unwrap();
            assert_eq!(res.status(), 200, "{host}");
            assert_eq!(&body_bytes(res).await.unwrap()[..], b"{\"tls\":true}");
        }
        // A CA nobody configured: refused, and the error says why.
        let other = Transport::with(Duration::from_secs(5), no_proxy(), rustls::RootCertStore::empty()).unwrap();
        let ep = Endpoint::new(&format!("https://localhost:{}/v1/chat/completions", addr.port()));
        let e = other.post_json(&ep, &serde_json::json!({})).await.unwrap_err().to_string();
        assert!(e.contains("certificate"), "{e}");
        // The right CA but an address the certificate does not name (127.0.0.2 is loopback on
        // Linux; elsewhere this part is skipped).
        if let Some(other_ip) = https_provider("127.0.0.2").await {
            let ep = Endpoint::new(&format!("https://{other_ip}/v1/chat/completions"));
            let e = trusting.post_json(&ep, &serde_json::json!({})).await.unwrap_err().to_string();
            assert!(e.contains("certificate"), "{e}");
        }
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
