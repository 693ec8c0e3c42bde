//! The OpenAI-compatible face: `/v1/chat/completions` (plain and streaming) and `/v1/models`.
//!
//! `model: "keel"` runs the grounded pipeline. Numbered references are in the message text so
//! any chat UI shows them; the structured answer rides in the `keel` extension field.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use futures_util::stream;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{parse_value, JsonBody};
use super::ServerState;
use crate::answer::Answer;
use crate::kb::chunk::estimate_tokens;
use crate::pipeline::Question;

/// The grounded pipeline's model name.
pub const GROUNDED_MODEL: &str = "keel";

/// `stream_options`: typed, so a wrong type is a 422 naming the field, never a value the
/// gateway trips over later. Other (newer) options pass through unread.
#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    include_usage: Option<bool>,
}

/// OpenAI's request body. Unknown fields are rejected so a typo is an error, not a silent
/// default; sampling fields are accepted and have no effect on the deterministic pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "accepted for compatibility; the grounded pipeline ignores sampling fields")]
pub struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    n: Option<u32>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    stop: Option<Value>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    logit_bias: Option<Value>,
    logprobs: Option<bool>,
    top_logprobs: Option<u32>,
    user: Option<String>,
    seed: Option<i64>,
    response_format: Option<Value>,
    metadata: Option<Value>,
    store: Option<bool>,
    tools: Option<Value>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    service_tier: Option<String>,
    reasoning_effort: Option<String>,
    modalities: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    role: Role,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => {
                parts.iter().filter(|p| p.kind == "text").filter_map(|p| p.text.clone()).collect::<Vec<_>>().join("\n")
            }
        }
    }
}

pub async fn models(State(state): State<ServerState>) -> impl IntoResponse {
    let mut data = Vec::new();
    if state.grounded() {
        data.push(json!({ "id": GROUNDED_MODEL, "object": "model", "created": 0, "owned_by": "keel" }));
        if !state.gateway.has_model(super::embeddings::LOCAL_MODEL) {
            let id = super::embeddings::LOCAL_MODEL;
            data.push(json!({ "id": id, "object": "model", "created": 0, "owned_by": "keel" }));
        }
    }
    for m in state.gateway.models() {
        data.push(json!({ "id": m, "object": "model", "created": 0, "owned_by": "keel-gateway" }));
    }
    Json(json!({ "object": "list", "data": data }))
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The question is the last user message.
fn question_of(req: &ChatRequest) -> Result<String, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "`messages` must contain at least one message",
        )
        .param("messages"));
    }
    let (i, last) = req.messages.iter().enumerate().rev().find(|(_, m)| m.role == Role::User).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_value", "`messages` has no message with role `user`")
            .param("messages")
    })?;
    let text = last.content.as_ref().map(Content::text).unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            format!("`messages[{i}].content` is empty"),
        )
        .param(format!("messages[{i}].content")));
    }
    Ok(text)
}

/// The assistant message: the answer, then its numbered sources.
fn message_text(a: &Answer) -> String {
    let mut s = a.answer.clone();
    if !a.citations.is_empty() {
        s.push_str("\n\nSources:");
        for c in &a.citations {
            let heading = if c.heading.is_empty() { String::new() } else { format!(" — {}", c.heading) };
            s.push_str(&format!("\n[{}] {}{} ({})", c.n, c.title, heading, c.doc));
        }
    }
    s
}

fn extension(a: &Answer) -> Value {
    json!({
        "citations": a.citations,
        "grounded": a.grounded,
        "escalate": a.escalate,
        "reason": a.reason,
        "trace_id": a.trace_id,
        "versions": a.versions,
        "approved": a.approved,
        "conversation": a.conversation,
        "escalation": a.escalation,
        "guard": a.guard,
        "snapshot": a.snapshot,
        "cache": a.cache,
        "usage": a.usage,
        "usage_estimated": a.usage.is_none_or(|u| u.estimated),
    })
}

pub async fn chat_completions(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(raw): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let req: ChatRequest = parse_value(&raw)?;
    if req.model != GROUNDED_MODEL || !state.grounded() {
        if !state.gateway.has_model(&req.model) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!("The model `{}` does not exist", req.model),
            )
            .param("model"));
        }
        return if req.stream {
            super::gateway::stream(&state, &caller, &req.model, raw).await
        } else {
            super::gateway::complete(&state, &caller, &headers, &req.model, raw).await
        };
    }
    let app = state.app()?;
    if req.n.is_some_and(|n| n != 1) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "unsupported_value", "only `n: 1` is supported").param("n"));
    }
    let question = question_of(&req)?;
    let prompt_tokens: usize =
        req.messages.iter().filter_map(|m| m.content.as_ref()).map(|c| estimate_tokens(&c.text())).sum();
    // The conversation: the `X-Keel-Conversation` header, else `metadata.conversation_id`,
    // else the request's `user`.
    let conversation = headers
        .get("x-keel-conversation")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.metadata.as_ref()?.get("conversation_id")?.as_str().map(str::to_string))
        .or_else(|| req.user.clone());
    let conversation = super::conversation_id(conversation)?;
    // The key's limits apply to the grounded model too: counted before, settled after.
    let mut metered = raw.clone();
    let meter =
        match super::metering::begin(&state.gateway, state.limiter.as_ref(), &caller, GROUNDED_MODEL, &mut metered)
            .await
        {
            Ok(m) => m,
            Err(refused) => return Ok(refused),
        };
    let q = Question::new(question, "/v1/chat/completions").tenant(caller.tenant).conversation(conversation);
    let a = match app.pipeline.run(q).await {
        Ok(a) => a,
        Err(e) => {
            meter.finish(None, false).await;
            return Err(e.into());
        }
    };
    let id = format!("chatcmpl-{}", a.trace_id.trim_start_matches("tr_"));
    let text = message_text(&a);
    let completion_tokens = estimate_tokens(&text);
    meter.finish_grounded(a.usage, (prompt_tokens as u64, completion_tokens as u64)).await;
    // The model calls' real usage when the answer came from a model, else the estimate.
    let (prompt_tokens, completion_tokens) = match &a.usage {
        Some(u) => (u.prompt_tokens as usize, u.completion_tokens as usize),
        None => (prompt_tokens, completion_tokens),
    };
    let usage = json!({ "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens });
    let created = unix_now();
    let trace_header = HeaderValue::from_str(&a.trace_id).ok();
    let mut res = if req.stream {
        let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
        let chunk = |delta: Value, finish: Value| {
            json!({ "id": id, "object": "chat.completion.chunk", "created": created, "model": GROUNDED_MODEL,
                    "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
        };
        let mut events = vec![chunk(json!({ "role": "assistant", "content": "" }), Value::Null)];
        for piece in split_stream(&text) {
            events.push(chunk(json!({ "content": piece }), Value::Null));
        }
        let mut last = chunk(json!({}), json!("stop"));
        last["keel"] = extension(&a);
        events.push(last);
        if include_usage {
            events.push(
                json!({ "id": id, "object": "chat.completion.chunk", "created": created, "model": GROUNDED_MODEL,
                                "choices": [], "usage": usage }),
            );
        }
        let mut sse: Vec<Result<Event, Infallible>> =
            events.into_iter().map(|e| Ok(Event::default().data(e.to_string()))).collect();
        sse.push(Ok(Event::default().data("[DONE]")));
        Sse::new(stream::iter(sse)).into_response()
    } else {
        Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": GROUNDED_MODEL,
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
            "usage": usage,
            "keel": extension(&a),
        }))
        .into_response()
    };
    if let Some(v) = trace_header {
        res.headers_mut().insert("x-keel-trace-id", v);
    }
    if a.cache.is_some() {
        res.headers_mut().insert("x-keel-cache", HeaderValue::from_static("semantic-hit"));
    }
    Ok(res)
}

/// Pieces of a few words each, so clients render the stream progressively.
fn split_stream(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, word) in text.split_inclusive(' ').enumerate() {
        cur.push_str(word);
        if i % 4 == 3 {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_stream;

    #[test]
    fn stream_pieces_reassemble_to_the_text() {
        let t = "Returns are accepted within 30 days [1].\n\nSources:\n[1] Returns (returns.md)";
        assert_eq!(split_stream(t).concat(), t);
    }
}
