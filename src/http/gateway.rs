//! Plain gateway mode: `/v1/chat/completions` for a configured model name goes through the
//! gateway's routes and controls; streams pass through chunk by chunk.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::{json, Value};

use super::error::ApiError;
use crate::gateway::provider::ProviderError;
use crate::gateway::{CallReport, Gateway, GatewayError};

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let msg = e.to_string();
        match e {
            GatewayError::UnknownModel(m) => {
                ApiError::new(StatusCode::NOT_FOUND, "model_not_found", msg).param(format!("model={m}"))
            }
            GatewayError::AllOpen(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "all_targets_unavailable", msg),
            GatewayError::Deadline(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded", msg),
            GatewayError::LoopGuard(_) => ApiError::new(StatusCode::BAD_GATEWAY, "model_call_limit", msg),
            GatewayError::Rejected { status, .. } => {
                let s = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                ApiError::new(s, "upstream_rejected", msg)
            }
            GatewayError::Exhausted(_) | GatewayError::Client(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream_failed", msg)
            }
        }
    }
}

fn stamp(res: &mut Response, report: &CallReport, started: Instant) {
    let overhead = started.elapsed().saturating_sub(report.provider_wait);
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&report.calls.to_string()) {
        h.insert("x-keel-attempts", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)) {
        h.insert("x-keel-overhead-ms", v);
    }
}

pub async fn complete(gateway: &Gateway, model: &str, body: Value) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut report = CallReport::default();
    let result = gateway.complete(model, body, &mut report).await;
    let mut res = match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    };
    stamp(&mut res, &report, started);
    Ok(res)
}

pub async fn stream(gateway: &Gateway, model: &str, body: Value) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut report = CallReport::default();
    let open = match gateway.stream(model, body, &mut report).await {
        Ok(s) => s,
        Err(e) => {
            let mut res = ApiError::from(e).into_response();
            stamp(&mut res, &report, started);
            return Ok(res);
        }
    };
    let body = Body::from_stream(relay(open.first, open.rest, gateway.idle_timeout()));
    let mut res = Response::new(body);
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    stamp(&mut res, &report, started);
    Ok(res)
}

/// An SSE event that tells the client the stream failed (never a clean `[DONE]`).
fn error_event(message: &str) -> Bytes {
    let e = json!({ "error": { "message": message, "type": "server_error", "code": "stream_interrupted" } });
    Bytes::from(format!("\n\ndata: {e}\n\n"))
}

struct Relay {
    rest: BoxStream<'static, Result<Bytes, ProviderError>>,
    idle: Duration,
    tail: Vec<u8>,
    done_seen: bool,
    finished: bool,
}

impl Relay {
    fn observe(&mut self, chunk: &[u8]) {
        // Keep the last bytes so a `[DONE]` split across chunks is still seen.
        self.tail.extend_from_slice(chunk);
        if self.tail.windows(6).any(|w| w == b"[DONE]") {
            self.done_seen = true;
        }
        let keep = self.tail.len().saturating_sub(16);
        self.tail.drain(..keep);
    }
}

/// Passes chunks through; a gap longer than `idle`, a broken connection or an end without
/// `[DONE]` becomes an error event.
fn relay(
    first: Bytes,
    rest: BoxStream<'static, Result<Bytes, ProviderError>>,
    idle: Duration,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let mut state = Relay { rest, idle, tail: Vec::new(), done_seen: false, finished: false };
    state.observe(&first);
    let head = stream::once(async move { Ok::<Bytes, std::io::Error>(first) });
    let tail = stream::unfold(state, |mut s| async move {
        if s.finished {
            return None;
        }
        match tokio::time::timeout(s.idle, s.rest.next()).await {
            Ok(Some(Ok(chunk))) => {
                s.observe(&chunk);
                Some((Ok(chunk), s))
            }
            Ok(Some(Err(e))) => {
                s.finished = true;
                Some((Ok(error_event(&e.to_string())), s))
            }
            Ok(None) if s.done_seen => None,
            Ok(None) => {
                s.finished = true;
                Some((Ok(error_event("the provider's stream ended early, without its end marker")), s))
            }
            Err(_) => {
                s.finished = true;
                let msg = format!("the provider sent nothing for {:?}", s.idle);
                Some((Ok(error_event(&msg)), s))
            }
        }
    });
    head.chain(tail).boxed()
}
