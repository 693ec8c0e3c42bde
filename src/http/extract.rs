//! Reading a JSON request body with precise errors: wrong content type → 415, body over the
//! limit → 413, malformed JSON → 400, wrong or missing fields → 422 naming the field.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::ServerState;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ServerState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &ServerState) -> Result<Self, Self::Rejection> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            let shown = if ct.is_empty() { "none".to_string() } else { format!("`{ct}`") };
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type must be application/json (got {shown})"),
            ));
        }
        let limit = state.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body exceeds {limit} bytes"),
            )
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses JSON, telling syntax errors (400) from shape errors (422).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // One pass without path tracking; only a failure pays for a second pass that names the field.
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = serde_path_to_error::deserialize::<_, T>(&mut de);
    let malformed =
        |e: &serde_json::Error| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("malformed JSON: {e}"));
    match result {
        Ok(v) => {
            de.end().map_err(|e| malformed(&e))?;
            Ok(v)
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if !matches!(inner.classify(), serde_json::error::Category::Data) {
                return Err(malformed(&inner));
            }
            Err(field_error(path, &inner))
        }
    }
}

/// A 422 naming the field at `path` (`.` is the whole body).
fn field_error(path: String, e: &serde_json::Error) -> ApiError {
    let msg = strip_position(&e.to_string());
    if path == "." || path.is_empty() {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", msg)
    } else {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("`{path}`: {msg}")).param(path)
    }
}

fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Validates an already-parsed JSON value against a type, naming the offending field.
pub fn parse_value<T: DeserializeOwned>(v: &serde_json::Value) -> Result<T, ApiError> {
    // One pass without path tracking; only a failure pays for a second pass that names the field.
    if let Ok(t) = T::deserialize(v) {
        return Ok(t);
    }
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let path = e.path().to_string();
        field_error(path, &e.into_inner())
    })
}
