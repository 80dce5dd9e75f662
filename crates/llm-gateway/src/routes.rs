//! `GET /v1/models`, `GET /health`, `GET /health/live`, `GET /health/ready`,
//! `GET /metrics` and the fallbacks for unknown routes and wrong methods.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use llm_router::exec::{CircuitState, HealthReport};
use serde::Serialize;

use super::error::ApiError;
use super::protocols::anthropic_messages;
use super::wire::{ModelList, ModelObject};
use super::AppState;

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every configured `instance/model` the caller may use (a virtual key
/// sees only its allowed models).
fn model_objects(st: &AppState) -> Vec<ModelObject> {
    let allowed = crate::tenancy::enforce::caller_models();
    let mut out = Vec::new();
    for p in st.client.providers() {
        let profile = p.profile();
        let mut models: Vec<&String> = profile.models.iter().collect();
        if let Some(d) = &profile.default_model {
            if !models.contains(&d) {
                models.push(d);
            }
        }
        for m in models {
            if allowed
                .as_ref()
                .is_some_and(|f| !f.allows(p.name(), m, profile.is_default_model(m)))
            {
                continue;
            }
            out.push(ModelObject {
                id: format!("{}/{m}", p.name()),
                object: "model",
                created: st.started,
                owned_by: p.name().to_string(),
            });
        }
    }
    out
}

/// `GET /v1/models`: every configured `instance/model` the caller may use
/// (in Anthropic's shape when the request carries `anthropic-version`).
pub(crate) async fn list_models(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let data = model_objects(&st);
    if headers.contains_key(anthropic_messages::VERSION_HEADER) {
        let ids = data.into_iter().map(|m| m.id).collect();
        return anthropic_messages::model_page(ids, st.started);
    }
    Json(ModelList {
        object: "list",
        data,
    })
    .into_response()
}

/// `GET /v1/models/{model}` (in Anthropic's shape when the request carries
/// `anthropic-version`).
pub(crate) async fn get_model(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let found = model_objects(&st).into_iter().find(|m| m.id == id);
    if headers.contains_key(anthropic_messages::VERSION_HEADER) {
        return anthropic_messages::model_info(found.map(|m| m.id), &id, st.started);
    }
    match found {
        Some(m) => Json(m).into_response(),
        None => ApiError::model_not_found(&id).into_response(),
    }
}

#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    providers: Vec<ProviderHealth>,
}

#[derive(Serialize)]
struct ProviderHealth {
    healthy: bool,
    #[serde(flatten)]
    report: HealthReport,
}

/// Whether a provider can take requests: its circuit is not open and its last
/// probe (if any) succeeded.
fn healthy(r: &HealthReport) -> bool {
    r.circuit != CircuitState::Open && r.available != Some(false)
}

/// `GET /health` (`?probe=1` probes every provider first): 200 when at least
/// one provider can take requests, else 503.
pub(crate) async fn health(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let probe = q.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "probe" | "probe=1" | "probe=true"))
    });
    let reports = if probe {
        st.client.refresh_health().await
    } else {
        st.client.health()
    };
    let providers: Vec<ProviderHealth> = reports
        .into_iter()
        .map(|report| ProviderHealth {
            healthy: healthy(&report),
            report,
        })
        .collect();
    let ok = providers.iter().any(|p| p.healthy);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = HealthBody {
        status: if ok { "ok" } else { "unavailable" },
        providers,
    };
    (status, Json(body)).into_response()
}

#[derive(Serialize)]
struct ProbeBody {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<String>,
}

/// `GET /health/live`: 200 while the process serves HTTP at all (liveness:
/// a failure means restart it). Never depends on providers or the drain.
pub(crate) async fn live(State(st): State<AppState>) -> Response {
    let body = ProbeBody {
        status: "live",
        config: st.lifecycle.config_hash(),
    };
    (StatusCode::OK, Json(body)).into_response()
}

/// `GET /health/ready`: 200 while the gateway takes new requests, 503 once
/// it drains (SIGTERM) or stops (readiness: a failure means send no new
/// traffic). Not tied to the providers' health, so an upstream outage does
/// not take every replica out of a load balancer.
pub(crate) async fn ready(State(st): State<AppState>) -> Response {
    let ready = st.lifecycle.ready();
    let body = ProbeBody {
        status: if ready { "ready" } else { "draining" },
        config: st.lifecycle.config_hash(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the Prometheus text exposition (the client's metrics,
/// then the gateway's own: live configuration, drain, requests in flight,
/// reloads, what a shutdown cut, rate-limit backend errors, dropped spend
/// rows).
pub(crate) async fn metrics(State(st): State<AppState>) -> Response {
    let mut text = llm_router::metrics::prometheus_text();
    text.push_str(&st.lifecycle.prometheus_text());
    text.push_str(&crate::tenancy::limits::prometheus_text());
    text.push_str(&crate::tenancy::spend::prometheus_text());
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE),
    );
    r
}

/// 404 for any other route.
pub(crate) async fn not_found(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::unknown_route(method.as_str(), uri.path())
}

/// 405 for a known route called with another method.
pub(crate) async fn wrong_method(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}
