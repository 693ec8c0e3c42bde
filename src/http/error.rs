//! The one place errors become HTTP responses: OpenAI's shape
//! `{"error": {"message", "type", "code", "param"}}` with the right status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::pipeline::PipelineError;
use crate::store::StoreError;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", other.to_string()),
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    /// The request's trace, returned in `x-keel-trace-id`.
    pub trace_id: Option<String>,
}

/// Attached to error responses so the logging middleware can report server faults.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let kind = match status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            500..=599 => "server_error",
            _ => "invalid_request_error",
        };
        Self { status, kind, code, message: message.into(), param: None, trace_id: None }
    }

    pub fn param(mut self, p: impl Into<String>) -> Self {
        self.param = Some(p.into());
        self
    }

    pub fn trace_id(mut self, id: Option<&str>) -> Self {
        self.trace_id = id.map(str::to_string);
        self
    }

    pub fn not_ready() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Keel is still loading its indexes; retry shortly")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "param": self.param,
        }});
        let mut res = (self.status, Json(body)).into_response();
        if let Some(v) = self.trace_id.and_then(|id| axum::http::HeaderValue::from_str(&id).ok()) {
            res.headers_mut().insert("x-keel-trace-id", v);
        }
        if self.status.is_server_error() {
            res.extensions_mut().insert(ErrorDetail(self.message));
        }
        res
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::InvalidInput { field, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_value", message).param(field)
            }
            // Internal details stay in the log (via ErrorDetail); the client gets a stable code.
            PipelineError::ConversationClosed { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conversation_closed", e.to_string()).param("conversation")
            }
            PipelineError::Store(StoreError::NotFound(m)) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", m).param("conversation")
            }
            PipelineError::Gateway(g) => ApiError::from(g),
            PipelineError::Embed(_)
            | PipelineError::Index(_)
            | PipelineError::Internal(_)
            | PipelineError::Ground(_)
            | PipelineError::Guardrail(_)
            | PipelineError::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e.to_string())
            }
        }
    }
}
