//! The admin API of virtual keys and usage, authorised by the master key
//! (`Authorization: Bearer <master key>` or `x-api-key`):
//!
//! - `POST /admin/keys` creates a key; the answer carries the secret `key`,
//!   shown this once (only its hash is stored).
//! - `GET /admin/keys` lists keys; `GET /admin/keys/{id}` shows one with its
//!   spend in the current budget period.
//! - `PATCH /admin/keys/{id}` changes fields (`null` clears an optional one).
//! - `POST /admin/keys/{id}/rotate` replaces the secret (shown once).
//! - `POST /admin/keys/{id}/revoke` and `DELETE /admin/keys/{id}` revoke it
//!   for good (its record and spend stay).
//! - `GET /admin/usage?group_by=key|model|day&from=YYYY-MM-DD&to=YYYY-MM-DD&key=ID`
//!   reports requests, errors, tokens and cost from the daily aggregates
//!   (`to` included).
//!
//! Answers are JSON and never contain a key hash; errors have OpenAI's shape.
//! The operations are also functions over a [`Store`], which `llm keys` and
//! `llm usage` use directly.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::keys;
use super::store::Store;
use super::types::{
    BudgetPeriod, GroupBy, KeyPatch, KeyRecord, StoreError, UsageQuery, UsageRow, DAY_MS,
};
use super::{now_ms, Tenancy};
use crate::error::ApiError;

/// What creating a key takes (every field but `name` optional).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A human name (app, team, customer).
    pub name: String,
    /// Who owns the key.
    #[serde(default)]
    pub owner: Option<String>,
    /// The team it belongs to.
    #[serde(default)]
    pub team: Option<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Allowed models: globs over `model` or `instance/model`; empty = all.
    #[serde(default)]
    pub models: Vec<String>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[serde(default)]
    pub tpm: Option<u32>,
    /// Concurrent requests.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Budget in USD per period.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// The budget's period (default `total`).
    #[serde(default)]
    pub budget_period: Option<BudgetPeriod>,
    /// When the key stops working (unix ms).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Whether the key works (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A key as the API shows it: the record (never its hash), the secret when
/// it was just created or rotated, and the spend of the current period
/// when asked for one key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyView {
    /// The record.
    #[serde(flatten)]
    pub record: KeyRecord,
    /// The secret key, present only in the answer that created or rotated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Spend in the current budget period (USD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_usd: Option<f64>,
    /// When the current budget period ends (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_resets_at: Option<i64>,
}

/// A usage line with the key's name when grouped by key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageLine {
    /// The row.
    #[serde(flatten)]
    pub row: UsageRow,
    /// The key's name (grouping by key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A field has a value the gateway refuses.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// No key has this id.
    #[error("no key with id `{0}`")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No random key could be made.
    #[error(transparent)]
    Rng(#[from] keys::RngError),
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid { field, message } => {
                ApiError::invalid(Some(field), format!("{field}: {message}"))
            }
            AdminError::NotFound(id) => ApiError::key_not_found(&id),
            AdminError::Store(StoreError::NotFound) => ApiError::key_not_found(""),
            e => {
                tracing::warn!(error = %e, "admin operation failed");
                ApiError::internal(e.to_string())
            }
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field,
        message: message.into(),
    }
}

fn check_limits(
    rpm: Option<u32>,
    tpm: Option<u32>,
    max_concurrency: Option<u32>,
    budget: Option<f64>,
) -> Result<(), AdminError> {
    for (field, v) in [
        ("rpm", rpm),
        ("tpm", tpm),
        ("max_concurrency", max_concurrency),
    ] {
        if v == Some(0) {
            return Err(invalid(field, "must be at least 1 (omit it for no limit)"));
        }
    }
    if let Some(b) = budget {
        if !b.is_finite() || b < 0.0 {
            return Err(invalid("budget_usd", "must be a non-negative number"));
        }
    }
    Ok(())
}

fn check_models(models: &[String]) -> Result<(), AdminError> {
    if models.iter().any(|m| m.trim().is_empty()) {
        return Err(invalid("models", "a glob cannot be empty"));
    }
    Ok(())
}

/// Creates a key; returns its record and its secret (shown once).
pub async fn create_key(
    store: &dyn Store,
    req: CreateKey,
) -> Result<(KeyRecord, String), AdminError> {
    if req.name.trim().is_empty() {
        return Err(invalid("name", "a key needs a name"));
    }
    check_limits(req.rpm, req.tpm, req.max_concurrency, req.budget_usd)?;
    check_models(&req.models)?;
    let secret = keys::generate()?;
    let now = now_ms();
    let record = KeyRecord {
        id: keys::new_key_id()?,
        name: req.name.trim().to_string(),
        owner: req.owner,
        team: req.team,
        metadata: req.metadata,
        hash: secret.hash,
        prefix: secret.prefix.clone(),
        models: req.models,
        rpm: req.rpm,
        tpm: req.tpm,
        max_concurrency: req.max_concurrency,
        budget_usd: req.budget_usd,
        budget_period: req.budget_period.unwrap_or_default(),
        expires_at: req.expires_at,
        enabled: req.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
        revoked_at: None,
    };
    store.create_key(&record).await?;
    Ok((record, secret.secret))
}

/// Applies `patch` to key `id`.
pub async fn update_key(
    store: &dyn Store,
    id: &str,
    patch: &KeyPatch,
) -> Result<KeyRecord, AdminError> {
    if patch.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(invalid("name", "a key needs a name"));
    }
    check_limits(
        patch.rpm.flatten(),
        patch.tpm.flatten(),
        patch.max_concurrency.flatten(),
        patch.budget_usd.flatten(),
    )?;
    if let Some(m) = &patch.models {
        check_models(m)?;
    }
    store
        .update_key(id, patch, now_ms())
        .await?
        .ok_or_else(|| AdminError::NotFound(id.to_string()))
}

/// Gives key `id` a new secret; returns the record and the secret.
pub async fn rotate_key(store: &dyn Store, id: &str) -> Result<(KeyRecord, String), AdminError> {
    let secret = keys::generate()?;
    let record = store
        .rotate_key(id, secret.hash, &secret.prefix, now_ms())
        .await?
        .ok_or_else(|| AdminError::NotFound(id.to_string()))?;
    Ok((record, secret.secret))
}

/// Revokes key `id` for good.
pub async fn revoke_key(store: &dyn Store, id: &str) -> Result<KeyRecord, AdminError> {
    store
        .revoke_key(id, now_ms())
        .await?
        .ok_or_else(|| AdminError::NotFound(id.to_string()))
}

/// Key `id` with its spend in the current budget period.
pub async fn show_key(store: &dyn Store, id: &str) -> Result<KeyView, AdminError> {
    let record = store
        .key(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.to_string()))?;
    let (since, resets) = record.budget_period.window(now_ms());
    let spent = store.key_spend_since(id, since).await?;
    Ok(KeyView {
        record,
        key: None,
        spent_usd: Some(spent),
        budget_resets_at: resets,
    })
}

/// Unix ms of 00:00 UTC of a `YYYY-MM-DD` date.
pub fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (proleptic Gregorian).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // Refuse dates that do not exist (2026-02-30).
    (super::types::day_string(days) == format!("{y:04}-{m:02}-{d:02}")).then_some(days * DAY_MS)
}

/// A usage report, from `from` to `to` (both `YYYY-MM-DD`, `to` included);
/// grouped by key, each line carries the key's name.
pub async fn usage_report(
    store: &dyn Store,
    group_by: GroupBy,
    from: Option<&str>,
    to: Option<&str>,
    key: Option<&str>,
) -> Result<Vec<UsageLine>, AdminError> {
    let from_ms = match from {
        Some(f) => Some(parse_day(f).ok_or_else(|| invalid("from", "expected YYYY-MM-DD"))?),
        None => None,
    };
    let to_ms = match to {
        Some(t) => Some(parse_day(t).ok_or_else(|| invalid("to", "expected YYYY-MM-DD"))? + DAY_MS),
        None => None,
    };
    let rows = store
        .usage(&UsageQuery {
            group_by,
            from_ms,
            to_ms,
            key_id: key.map(str::to_string),
        })
        .await?;
    let names: std::collections::HashMap<String, String> = if group_by == GroupBy::Key {
        store
            .list_keys()
            .await?
            .into_iter()
            .map(|k| (k.id, k.name))
            .collect()
    } else {
        Default::default()
    };
    Ok(rows
        .into_iter()
        .map(|row| UsageLine {
            name: names.get(&row.group).cloned(),
            row,
        })
        .collect())
}

/// The `/admin/*` routes over `tenancy`, behind the master key.
pub fn router<S: Clone + Send + Sync + 'static>(tenancy: Arc<Tenancy>) -> Router<S> {
    Router::new()
        .route("/admin/keys", post(create).get(list))
        .route("/admin/keys/{id}", get(show).patch(update).delete(revoke))
        .route("/admin/keys/{id}/rotate", post(rotate))
        .route("/admin/keys/{id}/revoke", post(revoke))
        .route("/admin/usage", get(usage))
        .layer(axum::middleware::from_fn_with_state(
            tenancy.clone(),
            master_only,
        ))
        .with_state(tenancy)
}

/// Lets through only requests carrying the master key (401 otherwise; 404
/// when no master key is configured).
async fn master_only(State(t): State<Arc<Tenancy>>, req: Request, next: Next) -> Response {
    if !t.has_master_key() {
        return ApiError::unknown_route(req.method().as_str(), req.uri().path()).into_response();
    }
    let (bearer, api_key) = super::enforce::presented_keys(req.headers());
    if bearer.is_none() && api_key.is_none() {
        return ApiError::missing_key().into_response();
    }
    if bearer
        .into_iter()
        .chain(api_key)
        .any(|k| t.is_master_key(k))
    {
        next.run(req).await
    } else {
        ApiError::wrong_key().into_response()
    }
}

fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|r| ApiError::invalid(None, r.body_text()))?;
    let de = &mut serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid(
            (path != ".").then_some(path.as_str()),
            format!("invalid request body: {}", e.inner()),
        )
    })
}

fn answer<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, Json(value)).into_response()
}

fn fail(e: impl Into<ApiError>) -> Response {
    e.into().into_response()
}

async fn create(State(t): State<Arc<Tenancy>>, body: Result<Bytes, BytesRejection>) -> Response {
    let req: CreateKey = match json_body(body) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match create_key(t.store().as_ref(), req).await {
        Ok((record, secret)) => {
            tracing::info!(key_id = %record.id, name = %record.name, "virtual key created");
            answer(
                StatusCode::CREATED,
                &KeyView {
                    record,
                    key: Some(secret),
                    spent_usd: None,
                    budget_resets_at: None,
                },
            )
        }
        Err(e) => fail(e),
    }
}

#[derive(Serialize)]
struct List<T> {
    object: &'static str,
    data: Vec<T>,
}

async fn list(State(t): State<Arc<Tenancy>>) -> Response {
    match t.store().list_keys().await {
        Ok(keys) => answer(
            StatusCode::OK,
            &List {
                object: "list",
                data: keys,
            },
        ),
        Err(e) => fail(AdminError::from(e)),
    }
}

async fn show(State(t): State<Arc<Tenancy>>, Path(id): Path<String>) -> Response {
    match show_key(t.store().as_ref(), &id).await {
        Ok(view) => answer(StatusCode::OK, &view),
        Err(e) => fail(e),
    }
}

async fn update(
    State(t): State<Arc<Tenancy>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let patch: KeyPatch = match json_body(body) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    match update_key(t.store().as_ref(), &id, &patch).await {
        Ok(record) => {
            t.invalidate(&id);
            tracing::info!(key_id = %id, "virtual key updated");
            answer(StatusCode::OK, &record)
        }
        Err(e) => fail(e),
    }
}

async fn rotate(State(t): State<Arc<Tenancy>>, Path(id): Path<String>) -> Response {
    match rotate_key(t.store().as_ref(), &id).await {
        Ok((record, secret)) => {
            t.invalidate(&id);
            tracing::info!(key_id = %id, "virtual key rotated");
            answer(
                StatusCode::OK,
                &KeyView {
                    record,
                    key: Some(secret),
                    spent_usd: None,
                    budget_resets_at: None,
                },
            )
        }
        Err(e) => fail(e),
    }
}

async fn revoke(State(t): State<Arc<Tenancy>>, Path(id): Path<String>) -> Response {
    match revoke_key(t.store().as_ref(), &id).await {
        Ok(record) => {
            t.invalidate(&id);
            tracing::info!(key_id = %id, "virtual key revoked");
            answer(StatusCode::OK, &record)
        }
        Err(e) => fail(e),
    }
}

/// `GET /admin/usage` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageParams {
    #[serde(default)]
    group_by: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    key: Option<String>,
}

/// `key`, `model` or `day`.
pub fn parse_group_by(s: &str) -> Option<GroupBy> {
    match s {
        "key" => Some(GroupBy::Key),
        "model" => Some(GroupBy::Model),
        "day" => Some(GroupBy::Day),
        _ => None,
    }
}

async fn usage(
    State(t): State<Arc<Tenancy>>,
    q: Result<Query<UsageParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return fail(ApiError::invalid(None, e.body_text())),
    };
    let group_by = match q.group_by.as_deref().map(parse_group_by) {
        None => GroupBy::Key,
        Some(Some(g)) => g,
        Some(None) => {
            return fail(ApiError::invalid(
                Some("group_by"),
                "group_by: expected key, model or day",
            ))
        }
    };
    // Reports include every request answered so far, unless the store is
    // too slow to take them now (the report is then read without them).
    let unwritten = t.flush_within(std::time::Duration::from_secs(2)).await;
    if unwritten > 0 {
        tracing::warn!(
            rows = unwritten,
            "usage report read before this replica's pending spend rows were written"
        );
    }
    match usage_report(
        t.store().as_ref(),
        group_by,
        q.from.as_deref(),
        q.to.as_deref(),
        q.key.as_deref(),
    )
    .await
    {
        Ok(lines) => answer(
            StatusCode::OK,
            &List {
                object: "list",
                data: lines,
            },
        ),
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_to_utc_midnight() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("1970-01-02"), Some(DAY_MS));
        assert_eq!(parse_day("2024-02-29"), Some(19_782 * DAY_MS));
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("yesterday"), None);
    }
}
