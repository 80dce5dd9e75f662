//! `GET /v1/models`, `GET /health`, `GET /metrics` and the fallbacks for
//! unknown routes and wrong methods.

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

fn model_objects(st: &AppState) -> Vec<ModelObject> {
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

/// `GET /v1/models`: every configured `instance/model` (in Anthropic's
/// shape when the request carries `anthropic-version`).
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

/// `GET /metrics`: the Prometheus text exposition.
pub(crate) async fn metrics() -> Response {
    let mut r = llm_router::metrics::prometheus_text().into_response();
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
