//! The PostgreSQL store, for several gateway replicas: a connection pool,
//! TLS through rustls when the server offers it (`sslmode=require` or
//! `verify-full` in the URL to insist), migrations under PostgreSQL's
//! advisory lock (replicas starting together migrate once).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::sql::{migrator, sql_store, EmbeddedMigration};
use crate::tenancy::types::{redact_url, StoreError};

/// The schema, oldest first. Forward-only and additive: never edit or remove
/// one that has shipped.
pub(crate) const MIGRATIONS: &[EmbeddedMigration] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "daily cache columns",
        include_str!("../migrations/postgres/0002_daily_cache_columns.sql"),
    ),
];

/// Most connections per gateway process.
const MAX_CONNECTIONS: u32 = 10;

/// How long a query waits for a connection (then fails: the spend log keeps
/// its rows and retries, key lookups fall back to their cache).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys and spend in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`) and migrates
    /// the database.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, i64::MAX).await
    }

    /// [`open`](Self::open), applying the migrations up to `version` only.
    pub(crate) async fn open_with(url: &str, version: i64) -> Result<Self, StoreError> {
        let connect = |e: sqlx::Error| StoreError::Connect {
            url_redacted: redact_url(url),
            source: e.into(),
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(connect)?
            .application_name("llm-gateway");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(connect)?;
        let known = MIGRATIONS.iter().take_while(|m| m.0 <= version).count();
        migrator(&MIGRATIONS[..known])
            .await?
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate { source: e.into() })?;
        Ok(Self { pool })
    }

    /// Closes the pool (pending statements finish first).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

sql_store!(PostgresStore, sqlx::Postgres);
