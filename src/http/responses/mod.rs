//! OpenAI's Responses face: `POST /v1/responses`, plain and streaming, so code written against
//! `client.responses.create` (the `openai` SDK's newer API) can use Keel. The request becomes a
//! chat request (`request.rs`) and takes the same path as `/v1/chat/completions` (grounded
//! pipeline or gateway route, keys, limits, guards, cache, traces, headers); the reply and its
//! stream are translated back (`reply.rs`). Unless the request says `store: false`, the
//! conversation is kept per tenant so `previous_response_id` can continue it, and
//! `GET`/`DELETE /v1/responses/{id}` fetch or remove it. What is kept has personal data
//! redacted as traces do (`[guard.pii]`, kinds set to `allow` kept). Errors keep OpenAI's error
//! shape, which both APIs share.

mod reply;
mod request;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use keel_guard::pii::{apply_pii_policy, PiiPolicy};
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{parse_value, JsonBody};
use super::ServerState;
use crate::store::{ResponseStore, StoredResponse};
use reply::{assistant_message, new_response_id, to_response, ToResponses};
use request::{to_chat, ResponsesRequest};

/// Where `/v1/responses` keeps responses, and what it redacts from them first.
pub struct Kept {
    pub store: Arc<dyn ResponseStore>,
    /// `[guard.pii]` for storage: a kept conversation holds no more personal data than a trace.
    pub pii: PiiPolicy,
}

/// The fields of messages, content parts and output items that carry text a person or a
/// model wrote (a message's `content`, a part's `text`, tool-call `arguments`, a tool's `output`).
const TEXT_FIELDS: [&str; 5] = ["content", "text", "arguments", "output", "refusal"];

/// Redacts, in place, every string under a [`TEXT_FIELDS`] key at any depth of `v`.
fn redact_texts(v: &mut Value, pii: &PiiPolicy) {
    match v {
        Value::Object(map) => {
            for (k, field) in map.iter_mut() {
                match field {
                    Value::String(s) if TEXT_FIELDS.contains(&k.as_str()) => *s = apply_pii_policy(s, pii).redacted,
                    _ => redact_texts(field, pii),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact_texts(i, pii)),
        _ => {}
    }
}

/// Where a response is kept once it is complete: the tenant's store and the conversation
/// that led to it.
struct Keeper {
    kept: Arc<Kept>,
    tenant: String,
    conversation: Vec<Value>,
    /// How many of `conversation`'s messages came from the store, already redacted.
    redacted: usize,
}

impl Keeper {
    /// Keeps `response` with the conversation and its reply, both redacted (the new messages
    /// only: the stored ones were redacted when kept). A failure is logged and leaves the
    /// response unkept; the client still gets it as it was.
    async fn keep(self, response: &Value) -> bool {
        let Some(id) = response.get("id").and_then(Value::as_str) else { return false };
        let pii = &self.kept.pii;
        let mut response = response.clone();
        redact_texts(&mut response, pii);
        let mut messages = self.conversation;
        messages.iter_mut().skip(self.redacted).for_each(|m| redact_texts(m, pii));
        messages.push(assistant_message(&response));
        let stored = StoredResponse {
            id: id.to_string(),
            tenant: self.tenant,
            created_at_ms: crate::trace::now_ms(),
            messages,
            response,
        };
        match self.kept.store.put_response(&stored).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(id, error = %e, "a response could not be stored");
                false
            }
        }
    }
}

fn not_found(id: &str, param: Option<&str>) -> ApiError {
    let e = ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("No stored response with id `{id}`"));
    match param {
        Some(p) => e.param(p),
        None => e,
    }
}

/// The responses store, or the error that says this server keeps none.
fn store_of(state: &ServerState, param: &str) -> Result<Arc<dyn ResponseStore>, ApiError> {
    state.responses.as_ref().map(|k| k.store.clone()).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_value",
            "this server keeps no responses (quick proxy mode without keys or traces has no store)",
        )
        .param(param)
    })
}

/// A stream of the chat path's chunks as Responses events; once it has ended cleanly, the
/// response is kept before its last event goes out, so a client that continues it at once
/// finds it.
fn translate_stream(body: Body, tr: ToResponses, keeper: Option<Keeper>) -> Body {
    let chunks = body.into_data_stream();
    let events = stream::unfold((chunks, tr, keeper), |(mut chunks, mut tr, mut keeper)| async move {
        let next = chunks.next().await?;
        let out = match next {
            Ok(b) => {
                let text = tr.feed(&b);
                if let (Some(done), Some(k)) = (tr.take_finished(), keeper.take()) {
                    k.keep(&done).await;
                }
                Ok(Bytes::from(text))
            }
            Err(e) => Err(std::io::Error::other(e)),
        };
        Some((out, (chunks, tr, keeper)))
    })
    .filter(|r| std::future::ready(!matches!(r, Ok(b) if b.is_empty())));
    Body::from_stream(events)
}

/// Translates whatever the chat path answered into the Responses shape (keeping it when
/// `keeper` says where); errors pass as they are.
async fn translate(res: Response, echo: Map<String, Value>, keeper: Option<Keeper>) -> Response {
    let (mut parts, body) = res.into_parts();
    let is_stream = super::chunk_stream::is_event_stream(&parts.headers);
    if !parts.status.is_success() {
        return Response::from_parts(parts, body);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let id = new_response_id();
    if is_stream {
        return Response::from_parts(parts, translate_stream(body, ToResponses::new(id, echo), keeper));
    }
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut r = to_response(&id, &v, &echo);
    if let Some(k) = keeper {
        if !k.keep(&r).await {
            r["store"] = json!(false);
        }
    }
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(r.to_string()))
}

pub async fn responses(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    match prepare(&state, &caller, body).await {
        Ok((chat, echo, keeper)) => {
            let res =
                match super::openai::chat_completions(State(state), Extension(caller), headers, JsonBody(chat)).await {
                    Ok(r) => r,
                    Err(e) => e.into_response(),
                };
            translate(res, echo, keeper).await
        }
        Err(e) => e.into_response(),
    }
}

/// The chat request, the fields to echo and where to keep the response.
async fn prepare(
    state: &ServerState,
    caller: &Caller,
    body: Result<JsonBody<Value>, ApiError>,
) -> Result<(Value, Map<String, Value>, Option<Keeper>), ApiError> {
    let req = body.and_then(|JsonBody(raw)| parse_value::<ResponsesRequest>(&raw))?;
    let prior = match req.previous_response_id() {
        Some(id) => {
            let store = store_of(state, "previous_response_id")?;
            store
                .get_response(&caller.tenant, id)
                .await?
                .ok_or_else(|| not_found(id, Some("previous_response_id")))?
                .messages
        }
        None => Vec::new(),
    };
    let kept = state.responses.clone().filter(|_| req.may_store());
    let redacted = prior.len();
    let (chat, conversation) = to_chat(&req, prior, kept.is_some())?;
    let keeper = kept.zip(conversation).map(|(kept, conversation)| Keeper {
        kept,
        tenant: caller.tenant.clone(),
        conversation,
        redacted,
    });
    Ok((chat, req.echo(keeper.is_some()), keeper))
}

/// `GET /v1/responses/{id}`: a stored response of the caller's tenant.
pub async fn retrieve(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let stored =
        store_of(&state, "id")?.get_response(&caller.tenant, &id).await?.ok_or_else(|| not_found(&id, None))?;
    Ok(Json(stored.response))
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !store_of(&state, "id")?.delete_response(&caller.tenant, &id).await? {
        return Err(not_found(&id, None));
    }
    Ok(Json(json!({ "id": id, "object": "response.deleted", "deleted": true })))
}
