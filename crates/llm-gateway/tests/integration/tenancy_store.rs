//! The tenancy store against real databases: one conformance suite, run on
//! SQLite (a temporary file) and on PostgreSQL (`LLM_TEST_POSTGRES_URL`,
//! which `.ci/run` sets; each test works in a schema of its own), plus the
//! spend-log writer over a store that can be switched off.
//!
//! Without `LLM_TEST_POSTGRES_URL` the PostgreSQL tests print `SKIPPED …` and
//! pass, except in CI (`CI=true`): there they fail, so a green run means
//! they ran.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llm_gateway::tenancy::spend::{self, SpendConfig, SpendLog};
use llm_gateway::tenancy::store::{self, Store};
use llm_gateway::tenancy::types::{
    BudgetPeriod, GroupBy, KeyPatch, KeyRecord, SpendRow, StoreError, UsageQuery, UsageRow, DAY_MS,
};
use sqlx::Connection as _;

/// The variable CI sets to its PostgreSQL.
const PG_ENV: &str = "LLM_TEST_POSTGRES_URL";

/// A fixed "now": 2026-12-02 15:00 UTC.
const NOW: i64 = 20_789 * DAY_MS + 15 * 3_600_000;

/// Whether a missing PostgreSQL must fail instead of skip: in CI (`CI` set
/// to anything but `false`/`0`/empty).
fn postgres_required() -> bool {
    std::env::var("CI")
        .map(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
        .unwrap_or(false)
}

/// A database for one test; its SQLite file or PostgreSQL schema goes away
/// with it (best effort).
struct TestDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A path that does not exist yet: the store creates the file.
        let url = format!("sqlite://{}", dir.path().join("llm-router.db").display());
        Self {
            url,
            _dir: Some(dir),
            pg_schema: None,
        }
    }

    /// A fresh schema in the CI PostgreSQL, or `None` after a skip notice.
    async fn postgres(test: &str) -> Option<Self> {
        let Some(base) = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty()) else {
            if postgres_required() {
                panic!(
                    "{test}: {PG_ENV} is not set; in CI (CI=true) the PostgreSQL tests must \
                     run, not skip (.ci/run starts a server with .ci/postgres.sh)"
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no PostgreSQL to test against (set {PG_ENV}=postgres://…; \
                 `eval \"$(.ci/postgres.sh start)\"` starts one)"
            );
            return None;
        };
        let short: String = test.chars().take(30).collect();
        let schema = format!("t_{short}_{:016x}", rand64());
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| {
                panic!("{PG_ENV} is set but PostgreSQL there does not answer: {e}")
            });
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Self {
            url,
            _dir: None,
            pg_schema: Some((base, schema)),
        })
    }

    async fn open(&self) -> Arc<dyn Store> {
        store::open(&self.url).await.unwrap()
    }

    async fn cleanup(self) {
        if let Some((base, schema)) = &self.pg_schema {
            if let Ok(mut conn) = sqlx::PgConnection::connect(base).await {
                let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        }
    }
}

fn rand64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

fn key(id: &str, hash_byte: u8, created_at: i64) -> KeyRecord {
    let mut metadata = serde_json::Map::new();
    metadata.insert("app".into(), serde_json::json!("billing"));
    metadata.insert(
        "tier".into(),
        serde_json::json!({"level": 2, "tags": ["a", "b"]}),
    );
    KeyRecord {
        id: id.into(),
        name: format!("name of {id}"),
        owner: Some("alice@example.com".into()),
        team: Some("payments".into()),
        metadata,
        hash: [hash_byte; 32],
        prefix: format!("sk-llm-{hash_byte:02x}abc"),
        models: vec!["openai/*".into(), "claude-*".into()],
        rpm: Some(60),
        tpm: Some(100_000),
        max_concurrency: Some(4),
        budget_usd: Some(5.25),
        budget_period: BudgetPeriod::Monthly,
        expires_at: Some(NOW + 30 * DAY_MS),
        enabled: true,
        created_at,
        updated_at: created_at,
        revoked_at: None,
    }
}

fn row(ts_ms: i64, key_id: Option<&str>, model: &str, status: u16, cost: f64) -> SpendRow {
    SpendRow {
        ts_ms,
        key_id: key_id.map(str::to_string),
        key_name: key_id.map(|k| format!("name of {k}")),
        team: Some("payments".into()),
        model: model.into(),
        provider: Some("openai".into()),
        api: "chat".into(),
        tokens_in: 100,
        tokens_out: 20,
        tokens_cached: 10,
        cost_usd: cost,
        latency_ms: 250,
        status,
        cache_hit: status == 200 && cost == 0.0,
        attempts: 1,
    }
}

fn query(group_by: GroupBy) -> UsageQuery {
    UsageQuery {
        group_by,
        from_ms: None,
        to_ms: None,
        key_id: None,
    }
}

fn groups(rows: &[UsageRow]) -> Vec<(&str, u64, u64, f64)> {
    rows.iter()
        .map(|r| {
            (
                r.group.as_str(),
                r.requests,
                r.errors,
                (r.cost_usd * 1e6).round() / 1e6,
            )
        })
        .collect()
}

// ---- the conformance suite -------------------------------------------------

async fn key_lifecycle(db: &TestDb) {
    let s = db.open().await;
    let a = key("key_00000000000000aa", 0xaa, NOW);
    let b = key("key_00000000000000bb", 0xbb, NOW + 1);
    s.create_key(&b).await.unwrap();
    s.create_key(&a).await.unwrap();

    // Every field reads back as written.
    assert_eq!(s.key(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.key_by_hash(&[0xbb; 32]).await.unwrap(), Some(b.clone()));
    assert_eq!(s.key_by_hash(&[0xcc; 32]).await.unwrap(), None);
    assert_eq!(s.key("key_unknown").await.unwrap(), None);
    let ids: Vec<String> = s
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, [a.id.clone(), b.id.clone()], "oldest first");

    // Same id, or same secret: a conflict.
    let mut dup = key(&a.id, 0xdd, NOW);
    assert!(matches!(
        s.create_key(&dup).await,
        Err(StoreError::Conflict(_))
    ));
    dup.id = "key_00000000000000dd".into();
    dup.hash = b.hash;
    assert!(matches!(
        s.create_key(&dup).await,
        Err(StoreError::Conflict(_))
    ));

    // Rotation: the old secret stops matching, the new one matches.
    let rotated = s
        .rotate_key(&a.id, [0xee; 32], "sk-llm-eeabc", NOW + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.hash, [0xee; 32]);
    assert_eq!(rotated.prefix, "sk-llm-eeabc");
    assert_eq!(rotated.updated_at, NOW + 10);
    assert_eq!(rotated.created_at, NOW);
    assert_eq!(s.key_by_hash(&[0xaa; 32]).await.unwrap(), None);
    assert_eq!(
        s.key_by_hash(&[0xee; 32]).await.unwrap().map(|k| k.id),
        Some(a.id.clone())
    );
    assert!(matches!(
        s.rotate_key(&a.id, b.hash, "sk-llm-bbabc", NOW + 11).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.rotate_key("key_unknown", [1; 32], "x", NOW)
            .await
            .unwrap(),
        None
    );

    // Revocation keeps the first revocation time.
    let revoked = s.revoke_key(&b.id, NOW + 20).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 20));
    let again = s.revoke_key(&b.id, NOW + 30).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(NOW + 20));
    assert_eq!(
        s.key_by_hash(&b.hash).await.unwrap().unwrap().revoked_at,
        Some(NOW + 20),
        "a revoked key is still found (to answer 401 for it)"
    );
    assert_eq!(s.revoke_key("key_unknown", NOW).await.unwrap(), None);
}

async fn update_patch_semantics(db: &TestDb) {
    let s = db.open().await;
    let k = key("key_0000000000000001", 1, NOW);
    s.create_key(&k).await.unwrap();

    // An empty patch changes only updated_at.
    let same = s
        .update_key(&k.id, &KeyPatch::default(), NOW + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        same,
        KeyRecord {
            updated_at: NOW + 1,
            ..k.clone()
        }
    );

    // Absent fields stay; null clears; values set; lists and maps replace.
    let patch: KeyPatch = serde_json::from_str(
        r#"{"name":"renamed","owner":null,"rpm":null,"tpm":5,"models":[],
            "metadata":{"x":1},"budget_usd":null,"budget_period":"daily",
            "expires_at":null,"enabled":false}"#,
    )
    .unwrap();
    let got = s.update_key(&k.id, &patch, NOW + 2).await.unwrap().unwrap();
    let mut want = k.clone();
    patch.apply(&mut want);
    want.updated_at = NOW + 2;
    assert_eq!(got, want);
    assert_eq!(got.name, "renamed");
    assert_eq!(got.owner, None);
    assert_eq!(got.team.as_deref(), Some("payments"), "absent: unchanged");
    assert_eq!(
        (got.rpm, got.tpm, got.max_concurrency),
        (None, Some(5), Some(4))
    );
    assert!(got.models.is_empty());
    assert_eq!(got.metadata.get("x"), Some(&serde_json::json!(1)));
    assert_eq!(got.metadata.len(), 1);
    assert_eq!(got.budget_usd, None);
    assert_eq!(got.budget_period, BudgetPeriod::Daily);
    assert_eq!(got.expires_at, None);
    assert!(!got.enabled);
    assert_eq!(got.hash, k.hash, "a patch never touches the secret");
    assert_eq!(s.key(&k.id).await.unwrap(), Some(got));

    assert_eq!(
        s.update_key("key_unknown", &patch, NOW).await.unwrap(),
        None
    );
}

async fn spend_and_usage(db: &TestDb) {
    let s = db.open().await;
    let d0 = (NOW / DAY_MS - 2) * DAY_MS; // two days ago, 00:00
    let d1 = d0 + DAY_MS;
    let d2 = d1 + DAY_MS;
    // Two batches: the second adds to aggregates the first created.
    s.write_spend(&[
        row(d0 + 1, Some("key_a"), "gpt-4o", 200, 0.5),
        row(d0 + 2, Some("key_a"), "gpt-4o", 500, 0.0),
        row(d0 + 3, Some("key_b"), "claude", 200, 1.25),
        row(d1 + 10, None, "gpt-4o", 200, 0.125),
    ])
    .await
    .unwrap();
    s.write_spend(&[
        row(d1 + 20, Some("key_a"), "claude", 429, 0.0),
        row(d2 + 5, Some("key_a"), "gpt-4o", 200, 2.0),
        row(d2 + 6, Some("key_b"), "claude\0", 200, 0.75),
    ])
    .await
    .unwrap();
    s.write_spend(&[]).await.unwrap();

    let by_key = s.usage(&query(GroupBy::Key)).await.unwrap();
    assert_eq!(
        groups(&by_key),
        [
            ("", 1, 0, 0.125),
            ("key_a", 4, 2, 2.5),
            ("key_b", 2, 0, 2.0),
        ]
    );
    let a = &by_key[1];
    assert_eq!((a.tokens_in, a.tokens_out, a.tokens_cached), (400, 80, 40));
    assert_eq!(a.cache_hits, 0);

    let by_model = s.usage(&query(GroupBy::Model)).await.unwrap();
    assert_eq!(
        groups(&by_model),
        [("claude", 3, 1, 2.0), ("gpt-4o", 4, 1, 2.625)],
        "NUL characters are dropped from stored text"
    );

    let by_day = s.usage(&query(GroupBy::Day)).await.unwrap();
    let day = |ms: i64| llm_gateway::tenancy::types::day_string(ms / DAY_MS);
    assert_eq!(
        by_day
            .iter()
            .map(|r| (r.group.clone(), r.requests))
            .collect::<Vec<_>>(),
        [(day(d0), 3), (day(d1), 2), (day(d2), 2)]
    );

    // from/to select whole days overlapping [from, to); key_id filters.
    let mid = UsageQuery {
        group_by: GroupBy::Day,
        from_ms: Some(d1 + 5),
        to_ms: Some(d2),
        key_id: None,
    };
    let got = s.usage(&mid).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|r| (r.group.clone(), r.requests))
            .collect::<Vec<_>>(),
        [(day(d1), 2)]
    );
    let only_a = UsageQuery {
        group_by: GroupBy::Model,
        from_ms: Some(d1),
        to_ms: None,
        key_id: Some("key_a".into()),
    };
    assert_eq!(
        groups(&s.usage(&only_a).await.unwrap()),
        [("claude", 1, 1, 0.0), ("gpt-4o", 1, 0, 2.0)]
    );
    let none = UsageQuery {
        group_by: GroupBy::Key,
        from_ms: Some(d2 + DAY_MS),
        to_ms: None,
        key_id: None,
    };
    assert!(s.usage(&none).await.unwrap().is_empty());

    // Budget seeds: spend since a day-aligned start.
    let spent = |id: &'static str, since: i64| {
        let s = s.clone();
        async move { s.key_spend_since(id, since).await.unwrap() }
    };
    assert!((spent("key_a", d0).await - 2.5).abs() < 1e-9);
    assert!(
        (spent("key_a", d1 + 12_345).await - 2.0).abs() < 1e-9,
        "day-aligned"
    );
    assert!((spent("key_b", d2).await - 0.75).abs() < 1e-9);
    assert_eq!(spent("key_none", 0).await, 0.0);
}

async fn prune_keeps_aggregates(db: &TestDb) {
    let s = db.open().await;
    let old = NOW - 100 * DAY_MS;
    let rows: Vec<SpendRow> = (0..1_234)
        .map(|i| row(old + i, Some("key_p"), "gpt-4o", 200, 0.001))
        .collect();
    s.write_spend(&rows).await.unwrap();
    s.write_spend(&[row(NOW, Some("key_p"), "gpt-4o", 200, 1.0)])
        .await
        .unwrap();
    let before = s.usage(&query(GroupBy::Day)).await.unwrap();

    assert_eq!(s.prune_spend(NOW - 90 * DAY_MS).await.unwrap(), 1_234);
    assert_eq!(s.prune_spend(NOW - 90 * DAY_MS).await.unwrap(), 0, "gone");
    assert_eq!(s.usage(&query(GroupBy::Day)).await.unwrap(), before);
    assert!((s.key_spend_since("key_p", 0).await.unwrap() - 2.234).abs() < 1e-6);
    // The recent row is still there (pruning up to now + 1 deletes it).
    assert_eq!(s.prune_spend(NOW + 1).await.unwrap(), 1);
}

async fn migrations_idempotent(db: &TestDb) {
    let first = db.open().await;
    let k = key("key_0000000000000002", 2, NOW);
    first.create_key(&k).await.unwrap();
    first
        .write_spend(&[row(NOW, Some(&k.id), "m", 200, 1.0)])
        .await
        .unwrap();
    drop(first);
    // A restart (and a second replica starting at the same time) migrates
    // nothing again and keeps the data.
    let (second, third) = tokio::join!(db.open(), db.open());
    assert_eq!(second.key(&k.id).await.unwrap(), Some(k.clone()));
    assert_eq!(third.usage(&query(GroupBy::Key)).await.unwrap().len(), 1);
    assert_eq!(applied_versions(db).await, [1, store::SCHEMA_VERSION]);
}

async fn concurrent_writers_lose_nothing(db: &TestDb) {
    // Two replicas (two pools), four writers each, all adding to the same
    // aggregates (one day, one key, two models) at once.
    let replicas = [db.open().await, db.open().await];
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let s = replicas[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..25i64 {
                let rows: Vec<SpendRow> = (0..20i64)
                    .map(|i| {
                        let model = if i % 2 == 0 { "gpt-4o" } else { "claude" };
                        row(NOW + b * 20 + i, Some("key_c"), model, 200, 0.25)
                    })
                    .collect();
                s.write_spend(&rows).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let usage = replicas[0].usage(&query(GroupBy::Model)).await.unwrap();
    assert_eq!(
        groups(&usage),
        [("claude", 2_000, 0, 500.0), ("gpt-4o", 2_000, 0, 500.0)]
    );
    assert_eq!(replicas[1].prune_spend(NOW + DAY_MS).await.unwrap(), 4_000);
}

/// The plans of the hot lookups: by index, and reports from the aggregates.
async fn lookups_use_indexes(db: &TestDb) {
    let s = db.open().await;
    s.create_key(&key("key_0000000000000004", 4, NOW))
        .await
        .unwrap();
    let by_hash = "SELECT id FROM llm_keys WHERE hash = $1";
    let spend = "SELECT SUM(cost_usd) FROM llm_spend_daily WHERE key_id = $1 AND day >= $2";
    if db.url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        // EXPLAIN QUERY PLAN rows: id, parent, notused, detail.
        for (sql, index) in [(by_hash, "llm_keys_hash"), (spend, "llm_spend_daily_key")] {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let q = sqlx::query(&explain);
            let q = if sql == by_hash {
                q.bind(vec![4u8; 32])
            } else {
                q.bind("key_x").bind(0i64)
            };
            let rows = q.fetch_all(&mut c).await.unwrap();
            let plan: Vec<String> = rows
                .iter()
                .map(|r| sqlx::Row::try_get::<String, _>(r, 3).unwrap())
                .collect();
            let plan = plan.join(" ");
            assert!(plan.contains(&format!("INDEX {index}")), "{plan}");
        }
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        // Tiny tables: make the planner show whether an index can serve.
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut c)
            .await
            .unwrap();
        for (sql, index) in [(by_hash, "llm_keys_hash"), (spend, "llm_spend_daily_key")] {
            let explain = format!("EXPLAIN {sql}");
            let q = sqlx::query_scalar::<_, String>(&explain);
            let q = if sql == by_hash {
                q.bind(vec![4u8; 32])
            } else {
                q.bind("key_x").bind(0i64)
            };
            let plan = q.fetch_all(&mut c).await.unwrap().join(" ");
            assert!(plan.contains(index), "{plan}");
        }
    }
}

async fn applied_versions(db: &TestDb) -> Vec<i64> {
    let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    if db.url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    }
}

// ---- compatibility with the previous release --------------------------------

/// The queries of schema version 1 (the release before the aggregates gained
/// `tokens_cached` and `cache_hits`), verbatim. An older replica keeps
/// running them against a database a newer one migrated: they must work.
mod v1 {
    pub const INSERT_KEY: &str = "INSERT INTO llm_keys (id, name, owner, team, metadata, \
         hash, prefix, models, rpm, tpm, max_concurrency, budget_usd, budget_period, expires_at, \
         enabled, created_at, updated_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18)";
    pub const KEY_BY_HASH: &str = "SELECT id, name, owner, team, metadata, hash, prefix, models, \
         rpm, tpm, max_concurrency, budget_usd, budget_period, expires_at, enabled, created_at, \
         updated_at, revoked_at FROM llm_keys WHERE hash = $1";
    pub const UPDATE_KEY: &str =
        "UPDATE llm_keys SET updated_at = $1, name = $2, rpm = $3 WHERE id = $4";
    pub const REVOKE_KEY: &str = "UPDATE llm_keys SET revoked_at = COALESCE(revoked_at, $1), \
         updated_at = $2 WHERE id = $3";
    pub const INSERT_RAW: &str = "INSERT INTO llm_spend_log (ts_ms, key_id, key_name, team, \
         model, provider, api, tokens_in, tokens_out, tokens_cached, cost_usd, latency_ms, status, \
         cache_hit, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15)";
    pub const UPSERT_DAILY: &str = "INSERT INTO llm_spend_daily (day, key_id, model, requests, \
         errors, tokens_in, tokens_out, cost_usd) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (day, key_id, model) DO UPDATE SET \
         requests = llm_spend_daily.requests + excluded.requests, \
         errors = llm_spend_daily.errors + excluded.errors, \
         tokens_in = llm_spend_daily.tokens_in + excluded.tokens_in, \
         tokens_out = llm_spend_daily.tokens_out + excluded.tokens_out, \
         cost_usd = llm_spend_daily.cost_usd + excluded.cost_usd";
    pub const USAGE_BY_KEY: &str = "SELECT key_id AS g, \
         CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
         CAST(COALESCE(SUM(errors), 0) AS BIGINT) AS errors, \
         CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT) AS tokens_in, \
         CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT) AS tokens_out, \
         CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) AS cost_usd \
         FROM llm_spend_daily WHERE day >= $1 AND day < $2 GROUP BY key_id ORDER BY key_id";
    pub const KEY_SPEND_SINCE: &str = "SELECT CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE \
         PRECISION) AS cost_usd FROM llm_spend_daily WHERE key_id = $1 AND day >= $2";
    pub const PRUNE: &str = "DELETE FROM llm_spend_log WHERE id IN (SELECT id FROM \
         llm_spend_log WHERE ts_ms < $1 LIMIT $2)";
}

/// Runs every v1 query on `$conn` (a connection of the backend `$db`) and
/// checks the answers.
macro_rules! run_v1_queries {
    ($conn:expr, $db:ty) => {{
        use sqlx::Row as _;
        let conn = $conn;
        let day = NOW / DAY_MS;
        sqlx::query::<$db>(v1::INSERT_KEY)
            .bind("key_v1")
            .bind("old replica")
            .bind(None::<String>)
            .bind(Some("t".to_string()))
            .bind("{}")
            .bind(vec![0x11u8; 32])
            .bind("sk-llm-11abc")
            .bind("[]")
            .bind(Some(10i64))
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(Some(3.0f64))
            .bind("weekly")
            .bind(None::<i64>)
            .bind(true)
            .bind(NOW)
            .bind(NOW)
            .bind(None::<i64>)
            .execute(&mut *conn)
            .await
            .unwrap();
        let row = sqlx::query::<$db>(v1::KEY_BY_HASH)
            .bind(vec![0x11u8; 32])
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>(0).unwrap(), "key_v1");
        assert_eq!(row.try_get::<String, _>(12).unwrap(), "weekly");
        sqlx::query::<$db>(v1::UPDATE_KEY)
            .bind(NOW + 1)
            .bind("old replica, renamed")
            .bind(Some(20i64))
            .bind("key_v1")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query::<$db>(v1::REVOKE_KEY)
            .bind(NOW + 2)
            .bind(NOW + 2)
            .bind("key_v1")
            .execute(&mut *conn)
            .await
            .unwrap();
        for i in 0..3i64 {
            sqlx::query::<$db>(v1::INSERT_RAW)
                .bind(NOW + i)
                .bind(Some("key_v1".to_string()))
                .bind(Some("old replica".to_string()))
                .bind(None::<String>)
                .bind("gpt-4o")
                .bind(Some("openai".to_string()))
                .bind("chat")
                .bind(10i64)
                .bind(5i64)
                .bind(0i64)
                .bind(0.5f64)
                .bind(100i64)
                .bind(200i32)
                .bind(false)
                .bind(1i32)
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query::<$db>(v1::UPSERT_DAILY)
                .bind(day)
                .bind("key_v1")
                .bind("gpt-4o")
                .bind(1i64)
                .bind(0i64)
                .bind(10i64)
                .bind(5i64)
                .bind(0.5f64)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        let rows = sqlx::query::<$db>(v1::USAGE_BY_KEY)
            .bind(i64::MIN)
            .bind(i64::MAX)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let v1_row = rows
            .iter()
            .find(|r| r.try_get::<String, _>(0).unwrap() == "key_v1")
            .expect("v1 usage row");
        // Three rows from here, one written by the current code.
        assert_eq!(v1_row.try_get::<i64, _>(1).unwrap(), 4);
        assert_eq!(v1_row.try_get::<i64, _>(3).unwrap(), 130);
        assert!((v1_row.try_get::<f64, _>(5).unwrap() - 2.5).abs() < 1e-9);
        let spent: f64 = sqlx::query::<$db>(v1::KEY_SPEND_SINCE)
            .bind("key_v1")
            .bind(day)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert!((spent - 2.5).abs() < 1e-9);
        let pruned = sqlx::query::<$db>(v1::PRUNE)
            .bind(NOW + 1)
            .bind(5_000i64)
            .execute(&mut *conn)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(pruned, 1);
    }};
}

async fn run_v1(db: &TestDb) {
    if db.url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        run_v1_queries!(&mut c, sqlx::Sqlite);
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        run_v1_queries!(&mut c, sqlx::Postgres);
    }
}

async fn previous_release_queries_on_current_schema(db: &TestDb) {
    // The previous release created the database...
    store::migrate_to(&db.url, 1).await.unwrap();
    assert_eq!(applied_versions(db).await, [1]);
    // ...this one migrates it (and writes through the current code)...
    let s = db.open().await;
    assert_eq!(applied_versions(db).await, [1, store::SCHEMA_VERSION]);
    s.write_spend(&[row(NOW + 100, Some("key_v1"), "gpt-4o", 200, 1.0)])
        .await
        .unwrap();
    // ...an older replica restarts on the newer schema...
    store::migrate_to(&db.url, 1).await.unwrap();
    // ...and its queries still work, next to the current code.
    run_v1(db).await;

    // What the old replica wrote, the current code reads.
    let k = s.key_by_hash(&[0x11; 32]).await.unwrap().unwrap();
    assert_eq!(k.id, "key_v1");
    assert_eq!(k.name, "old replica, renamed");
    assert_eq!(k.rpm, Some(20));
    assert_eq!(k.budget_period, BudgetPeriod::Weekly);
    assert_eq!(k.revoked_at, Some(NOW + 2));
    let usage = s.usage(&query(GroupBy::Key)).await.unwrap();
    let u = usage.iter().find(|r| r.group == "key_v1").unwrap();
    assert_eq!((u.requests, u.tokens_in, u.tokens_cached), (4, 130, 10));
    assert!((u.cost_usd - 2.5).abs() < 1e-9);
}

#[tokio::test]
async fn unsupported_store_url_is_refused() {
    match store::open("mysql://u:pw@localhost/db").await {
        Err(e @ StoreError::UnsupportedUrl { .. }) => {
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
        other => panic!("expected UnsupportedUrl, got {:?}", other.err()),
    }
}

/// Generates `sqlite_$name` and `postgres_$name` from one async fn.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = TestDb::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

on_both_backends!(
    key_lifecycle,
    update_patch_semantics,
    spend_and_usage,
    prune_keeps_aggregates,
    migrations_idempotent,
    previous_release_queries_on_current_schema,
    concurrent_writers_lose_nothing,
    lookups_use_indexes,
);

#[tokio::test]
async fn sqlite_file_is_created_on_first_open() {
    let db = TestDb::sqlite();
    let path = db.url.trim_start_matches("sqlite://").to_string();
    assert!(!std::path::Path::new(&path).exists());
    let s = db.open().await;
    assert!(std::path::Path::new(&path).exists());
    assert!(s.list_keys().await.unwrap().is_empty());
    // WAL mode: the journal file sits next to the database while open.
    s.write_spend(&[row(NOW, None, "m", 200, 0.0)])
        .await
        .unwrap();
    assert!(std::path::Path::new(&format!("{path}-wal")).exists());
}

#[tokio::test]
async fn postgres_over_tls_with_sslmode_require() {
    let Some(db) = TestDb::postgres("postgres_over_tls").await else {
        return;
    };
    // The store's own connections: TLS (rustls) is required, and used.
    let url = format!("{}&sslmode=require", db.url);
    let s = store::open(&url).await.unwrap();
    s.create_key(&key("key_0000000000000003", 3, NOW))
        .await
        .unwrap();
    assert!(s.key_by_hash(&[3; 32]).await.unwrap().is_some());
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let (ssl, version): (bool, String) = sqlx::query_as(
        "SELECT ssl, COALESCE(version, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert!(ssl, "the connection is encrypted");
    assert!(version.starts_with("TLSv1."), "{version}");
    c.close().await.unwrap();
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_unreachable_is_a_connect_error_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://user:s3cret-pw@127.0.0.1:1/db";
    match store::open(url).await {
        Err(e @ StoreError::Connect { .. }) => {
            let text = format!("{e} {e:?}");
            assert!(!text.contains("s3cret-pw"), "{text}");
            assert!(text.contains("127.0.0.1:1"), "{text}");
            assert!(e.is_unavailable());
        }
        other => panic!("expected Connect, got {:?}", other.err()),
    }
}

/// A PostgreSQL server of this test's own (`.ci/postgres.sh`), to stop and
/// start again mid-run; removed when dropped.
struct OwnPostgres {
    url: String,
    dir: String,
}

impl OwnPostgres {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/postgres.sh")
    }

    /// Where the PostgreSQL tests run (CI, or `LLM_TEST_POSTGRES_URL` set):
    /// a new server, else `None` after a skip notice.
    fn start(test: &str) -> Option<Self> {
        let configured = std::env::var(PG_ENV).is_ok_and(|u| !u.is_empty());
        if !configured && !postgres_required() {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no PostgreSQL to test against (set {PG_ENV}, as .ci/run does; \
                 this test then starts a server of its own with .ci/postgres.sh)"
            );
            return None;
        }
        let out = std::process::Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            ".ci/postgres.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8(out.stdout).unwrap();
        let var = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}='")))
                .and_then(|v| v.strip_suffix('\''))
                .unwrap()
                .to_string()
        };
        Some(Self {
            url: var(PG_ENV),
            dir: var("LLM_TEST_POSTGRES_DIR"),
        })
    }

    /// `server-stop` or `server-start`.
    fn server(&self, what: &str) {
        let out = std::process::Command::new("bash")
            .arg(Self::script())
            .arg(what)
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            ".ci/postgres.sh {what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

#[tokio::test]
async fn postgres_stopped_mid_run_spend_rows_wait_then_are_written() {
    let Some(pg) = OwnPostgres::start("postgres_stopped_mid_run") else {
        return;
    };
    let s = store::open(&pg.url).await.unwrap();
    let log = SpendLog::spawn(s.clone(), cfg(5, 1_000));
    log.record(row(NOW, Some("key_m"), "gpt-4o", 200, 0.5));
    log.flush().await;

    pg.server("server-stop");
    for i in 1..=12 {
        log.record(row(NOW + i, Some("key_m"), "gpt-4o", 200, 0.5));
    }
    // The database is gone: queries fail as "unavailable", rows wait.
    let err = s.usage(&query(GroupBy::Key)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert_eq!(log.pending(), 12);
    assert_eq!(log.dropped_rows(), 0);

    // Back (same port, same data): the pool reconnects, the rows land once.
    pg.server("server-start");
    log.flush().await;
    assert_eq!(log.pending(), 0);
    assert_eq!(requests_of(s.as_ref()).await, 13);
    assert!((s.key_spend_since("key_m", 0).await.unwrap() - 6.5).abs() < 1e-9);
}

// ---- the spend-log writer ---------------------------------------------------

/// A store that can be switched off (every call then fails like an
/// unreachable database) and rejects rows whose model is `poison` (like a
/// database refusing a statement); it reports each write attempt.
struct Switchable {
    inner: Arc<dyn Store>,
    down: AtomicBool,
    attempts: tokio::sync::watch::Sender<u64>,
    writes: AtomicU64,
    /// Rows the inner store has committed.
    rows_written: tokio::sync::watch::Sender<u64>,
}

impl Switchable {
    fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            down: AtomicBool::new(false),
            attempts: tokio::sync::watch::channel(0).0,
            writes: AtomicU64::new(0),
            rows_written: tokio::sync::watch::channel(0).0,
        })
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Connect {
                url_redacted: "sqlite://test".into(),
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
            });
        }
        Ok(())
    }

    /// Waits until the writer has tried to write at least `n` times.
    async fn attempted(&self, n: u64) {
        let mut rx = self.attempts.subscribe();
        rx.wait_for(|a| *a >= n).await.unwrap();
    }
}

#[async_trait::async_trait]
impl Store for Switchable {
    async fn create_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.create_key(key).await
    }
    async fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.key_by_hash(hash).await
    }
    async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.key(id).await
    }
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.list_keys().await
    }
    async fn update_key(
        &self,
        id: &str,
        patch: &KeyPatch,
        now_ms: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.update_key(id, patch, now_ms).await
    }
    async fn rotate_key(
        &self,
        id: &str,
        hash: [u8; 32],
        prefix: &str,
        now_ms: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.rotate_key(id, hash, prefix, now_ms).await
    }
    async fn revoke_key(&self, id: &str, now_ms: i64) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.revoke_key(id, now_ms).await
    }
    async fn write_spend(&self, rows: &[SpendRow]) -> Result<(), StoreError> {
        self.attempts.send_modify(|a| *a += 1);
        self.check()?;
        if rows.iter().any(|r| r.model == "poison") {
            return Err(StoreError::Query {
                op: "write_spend",
                source: "value rejected".into(),
            });
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write_spend(rows).await?;
        self.rows_written
            .send_modify(|n| *n += u64::try_from(rows.len()).unwrap());
        Ok(())
    }
    async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        self.check()?;
        self.inner.usage(q).await
    }
    async fn key_spend_since(&self, id: &str, since_ms: i64) -> Result<f64, StoreError> {
        self.check()?;
        self.inner.key_spend_since(id, since_ms).await
    }
    async fn prune_spend(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.prune_spend(before_ms).await
    }
}

fn cfg(batch_rows: usize, buffer_rows: usize) -> SpendConfig {
    SpendConfig {
        batch_rows,
        // Long: the tests flush, or fill batches, to get rows written.
        flush_interval: Duration::from_secs(3_600),
        buffer_rows,
        retention: None,
        prune_interval: Duration::from_secs(3_600),
    }
}

async fn requests_of(s: &dyn Store) -> u64 {
    s.usage(&query(GroupBy::Key))
        .await
        .unwrap()
        .iter()
        .map(|r| r.requests)
        .sum()
}

async fn spend_log_keeps_rows_while_the_store_is_down(db: &TestDb) {
    let inner = db.open().await;
    let store = Switchable::new(inner.clone());
    let log = SpendLog::spawn(store.clone(), cfg(4, 1_000));
    store.down.store(true, Ordering::SeqCst);
    for i in 0..10 {
        log.record(row(NOW + i, Some("key_s"), "gpt-4o", 200, 0.1));
    }
    // A full batch wakes the writer: it tries, fails, keeps the rows.
    store.attempted(1).await;
    assert_eq!(log.pending(), 10);
    assert_eq!(requests_of(inner.as_ref()).await, 0);
    assert_eq!(log.dropped_rows(), 0);

    // The database is back: everything buffered is written, once.
    store.down.store(false, Ordering::SeqCst);
    log.flush().await;
    assert_eq!(log.pending(), 0);
    assert_eq!(log.written_rows(), 10);
    assert_eq!(requests_of(inner.as_ref()).await, 10);
    let spent = inner.key_spend_since("key_s", 0).await.unwrap();
    assert!((spent - 1.0).abs() < 1e-9, "{spent}");
}

async fn spend_log_counts_overflow_as_dropped(db: &TestDb) {
    let inner = db.open().await;
    let store = Switchable::new(inner.clone());
    store.down.store(true, Ordering::SeqCst);
    let log = SpendLog::spawn(store.clone(), cfg(2, 5));
    let before = spend::rows_dropped_total();
    for i in 0..8 {
        log.record(row(NOW + i, Some("key_o"), "gpt-4o", 200, 0.0));
    }
    // record() never waits: the overflow is counted at once.
    assert_eq!(log.dropped_rows(), 3);
    assert!(spend::rows_dropped_total() >= before + 3);
    let text = spend::prometheus_text();
    assert!(text.contains("# TYPE llm_gateway_spend_rows_dropped_total counter"));
    let exported: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("llm_gateway_spend_rows_dropped_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(exported >= before + 3);
    assert_eq!(log.pending(), 5);

    store.down.store(false, Ordering::SeqCst);
    log.flush().await;
    assert_eq!(requests_of(inner.as_ref()).await, 5);
    assert_eq!(log.dropped_rows(), 3);
}

async fn spend_log_flush_writes_everything_in_batches(db: &TestDb) {
    let inner = db.open().await;
    let store = Switchable::new(inner.clone());
    let log = SpendLog::spawn(store.clone(), cfg(1_000, 10_000));
    let n = 2_500;
    for i in 0..n {
        let model = if i % 2 == 0 { "gpt-4o" } else { "claude" };
        log.record(row(NOW + i, Some("key_f"), model, 200, 0.01));
    }
    log.flush().await;
    assert_eq!(log.pending(), 0);
    assert_eq!(requests_of(inner.as_ref()).await, 2_500);
    let writes = store.writes.load(Ordering::SeqCst);
    assert!(writes >= 3, "batches of at most 1000 rows: {writes} writes");
    assert!(
        writes <= 5,
        "rows are batched, not written one by one: {writes} writes"
    );
    // Flushing with nothing pending returns at once.
    log.flush().await;
}

async fn spend_log_writes_a_partial_batch_after_the_interval(db: &TestDb) {
    let inner = db.open().await;
    let store = Switchable::new(inner.clone());
    let mut c = cfg(1_000, 10_000);
    c.flush_interval = Duration::from_millis(50);
    let log = SpendLog::spawn(store.clone(), c);
    log.record(row(NOW, Some("key_i"), "gpt-4o", 200, 0.5));
    // No flush, no full batch: the interval alone gets it written.
    let mut written = store.rows_written.subscribe();
    written.wait_for(|n| *n >= 1).await.unwrap();
    assert_eq!(requests_of(inner.as_ref()).await, 1);
    drop(log);
}

async fn spend_log_writes_what_is_left_when_dropped(db: &TestDb) {
    let inner = db.open().await;
    let store = Switchable::new(inner.clone());
    let log = SpendLog::spawn(store.clone(), cfg(1_000, 10_000));
    let clone = log.clone();
    for i in 0..3 {
        clone.record(row(NOW + i, Some("key_d"), "gpt-4o", 200, 0.5));
    }
    drop(clone);
    assert_eq!(log.pending(), 3, "a clone going away is not the end");
    // The last handle gone: the writer writes what is left, then stops.
    drop(log);
    let mut written = store.rows_written.subscribe();
    written.wait_for(|n| *n >= 3).await.unwrap();
    assert_eq!(requests_of(inner.as_ref()).await, 3);
}

async fn spend_log_drops_only_rows_the_store_rejects(db: &TestDb) {
    let inner = db.open().await;
    let store = Switchable::new(inner.clone());
    let log = SpendLog::spawn(store.clone(), cfg(100, 1_000));
    log.record(row(NOW, Some("key_r"), "gpt-4o", 200, 0.0));
    log.record(row(NOW + 1, Some("key_r"), "poison", 200, 0.0));
    log.record(row(NOW + 2, Some("key_r"), "claude", 200, 0.0));
    log.flush().await;
    assert_eq!(log.dropped_rows(), 1);
    assert_eq!(requests_of(inner.as_ref()).await, 2);
}

async fn spend_log_prunes_past_retention(db: &TestDb) {
    let inner = db.open().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    inner
        .write_spend(&[
            row(now - 40 * DAY_MS, Some("key_t"), "m", 200, 1.0),
            row(now - 35 * DAY_MS, Some("key_t"), "m", 200, 1.0),
            row(now - DAY_MS, Some("key_t"), "m", 200, 1.0),
        ])
        .await
        .unwrap();
    let mut c = cfg(10, 100);
    c.retention = Some(Duration::from_secs(30 * 86_400));
    let log = SpendLog::spawn(inner.clone(), c);
    // The first retention pass runs at start; a flush waits for it.
    log.flush().await;
    assert_eq!(log.pruned_rows(), 2);
    assert_eq!(inner.prune_spend(now - 30 * DAY_MS).await.unwrap(), 0);
    assert!((inner.key_spend_since("key_t", 0).await.unwrap() - 3.0).abs() < 1e-9);
}

macro_rules! spend_log_on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod spend_log_sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let db = TestDb::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod spend_log_postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

spend_log_on_both_backends!(
    spend_log_keeps_rows_while_the_store_is_down,
    spend_log_counts_overflow_as_dropped,
    spend_log_flush_writes_everything_in_batches,
    spend_log_drops_only_rows_the_store_rejects,
    spend_log_prunes_past_retention,
    spend_log_writes_a_partial_batch_after_the_interval,
    spend_log_writes_what_is_left_when_dropped,
);
