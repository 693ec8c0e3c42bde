//! OpenAI's Responses face: `POST /v1/responses`, plain and streaming, so code written against
//! `client.responses.create` (the `openai` SDK's newer API) can use Keel. Stateless: the
//! request becomes a chat request (`request.rs`) and takes the same path as
//! `/v1/chat/completions` (grounded pipeline or gateway route, keys, limits, guards, cache,
//! traces, headers); the reply and its stream are translated back (`reply.rs`). Errors keep
//! OpenAI's error shape, which both APIs share.

mod reply;
mod request;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures_util::stream::StreamExt;
use serde_json::{Map, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{parse_value, JsonBody};
use super::ServerState;
use reply::{to_response, ToResponses};
use request::{to_chat, ResponsesRequest};

/// Translates whatever the chat path answered into the Responses shape; errors pass as they are.
async fn translate(res: Response, echo: Map<String, Value>) -> Response {
    let (mut parts, body) = res.into_parts();
    let is_stream = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if !parts.status.is_success() {
        return Response::from_parts(parts, body);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    if is_stream {
        let mut tr = ToResponses::new(echo);
        let events = body
            .into_data_stream()
            .map(move |r| r.map(|b| Bytes::from(tr.feed(&b))).map_err(std::io::Error::other))
            .filter(|r| std::future::ready(!matches!(r, Ok(b) if b.is_empty())));
        return Response::from_parts(parts, Body::from_stream(events));
    }
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(to_response(&v, &echo).to_string()))
}

pub async fn responses(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    let req = match body.and_then(|JsonBody(raw)| parse_value::<ResponsesRequest>(&raw)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let chat = match to_chat(&req) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let echo = req.echo();
    let res = match super::openai::chat_completions(State(state), Extension(caller), headers, JsonBody(chat)).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    translate(res, echo).await
}
