//! Where keys and spend live: one [`Store`] trait, two backends (SQLite, the
//! default, a file created on first start; PostgreSQL for several replicas),
//! chosen by the URL given to [`open`].

pub mod postgres;
mod sql;
pub mod sqlite;

use std::sync::Arc;

pub use self::postgres::PostgresStore;
pub use self::sqlite::SqliteStore;
use super::types::{redact_url, KeyPatch, KeyRecord, SpendRow, StoreError, UsageQuery, UsageRow};

/// Keys and spend, behind one interface.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new key; [`StoreError::Conflict`] when its id or hash exists.
    async fn create_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    /// The key whose secret hashes to `hash` (indexed lookup).
    async fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<KeyRecord>, StoreError>;
    /// The key with this id.
    async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// Every key (revoked ones included), oldest first.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Applies `patch`; `None` when there is no such key.
    async fn update_key(
        &self,
        id: &str,
        patch: &KeyPatch,
        now_ms: i64,
    ) -> Result<Option<KeyRecord>, StoreError>;
    /// Replaces the key's secret (hash and prefix); `None` when there is no
    /// such key.
    async fn rotate_key(
        &self,
        id: &str,
        hash: [u8; 32],
        prefix: &str,
        now_ms: i64,
    ) -> Result<Option<KeyRecord>, StoreError>;
    /// Marks the key revoked (the first revocation time is kept); `None`
    /// when there is no such key.
    async fn revoke_key(&self, id: &str, now_ms: i64) -> Result<Option<KeyRecord>, StoreError>;
    /// Inserts the raw rows AND updates the daily aggregates (day, key_id,
    /// model) in one transaction.
    async fn write_spend(&self, rows: &[SpendRow]) -> Result<(), StoreError>;
    /// Reports read the aggregates only (never the raw log).
    async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageRow>, StoreError>;
    /// Spend of a key since `since_ms` (day-aligned), from the aggregates:
    /// seeds budget ledgers.
    async fn key_spend_since(&self, id: &str, since_ms: i64) -> Result<f64, StoreError>;
    /// Deletes raw rows older than `before_ms` (retention); aggregates are
    /// kept. Returns the number of rows deleted.
    async fn prune_spend(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// Opens the store at `url` (`sqlite://PATH`, created when missing, or
/// `postgres://…`) and brings its schema up to date (embedded migrations,
/// forward-only; versions applied by a newer replica are left alone).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Ok(Arc::new(SqliteStore::open(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PostgresStore::open(url).await?)),
        _ => Err(StoreError::UnsupportedUrl {
            url_redacted: redact_url(url),
        }),
    }
}

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = 2;

/// Applies the embedded migrations up to `version` only, as a release whose
/// newest migration is `version` does at start (it leaves newer applied
/// versions alone). For compatibility tests; [`open`] migrates to
/// [`SCHEMA_VERSION`].
#[doc(hidden)]
pub async fn migrate_to(url: &str, version: i64) -> Result<(), StoreError> {
    let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => SqliteStore::open_with(url, version).await?.close().await,
        "postgres" | "postgresql" => PostgresStore::open_with(url, version).await?.close().await,
        _ => {
            return Err(StoreError::UnsupportedUrl {
                url_redacted: redact_url(url),
            })
        }
    }
    Ok(())
}

impl StoreError {
    /// Whether the failure says the database is unreachable or busy for now
    /// (connection refused or lost, pool timeout, lock contention, server
    /// shutting down), so the same operation may succeed later; `false` for
    /// failures that retrying cannot fix (a rejected statement).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Query { source, .. } | Self::Migrate { source } => {
                source
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(sqlx_transient)
                    // A store call abandoned after its deadline.
                    || source.is::<std::io::Error>()
            }
            Self::UnsupportedUrl { .. } | Self::NotFound | Self::Conflict(_) => false,
        }
    }
}

/// Transient sqlx failures: transport, pool, and the database's own
/// "not now" answers.
fn sqlx_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // SQLSTATE: connection exceptions, insufficient resources,
                // operator intervention (shutdown, statement timeout),
                // read-only transaction (a standby during a failover),
                // serialization failure, deadlock, lock not available.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "57014"
                    || code == "25006"
                    || code == "40001"
                    || code == "40P01"
                    || code == "55P03"
            } else {
                // SQLite result codes (extended; the primary code is the low
                // byte): BUSY, LOCKED, IOERR, FULL, CANTOPEN.
                code.parse::<i64>()
                    .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14))
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_know_the_same_schema_versions() {
        let versions =
            |m: &[sql::EmbeddedMigration]| m.iter().map(|(v, d, _)| (*v, *d)).collect::<Vec<_>>();
        let sqlite = versions(sqlite::MIGRATIONS);
        assert_eq!(sqlite, versions(postgres::MIGRATIONS));
        assert_eq!(sqlite.last().map(|m| m.0), Some(SCHEMA_VERSION));
        assert!(
            sqlite.windows(2).all(|w| w[1].0 == w[0].0 + 1),
            "{sqlite:?}"
        );
    }

    #[test]
    fn unavailable_means_retrying_can_help() {
        let io = StoreError::Query {
            op: "write_spend",
            source: sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()).into(),
        };
        assert!(io.is_unavailable());
        let timeout = StoreError::Query {
            op: "key",
            source: sqlx::Error::PoolTimedOut.into(),
        };
        assert!(timeout.is_unavailable());
        let rejected = StoreError::Query {
            op: "write_spend",
            source: sqlx::Error::RowNotFound.into(),
        };
        assert!(!rejected.is_unavailable());
        assert!(!StoreError::Conflict("x".into()).is_unavailable());
        assert!(!sql::corrupt("key", "key hash").is_unavailable());
    }
}
