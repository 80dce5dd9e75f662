//! The SQLite store: one file, created on first start, in WAL mode (readers
//! never wait for the writer), `synchronous = NORMAL`, and a busy timeout so
//! concurrent writers queue instead of failing.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::sql::{migrator, sql_store, EmbeddedMigration};
use crate::tenancy::types::{redact_url, StoreError};

/// The schema, oldest first. Forward-only and additive: never edit or remove
/// one that has shipped.
pub(crate) const MIGRATIONS: &[EmbeddedMigration] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "daily cache columns",
        include_str!("../migrations/sqlite/0002_daily_cache_columns.sql"),
    ),
];

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Migration runs before giving up (see [`SqliteStore::open`]).
const MIGRATE_ATTEMPTS: u32 = 3;

/// Keys and spend in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it when missing) the database at `url`
    /// (`sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`) and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, i64::MAX).await
    }

    /// [`open`](Self::open), applying the migrations up to `version` only.
    pub(crate) async fn open_with(url: &str, version: i64) -> Result<Self, StoreError> {
        let connect = |e: sqlx::Error| StoreError::Connect {
            url_redacted: redact_url(url),
            source: e.into(),
        };
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect)?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // An in-memory database lives as long as its one connection.
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        }
        .acquire_timeout(BUSY_TIMEOUT * 2)
        .connect_with(options)
        .await
        .map_err(connect)?;
        let known = MIGRATIONS.iter().take_while(|m| m.0 <= version).count();
        let migrator = migrator(&MIGRATIONS[..known]).await?;
        // SQLite has no migration lock: when two processes start on one file
        // at once, the slower one's migration can collide with the faster
        // one's; run again, it then finds them applied.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match migrator.run(&pool).await {
                Ok(()) => break,
                Err(e) if attempt >= MIGRATE_ATTEMPTS => {
                    return Err(StoreError::Migrate { source: e.into() })
                }
                Err(e) => tracing::debug!(error = %e, "sqlite migration collided; running again"),
            }
        }
        Ok(Self { pool })
    }

    /// Closes the pool (pending statements finish first).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

sql_store!(SqliteStore, sqlx::Sqlite);
