//! `POST /v1/embeddings`: OpenAI's embeddings API through the gateway's routes, with the
//! controls of a chat completion (key and scope, the route's input guard, rate limits and
//! budgets, retries, deadline, breakers, fallback, the loop guard, metering and the trace).
//! The provider's reply is passed through as its bytes; targets whose wire format has no
//! embeddings endpoint (Anthropic) are skipped.

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{parse_value, JsonBody};
use super::gateway::{guard_request, header as set_header, stamp, stamp_usage};
use super::gateway_trace::GatewayTraces;
use super::metering;
use super::ServerState;
use crate::gateway::usage::{self, Usage};
use crate::gateway::{CallReport, RouteInput};

/// OpenAI's limit on the number of inputs in one request.
const MAX_INPUTS: usize = 2048;

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
    let mut meter = match metering::begin_embedding(gateway, state.limiter.as_ref(), &caller, model, prompt).await {
        Ok(m) => m,
        Err(mut refused) => {
            trace.span("limits", [("outcome", json!("refused"))]);
            trace.finish_with(&mut refused);
            return Ok(refused);
        }
    };
    trace.span("limits", [("outcome", json!("reserved")), ("input_tokens", json!(prompt))]);
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
