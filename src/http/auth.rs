//! Authentication middleware: every route needs a key except the explicit allow-list below;
//! which scope a route needs is decided here and nowhere else.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::ServerState;
use crate::auth::{self, AuthError};

/// Routes anyone may call (load balancers and orchestrators probe these).
const PUBLIC: [&str; 2] = ["/healthz", "/readyz"];

fn scope_for(path: &str) -> &'static str {
    if path.starts_with("/v1/admin") || path.starts_with("/v1/traces") || path == "/metrics" {
        "admin"
    } else {
        "query"
    }
}

fn presented(req: &Request) -> Option<String> {
    let h = req.headers();
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return Some(v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).to_string());
    }
    // Anthropic-style clients send the key in `x-api-key`.
    h.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The caller, as the handlers see it (inserted by [`require_key`]).
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
    pub key_id: Option<String>,
}

impl Caller {
    fn anonymous() -> Self {
        Self { tenant: "default".into(), key_id: None }
    }
}

pub async fn require_key(State(state): State<ServerState>, mut req: Request, next: Next) -> Response {
    let Some(store) = state.auth.as_ref() else {
        req.extensions_mut().insert(Caller::anonymous());
        return next.run(req).await;
    };
    let path = req.uri().path();
    if PUBLIC.contains(&path) {
        return next.run(req).await;
    }
    let key = presented(&req);
    match auth::authorize(store, key.as_deref(), scope_for(path)).await {
        Ok(rec) => {
            req.extensions_mut().insert(Caller { tenant: rec.tenant, key_id: Some(rec.id) });
            next.run(req).await
        }
        Err(e @ AuthError::Scope(_)) => {
            ApiError::new(StatusCode::FORBIDDEN, "insufficient_scope", e.to_string()).into_response()
        }
        Err(AuthError::Store(e)) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e.to_string()).into_response()
        }
        Err(e) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", e.to_string()).into_response(),
    }
}
