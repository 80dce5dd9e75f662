//! What the SQLite and PostgreSQL stores share: embedded migrations, the SQL
//! (one text for both dialects: `$N` parameters, `ON CONFLICT … DO UPDATE`),
//! value conversions, and [`sql_store!`], which implements [`Store`] for a
//! backend over its `sqlx::Pool`.
//!
//! [`Store`]: super::Store

use std::borrow::Cow;
use std::collections::BTreeMap;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::tenancy::types::{SpendRow, StoreError, DAY_MS};

/// One embedded migration: version, description, SQL.
pub(crate) type EmbeddedMigration = (i64, &'static str, &'static str);

/// Migrations compiled into the binary (a `sqlx` migration source).
#[derive(Debug)]
pub(crate) struct Embedded(pub(crate) &'static [EmbeddedMigration]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The migrator for `migrations`. Applied versions this binary does not know
/// (a newer replica migrated the database) are ignored, so an older replica
/// still starts: every migration is additive.
pub(crate) async fn migrator(
    migrations: &'static [EmbeddedMigration],
) -> Result<Migrator, StoreError> {
    let mut m = Migrator::new(Embedded(migrations))
        .await
        .map_err(|e| StoreError::Migrate { source: e.into() })?;
    m.set_ignore_missing(true);
    Ok(m)
}

/// Rows per multi-row `INSERT` into the raw log (15 parameters each: well
/// under SQLite's and PostgreSQL's parameter limits).
pub(crate) const RAW_CHUNK: usize = 500;

/// Raw rows deleted per statement when pruning (short write locks).
pub(crate) const PRUNE_CHUNK: i64 = 5_000;

/// The columns of a key, in the order [`sql_store!`] decodes them.
pub(crate) const KEY_COLUMNS: &str = "id, name, owner, team, metadata, hash, prefix, models, rpm, \
     tpm, max_concurrency, budget_usd, budget_period, expires_at, enabled, created_at, \
     updated_at, revoked_at";

pub(crate) const INSERT_KEY: &str = "INSERT INTO llm_keys (id, name, owner, team, metadata, \
     hash, prefix, models, rpm, tpm, max_concurrency, budget_usd, budget_period, expires_at, \
     enabled, created_at, updated_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
     $10, $11, $12, $13, $14, $15, $16, $17, $18)";

pub(crate) const INSERT_RAW: &str = "INSERT INTO llm_spend_log (ts_ms, key_id, key_name, team, \
     model, provider, api, tokens_in, tokens_out, tokens_cached, cost_usd, latency_ms, status, \
     cache_hit, attempts) ";

pub(crate) const UPSERT_DAILY: &str = "INSERT INTO llm_spend_daily (day, key_id, model, \
     requests, errors, tokens_in, tokens_out, tokens_cached, cache_hits, cost_usd) VALUES ($1, \
     $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (day, key_id, model) DO UPDATE SET \
     requests = llm_spend_daily.requests + excluded.requests, \
     errors = llm_spend_daily.errors + excluded.errors, \
     tokens_in = llm_spend_daily.tokens_in + excluded.tokens_in, \
     tokens_out = llm_spend_daily.tokens_out + excluded.tokens_out, \
     tokens_cached = llm_spend_daily.tokens_cached + excluded.tokens_cached, \
     cache_hits = llm_spend_daily.cache_hits + excluded.cache_hits, \
     cost_usd = llm_spend_daily.cost_usd + excluded.cost_usd";

pub(crate) const USAGE_SUMS: &str = "CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
     CAST(COALESCE(SUM(errors), 0) AS BIGINT) AS errors, \
     CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT) AS tokens_in, \
     CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT) AS tokens_out, \
     CAST(COALESCE(SUM(tokens_cached), 0) AS BIGINT) AS tokens_cached, \
     CAST(COALESCE(SUM(cache_hits), 0) AS BIGINT) AS cache_hits, \
     CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) AS cost_usd";

pub(crate) const KEY_SPEND_SINCE: &str = "SELECT CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE \
     PRECISION) AS cost_usd FROM llm_spend_daily WHERE key_id = $1 AND day >= $2";

pub(crate) const PRUNE: &str = "DELETE FROM llm_spend_log WHERE id IN (SELECT id FROM \
     llm_spend_log WHERE ts_ms < $1 LIMIT $2)";

/// `u64` as a database integer (saturating).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A database integer as `u64` (negatives read as 0).
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A database integer as an optional `u32` limit (saturating).
pub(crate) fn to_u32(v: Option<i64>) -> Option<u32> {
    v.map(|v| u32::try_from(v.max(0)).unwrap_or(u32::MAX))
}

/// Text as stored: PostgreSQL rejects NUL characters in `TEXT`, so they are
/// dropped (a model name from a request must never make a write fail).
pub(crate) fn clean(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s.to_string()
    }
}

/// [`clean`] for optional text.
pub(crate) fn clean_opt(s: Option<&str>) -> Option<String> {
    s.map(clean)
}

/// The daily aggregate a batch adds to one (day, key, model).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct DailyDelta {
    pub(crate) requests: i64,
    pub(crate) errors: i64,
    pub(crate) tokens_in: i64,
    pub(crate) tokens_out: i64,
    pub(crate) tokens_cached: i64,
    pub(crate) cache_hits: i64,
    pub(crate) cost_usd: f64,
}

/// Sums `rows` per (day, key id or `""`, model), in key order (a fixed
/// upsert order: concurrent writers cannot deadlock on each other's rows).
pub(crate) fn daily_deltas(rows: &[SpendRow]) -> BTreeMap<(i64, String, String), DailyDelta> {
    let mut out: BTreeMap<(i64, String, String), DailyDelta> = BTreeMap::new();
    for r in rows {
        let day = r.ts_ms.div_euclid(DAY_MS);
        let key = clean(r.key_id.as_deref().unwrap_or(""));
        let d = out.entry((day, key, clean(&r.model))).or_default();
        d.requests += 1;
        d.errors += i64::from(r.status >= 400);
        d.tokens_in = d.tokens_in.saturating_add(to_i64(r.tokens_in));
        d.tokens_out = d.tokens_out.saturating_add(to_i64(r.tokens_out));
        d.tokens_cached = d.tokens_cached.saturating_add(to_i64(r.tokens_cached));
        d.cache_hits += i64::from(r.cache_hit);
        if r.cost_usd.is_finite() {
            d.cost_usd += r.cost_usd;
        }
    }
    out
}

/// The day range `[from, to)` of days overlapping `[from_ms, to_ms)`.
pub(crate) fn day_range(from_ms: Option<i64>, to_ms: Option<i64>) -> (i64, i64) {
    let from = from_ms.map_or(i64::MIN, |ms| ms.div_euclid(DAY_MS));
    let to = to_ms.map_or(i64::MAX, |ms| {
        ms.div_euclid(DAY_MS) + i64::from(ms.rem_euclid(DAY_MS) != 0)
    });
    (from, to)
}

/// A query failure of `op`.
pub(crate) fn query_error(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::Query {
        op,
        source: e.into(),
    }
}

/// A unique violation becomes [`StoreError::Conflict`]; anything else a
/// query failure of `op`.
pub(crate) fn conflict_or_query(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("a key with this id or secret exists already".into())
        }
        _ => StoreError::Query {
            op,
            source: e.into(),
        },
    }
}

/// A stored value that cannot be read back.
pub(crate) fn corrupt(op: &'static str, what: &str) -> StoreError {
    StoreError::Query {
        op,
        source: format!("stored {what} is malformed").into(),
    }
}

/// Implements [`Store`](super::Store) for `$store`, a struct with a
/// `pool: sqlx::Pool<$db>` field. The SQL is shared by both dialects.
macro_rules! sql_store {
    ($store:ident, $db:ty) => {
        impl $store {
            fn key_from_row(
                row: &<$db as sqlx::Database>::Row,
                op: &'static str,
            ) -> Result<$crate::tenancy::types::KeyRecord, $crate::tenancy::types::StoreError> {
                use sqlx::Row as _;
                let get = |e: sqlx::Error| $crate::tenancy::store::sql::query_error(op)(e);
                let metadata: String = row.try_get(4).map_err(get)?;
                let metadata = serde_json::from_str(&metadata)
                    .map_err(|_| $crate::tenancy::store::sql::corrupt(op, "key metadata"))?;
                let hash: Vec<u8> = row.try_get(5).map_err(get)?;
                let hash: [u8; 32] = hash
                    .as_slice()
                    .try_into()
                    .map_err(|_| $crate::tenancy::store::sql::corrupt(op, "key hash"))?;
                let models: String = row.try_get(7).map_err(get)?;
                let models = serde_json::from_str(&models)
                    .map_err(|_| $crate::tenancy::store::sql::corrupt(op, "key models"))?;
                let period: String = row.try_get(12).map_err(get)?;
                let budget_period = $crate::tenancy::types::BudgetPeriod::parse(&period)
                    .ok_or_else(|| $crate::tenancy::store::sql::corrupt(op, "budget period"))?;
                Ok($crate::tenancy::types::KeyRecord {
                    id: row.try_get(0).map_err(get)?,
                    name: row.try_get(1).map_err(get)?,
                    owner: row.try_get(2).map_err(get)?,
                    team: row.try_get(3).map_err(get)?,
                    metadata,
                    hash,
                    prefix: row.try_get(6).map_err(get)?,
                    models,
                    rpm: $crate::tenancy::store::sql::to_u32(row.try_get(8).map_err(get)?),
                    tpm: $crate::tenancy::store::sql::to_u32(row.try_get(9).map_err(get)?),
                    max_concurrency: $crate::tenancy::store::sql::to_u32(
                        row.try_get(10).map_err(get)?,
                    ),
                    budget_usd: row.try_get(11).map_err(get)?,
                    budget_period,
                    expires_at: row.try_get(13).map_err(get)?,
                    enabled: row.try_get(14).map_err(get)?,
                    created_at: row.try_get(15).map_err(get)?,
                    updated_at: row.try_get(16).map_err(get)?,
                    revoked_at: row.try_get(17).map_err(get)?,
                })
            }

            async fn fetch_key(
                &self,
                column: &'static str,
                value: Vec<u8>,
                id: &str,
                op: &'static str,
            ) -> Result<Option<$crate::tenancy::types::KeyRecord>, $crate::tenancy::types::StoreError>
            {
                use $crate::tenancy::store::sql::{query_error, KEY_COLUMNS};
                let sql = format!("SELECT {KEY_COLUMNS} FROM llm_keys WHERE {column} = $1");
                let q = sqlx::query::<$db>(&sql);
                let q = if column == "hash" { q.bind(value) } else { q.bind(id.to_string()) };
                let row = q.fetch_optional(&self.pool).await.map_err(query_error(op))?;
                row.map(|r| Self::key_from_row(&r, op)).transpose()
            }
        }

        #[async_trait::async_trait]
        impl $crate::tenancy::store::Store for $store {
            async fn create_key(
                &self,
                key: &$crate::tenancy::types::KeyRecord,
            ) -> Result<(), $crate::tenancy::types::StoreError> {
                use $crate::tenancy::store::sql::{clean, clean_opt, conflict_or_query, INSERT_KEY};
                let metadata = serde_json::Value::Object(key.metadata.clone()).to_string();
                let models = serde_json::to_string(&key.models).unwrap_or_else(|_| "[]".into());
                sqlx::query::<$db>(INSERT_KEY)
                    .bind(clean(&key.id))
                    .bind(clean(&key.name))
                    .bind(clean_opt(key.owner.as_deref()))
                    .bind(clean_opt(key.team.as_deref()))
                    .bind(clean(&metadata))
                    .bind(key.hash.to_vec())
                    .bind(clean(&key.prefix))
                    .bind(clean(&models))
                    .bind(key.rpm.map(i64::from))
                    .bind(key.tpm.map(i64::from))
                    .bind(key.max_concurrency.map(i64::from))
                    .bind(key.budget_usd)
                    .bind(key.budget_period.as_str())
                    .bind(key.expires_at)
                    .bind(key.enabled)
                    .bind(key.created_at)
                    .bind(key.updated_at)
                    .bind(key.revoked_at)
                    .execute(&self.pool)
                    .await
                    .map_err(conflict_or_query("create_key"))?;
                Ok(())
            }

            async fn key_by_hash(
                &self,
                hash: &[u8; 32],
            ) -> Result<Option<$crate::tenancy::types::KeyRecord>, $crate::tenancy::types::StoreError>
            {
                self.fetch_key("hash", hash.to_vec(), "", "key_by_hash").await
            }

            async fn key(
                &self,
                id: &str,
            ) -> Result<Option<$crate::tenancy::types::KeyRecord>, $crate::tenancy::types::StoreError>
            {
                self.fetch_key("id", Vec::new(), id, "key").await
            }

            async fn list_keys(
                &self,
            ) -> Result<Vec<$crate::tenancy::types::KeyRecord>, $crate::tenancy::types::StoreError>
            {
                use $crate::tenancy::store::sql::{query_error, KEY_COLUMNS};
                let sql = format!("SELECT {KEY_COLUMNS} FROM llm_keys ORDER BY created_at, id");
                let rows = sqlx::query::<$db>(&sql)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_error("list_keys"))?;
                rows.iter().map(|r| Self::key_from_row(r, "list_keys")).collect()
            }

            async fn update_key(
                &self,
                id: &str,
                patch: &$crate::tenancy::types::KeyPatch,
                now_ms: i64,
            ) -> Result<Option<$crate::tenancy::types::KeyRecord>, $crate::tenancy::types::StoreError>
            {
                use $crate::tenancy::store::sql::{clean, clean_opt, query_error};
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE llm_keys SET updated_at = ");
                qb.push_bind(now_ms);
                if let Some(v) = &patch.name {
                    qb.push(", name = ").push_bind(clean(v));
                }
                if let Some(v) = &patch.owner {
                    qb.push(", owner = ").push_bind(clean_opt(v.as_deref()));
                }
                if let Some(v) = &patch.team {
                    qb.push(", team = ").push_bind(clean_opt(v.as_deref()));
                }
                if let Some(v) = &patch.metadata {
                    let json = serde_json::Value::Object(v.clone()).to_string();
                    qb.push(", metadata = ").push_bind(clean(&json));
                }
                if let Some(v) = &patch.models {
                    let json = serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
                    qb.push(", models = ").push_bind(clean(&json));
                }
                if let Some(v) = patch.rpm {
                    qb.push(", rpm = ").push_bind(v.map(i64::from));
                }
                if let Some(v) = patch.tpm {
                    qb.push(", tpm = ").push_bind(v.map(i64::from));
                }
                if let Some(v) = patch.max_concurrency {
                    qb.push(", max_concurrency = ").push_bind(v.map(i64::from));
                }
                if let Some(v) = patch.budget_usd {
                    qb.push(", budget_usd = ").push_bind(v);
                }
                if let Some(v) = patch.budget_period {
                    qb.push(", budget_period = ").push_bind(v.as_str());
                }
                if let Some(v) = patch.expires_at {
                    qb.push(", expires_at = ").push_bind(v);
                }
                if let Some(v) = patch.enabled {
                    qb.push(", enabled = ").push_bind(v);
                }
                qb.push(" WHERE id = ").push_bind(id.to_string());
                let done = qb
                    .build()
                    .execute(&self.pool)
                    .await
                    .map_err(query_error("update_key"))?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.fetch_key("id", Vec::new(), id, "update_key").await
            }

            async fn rotate_key(
                &self,
                id: &str,
                hash: [u8; 32],
                prefix: &str,
                now_ms: i64,
            ) -> Result<Option<$crate::tenancy::types::KeyRecord>, $crate::tenancy::types::StoreError>
            {
                use $crate::tenancy::store::sql::{clean, conflict_or_query};
                let done = sqlx::query::<$db>(
                    "UPDATE llm_keys SET hash = $1, prefix = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(hash.to_vec())
                .bind(clean(prefix))
                .bind(now_ms)
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .map_err(conflict_or_query("rotate_key"))?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.fetch_key("id", Vec::new(), id, "rotate_key").await
            }

            async fn revoke_key(
                &self,
                id: &str,
                now_ms: i64,
            ) -> Result<Option<$crate::tenancy::types::KeyRecord>, $crate::tenancy::types::StoreError>
            {
                use $crate::tenancy::store::sql::query_error;
                let done = sqlx::query::<$db>(
                    "UPDATE llm_keys SET revoked_at = COALESCE(revoked_at, $1), updated_at = $2 \
                     WHERE id = $3",
                )
                .bind(now_ms)
                .bind(now_ms)
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .map_err(query_error("revoke_key"))?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.fetch_key("id", Vec::new(), id, "revoke_key").await
            }

            async fn write_spend(
                &self,
                rows: &[$crate::tenancy::types::SpendRow],
            ) -> Result<(), $crate::tenancy::types::StoreError> {
                use $crate::tenancy::store::sql::{
                    clean, clean_opt, daily_deltas, query_error, to_i64, INSERT_RAW, RAW_CHUNK,
                    UPSERT_DAILY,
                };
                if rows.is_empty() {
                    return Ok(());
                }
                let op = "write_spend";
                let mut tx = self.pool.begin().await.map_err(query_error(op))?;
                for chunk in rows.chunks(RAW_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(INSERT_RAW);
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.ts_ms)
                            .push_bind(clean_opt(r.key_id.as_deref()))
                            .push_bind(clean_opt(r.key_name.as_deref()))
                            .push_bind(clean_opt(r.team.as_deref()))
                            .push_bind(clean(&r.model))
                            .push_bind(clean_opt(r.provider.as_deref()))
                            .push_bind(clean(&r.api))
                            .push_bind(to_i64(r.tokens_in))
                            .push_bind(to_i64(r.tokens_out))
                            .push_bind(to_i64(r.tokens_cached))
                            .push_bind(if r.cost_usd.is_finite() { r.cost_usd } else { 0.0 })
                            .push_bind(i64::from(r.latency_ms))
                            .push_bind(i32::from(r.status))
                            .push_bind(r.cache_hit)
                            .push_bind(i32::try_from(r.attempts).unwrap_or(i32::MAX));
                    });
                    qb.build().execute(&mut *tx).await.map_err(query_error(op))?;
                }
                for ((day, key_id, model), d) in daily_deltas(rows) {
                    sqlx::query::<$db>(UPSERT_DAILY)
                        .bind(day)
                        .bind(key_id)
                        .bind(model)
                        .bind(d.requests)
                        .bind(d.errors)
                        .bind(d.tokens_in)
                        .bind(d.tokens_out)
                        .bind(d.tokens_cached)
                        .bind(d.cache_hits)
                        .bind(d.cost_usd)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error(op))?;
                }
                tx.commit().await.map_err(query_error(op))?;
                Ok(())
            }

            async fn usage(
                &self,
                q: &$crate::tenancy::types::UsageQuery,
            ) -> Result<Vec<$crate::tenancy::types::UsageRow>, $crate::tenancy::types::StoreError>
            {
                use sqlx::Row as _;
                use $crate::tenancy::store::sql::{day_range, query_error, to_u64, USAGE_SUMS};
                use $crate::tenancy::types::{day_string, GroupBy, UsageRow};
                let op = "usage";
                let group = match q.group_by {
                    GroupBy::Key => "key_id",
                    GroupBy::Model => "model",
                    GroupBy::Day => "day",
                };
                let (from, to) = day_range(q.from_ms, q.to_ms);
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {group} AS g, {USAGE_SUMS} FROM llm_spend_daily WHERE day >= "
                ));
                qb.push_bind(from).push(" AND day < ").push_bind(to);
                if let Some(key) = &q.key_id {
                    qb.push(" AND key_id = ").push_bind(key.clone());
                }
                qb.push(format!(" GROUP BY {group} ORDER BY {group}"));
                let rows = qb
                    .build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_error(op))?;
                let get = |e: sqlx::Error| query_error(op)(e);
                rows.iter()
                    .map(|r| {
                        let group = match q.group_by {
                            GroupBy::Day => day_string(r.try_get::<i64, _>(0).map_err(get)?),
                            _ => r.try_get::<String, _>(0).map_err(get)?,
                        };
                        Ok(UsageRow {
                            group,
                            requests: to_u64(r.try_get(1).map_err(get)?),
                            errors: to_u64(r.try_get(2).map_err(get)?),
                            tokens_in: to_u64(r.try_get(3).map_err(get)?),
                            tokens_out: to_u64(r.try_get(4).map_err(get)?),
                            tokens_cached: to_u64(r.try_get(5).map_err(get)?),
                            cache_hits: to_u64(r.try_get(6).map_err(get)?),
                            cost_usd: r.try_get(7).map_err(get)?,
                        })
                    })
                    .collect()
            }

            async fn key_spend_since(
                &self,
                id: &str,
                since_ms: i64,
            ) -> Result<f64, $crate::tenancy::types::StoreError> {
                use sqlx::Row as _;
                use $crate::tenancy::store::sql::{query_error, KEY_SPEND_SINCE};
                let op = "key_spend_since";
                let row = sqlx::query::<$db>(KEY_SPEND_SINCE)
                    .bind(id.to_string())
                    .bind(since_ms.div_euclid($crate::tenancy::types::DAY_MS))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(query_error(op))?;
                row.try_get::<f64, _>(0).map_err(query_error(op))
            }

            async fn prune_spend(
                &self,
                before_ms: i64,
            ) -> Result<u64, $crate::tenancy::types::StoreError> {
                use $crate::tenancy::store::sql::{query_error, PRUNE, PRUNE_CHUNK};
                let mut total = 0u64;
                loop {
                    let done = sqlx::query::<$db>(PRUNE)
                        .bind(before_ms)
                        .bind(PRUNE_CHUNK)
                        .execute(&self.pool)
                        .await
                        .map_err(query_error("prune_spend"))?;
                    total += done.rows_affected();
                    if done.rows_affected() < PRUNE_CHUNK.unsigned_abs() {
                        return Ok(total);
                    }
                }
            }
        }
    };
}

pub(crate) use sql_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_ranges_cover_every_overlapping_day() {
        assert_eq!(day_range(None, None), (i64::MIN, i64::MAX));
        assert_eq!(day_range(Some(DAY_MS + 5), Some(3 * DAY_MS)), (1, 3));
        assert_eq!(day_range(Some(DAY_MS), Some(3 * DAY_MS + 1)), (1, 4));
    }

    #[test]
    fn deltas_group_by_day_key_and_model() {
        let row = |ts, key: Option<&str>, model: &str, status, cost| SpendRow {
            ts_ms: ts,
            key_id: key.map(str::to_string),
            key_name: None,
            team: None,
            model: model.into(),
            provider: None,
            api: "chat".into(),
            tokens_in: 10,
            tokens_out: 5,
            tokens_cached: 1,
            cost_usd: cost,
            latency_ms: 1,
            status,
            cache_hit: status == 200,
            attempts: 1,
        };
        let d = daily_deltas(&[
            row(0, Some("k"), "m", 200, 1.0),
            row(1, Some("k"), "m", 500, 2.0),
            row(DAY_MS, None, "m\0", 200, f64::NAN),
        ]);
        assert_eq!(d.len(), 2);
        let a = &d[&(0, "k".to_string(), "m".to_string())];
        assert_eq!(
            (a.requests, a.errors, a.tokens_in, a.cache_hits),
            (2, 1, 20, 1)
        );
        assert!((a.cost_usd - 3.0).abs() < 1e-9);
        let b = &d[&(1, String::new(), "m".to_string())];
        assert_eq!(b.cost_usd, 0.0);
    }
}
