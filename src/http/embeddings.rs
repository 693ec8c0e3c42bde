//! `POST /v1/embeddings`: OpenAI's embeddings API through the gateway's routes, with the
//! controls of a chat completion (key and scope, the route's input guard, rate limits and
//! budgets, retries, deadline, breakers, fallback, the loop guard, metering and the trace).
//! The provider's reply is passed through as its bytes; targets whose wire format has no
//! embeddings endpoint (Anthropic) are skipped. Once the knowledge base is loaded, the model
//! Keel runs in-process ([`LOCAL_MODEL`]) answers too, with no provider, unless a route takes
//! its name.

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{parse_value, JsonBody};
use super::gateway::{guard_request, header as set_header, stamp, stamp_usage};
use super::gateway_trace::{GatewayTrace, GatewayTraces};
use super::metering;
use super::ServerState;
use crate::gateway::usage::{self, Usage};
use crate::gateway::{CallReport, RouteInput};

/// OpenAI's limit on the number of inputs in one request.
const MAX_INPUTS: usize = 2048;

/// The in-process embedding model's name at `/v1/embeddings`.
pub const LOCAL_MODEL: &str = "all-MiniLM-L6-v2";

/// Inputs per request to the in-process model (each one costs this server's CPU).
const MAX_LOCAL_INPUTS: usize = 256;

/// The fields Keel reads or checks; any other field goes to the provider as sent.
#[derive(Debug, Deserialize)]
#[expect(dead_code, reason = "checked for their type; the provider reads them")]
struct EmbeddingsRequest {
    model: String,
    input: Value,
    encoding_format: Option<EncodingFormat>,
    dimensions: Option<u32>,
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum EncodingFormat {
    Float,
    Base64,
}

/// A 422 naming `input`, like every field of the wrong shape.
fn bad_input(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).param("input")
}

/// `input` is a non-empty string, or 1–2048 non-empty strings, or a non-empty token array, or
/// 1–2048 non-empty token arrays.
fn check_input(input: &Value) -> Result<(), ApiError> {
    let token = |v: &Value| v.as_u64().is_some_and(|t| t <= u64::from(u32::MAX));
    let tokens = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(token));
    match input {
        Value::String(s) if s.is_empty() => Err(bad_input("`input` must not be empty")),
        Value::String(_) => Ok(()),
        Value::Array(items) if items.is_empty() => Err(bad_input("`input` must not be an empty array")),
        Value::Array(items) if items.len() > MAX_INPUTS => {
            Err(bad_input(&format!("`input` holds {} items; at most {MAX_INPUTS} are allowed", items.len())))
        }
        Value::Array(items) => {
            let texts = items.iter().all(|i| i.as_str().is_some_and(|s| !s.is_empty()));
            if texts || items.iter().all(token) || items.iter().all(tokens) {
                Ok(())
            } else {
                Err(bad_input(
                    "`input` must be a string, an array of non-empty strings, an array of token ids or an array of \
                     non-empty token-id arrays",
                ))
            }
        }
        _ => Err(bad_input("`input` must be a string or an array")),
    }
}

pub async fn embeddings(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    JsonBody(mut body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let req: EmbeddingsRequest = parse_value(&body)?;
    check_input(&req.input)?;
    let gateway = &state.gateway;
    if req.model == LOCAL_MODEL && state.grounded() && !gateway.has_model(LOCAL_MODEL) {
        return local(&state, &caller, &req).await;
    }
    if !gateway.has_model(&req.model) {
        let msg = format!("The model `{}` does not exist", req.model);
        return Err(ApiError::new(StatusCode::NOT_FOUND, "model_not_found", msg).param("model"));
    }
    let started = Instant::now();
    let route = gateway.resolve(&req.model, &RouteInput { tenant: &caller.tenant, body: &body });
    let model = route.as_str();
    let mut trace = GatewayTraces::start(state.traces.as_ref(), &caller, &req.model, model, false);
    let guarded = guard_request(&state, model, &mut body, &mut trace)?;
    let prompt = usage::estimate_input(model, &body);
    let mut meter = match reserve(&state, &caller, model, prompt, &mut trace).await {
        Ok(m) => m,
        Err(refused) => return Ok(refused),
    };
    let mut report = CallReport::default();
    let result = gateway.embed(model, &mut body, &mut report).await;
    trace.provider(&report);
    meter.served_by(report.price);
    let embedded = match result {
        Ok(e) => e,
        Err(e) => return Ok(super::gateway::failed(meter, e, &report, started, &mut trace).await),
    };
    let usage = meter.price(Usage {
        prompt_tokens: embedded.prompt_tokens.unwrap_or(prompt),
        completion_tokens: 0,
        cached_tokens: 0,
        estimated: embedded.prompt_tokens.is_none(),
        cost_nanodollars: 0,
    });
    meter.finish(Some(usage), false).await;
    trace.usage(&usage);
    let mut res = embedded.bytes.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    stamp_usage(&mut res, &usage, None);
    if let Some(g) = &guarded {
        set_header(&mut res, "x-keel-guard", g);
    }
    stamp(&mut res, &report, started);
    trace.finish_with(&mut res);
    Ok(res)
}

/// Reserves `prompt` input tokens under the caller's limits, noting the outcome on the trace;
/// a refusal comes back as the finished 429.
async fn reserve(
    state: &ServerState,
    caller: &Caller,
    model: &str,
    prompt: u64,
    trace: &mut GatewayTrace,
) -> Result<metering::Meter, Response> {
    match metering::begin_embedding(&state.gateway, state.limiter.as_ref(), caller, model, prompt).await {
        Ok(m) => {
            trace.span("limits", [("outcome", json!("reserved")), ("input_tokens", json!(prompt))]);
            Ok(m)
        }
        Err(mut refused) => {
            trace.span("limits", [("outcome", json!("refused"))]);
            trace.finish_with(&mut refused);
            Err(refused)
        }
    }
}

/// Embeddings from the model Keel runs in-process (the one that embeds the knowledge base):
/// metered under the key's limits like a provider's (no price, so no cost), traced, and shaped
/// like OpenAI's reply (floats, or little-endian `f32` bytes in base64).
async fn local(state: &ServerState, caller: &Caller, req: &EmbeddingsRequest) -> Result<Response, ApiError> {
    let app = state.app()?.clone();
    let texts: Vec<&str> = match &req.input {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| bad_input(&format!("{LOCAL_MODEL} takes text, not token ids")))?,
        _ => return Err(bad_input("`input` must be a string or an array")),
    };
    if texts.len() > MAX_LOCAL_INPUTS {
        return Err(bad_input(&format!("{LOCAL_MODEL} takes at most {MAX_LOCAL_INPUTS} inputs per request")));
    }
    let dim = app.embedder.dim();
    if req.dimensions.is_some_and(|d| d as usize != dim) {
        let msg = format!("{LOCAL_MODEL} has {dim} dimensions");
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", msg).param("dimensions"));
    }
    let internal = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e);
    let started = Instant::now();
    let mut trace = GatewayTraces::start(state.traces.as_ref(), caller, LOCAL_MODEL, LOCAL_MODEL, false);
    let ids = app.embedder.tokenize(&texts).map_err(|e| internal(e.to_string()))?;
    let prompt: u64 = ids.iter().map(|i| i.len() as u64).sum();
    let meter = match reserve(state, caller, LOCAL_MODEL, prompt, &mut trace).await {
        Ok(m) => m,
        Err(refused) => return Ok(refused),
    };
    let embedder = app.embedder.clone();
    let embedded = tokio::task::spawn_blocking(move || embedder.embed_ids(&ids).map_err(|e| e.to_string())).await;
    let vectors = match embedded.map_err(|e| e.to_string()).and_then(|r| r) {
        Ok(v) => v,
        Err(e) => {
            meter.finish(None, false).await;
            return Err(internal(format!("embedding failed: {e}")));
        }
    };
    trace.span("embed", [("inputs", json!(texts.len()))]);
    let base64 = matches!(req.encoding_format, Some(EncodingFormat::Base64));
    let data: Vec<Value> = vectors
        .chunks(dim)
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let usage =
        Usage { prompt_tokens: prompt, completion_tokens: 0, cached_tokens: 0, estimated: false, cost_nanodollars: 0 };
    meter.finish(Some(usage), false).await;
    trace.usage(&usage);
    let reply = json!({ "object": "list", "data": data, "model": LOCAL_MODEL,
                        "usage": { "prompt_tokens": prompt, "total_tokens": prompt } });
    let mut res = Json(reply).into_response();
    stamp_usage(&mut res, &usage, None);
    stamp(&mut res, &CallReport::default(), started);
    trace.finish_with(&mut res);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_of_every_documented_shape_pass_and_others_are_named() {
        for ok in [json!("hi"), json!(["a", "b"]), json!([1, 2, 3]), json!([[1, 2], [3]])] {
            assert!(check_input(&ok).is_ok(), "{ok}");
        }
        for (bad, says) in [
            (json!(""), "must not be empty"),
            (json!([]), "empty array"),
            (json!(["a", ""]), "non-empty strings"),
            (json!(["a", 1]), "non-empty strings"),
            (json!([[1], []]), "token-id arrays"),
            (json!([-1]), "token ids"),
            (json!(7), "a string or an array"),
            (json!({ "text": "a" }), "a string or an array"),
            (Value::Array(vec![json!("a"); MAX_INPUTS + 1]), "at most 2048"),
        ] {
            let e = check_input(&bad).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("input")));
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
    }
}
