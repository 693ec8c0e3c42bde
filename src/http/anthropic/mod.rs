//! The Anthropic-compatible face: `POST /v1/messages`, plain and streaming, so the `anthropic`
//! SDK (and tools built on it) can use Keel. The request becomes a chat request
//! (`request.rs`) and takes the same path as `/v1/chat/completions` (grounded pipeline or
//! gateway route, limits, cache, headers); the reply, its errors and its stream are translated
//! back (`reply.rs`). Tools, tool calls, tool results and images cross both ways.

mod reply;
mod request;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use serde_json::Value;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{parse_value, JsonBody};
use super::ServerState;
use reply::{error_body, to_message, ToAnthropic};
use request::{to_chat, MessagesRequest};

fn translate_stream(body: Body) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let mut tr = ToAnthropic::default();
    body.into_data_stream()
        .map(move |r| r.map(|b| Bytes::from(tr.feed(&b))).map_err(std::io::Error::other))
        .filter(|r| std::future::ready(!matches!(r, Ok(b) if b.is_empty())))
        .boxed()
}

/// Rebuilds a response around a translated JSON body, keeping status and Keel's headers.
fn with_json(parts: axum::http::response::Parts, v: &Value) -> Response {
    let mut res = Response::from_parts(parts, Body::from(v.to_string()));
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    res
}

/// Translates whatever the chat path answered into the Messages shape.
async fn translate(res: Response) -> Response {
    let status = res.status();
    let (parts, body) = res.into_parts();
    let is_stream = super::chunk_stream::is_event_stream(&parts.headers);
    if status.is_success() && is_stream {
        let mut res = Response::from_parts(parts, Body::from_stream(translate_stream(body)));
        res.headers_mut().remove(header::CONTENT_LENGTH);
        return res;
    }
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return with_json(parts, &to_message(&v));
    }
    let msg = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("request failed");
    with_json(parts, &error_body(status.as_u16(), msg))
}

pub async fn messages(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    let chat = body.and_then(|JsonBody(raw)| parse_value::<MessagesRequest>(&raw)).and_then(|r| to_chat(&r));
    let res = match chat {
        Ok(chat) => {
            match super::openai::chat_completions(State(state), Extension(caller), headers, JsonBody(chat)).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        }
        Err(e) => e.into_response(),
    };
    translate(res).await
}
