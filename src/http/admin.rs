//! The governance faces: the admin API for approved answers, the escalation queue and the
//! review of flagged document chunks (`admin` scope), and the conversation poll through which a waiting user receives a human
//! agent's reply (`query` scope, own tenant only).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::JsonBody;
use super::ServerState;
use crate::governance::admin::{self, ApprovedEdit, GovernanceError};

impl From<GovernanceError> for ApiError {
    fn from(e: GovernanceError) -> Self {
        match e {
            GovernanceError::Invalid { field, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).param(field)
            }
            GovernanceError::Store(s) => s.into(),
        }
    }
}

fn author(caller: &Caller) -> String {
    caller.key_id.clone().unwrap_or_else(|| "api".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApproved {
    question: String,
    answer: String,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    cites: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditApproved {
    /// The version the editor read: the edit fails with 409 if another was written since.
    expected_version: i64,
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    cites: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retire {
    expected_version: i64,
}

async fn refreshed(state: &ServerState) -> Result<(), ApiError> {
    let app = state.app()?;
    app.reload_approved()
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e.to_string()))
}

pub async fn list_approved(State(state): State<ServerState>) -> Result<Response, ApiError> {
    let app = state.app()?;
    let list = app.store.approved.approved_current().await?;
    Ok(Json(json!({ "approved": list })).into_response())
}

pub async fn add_approved(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<NewApproved>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    let a =
        admin::add_approved(&app.store, &req.question, &req.answer, req.intent, req.cites, &author(&caller)).await?;
    refreshed(&state).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

pub async fn get_approved(State(state): State<ServerState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let app = state.app()?;
    let history = app.store.approved.approved_history(&id).await?;
    let Some(current) = history.last().cloned() else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no approved answer `{id}`")));
    };
    Ok(Json(json!({ "current": current, "history": history })).into_response())
}

pub async fn edit_approved(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<EditApproved>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    let edit = ApprovedEdit { question: req.question, answer: req.answer, intent: req.intent, cites: req.cites };
    let a = admin::edit_approved(&app.store, &id, req.expected_version, edit, None, &author(&caller)).await?;
    refreshed(&state).await?;
    Ok(Json(a).into_response())
}

pub async fn retire_approved(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Retire>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    let a = admin::edit_approved(
        &app.store,
        &id,
        req.expected_version,
        ApprovedEdit::default(),
        Some("retired"),
        &author(&caller),
    )
    .await?;
    refreshed(&state).await?;
    Ok(Json(a).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusFilter {
    status: Option<String>,
}

pub async fn list_escalations(
    State(state): State<ServerState>,
    Query(f): Query<StatusFilter>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    let list = app.store.escalations.escalations(f.status.as_deref()).await?;
    Ok(Json(json!({ "escalations": list })).into_response())
}

pub async fn get_escalation(State(state): State<ServerState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let app = state.app()?;
    match app.store.escalations.escalation(&id).await? {
        Some(e) => Ok(Json(e).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no escalation `{id}`"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    assignee: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

pub async fn claim_escalation(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Claim>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    if req.assignee.trim().is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "`assignee` must not be empty")
            .param("assignee"));
    }
    let e = app.store.escalations.claim_escalation(&id, req.assignee.trim(), crate::trace::now_ms()).await?;
    Ok(Json(e).into_response())
}

pub async fn reply_escalation(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Reply>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    if req.text.trim().is_empty() {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "`text` must not be empty").param("text")
        );
    }
    let e = app.store.escalations.reply_escalation(&id, req.text.trim(), crate::trace::now_ms()).await?;
    Ok(Json(e).into_response())
}

pub async fn resolve_escalation(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    JsonBody(_): JsonBody<Empty>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    let e = app.store.escalations.resolve_escalation(&id, crate::trace::now_ms()).await?;
    Ok(Json(e).into_response())
}

/// A waiting client's poll: the human replies not yet delivered (now marked delivered).
pub async fn conversation_messages(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    let conv = app.store.conversations.conversation(&id).await?;
    let Some(conv) = conv.filter(|c| c.tenant == caller.tenant) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no conversation `{id}`")));
    };
    let messages = app.store.conversations.take_pending(&id).await?;
    Ok(Json(json!({ "conversation": conv, "messages": messages })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCorrection {
    trace_id: String,
    text: String,
    reason: String,
}

/// Marks an answer wrong by trace id; matching questions get the correction from then on.
pub async fn add_correction(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<NewCorrection>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    app.sink.flush().await;
    let mode = app.config.governance.corrections;
    let c = admin::add_correction(&app.store, &req.trace_id, &req.text, &req.reason, &author(&caller), mode).await?;
    refreshed(&state).await?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

pub async fn list_corrections(State(state): State<ServerState>) -> Result<Response, ApiError> {
    let app = state.app()?;
    let list = app.store.snapshots.corrections().await?;
    Ok(Json(json!({ "corrections": list })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    question: String,
}

/// How the answer to a question changed across versions (snapshots with word diffs).
pub async fn answer_history(
    State(state): State<ServerState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    let history = admin::answer_history(&app.store, &q.question).await?;
    Ok(Json(json!({ "question": q.question, "history": history })).into_response())
}

/// `GET /v1/admin/documents/flagged`: chunks carrying instructions aimed at an AI, and whether
/// a person approved them.
pub async fn flagged_chunks(State(state): State<ServerState>) -> Result<Response, ApiError> {
    let app = state.app()?;
    let Some(guard) = app.pipeline.document_scanner() else {
        return Ok(Json(json!({ "data": [], "scanning": false })).into_response());
    };
    let flagged = crate::guardrails::review::scan_flagged(guard, &app.store, None).await?;
    Ok(Json(json!({ "data": flagged, "scanning": true })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkReview {
    chunk: String,
    #[serde(default)]
    note: String,
}

/// `POST /v1/admin/documents/approve`: lets a flagged chunk's current content into answers.
pub async fn approve_chunk(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<ChunkReview>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    let a = crate::guardrails::review::approve(&app.store, &req.chunk, &author(&caller), &req.note).await?;
    refreshed(&state).await?;
    Ok(Json(a).into_response())
}

/// `POST /v1/admin/documents/revoke`: withdraws every approval of a chunk.
pub async fn revoke_chunk(
    State(state): State<ServerState>,
    JsonBody(req): JsonBody<ChunkReview>,
) -> Result<Response, ApiError> {
    let app = state.app()?;
    let n = app.store.docs.revoke_chunk(&req.chunk).await?;
    if n == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("chunk `{}` has no approval", req.chunk),
        ));
    }
    refreshed(&state).await?;
    Ok(Json(json!({ "revoked": n, "chunk": req.chunk })).into_response())
}
