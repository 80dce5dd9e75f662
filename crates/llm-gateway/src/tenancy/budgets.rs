//! The budget ledger: USD budgets per key and period, enforced by reserving
//! a call's estimated cost before it runs and settling the actual cost after.
//!
//! # Model
//!
//! Each (key, budget period) has an account of integer micro-USD (no float
//! drift): `spent` (settled costs) and `reserved` (estimates of calls in
//! flight). A call is admitted iff `spent + reserved + amount ≤ budget`
//! (`amount` at least one micro-USD, so a fully spent budget refuses
//! everything); admission adds `amount` to `reserved` atomically. When the
//! call ends, [`Ledger::settle`] moves it: `reserved -= amount`,
//! `spent += actual`; a failed call is [released](Ledger::release)
//! (`reserved -= amount`). A [`Reservation`] dropped without either (a
//! cancelled request, a panic) releases itself from a spawned task.
//!
//! # Bound
//!
//! Admission never lets `spent + reserved` pass the budget, so spend exceeds
//! the budget only by what calls in flight cost **beyond their own
//! reservation** (an estimate that was too low: more output than
//! `max_tokens` assumed, a price that differs). With exact estimates spend
//! never exceeds the budget, under any concurrency and across every replica
//! sharing the Redis ledger.
//!
//! # Periods and seeding
//!
//! A period is the key's [`BudgetPeriod`] window at the time of the
//! reservation; a call is charged to the period in which it was admitted,
//! even when it ends after the reset. On the first use of a period the
//! account is seeded with the spend the store already holds for it (the
//! `seed` callback of [`Ledger::reserve`]). Seeding is applied once,
//! atomically (the first seed to arrive wins; Redis checks and sets it in the
//! same script); on one replica concurrent first calls wait for a single
//! `seed` call. A seed that fails is logged and the call proceeds against the
//! ledger alone; the next call tries to seed again (spend settled in between
//! may then be counted twice, which errs on the side of refusing).
//!
//! # Backends
//!
//! In process: one replica only (restarts re-seed from the store); accounts
//! of ended periods are dropped. In Redis: a hash per (key, period start),
//! `{prefix}budget:{key id}:{period start ms}`, expiring one day after the
//! period ends (a `total` budget's account expires after 7 idle days and is
//! re-seeded from the store). When Redis is unavailable the call is
//! **admitted** without a reservation (fail open: logged, and counted in
//! `llm_gateway_limit_backend_errors_total`, see
//! [`limits`](super::limits)); budgets are not enforced while it is down.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::Script;

use super::limits::{lock, LimitError, RedisConn, RedisOptions, Shards};
use super::types::{BudgetPeriod, KeyRecord};

/// Micro-USD per USD.
const MICROS: f64 = 1_000_000.0;

/// Attempts at a Redis settlement before it is given up (and logged).
const SETTLE_RETRIES: u32 = 8;

/// Largest amount handled, in micro-USD (a billion dollars): keeps every
/// value exact in Redis' Lua numbers.
const MAX_MICROS: i64 = 1_000_000_000_000_000;

/// How long an account outlives the end of its period (calls admitted before
/// the reset settle into it).
const GRACE_MS: i64 = 86_400_000;

/// Idle lifetime of a `total` budget's account in Redis.
const TOTAL_IDLE_MS: i64 = 7 * 86_400_000;

/// `usd` in micro-USD, rounded to the nearest; negative and NaN are 0.
fn micros(usd: f64) -> i64 {
    if usd.is_nan() || usd <= 0.0 {
        return 0;
    }
    let m = (usd * MICROS).round();
    if m >= MAX_MICROS as f64 {
        MAX_MICROS
    } else {
        m as i64
    }
}

fn usd(micros: i64) -> f64 {
    micros as f64 / MICROS
}

/// A call refused because the key's budget for the period is used up: answer
/// 429 `insufficient_quota`.
#[derive(Debug, Clone, PartialEq)]
pub struct OverBudget {
    /// The key's budget for the period, USD.
    pub budget_usd: f64,
    /// Settled spend in the period, USD.
    pub spent_usd: f64,
    /// Reserved by calls in flight, USD.
    pub reserved_usd: f64,
    /// When the period resets (unix ms); `None` for a `total` budget.
    pub resets_at: Option<i64>,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "budget of ${:.2} used: ${:.6} spent, ${:.6} reserved by calls in flight",
            self.budget_usd, self.spent_usd, self.reserved_usd
        )
    }
}

impl std::error::Error for OverBudget {}

/// An account's figures (see [`Ledger::balance`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Balance {
    /// Settled spend, USD.
    pub spent_usd: f64,
    /// Reserved by calls in flight, USD.
    pub reserved_usd: f64,
}

// ---------------------------------------------------------------------------
// Backends

/// One in-process account.
#[derive(Debug, Default)]
struct Account {
    seeded: bool,
    spent: i64,
    reserved: i64,
    /// When the account may be dropped (unix ms); `None`: never.
    expires_at: Option<i64>,
}

/// Reserve: `ARGV` = budget, amount, seed (`>= 0` apply if unseeded, `-1`
/// only check, `-2` proceed unseeded), expire-at ms (or `-1`), idle ttl ms.
/// Returns `{status, spent, reserved}`: status 1 admitted, 0 refused, -1 the
/// account needs its seed.
const RESERVE_LUA: &str = r"
local k = KEYS[1]
local budget = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local seed = tonumber(ARGV[3])
if redis.call('HEXISTS', k, 'seeded') == 0 then
  if seed == -1 then return {-1, 0, 0} end
  if seed >= 0 then
    redis.call('HSET', k, 'seeded', '1')
    redis.call('HINCRBY', k, 'spent', ARGV[3])
  end
end
local spent = tonumber(redis.call('HGET', k, 'spent') or '0')
local reserved = tonumber(redis.call('HGET', k, 'reserved') or '0')
local status = 0
if spent + reserved + amount <= budget then
  reserved = redis.call('HINCRBY', k, 'reserved', ARGV[2])
  status = 1
end
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIREAT', k, ARGV[4])
else
  redis.call('PEXPIRE', k, ARGV[5])
end
return {status, spent, reserved}
";

/// Settle: `ARGV` = reserved amount, actual cost. An account that is gone
/// (expired) is left alone: the store holds the truth.
const SETTLE_LUA: &str = r"
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 then return 0 end
local r = redis.call('HINCRBY', k, 'reserved', '-' .. ARGV[1])
if r < 0 then redis.call('HSET', k, 'reserved', '0') end
if ARGV[2] ~= '0' then redis.call('HINCRBY', k, 'spent', ARGV[2]) end
return 1
";

struct RedisLedger {
    conn: RedisConn,
    reserve: Script,
    settle: Script,
}

enum Backend {
    Memory(Shards<Account>),
    Redis(RedisLedger),
}

/// What to do about the seed in one reservation attempt.
#[derive(Clone, Copy)]
enum Seed {
    /// Ask for it if the account has none.
    Check,
    /// Apply it if the account has none.
    Apply(i64),
    /// Proceed without it (the seed failed).
    Skip,
}

impl Seed {
    fn arg(self) -> i64 {
        match self {
            Seed::Check => -1,
            Seed::Apply(m) => m,
            Seed::Skip => -2,
        }
    }
}

/// The account a reservation goes to.
#[derive(Clone)]
struct AccountId {
    key_id: String,
    start: i64,
    /// End of the period plus grace, or `None` (total).
    expires_at: Option<i64>,
}

impl AccountId {
    fn name(&self) -> String {
        format!("{}:{}", self.key_id, self.start)
    }
}

enum Outcome {
    Admitted(Reservation),
    Refused {
        spent: i64,
        reserved: i64,
    },
    NeedSeed,
    /// The backend could not be used: admitted without a reservation.
    Unavailable,
}

struct LedgerInner {
    backend: Backend,
    /// One seeding lock per account being seeded on this replica.
    seeding: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl LedgerInner {
    /// One reservation attempt against the backend.
    async fn try_reserve(
        self: &Arc<Self>,
        acct: &AccountId,
        budget: i64,
        amount: i64,
        seed: Seed,
        now_ms: i64,
    ) -> Outcome {
        match &self.backend {
            Backend::Memory(shards) => {
                let name = acct.name();
                let result = shards.with(&name, |shard| {
                    if !shard.map.contains_key(&name) {
                        shard.maybe_sweep(|_, a| a.expires_at.is_none_or(|e| e > now_ms));
                        shard.map.insert(
                            name.clone(),
                            Account {
                                expires_at: acct.expires_at,
                                ..Account::default()
                            },
                        );
                    }
                    let a = shard.map.get_mut(&name)?;
                    if !a.seeded {
                        match seed {
                            Seed::Check => return None,
                            Seed::Apply(m) => {
                                a.seeded = true;
                                a.spent = a.spent.saturating_add(m);
                            }
                            Seed::Skip => {}
                        }
                    }
                    if a.spent.saturating_add(a.reserved).saturating_add(amount) <= budget {
                        a.reserved += amount;
                        Some(Ok(()))
                    } else {
                        Some(Err((a.spent, a.reserved)))
                    }
                });
                match result {
                    None => Outcome::NeedSeed,
                    Some(Ok(())) => Outcome::Admitted(Reservation::tracked(self, acct, amount)),
                    Some(Err((spent, reserved))) => Outcome::Refused { spent, reserved },
                }
            }
            Backend::Redis(_) => {
                // In a task: if the caller is cancelled after Redis admitted,
                // the reservation is still made, then dropped, which releases it.
                let this = self.clone();
                let acct = acct.clone();
                let task = tokio::spawn(async move {
                    let Backend::Redis(r) = &this.backend else {
                        return Outcome::Unavailable;
                    };
                    let (expire_at, ttl) = match acct.expires_at {
                        Some(at) => (at, -1),
                        None => (-1, TOTAL_IDLE_MS),
                    };
                    let mut inv = r.reserve.prepare_invoke();
                    inv.key(r.conn.key("budget", &acct.name()))
                        .arg(budget)
                        .arg(amount)
                        .arg(seed.arg())
                        .arg(expire_at)
                        .arg(ttl);
                    match r.conn.eval::<(i64, i64, i64)>("budget_reserve", &inv).await {
                        None => Outcome::Unavailable,
                        Some((1, _, _)) => {
                            Outcome::Admitted(Reservation::tracked(&this, &acct, amount))
                        }
                        Some((-1, _, _)) => Outcome::NeedSeed,
                        Some((_, spent, reserved)) => Outcome::Refused { spent, reserved },
                    }
                });
                task.await.unwrap_or(Outcome::Unavailable)
            }
        }
    }

    /// Moves a reservation of `amount` to `actual` spend (`0`: released).
    /// Returns whether it was applied (always, in process; for Redis, when
    /// the script answered).
    async fn settle(&self, acct: &AccountId, amount: i64, actual: i64) -> bool {
        match &self.backend {
            Backend::Memory(shards) => {
                Self::settle_memory(shards, acct, amount, actual);
                true
            }
            Backend::Redis(r) => {
                let mut inv = r.settle.prepare_invoke();
                inv.key(r.conn.key("budget", &acct.name()))
                    .arg(amount)
                    .arg(actual);
                let applied: Option<i64> = r.conn.eval("budget_settle", &inv).await;
                applied.is_some()
            }
        }
    }

    /// [`settle`](Self::settle), and when Redis did not answer, again in
    /// the background with a growing pause (up to [`SETTLE_RETRIES`]
    /// attempts, about two minutes): a settle lost to a blip would leave the
    /// reservation held and the spend uncounted until the period's account
    /// expires. A settle whose answer (not whose request) was lost may be
    /// applied twice: the call is then charged twice, never not at all.
    async fn settle_retrying(self: Arc<Self>, acct: AccountId, amount: i64, actual: i64) {
        if self.settle(&acct, amount, actual).await {
            return;
        }
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(500);
            for _ in 1..SETTLE_RETRIES {
                tokio::time::sleep(pause).await;
                if self.settle(&acct, amount, actual).await {
                    return;
                }
                pause = (pause * 2).min(Duration::from_secs(30));
            }
            tracing::error!(
                key_id = acct.key_id.as_str(),
                reserved_micro_usd = amount,
                spent_micro_usd = actual,
                "budget: Redis did not take a settlement after {SETTLE_RETRIES} attempts; \
                 the reservation stays held until the period's account expires"
            );
        });
    }

    fn settle_memory(shards: &Shards<Account>, acct: &AccountId, amount: i64, actual: i64) {
        let name = acct.name();
        shards.with(&name, |shard| {
            if let Some(a) = shard.map.get_mut(&name) {
                a.reserved = (a.reserved - amount).max(0);
                a.spent = a.spent.saturating_add(actual);
            }
        });
    }

    /// The lock serialising the seeding of `name` on this replica.
    fn seeding_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = lock(&self.seeding);
        if let Some(l) = map.get(name).and_then(Weak::upgrade) {
            return l;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let l = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(name.to_owned(), Arc::downgrade(&l));
        l
    }
}

// ---------------------------------------------------------------------------
// Ledger

/// Budgets per key and period: reserve, then settle or release. Cheap to
/// clone (clones share the accounts). See the [module documentation](self)
/// for the model, the bound and the backends.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<LedgerInner>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.backend {
            Backend::Memory(_) => f.write_str("Ledger(memory)"),
            Backend::Redis(_) => f.write_str("Ledger(redis)"),
        }
    }
}

impl Ledger {
    fn new(backend: Backend) -> Self {
        Self {
            inner: Arc::new(LedgerInner {
                backend,
                seeding: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// An in-process ledger (one replica).
    pub fn memory() -> Self {
        Self::new(Backend::Memory(Shards::new()))
    }

    /// A ledger in Redis at `url`, under keys starting with `prefix`, with
    /// default [`RedisOptions`]. Never connects here; must be called inside
    /// a Tokio runtime.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, LimitError> {
        Self::redis_with(url, prefix, RedisOptions::default()).await
    }

    /// [`redis`](Self::redis) with explicit options (`timeout`, `cooldown`;
    /// the ledger uses the caller's `now_ms`, not `clock`).
    pub async fn redis_with(
        url: &str,
        prefix: &str,
        options: RedisOptions,
    ) -> Result<Self, LimitError> {
        Ok(Self::new(Backend::Redis(RedisLedger {
            conn: RedisConn::open(url, prefix, &options)?,
            reserve: Script::new(RESERVE_LUA),
            settle: Script::new(SETTLE_LUA),
        })))
    }

    /// Reserves `amount_usd` (the call's estimated cost) against `key`'s
    /// budget for the period containing `now_ms`.
    ///
    /// A key without a budget gets a reservation that does nothing. On the
    /// period's first use, `seed` is called for the spend the store already
    /// holds since the period's start (once per period on this replica,
    /// applied once across replicas); an error from it is logged and the
    /// call proceeds unseeded. Cancelling this future never leaks a
    /// reservation.
    pub async fn reserve<F, Fut, E>(
        &self,
        key: &KeyRecord,
        amount_usd: f64,
        now_ms: i64,
        seed: F,
    ) -> Result<Reservation, OverBudget>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<f64, E>>,
        E: fmt::Display,
    {
        let Some(budget_usd) = key.budget_usd else {
            return Ok(Reservation::untracked());
        };
        let (start, resets_at) = key.budget_period.window(now_ms);
        let acct = AccountId {
            key_id: key.id.clone(),
            start,
            expires_at: resets_at.map(|r| r.saturating_add(GRACE_MS)),
        };
        let budget = micros(budget_usd);
        let amount = micros(amount_usd).max(1);
        let inner = &self.inner;
        let mut outcome = inner
            .try_reserve(&acct, budget, amount, Seed::Check, now_ms)
            .await;
        if matches!(outcome, Outcome::NeedSeed) {
            let seeding = inner.seeding_lock(&acct.name());
            let _seeding = seeding.lock().await;
            // Another call on this replica may have seeded it meanwhile.
            outcome = inner
                .try_reserve(&acct, budget, amount, Seed::Check, now_ms)
                .await;
            if matches!(outcome, Outcome::NeedSeed) {
                let seed = match seed().await {
                    Ok(spent) => Seed::Apply(micros(spent)),
                    Err(e) => {
                        tracing::warn!(
                            key_id = key.id.as_str(),
                            error = %e,
                            "budget: the spend of this period could not be read from the store; \
                             the ledger counts only what it saw (seeding retried on the next call)"
                        );
                        Seed::Skip
                    }
                };
                outcome = inner.try_reserve(&acct, budget, amount, seed, now_ms).await;
            }
        }
        match outcome {
            Outcome::Admitted(r) => Ok(r),
            Outcome::Unavailable | Outcome::NeedSeed => Ok(Reservation::untracked()),
            Outcome::Refused { spent, reserved } => Err(OverBudget {
                budget_usd: usd(budget),
                spent_usd: usd(spent),
                reserved_usd: usd(reserved),
                resets_at: resets_at.filter(|_| key.budget_period != BudgetPeriod::Total),
            }),
        }
    }

    /// Settles `r` to the call's actual cost: `spent += actual`,
    /// `reserved -= reserved amount`. Cancellation-safe: once called, the
    /// settlement happens even if this future is dropped.
    pub async fn settle(&self, r: Reservation, actual_usd: f64) {
        r.finish(micros(actual_usd)).await;
    }

    /// Releases `r` (the call failed and costs nothing):
    /// `reserved -= reserved amount`. Cancellation-safe like
    /// [`settle`](Self::settle).
    pub async fn release(&self, r: Reservation) {
        r.finish(0).await;
    }

    /// `key`'s account for the period containing `now_ms`, if the ledger has
    /// one (`None`: no budget, not used yet this period, or Redis
    /// unavailable).
    pub async fn balance(&self, key: &KeyRecord, now_ms: i64) -> Option<Balance> {
        key.budget_usd?;
        let (start, _) = key.budget_period.window(now_ms);
        let name = format!("{}:{start}", key.id);
        let (spent, reserved) = match &self.inner.backend {
            Backend::Memory(shards) => shards.with(&name, |shard| {
                shard.map.get(&name).map(|a| (a.spent, a.reserved))
            })?,
            Backend::Redis(r) => {
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(r.conn.key("budget", &name))
                    .arg("spent")
                    .arg("reserved")
                    .arg("seeded");
                let (spent, reserved, seeded): (Option<i64>, Option<i64>, Option<i64>) =
                    r.conn.cmd("budget_balance", &cmd).await?;
                if spent.is_none() && reserved.is_none() && seeded.is_none() {
                    return None;
                }
                (spent.unwrap_or(0), reserved.unwrap_or(0))
            }
        };
        Some(Balance {
            spent_usd: usd(spent),
            reserved_usd: usd(reserved),
        })
    }
}

// ---------------------------------------------------------------------------
// Reservation

struct Held {
    ledger: Arc<LedgerInner>,
    acct: AccountId,
    amount: i64,
    /// Spend charged when dropped without settle or release (micro-USD).
    on_drop: i64,
}

/// An admitted call's reserved amount. Settle it ([`Ledger::settle`]) or
/// release it ([`Ledger::release`]); dropped without either, it releases
/// itself (in a spawned task for Redis).
#[must_use = "a reservation is released when dropped; settle it with the actual cost"]
pub struct Reservation {
    held: Option<Held>,
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.held {
            Some(h) => f
                .debug_struct("Reservation")
                .field("key_id", &h.acct.key_id)
                .field("period_start", &h.acct.start)
                .field("amount_usd", &usd(h.amount))
                .finish(),
            None => f.write_str("Reservation(untracked)"),
        }
    }
}

impl Reservation {
    /// What a drop without settle or release charges (default nothing):
    /// a call abandoned mid-way (timeout, client gone) has already cost at
    /// least its prompt upstream. Clamped to the reserved amount.
    pub fn charge_if_dropped(&mut self, usd: f64) {
        if let Some(h) = &mut self.held {
            h.on_drop = micros(usd).clamp(0, h.amount);
        }
    }

    fn tracked(ledger: &Arc<LedgerInner>, acct: &AccountId, amount: i64) -> Self {
        Self {
            held: Some(Held {
                ledger: ledger.clone(),
                acct: acct.clone(),
                amount,
                on_drop: 0,
            }),
        }
    }

    /// A reservation holding nothing (a key without a budget, or a ledger
    /// that was unavailable); settling it does nothing.
    pub fn untracked() -> Self {
        Self { held: None }
    }

    /// Whether it holds an amount in a ledger.
    pub fn is_tracked(&self) -> bool {
        self.held.is_some()
    }

    /// The amount reserved, USD (`0` when untracked).
    pub fn amount_usd(&self) -> f64 {
        self.held.as_ref().map_or(0.0, |h| usd(h.amount))
    }

    /// The start of the period it is charged to (unix ms).
    pub fn period_start_ms(&self) -> Option<i64> {
        self.held.as_ref().map(|h| h.acct.start)
    }

    /// Settles to `actual` micro-USD (0: release), from a task for Redis so
    /// that dropping the caller cannot lose it.
    async fn finish(mut self, actual: i64) {
        let Some(h) = self.held.take() else {
            return;
        };
        match &h.ledger.backend {
            Backend::Memory(shards) => {
                LedgerInner::settle_memory(shards, &h.acct, h.amount, actual);
            }
            Backend::Redis(_) => {
                let task = tokio::spawn(async move {
                    h.ledger.settle_retrying(h.acct, h.amount, actual).await;
                });
                let _ = task.await;
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Some(h) = self.held.take() else {
            return;
        };
        match &h.ledger.backend {
            Backend::Memory(shards) => {
                LedgerInner::settle_memory(shards, &h.acct, h.amount, h.on_drop);
            }
            Backend::Redis(_) => match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        h.ledger.settle_retrying(h.acct, h.amount, h.on_drop).await;
                    });
                }
                Err(_) => tracing::warn!(
                    key_id = h.acct.key_id.as_str(),
                    "budget: a reservation dropped outside a runtime stays reserved until \
                     the period's account expires"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::tenancy::types::DAY_MS;

    const NOW: i64 = 1_800_000_000_000;

    fn key(budget: Option<f64>, period: BudgetPeriod) -> KeyRecord {
        let mut k = test_key();
        k.budget_usd = budget;
        k.budget_period = period;
        k
    }

    fn test_key() -> KeyRecord {
        KeyRecord {
            id: "key_0123456789abcdef".into(),
            name: "test".into(),
            owner: None,
            team: None,
            metadata: serde_json::Map::new(),
            hash: [0; 32],
            prefix: "sk-llm-01234".into(),
            models: Vec::new(),
            rpm: None,
            tpm: None,
            max_concurrency: None,
            budget_usd: None,
            budget_period: BudgetPeriod::Total,
            expires_at: None,
            enabled: true,
            created_at: 0,
            updated_at: 0,
            revoked_at: None,
        }
    }

    async fn no_seed() -> Result<f64, String> {
        Ok(0.0)
    }

    #[tokio::test]
    async fn reserve_settle_release_are_exact() {
        let ledger = Ledger::memory();
        let k = key(Some(1.0), BudgetPeriod::Daily);
        let a = ledger.reserve(&k, 0.3, NOW, no_seed).await.unwrap();
        let b = ledger.reserve(&k, 0.3, NOW, no_seed).await.unwrap();
        let c = ledger.reserve(&k, 0.4, NOW, no_seed).await.unwrap();
        let over = ledger
            .reserve(&k, 0.000001, NOW, no_seed)
            .await
            .unwrap_err();
        assert_eq!(over.budget_usd, 1.0);
        assert_eq!(over.reserved_usd, 1.0);
        assert_eq!(over.resets_at, Some((NOW.div_euclid(DAY_MS) + 1) * DAY_MS));
        ledger.settle(a, 0.1).await;
        ledger.release(b).await;
        drop(c);
        let bal = ledger.balance(&k, NOW).await.unwrap();
        assert_eq!(
            bal,
            Balance {
                spent_usd: 0.1,
                reserved_usd: 0.0
            }
        );
        // 0.9 left: exactly.
        let d = ledger.reserve(&k, 0.9, NOW, no_seed).await.unwrap();
        assert!(ledger.reserve(&k, 0.000001, NOW, no_seed).await.is_err());
        ledger.settle(d, 0.9).await;
        let over = ledger.reserve(&k, 0.0, NOW, no_seed).await.unwrap_err();
        assert_eq!((over.spent_usd, over.reserved_usd), (1.0, 0.0));
    }

    #[tokio::test]
    async fn keys_without_budget_skip_the_ledger() {
        let ledger = Ledger::memory();
        let k = key(None, BudgetPeriod::Daily);
        let r = ledger
            .reserve(&k, 1e9, NOW, || async { Err::<f64, _>("not called") })
            .await
            .unwrap();
        assert!(!r.is_tracked());
        ledger.settle(r, 5.0).await;
        assert_eq!(ledger.balance(&k, NOW).await, None);
    }

    #[tokio::test]
    async fn seed_once_per_period_and_rollover() {
        let ledger = Ledger::memory();
        let k = key(Some(10.0), BudgetPeriod::Daily);
        let calls = Arc::new(AtomicUsize::new(0));
        let seed = |calls: Arc<AtomicUsize>| {
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(9.5)
            }
        };
        let r = ledger
            .reserve(&k, 0.5, NOW, seed(calls.clone()))
            .await
            .unwrap();
        assert!(ledger
            .reserve(&k, 0.01, NOW, seed(calls.clone()))
            .await
            .is_err());
        ledger.settle(r, 0.5).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Next day: a new account, seeded again.
        let tomorrow = NOW + DAY_MS;
        let r = ledger
            .reserve(&k, 0.5, tomorrow, seed(calls.clone()))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            r.period_start_ms(),
            Some(tomorrow.div_euclid(DAY_MS) * DAY_MS)
        );
        drop(r);
        let bal = ledger.balance(&k, tomorrow).await.unwrap();
        assert_eq!((bal.spent_usd, bal.reserved_usd), (9.5, 0.0));
    }

    #[tokio::test]
    async fn a_failed_seed_is_retried() {
        let ledger = Ledger::memory();
        let k = key(Some(1.0), BudgetPeriod::Monthly);
        let r = ledger
            .reserve(&k, 0.1, NOW, || async { Err::<f64, _>("store down") })
            .await
            .unwrap();
        ledger.release(r).await;
        let over = ledger
            .reserve(&k, 0.1, NOW, || async { Ok::<_, String>(0.95) })
            .await
            .unwrap_err();
        assert_eq!(over.spent_usd, 0.95);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reserves_never_pass_the_budget_and_seed_once() {
        let ledger = Ledger::memory();
        let k = Arc::new(key(Some(1.0), BudgetPeriod::Total));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..1_000)
            .map(|_| {
                let (ledger, k, calls) = (ledger.clone(), k.clone(), calls.clone());
                tokio::spawn(async move {
                    let seed = || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok::<_, String>(0.1)
                    };
                    ledger.reserve(&k, 0.007, NOW, seed).await
                })
            })
            .collect();
        let mut admitted = Vec::new();
        for t in tasks {
            if let Ok(r) = t.await.unwrap() {
                admitted.push(r);
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // $0.9 left / $0.007 = 128.57…
        assert_eq!(admitted.len(), 128);
        for r in admitted {
            ledger.settle(r, 0.001).await;
        }
        let bal = ledger.balance(&k, NOW).await.unwrap();
        assert_eq!((bal.spent_usd, bal.reserved_usd), (0.228, 0.0));
    }

    #[tokio::test]
    async fn accounts_of_ended_periods_are_dropped() {
        let ledger = Ledger::memory();
        let Backend::Memory(shards) = &ledger.inner.backend else {
            unreachable!()
        };
        for i in 0..5_000 {
            let mut k = key(Some(1.0), BudgetPeriod::Daily);
            k.id = format!("key_{i}");
            drop(ledger.reserve(&k, 0.1, NOW, no_seed).await.unwrap());
        }
        assert!(shards.len() >= 5_000);
        // Two days later, the old accounts are past their grace: new ones
        // sweep them out.
        for i in 0..5_000 {
            let mut k = key(Some(1.0), BudgetPeriod::Daily);
            k.id = format!("new_{i}");
            drop(
                ledger
                    .reserve(&k, 0.1, NOW + 2 * DAY_MS, no_seed)
                    .await
                    .unwrap(),
            );
        }
        assert!(shards.len() <= 5_000 + 32 * 64, "{}", shards.len());
    }

    #[test]
    fn micros_round_and_clamp() {
        assert_eq!(micros(0.1 + 0.2), 300_000);
        assert_eq!(micros(-1.0), 0);
        assert_eq!(micros(f64::NAN), 0);
        assert_eq!(micros(f64::INFINITY), MAX_MICROS);
    }
}
