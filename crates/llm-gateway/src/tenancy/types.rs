//! The data of tenancy: virtual key records, patches, spend rows, usage
//! reports and the store's error type.
//!
//! Times are unix milliseconds (UTC) in `i64`; a day is
//! `ms.div_euclid(86_400_000)`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The id of a virtual key: `"key_"` followed by 16 lowercase hex characters.
pub type KeyId = String;

/// The period a key's budget applies to.
///
/// Windows are UTC: a day starts at 00:00, a week on Monday 00:00, a month
/// on its first day at 00:00. `Total` never resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    /// From 00:00 UTC to the next 00:00 UTC.
    Daily,
    /// From Monday 00:00 UTC to the next Monday.
    Weekly,
    /// From the first of the month 00:00 UTC to the first of the next.
    Monthly,
    /// Since the key was created; never resets.
    #[default]
    Total,
}

impl BudgetPeriod {
    /// The name used in config, the API and the store (`daily`, `weekly`,
    /// `monthly`, `total`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Total => "total",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "daily" => Some(Self::Daily),
            "weekly" => Some(Self::Weekly),
            "monthly" => Some(Self::Monthly),
            "total" => Some(Self::Total),
            _ => None,
        }
    }

    /// The window containing `now_ms`: its start (day-aligned, `0` for
    /// `Total`) and when it resets (`None` for `Total`).
    pub fn window(&self, now_ms: i64) -> (i64, Option<i64>) {
        let day = now_ms.div_euclid(DAY_MS);
        match self {
            Self::Daily => (day * DAY_MS, Some((day + 1) * DAY_MS)),
            Self::Weekly => {
                // 1970-01-01 was a Thursday: Monday is weekday 0.
                let start = day - (day + 3).rem_euclid(7);
                (start * DAY_MS, Some((start + 7) * DAY_MS))
            }
            Self::Monthly => {
                let (y, m, _) = civil_from_days(day);
                let start = days_from_civil(y, m, 1);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let next = days_from_civil(ny, nm, 1);
                (start * DAY_MS, Some(next * DAY_MS))
            }
            Self::Total => (0, None),
        }
    }
}

impl fmt::Display for BudgetPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month 1–12, day 1–31) of a day number.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Both are small by construction (1..=31, 1..=12).
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// A virtual key as the store holds it.
///
/// The secret key itself is never stored: only its SHA-256 `hash`, which is
/// neither serialised (the API JSON has no `hash`) nor printed by `Debug`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// `"key_"` + 16 lowercase hex characters.
    pub id: KeyId,
    /// A human name (app, team, customer).
    pub name: String,
    /// Who owns the key.
    pub owner: Option<String>,
    /// The team the key belongs to.
    pub team: Option<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// SHA-256 of the full secret key; never serialised.
    #[serde(skip)]
    pub hash: [u8; 32],
    /// The first 12 characters of the key (`"sk-llm-ab12c"`), for display.
    pub prefix: String,
    /// Allowed models: globs over `model` or `instance/model`; empty = all.
    #[serde(default)]
    pub models: Vec<String>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u32>,
    /// Concurrent requests.
    pub max_concurrency: Option<u32>,
    /// Budget in USD per `budget_period`.
    pub budget_usd: Option<f64>,
    /// The period the budget applies to.
    #[serde(default)]
    pub budget_period: BudgetPeriod,
    /// When the key stops working (unix ms).
    pub expires_at: Option<i64>,
    /// A disabled key is refused until enabled again.
    pub enabled: bool,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
    /// When the key was revoked (unix ms); a revoked key never works again.
    pub revoked_at: Option<i64>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("team", &self.team)
            .field("metadata", &self.metadata)
            .field("hash", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("models", &self.models)
            .field("rpm", &self.rpm)
            .field("tpm", &self.tpm)
            .field("max_concurrency", &self.max_concurrency)
            .field("budget_usd", &self.budget_usd)
            .field("budget_period", &self.budget_period)
            .field("expires_at", &self.expires_at)
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// A change to a key: `None` leaves a field as it is; for optional fields
/// `Some(None)` clears it (JSON `null`) and `Some(Some(v))` sets it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New owner, or `null` to clear.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub owner: Option<Option<String>>,
    /// New team, or `null` to clear.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub team: Option<Option<String>>,
    /// New metadata (replaces the whole map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// New allowed-model globs (replaces the list; empty = all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// New RPM limit, or `null` to clear.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub rpm: Option<Option<u32>>,
    /// New TPM limit, or `null` to clear.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub tpm: Option<Option<u32>>,
    /// New concurrency limit, or `null` to clear.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_concurrency: Option<Option<u32>>,
    /// New budget, or `null` to clear.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub budget_usd: Option<Option<f64>>,
    /// New budget period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_period: Option<BudgetPeriod>,
    /// New expiry, or `null` to clear.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<Option<i64>>,
    /// Enable or disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Present-and-`null` becomes `Some(None)`; absent stays `None` (with
/// `#[serde(default)]`).
fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl KeyPatch {
    /// Applies the patch to `key` (does not touch `updated_at`).
    pub fn apply(&self, key: &mut KeyRecord) {
        if let Some(v) = &self.name {
            key.name.clone_from(v);
        }
        if let Some(v) = &self.owner {
            key.owner.clone_from(v);
        }
        if let Some(v) = &self.team {
            key.team.clone_from(v);
        }
        if let Some(v) = &self.metadata {
            key.metadata.clone_from(v);
        }
        if let Some(v) = &self.models {
            key.models.clone_from(v);
        }
        if let Some(v) = self.rpm {
            key.rpm = v;
        }
        if let Some(v) = self.tpm {
            key.tpm = v;
        }
        if let Some(v) = self.max_concurrency {
            key.max_concurrency = v;
        }
        if let Some(v) = self.budget_usd {
            key.budget_usd = v;
        }
        if let Some(v) = self.budget_period {
            key.budget_period = v;
        }
        if let Some(v) = self.expires_at {
            key.expires_at = v;
        }
        if let Some(v) = self.enabled {
            key.enabled = v;
        }
    }
}

/// One request in the spend log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendRow {
    /// When the request finished (unix ms).
    pub ts_ms: i64,
    /// The virtual key, `None` for config-file keys and open gateways.
    pub key_id: Option<KeyId>,
    /// The key's name at the time.
    pub key_name: Option<String>,
    /// The key's team at the time.
    pub team: Option<String>,
    /// The model asked for.
    pub model: String,
    /// The provider instance that answered.
    pub provider: Option<String>,
    /// The protocol door (`chat`, `responses`, `completions`, `embeddings`,
    /// `messages`, `ollama`).
    pub api: String,
    /// Input tokens.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
    /// Input tokens served from a provider's prompt cache.
    pub tokens_cached: u64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Latency in milliseconds.
    pub latency_ms: u32,
    /// HTTP status answered.
    pub status: u16,
    /// Answered from the response cache.
    pub cache_hit: bool,
    /// Provider attempts made.
    pub attempts: u32,
}

/// How a usage report is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// By key id (`""` for requests without a virtual key).
    Key,
    /// By model.
    Model,
    /// By UTC day (`YYYY-MM-DD`).
    Day,
}

/// A usage report request. Bounds are day-aligned: a day is included when
/// it overlaps `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageQuery {
    /// Grouping.
    pub group_by: GroupBy,
    /// Start (unix ms, inclusive).
    pub from_ms: Option<i64>,
    /// End (unix ms, exclusive).
    pub to_ms: Option<i64>,
    /// Only this key.
    pub key_id: Option<KeyId>,
}

/// One line of a usage report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The group: key id, model or `YYYY-MM-DD`.
    pub group: String,
    /// Requests.
    pub requests: u64,
    /// Requests answered with an error status (>= 400).
    pub errors: u64,
    /// Input tokens.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
    /// Input tokens served from a provider's prompt cache.
    #[serde(default)]
    pub tokens_cached: u64,
    /// Requests answered from the response cache.
    #[serde(default)]
    pub cache_hits: u64,
    /// Cost in USD.
    pub cost_usd: f64,
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn day_string(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a store operation can fail with. Never contains a key, a hash or a
/// password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is not `sqlite://…` or `postgres://…`.
    #[error("unsupported store url {url_redacted:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl {
        /// The URL without its password.
        url_redacted: String,
    },
    /// The database cannot be opened or reached.
    #[error("cannot connect to the store at {url_redacted}: {source}")]
    Connect {
        /// The URL without its password.
        url_redacted: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// Migrations failed.
    #[error("store migration failed: {source}")]
    Migrate {
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// A query failed.
    #[error("store {op} failed: {source}")]
    Query {
        /// The operation (`create_key`, `write_spend`, …).
        op: &'static str,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// No such key.
    #[error("key not found")]
    NotFound,
    /// A key with that id or hash exists already.
    #[error("conflict: {0}")]
    Conflict(String),
}

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let pass = if userinfo.contains(':') { ":***" } else { "" };
            let tail = redact_query(tail);
            format!("{scheme}://{user}{pass}@{host}{tail}")
        }
        None => format!("{scheme}://{authority}{}", redact_query(tail)),
    }
}

/// Hides a `password=` query parameter.
fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let q: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", q.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i64, m: u32, d: u32) -> i64 {
        days_from_civil(y, m, d) * DAY_MS
    }

    #[test]
    fn windows_are_utc_calendar_periods() {
        // Wednesday 2026-12-02 15:00 UTC.
        let now = ms(2026, 12, 2) + 15 * 3_600_000;
        assert_eq!(
            BudgetPeriod::Daily.window(now),
            (ms(2026, 12, 2), Some(ms(2026, 12, 3)))
        );
        assert_eq!(
            BudgetPeriod::Weekly.window(now),
            (ms(2026, 11, 30), Some(ms(2026, 12, 7)))
        );
        assert_eq!(
            BudgetPeriod::Monthly.window(now),
            (ms(2026, 12, 1), Some(ms(2027, 1, 1)))
        );
        assert_eq!(BudgetPeriod::Total.window(now), (0, None));
        // A Monday at 00:00 starts its own week; February in a leap year.
        assert_eq!(
            BudgetPeriod::Weekly.window(ms(2026, 11, 30)).0,
            ms(2026, 11, 30)
        );
        assert_eq!(
            BudgetPeriod::Monthly.window(ms(2024, 2, 29) + 1),
            (ms(2024, 2, 1), Some(ms(2024, 3, 1)))
        );
        assert_eq!(ms(1970, 1, 1), 0);
        assert_eq!(day_string(ms(2026, 12, 2) / DAY_MS), "2026-12-02");
    }

    #[test]
    fn key_record_json_and_debug_never_show_the_hash() {
        let key = KeyRecord {
            id: "key_0123456789abcdef".into(),
            name: "app".into(),
            owner: None,
            team: Some("t".into()),
            metadata: serde_json::Map::new(),
            hash: [0xab; 32],
            prefix: "sk-llm-ab12c".into(),
            models: vec![],
            rpm: Some(60),
            tpm: None,
            max_concurrency: None,
            budget_usd: Some(5.0),
            budget_period: BudgetPeriod::Monthly,
            expires_at: None,
            enabled: true,
            created_at: 1,
            updated_at: 1,
            revoked_at: None,
        };
        let json = serde_json::to_string(&key).unwrap_or_default();
        assert!(!json.contains("hash"), "{json}");
        assert!(json.contains("\"budget_period\":\"monthly\""), "{json}");
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("171") && !dbg.contains("ab, ab"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn patch_distinguishes_absent_from_null() {
        let p: KeyPatch =
            serde_json::from_str(r#"{"rpm":null,"tpm":10,"name":"n"}"#).unwrap_or_default();
        assert_eq!(p.rpm, Some(None));
        assert_eq!(p.tpm, Some(Some(10)));
        assert_eq!(p.owner, None);
        assert_eq!(p.name.as_deref(), Some("n"));
        assert!(serde_json::from_str::<KeyPatch>(r#"{"bogus":1}"#).is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=secret"),
            "postgres://h/db?user=u&password=***"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
