//! Keel's native API: the full answer structure (citations, verdicts, versions, escalation)
//! and traces.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::JsonBody;
use super::ServerState;
use crate::pipeline::{Question, TraceSink};
use crate::store::TraceFilter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub question: String,
    #[serde(default)]
    pub top_k: Option<u16>,
    /// Groups questions into a conversation (turn limit, idle timeout, human replies).
    #[serde(default)]
    pub conversation: Option<String>,
}

pub async fn answer(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<AnswerRequest>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    if req.top_k == Some(0) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "`top_k` must be at least 1")
            .param("top_k"));
    }
    let conversation = super::conversation_id(req.conversation)?;
    let question_text = req.question.clone();
    let q = Question::new(req.question, "/v1/answer")
        .top_k(req.top_k.map(usize::from))
        .tenant(caller.tenant.clone())
        .conversation(conversation);
    let mut metered = serde_json::Value::Null;
    let meter =
        match super::metering::begin(&state.gateway, state.limiter.as_ref(), &caller, "keel", &mut metered).await {
            Ok(m) => m,
            Err(refused) => return Ok(refused),
        };
    let answer = match app.pipeline.run(q).await {
        Ok(a) => a,
        Err(e) => {
            meter.finish(None, false).await;
            return Err(e.into());
        }
    };
    let estimate = (
        crate::kb::chunk::estimate_tokens(&question_text) as u64,
        crate::kb::chunk::estimate_tokens(&answer.answer) as u64,
    );
    meter.finish_grounded(answer.usage, estimate).await;
    let mut res = Json(&answer).into_response();
    if let Ok(v) = HeaderValue::from_str(&answer.trace_id) {
        res.headers_mut().insert("x-keel-trace-id", v);
    }
    if answer.cache.is_some() {
        res.headers_mut().insert("x-keel-cache", axum::http::HeaderValue::from_static("semantic-hit"));
    }
    Ok(res)
}

/// The sink that reads traces back, after flushing the other one: gateway traces are written
/// by the server's own sink, pipeline traces by the app's (both into the same store).
async fn trace_reader(state: &ServerState) -> Result<&TraceSink, ApiError> {
    let app = state.app();
    match (&state.traces, app) {
        (Some(t), Ok(app)) => {
            app.sink.flush().await;
            Ok(t.sink())
        }
        (Some(t), Err(_)) => Ok(t.sink()),
        (None, Ok(app)) => Ok(&app.sink),
        (None, Err(e)) => Err(e),
    }
}

pub async fn trace(State(state): State<ServerState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    match trace_reader(&state).await?.get(&id).await {
        Ok(Some(t)) => Ok(Json(t).into_response()),
        Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, "trace_not_found", format!("no trace `{id}`"))),
        Err(e) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    route: Option<String>,
    status: Option<String>,
    tenant: Option<String>,
    model: Option<String>,
    /// ms since the epoch
    since: Option<i64>,
    /// ms since the epoch
    until: Option<i64>,
    before: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/traces?route=gateway&status=error&tenant=T&model=M&since=MS&until=MS&limit=50&before=ID`:
/// the newest traces first (`since`/`until`: ms since the epoch); `next` pages back (pass it as
/// `before`).
pub async fn list_traces(State(state): State<ServerState>, Query(q): Query<TraceQuery>) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            format!("limit {limit} is outside 1..=500"),
        )
        .param("limit"));
    }
    let filter = TraceFilter {
        route: q.route,
        status: q.status,
        tenant: q.tenant,
        model: q.model,
        since_ms: q.since,
        until_ms: q.until,
        before: q.before,
        limit,
    };
    let list = trace_reader(&state).await?.list(&filter).await?;
    let next = (list.len() == limit as usize).then(|| list.last().map(|t| t.id.clone())).flatten();
    Ok(Json(json!({ "data": list, "next": next })).into_response())
}
