//! The HTTP faces of the pipeline: an OpenAI-compatible API and Keel's native API.
//!
//! Invariant: only this folder knows wire types. Handlers are thin: parse, call one function
//! of the pipeline, map the result. Errors become HTTP in one place (`error.rs`); requests
//! are logged in one middleware, nowhere else.

mod admin;
mod anthropic;
mod auth;
mod chunk_stream;
mod embeddings;
mod error;
mod extract;
mod gateway;
mod gateway_trace;
pub use gateway_trace::GatewayTraces;
mod metering;
mod native;
mod openai;
mod passthrough;
mod relay;
mod responses;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::app::App;
use crate::gateway::Gateway;
use crate::guardrails::output::OutputGuard;
use crate::limits::Limiter;
use crate::metrics;
use crate::store::Store;
pub use error::ApiError;
use error::ErrorDetail;

/// Shared by every handler.
#[derive(Clone)]
pub struct ServerState {
    app: Arc<OnceLock<Arc<App>>>,
    /// Whether this server runs the grounded pipeline (false in quick proxy mode).
    grounded: bool,
    pub gateway: Arc<Gateway>,
    pub max_body_bytes: usize,
    /// Where API keys are checked; `None` serves without keys (`--no-auth`).
    pub auth: Option<Store>,
    /// Per-key limits and usage totals (set with the key store).
    pub limiter: Option<Arc<Limiter>>,
    /// Checks gateway replies before they reach the client (`[guard.output]`).
    pub output: Option<Arc<OutputGuard>>,
    /// The input guard for routes with a `guard` policy.
    pub input_guard: Option<Arc<keel_guard::InputGuard>>,
    /// Where the traces of gateway requests go (`None`: not traced).
    pub traces: Option<gateway_trace::GatewayTraces>,
    /// Where `/v1/responses` keeps responses (`None`: a server without a store keeps none).
    pub responses: Option<Arc<responses::Kept>>,
}

impl ServerState {
    /// A grounded server that is not ready until [`ServerState::set_ready`] is called.
    pub fn loading(max_body_bytes: usize, gateway: Arc<Gateway>) -> Self {
        Self {
            app: Arc::new(OnceLock::new()),
            grounded: true,
            gateway,
            max_body_bytes,
            auth: None,
            limiter: None,
            output: None,
            input_guard: None,
            traces: None,
            responses: None,
        }
    }

    /// A proxy-only server (quick mode): no knowledge base, no embedding model.
    pub fn proxy_only(max_body_bytes: usize, gateway: Arc<Gateway>) -> Self {
        Self { grounded: false, ..Self::loading(max_body_bytes, gateway) }
    }

    /// A ready grounded server whose gateway requests are traced with the pipeline's sink.
    pub fn ready(app: Arc<App>, gateway: Arc<Gateway>) -> Self {
        let s = Self::loading(app.config.server.max_body_bytes, gateway).with_traces(
            app.sink.clone(),
            app.config.gateway.trace,
            app.config.gateway.trace_sample,
            &app.config.guard.pii,
        );
        let s = s.with_responses(&app.store, &app.config.guard.pii);
        s.set_ready(app);
        s
    }

    /// Requires API keys, checked against `store`, whose usage area also holds each key's
    /// limits and usage.
    pub fn with_auth(mut self, store: Store) -> Self {
        let limits = self.gateway.limits_config().clone();
        self.limiter = Some(Arc::new(Limiter::new(store.usage.clone(), limits)));
        self.auth = Some(store);
        self
    }

    /// Keeps `/v1/responses` responses in `store`, personal data redacted per `pii` as in
    /// traces (`PiiPolicy::for_storage`).
    pub fn with_responses(mut self, store: &Store, pii: &keel_guard::pii::PiiPolicy) -> Self {
        self.responses = Some(Arc::new(responses::Kept { store: store.responses.clone(), pii: pii.for_storage() }));
        self
    }

    /// Checks every gateway reply with `guard` before it reaches the client.
    pub fn with_output_guard(mut self, guard: Arc<OutputGuard>) -> Self {
        self.output = Some(guard);
        self
    }

    /// Checks the requests of routes that have a `guard` policy with `guard`.
    pub fn with_input_guard(mut self, guard: Arc<keel_guard::InputGuard>) -> Self {
        self.input_guard = Some(guard);
        self
    }

    /// Traces gateway requests into `sink` (what they keep: `capture`; the share of successful
    /// requests kept: `sample`; text redacted per `pii`).
    pub fn with_traces(
        mut self,
        sink: crate::pipeline::TraceSink,
        capture: crate::config::gateway::TraceCapture,
        sample: f64,
        pii: &keel_guard::pii::PiiPolicy,
    ) -> Self {
        self.traces = Some(gateway_trace::GatewayTraces::new(sink, capture, sample, pii));
        self
    }

    pub fn grounded(&self) -> bool {
        self.grounded
    }

    pub fn set_ready(&self, app: Arc<App>) {
        let _ = self.app.set(app);
    }

    fn app(&self) -> Result<&Arc<App>, ApiError> {
        self.app.get().ok_or_else(ApiError::not_ready)
    }
}

pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/responses", post(responses::responses))
        .route("/v1/responses/{id}", get(responses::retrieve).delete(responses::delete))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/answer", post(native::answer))
        .route("/v1/traces", get(native::list_traces))
        .route("/v1/traces/{id}", get(native::trace))
        .route("/v1/admin/breakers", get(breakers))
        .route("/v1/admin/usage", get(usage))
        .route("/v1/admin/approved", get(admin::list_approved).post(admin::add_approved))
        .route("/v1/admin/approved/{id}", get(admin::get_approved).patch(admin::edit_approved))
        .route("/v1/admin/approved/{id}/retire", post(admin::retire_approved))
        .route("/v1/admin/escalations", get(admin::list_escalations))
        .route("/v1/admin/escalations/{id}", get(admin::get_escalation))
        .route("/v1/admin/escalations/{id}/claim", post(admin::claim_escalation))
        .route("/v1/admin/escalations/{id}/reply", post(admin::reply_escalation))
        .route("/v1/admin/escalations/{id}/resolve", post(admin::resolve_escalation))
        .route("/v1/admin/corrections", get(admin::list_corrections).post(admin::add_correction))
        .route("/v1/admin/answers/history", get(admin::answer_history))
        .route("/v1/admin/documents/flagged", get(admin::flagged_chunks))
        .route("/v1/admin/documents/approve", post(admin::approve_chunk))
        .route("/v1/admin/documents/revoke", post(admin::revoke_chunk))
        .route("/v1/conversations/{id}/messages", get(admin::conversation_messages))
        .route("/metrics", get(prometheus))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_key))
        .layer(middleware::from_fn(log_requests))
        .with_state(state)
}

/// Serves until `shutdown` resolves. Takes a bound listener so tests can use port 0.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // No Nagle: small responses must not wait for a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // Every gateway call arms a timer (its deadline, seconds away). A timer earlier than the
    // runtime's next planned wake-up makes the runtime wake its I/O driver (an eventfd write
    // and an extra epoll round per request); this tick keeps a planned wake-up always under a
    // second away, for one wake-up a second.
    let anchor = tokio::spawn(async {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
        }
    });
    let served = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await;
    anchor.abort();
    served
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<ServerState>) -> Response {
    if !state.grounded {
        return Json(json!({ "status": "ready", "mode": "proxy", "models": state.gateway.models() })).into_response();
    }
    match state.app() {
        Ok(app) => {
            let index = app.pipeline.index();
            Json(json!({ "status": "ready", "corpus_version": index.corpus_version(), "chunks": index.len() }))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn prometheus(State(state): State<ServerState>) -> Response {
    let gauges: Vec<_> = state
        .gateway
        .breaker_states()
        .into_iter()
        .map(|(t, s)| {
            let v = match s {
                "open" => 2.0,
                "half_open" => 1.0,
                _ => 0.0,
            };
            (
                "keel_breaker_state",
                "Circuit state per target: 0 closed, 1 half-open, 2 open",
                metrics::labels(&[("target", &t)]),
                v,
            )
        })
        .collect();
    let text = metrics::global().render(&gauges);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn breakers(State(state): State<ServerState>) -> impl IntoResponse {
    let list: Vec<_> =
        state.gateway.breaker_states().into_iter().map(|(t, s)| json!({ "target": t, "state": s })).collect();
    Json(json!({ "breakers": list }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    /// First UTC day counted, `YYYY-MM-DD`.
    since: Option<String>,
}

/// Usage summed per tenant, key and model (kept in the key store, so not with `--no-auth`).
async fn usage(
    State(state): State<ServerState>,
    axum::extract::Query(q): axum::extract::Query<UsageQuery>,
) -> Result<Response, ApiError> {
    let Some(store) = state.auth.as_ref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "usage_unavailable",
            "usage is kept with API keys; this server runs with --no-auth",
        ));
    };
    let totals = store.usage.usage_totals(q.since.as_deref()).await?;
    Ok(Json(json!({ "usage": totals })).into_response())
}

/// A client-chosen conversation id: 1–128 visible ASCII characters.
fn conversation_id(id: Option<String>) -> Result<Option<String>, ApiError> {
    match id {
        Some(id) if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "a conversation id must be 1 to 128 visible ASCII characters",
        )
        .param("conversation")),
        other => Ok(other),
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_route", format!("no route for {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

async fn log_requests(req: Request, next: Next) -> Response {
    // Cheap clones (a `Uri` shares its bytes, a `MatchedPath` is an `Arc<str>`): this runs on
    // every request.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    // The route pattern from the router, never a raw path (bounded label cardinality).
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("other", MatchedPath::as_str);
    let start = Instant::now();
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let ms = elapsed.as_secs_f64() * 1000.0;
    let code = res.status();
    let status = code.as_u16();
    let m = metrics::global();
    m.inc(
        "keel_http_requests_total",
        "HTTP requests by route and status",
        &[("route", route), ("status", code.as_str())],
        1,
    );
    m.observe("keel_http_request_duration_seconds", "Time to response headers by route", &[("route", route)], elapsed);
    let path = uri.path();
    match res.extensions().get::<ErrorDetail>() {
        Some(_) if status == 503 => tracing::info!(%method, %path, status, ms, "not ready"),
        Some(detail) => tracing::error!(%method, %path, status, ms, error = %detail.0, "request failed"),
        None if status >= 400 => tracing::info!(%method, %path, status, ms, "request rejected"),
        None => tracing::debug!(%method, %path, status, ms, "request"),
    }
    res
}
