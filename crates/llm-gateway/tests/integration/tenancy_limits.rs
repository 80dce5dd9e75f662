//! Rate limits, concurrency slots and budget ledgers against a real
//! `redis-server`: `LLM_TEST_REDIS_URL` (what `.ci/run` starts on loopback)
//! or a server started here. Without either a test prints `SKIPPED …` and
//! passes, except in CI (`CI` set, or `LLM_TEST_REDIS_URL` set), where a
//! missing Redis fails it. Time in the limiters is a manual clock: window
//! tests never sleep.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use llm_gateway::tenancy::budgets::{Balance, Ledger};
use llm_gateway::tenancy::limits::{
    backend_errors_total, prometheus_text, ConcurrencyGuard, LimitKind, Limiter, ManualClock,
    RedisOptions, WINDOW,
};
use llm_gateway::tenancy::types::{BudgetPeriod, KeyRecord, DAY_MS};

const ENV: &str = "LLM_TEST_REDIS_URL";
/// Bound on every wait (server start, a spawned release landing).
const PATIENCE: Duration = Duration::from_secs(20);
/// A fixed "now" for the manual clocks (2027-01-15).
const NOW: i64 = 1_800_000_000_000;

/// Real unix ms: Redis expires budget accounts at absolute times.
fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap())
        .unwrap()
}

// ---------------------------------------------------------------------------
// A Redis to test against

fn redis_required() -> bool {
    let ci = std::env::var("CI")
        .map(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
        .unwrap_or(false);
    ci || std::env::var_os(ENV).is_some_and(|v| !v.is_empty())
}

struct TestRedis {
    url: String,
    _server: Option<Server>,
}

/// `redis-server` started by a test; killed when dropped.
struct Server(Child);

impl Server {
    /// Sends `sig` (`-STOP`, `-CONT`) to the server.
    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} failed");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok() && matches!(s.read(&mut buf), Ok(n) if n > 0 && buf[0] == b'+')
}

async fn redis(test: &str) -> Option<TestRedis> {
    if let Some(url) = std::env::var(ENV).ok().filter(|u| !u.is_empty()) {
        return Some(TestRedis { url, _server: None });
    }
    redis_own(test).await
}

/// A `redis-server` of this test's own (to freeze and resume).
async fn redis_own(test: &str) -> Option<TestRedis> {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("redis-server").is_file()));
    if !on_path {
        assert!(
            !redis_required(),
            "{test}: no Redis (`redis-server` not on PATH, {ENV} unset); in CI these tests must run"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: no redis-server and no {ENV}"
        );
        return None;
    }
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server(child);
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if answers(port) {
                return Some(TestRedis {
                    url: format!("redis://127.0.0.1:{port}/0"),
                    _server: Some(server),
                });
            }
            if let Ok(Some(_)) = server.0.try_wait() {
                break; // the port was taken: try another
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("{test}: could not start redis-server");
}

/// A key prefix no other test or run uses.
fn prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("llmtest:{test}:{}:{nanos}:", std::process::id())
}

fn options(clock: &Arc<ManualClock>) -> RedisOptions {
    RedisOptions {
        // Generous: CI machines are slow; outages have their own test.
        timeout: Duration::from_secs(2),
        clock: Some(clock.clone()),
        ..RedisOptions::default()
    }
}

async fn limiter(url: &str, prefix: &str, clock: &Arc<ManualClock>) -> Limiter {
    Limiter::redis_with(url, prefix, options(clock))
        .await
        .unwrap()
}

async fn ledger(url: &str, prefix: &str) -> Ledger {
    let o = RedisOptions {
        timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    };
    Ledger::redis_with(url, prefix, o).await.unwrap()
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Polls `check` until it is true, failing after [`PATIENCE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls until a slot is free (a dropped guard's removal is spawned).
async fn acquire_when_free(l: &Limiter, key: &str, max: u32) -> ConcurrencyGuard {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(g) = l.acquire(key, max).await {
            return g;
        }
        assert!(Instant::now() < deadline, "no slot of {key} was freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn key(id: &str, budget: f64, period: BudgetPeriod) -> KeyRecord {
    KeyRecord {
        id: id.into(),
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
        budget_usd: Some(budget),
        budget_period: period,
        expires_at: None,
        enabled: true,
        created_at: 0,
        updated_at: 0,
        revoked_at: None,
    }
}

/// A seed callback returning `usd` and counting its calls.
fn seed(
    calls: &Arc<AtomicUsize>,
    usd: f64,
) -> impl FnOnce() -> futures::future::Ready<Result<f64, String>> {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        futures::future::ready(Ok(usd))
    }
}

// ---------------------------------------------------------------------------
// Rates

#[tokio::test]
async fn rpm_admits_up_to_the_limit_then_refuses_with_retry_after() {
    let Some(r) = redis("rpm_limit").await else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let l = limiter(&r.url, &prefix("rpm_limit"), &clock).await;
    for left in (0..5u32).rev() {
        let d = l.check_request("key_a", 5).await.unwrap();
        assert_eq!((d.limit, d.remaining, d.retry_after_secs), (5, left, None));
    }
    let refused = l.check_request("key_a", 5).await.unwrap_err();
    assert_eq!(refused.kind, LimitKind::Requests);
    assert_eq!(refused.decision.remaining, 0);
    // One request's worth comes back every 12 s.
    assert_eq!(refused.decision.retry_after_secs, Some(12));
    assert_eq!(refused.decision.reset_ms, 60_000);
    // Refusals are not counted.
    clock.advance(Duration::from_secs(11));
    assert_eq!(
        l.check_request("key_a", 5)
            .await
            .unwrap_err()
            .decision
            .retry_after_secs,
        Some(1)
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(l.check_request("key_a", 5).await.unwrap().remaining, 0);
    // Another key has its own limit.
    assert_eq!(l.check_request("key_b", 5).await.unwrap().remaining, 4);
    // A full minute later, the whole limit again.
    clock.advance(WINDOW);
    assert_eq!(l.check_request("key_a", 5).await.unwrap().remaining, 4);

    // TLS to a server that speaks plain TCP: the handshake fails and the
    // limiter fails open (rustls is set up without panicking).
    let tls_url = r.url.replacen("redis://", "rediss://", 1);
    let o = RedisOptions {
        timeout: Duration::from_millis(300),
        ..options(&clock)
    };
    let tls = Limiter::redis_with(&tls_url, &prefix("rpm_limit_tls"), o)
        .await
        .unwrap();
    assert!(tls.check_request("key_tls", 5).await.is_ok());
}

#[tokio::test]
async fn two_replicas_enforce_one_limit_together() {
    let Some(r) = redis("two_replicas").await else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let p = prefix("two_replicas");
    let a = limiter(&r.url, &p, &clock).await;
    let b = limiter(&r.url, &p, &clock).await;
    let calls = (0..100).map(|i| {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { l.check_request("key_shared", 20).await.is_ok() }
    });
    let admitted = join_all(calls).await.into_iter().filter(|ok| *ok).count();
    assert_eq!(admitted, 20);
    // Both see the same state.
    assert!(a.check_request("key_shared", 20).await.is_err());
    assert!(b.check_request("key_shared", 20).await.is_err());
    clock.advance(Duration::from_secs(3));
    assert!(b.check_request("key_shared", 20).await.is_ok());
    assert!(a.check_request("key_shared", 20).await.is_err());
}

#[tokio::test]
async fn replicas_on_the_redis_server_clock_share_the_limit() {
    let Some(r) = redis("server_clock").await else {
        return;
    };
    let p = prefix("server_clock");
    let o = || RedisOptions {
        timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    };
    let a = Limiter::redis_with(&r.url, &p, o()).await.unwrap();
    let b = Limiter::redis_with(&r.url, &p, o()).await.unwrap();
    // 1 RPM: the next request is a minute away.
    let calls = (0..20).map(|i| {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { l.check_request("key_one", 1).await }
    });
    let results = join_all(calls).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    let retry = refused.decision.retry_after_secs.unwrap();
    assert!((1..=60).contains(&retry), "retry after {retry}");
}

#[tokio::test]
async fn tpm_admits_what_fits_and_settles_the_difference() {
    let Some(r) = redis("tpm").await else { return };
    let clock = ManualClock::new(NOW);
    let p = prefix("tpm");
    let a = limiter(&r.url, &p, &clock).await;
    let b = limiter(&r.url, &p, &clock).await;
    assert_eq!(
        a.check_tokens("key_t", 1_000, 700).await.unwrap().remaining,
        300
    );
    let refused = b.check_tokens("key_t", 1_000, 400).await.unwrap_err();
    assert_eq!(refused.kind, LimitKind::Tokens);
    assert_eq!(refused.decision.remaining, 300);
    // 100 tokens drain in 6 s.
    assert_eq!(refused.decision.retry_after_secs, Some(6));
    // The call used 300 tokens fewer than estimated.
    a.add_tokens("key_t", 1_000, -300).await;
    assert_eq!(
        b.check_tokens("key_t", 1_000, 400).await.unwrap().remaining,
        200
    );
    // A call bigger than the limit passes only when nothing is in use.
    assert!(b.check_tokens("key_t", 1_000, 5_000).await.is_err());
    clock.advance(WINDOW);
    let d = b.check_tokens("key_t", 1_000, 5_000).await.unwrap();
    assert_eq!((d.remaining, d.reset_ms), (0, 300_000));
}

// ---------------------------------------------------------------------------
// Concurrency

#[tokio::test]
async fn concurrency_is_released_on_drop_and_a_crashed_holder_expires() {
    let Some(r) = redis("concurrency").await else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let p = prefix("concurrency");
    let a = limiter(&r.url, &p, &clock).await;
    let b = limiter(&r.url, &p, &clock).await;
    let first = a.acquire("key_c", 2).await.unwrap();
    assert_eq!(first.decision().remaining, 1);
    let second = a.acquire("key_c", 2).await.unwrap();
    let refused = b.acquire("key_c", 2).await.unwrap_err();
    assert_eq!(refused.kind, LimitKind::Concurrency);
    assert_eq!(refused.decision.retry_after_secs, Some(1));

    // Dropping a guard frees its slot (a spawned removal: poll for it).
    drop(first);
    let third = acquire_when_free(&b, "key_c", 2).await;
    drop(third);

    // The holder of `second` (taken at NOW, lease 30 s) crashes: its guard
    // is never dropped and its lease never renewed.
    std::mem::forget(second);
    clock.advance(Duration::from_secs(29));
    let live = acquire_when_free(&b, "key_c", 2).await;
    assert_eq!(live.decision().remaining, 0);
    assert!(b.acquire("key_c", 2).await.is_err());
    // Its lease has run out: the slot is taken over.
    clock.advance(Duration::from_secs(2));
    let fourth = b.acquire("key_c", 2).await.unwrap();
    assert_eq!(fourth.decision().remaining, 0);
    assert!(a.acquire("key_c", 2).await.is_err());
    drop((live, fourth));

    // Every slot released: the set is gone from Redis.
    let mut raw = raw(&r.url).await;
    let conc = format!("{p}conc:key_c");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let n: i64 = redis::cmd("ZCARD")
            .arg(&conc)
            .query_async(&mut raw)
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} slots never removed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_running_request_keeps_its_slot_by_renewing_the_lease() {
    let Some(r) = redis("renewal").await else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let p = prefix("renewal");
    let o = RedisOptions {
        lease: Duration::from_secs(3),
        ..options(&clock)
    };
    let a = Limiter::redis_with(&r.url, &p, o.clone()).await.unwrap();
    let b = Limiter::redis_with(&r.url, &p, o).await.unwrap();
    let held = a.acquire("key_r", 1).await.unwrap();
    // The holder renews every second (a third of the lease), from the time
    // it reads then: wait for a renewal to land.
    clock.advance(Duration::from_secs(2));
    let mut raw = raw(&r.url).await;
    let conc = format!("{p}conc:key_r");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let slots: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(&conc)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(slots.len(), 1);
        if slots[0].1 == NOW + 2_000 + 3_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lease was never renewed: {slots:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Past the first lease, the slot is still held.
    clock.advance(Duration::from_secs(2));
    assert!(b.acquire("key_r", 1).await.is_err());
    drop(held);
    drop(acquire_when_free(&b, "key_r", 1).await);
}

// ---------------------------------------------------------------------------
// Budgets

#[tokio::test]
async fn a_thousand_concurrent_reserves_never_pass_the_budget() {
    let Some(r) = redis("budget_race").await else {
        return;
    };
    let now = real_now();
    let l = ledger(&r.url, &prefix("budget_race")).await;
    let k = Arc::new(key("key_budget", 1.0, BudgetPeriod::Monthly));
    let calls = Arc::new(AtomicUsize::new(0));
    // $0.25 already spent this month; $0.003 per call: 250 fit exactly.
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let (l, k, s) = (l.clone(), k.clone(), seed(&calls, 0.25));
            tokio::spawn(async move { l.reserve(&k, 0.003, now, s).await })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(res) => admitted.push(res),
            Err(over) => {
                assert_eq!(over.budget_usd, 1.0);
                assert!(over.spent_usd + over.reserved_usd + 0.003 > 1.0, "{over:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "seeded once");
    assert_eq!((admitted.len(), refused), (250, 750));
    assert!(admitted.iter().all(|r| r.is_tracked()));
    assert_eq!(
        l.balance(&k, now).await.unwrap(),
        Balance {
            spent_usd: 0.25,
            reserved_usd: 0.75
        }
    );
    // Half cost less than reserved, half failed.
    for (i, res) in admitted.into_iter().enumerate() {
        if i % 2 == 0 {
            l.settle(res, 0.002).await;
        } else {
            l.release(res).await;
        }
    }
    assert_eq!(
        l.balance(&k, now).await.unwrap(),
        Balance {
            spent_usd: 0.5,
            reserved_usd: 0.0
        }
    );
    // $0.5 left, exactly.
    let last = l.reserve(&k, 0.5, now, seed(&calls, 9.0)).await.unwrap();
    assert!(l
        .reserve(&k, 0.000_001, now, seed(&calls, 9.0))
        .await
        .is_err());
    l.settle(last, 0.5).await;
    let over = l
        .reserve(&k, 0.0, now, seed(&calls, 9.0))
        .await
        .unwrap_err();
    assert_eq!((over.spent_usd, over.reserved_usd), (1.0, 0.0));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn two_ledgers_share_one_budget_and_apply_one_seed() {
    let Some(r) = redis("budget_replicas").await else {
        return;
    };
    let now = real_now();
    let p = prefix("budget_replicas");
    let (a, b) = (ledger(&r.url, &p).await, ledger(&r.url, &p).await);
    let k = Arc::new(key("key_shared", 2.0, BudgetPeriod::Daily));
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let l = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (k, s) = (k.clone(), seed(&calls, 1.5));
            tokio::spawn(async move { l.reserve(&k, 0.01, now, s).await })
        })
        .collect();
    let mut admitted = Vec::new();
    for t in tasks {
        if let Ok(res) = t.await.unwrap() {
            admitted.push(res);
        }
    }
    // The seed is read at most once per replica and applied once.
    assert!((1..=2).contains(&calls.load(Ordering::SeqCst)));
    assert_eq!(admitted.len(), 50);
    for res in admitted {
        b.settle(res, 0.01).await;
    }
    let bal = a.balance(&k, now).await.unwrap();
    assert_eq!((bal.spent_usd, bal.reserved_usd), (2.0, 0.0));
}

#[tokio::test]
async fn a_dropped_reservation_is_released() {
    let Some(r) = redis("budget_drop").await else {
        return;
    };
    let now = real_now();
    let l = ledger(&r.url, &prefix("budget_drop")).await;
    let k = key("key_drop", 1.0, BudgetPeriod::Weekly);
    let calls = Arc::new(AtomicUsize::new(0));
    let res = l.reserve(&k, 0.8, now, seed(&calls, 0.0)).await.unwrap();
    assert!(l.reserve(&k, 0.8, now, seed(&calls, 0.0)).await.is_err());
    drop(res);
    eventually("the dropped reservation is released", || {
        let (l, k) = (&l, &k);
        async move { l.balance(k, now).await.unwrap().reserved_usd == 0.0 }
    })
    .await;
    let res = l.reserve(&k, 0.8, now, seed(&calls, 0.0)).await.unwrap();
    // A reservation moved into a task that is aborted is released too.
    let task = tokio::spawn(async move {
        let _held = res;
        std::future::pending::<()>().await;
    });
    task.abort();
    let _ = task.await;
    eventually("the aborted task's reservation is released", || {
        let (l, k) = (&l, &k);
        async move { l.balance(k, now).await.unwrap().reserved_usd == 0.0 }
    })
    .await;
    assert_eq!(l.balance(&k, now).await.unwrap().spent_usd, 0.0);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn each_period_is_seeded_once_and_expires_after_it_ends() {
    let Some(r) = redis("budget_periods").await else {
        return;
    };
    let now = real_now();
    let p = prefix("budget_periods");
    let l = ledger(&r.url, &p).await;
    let k = key("key_daily", 1.0, BudgetPeriod::Daily);
    let calls = Arc::new(AtomicUsize::new(0));
    let today = l.reserve(&k, 0.5, now, seed(&calls, 0.4)).await.unwrap();
    let over = l
        .reserve(&k, 0.5, now, seed(&calls, 0.4))
        .await
        .unwrap_err();
    let reset = (now.div_euclid(DAY_MS) + 1) * DAY_MS;
    assert_eq!(over.resets_at, Some(reset));
    assert_eq!((over.spent_usd, over.reserved_usd), (0.4, 0.5));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The next day is a new period: seeded again, its own account.
    let tomorrow = reset + 1_000;
    let next = l
        .reserve(&k, 0.9, tomorrow, seed(&calls, 0.1))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(next.period_start_ms(), Some(reset));
    // A call admitted yesterday settles into yesterday's account.
    l.settle(today, 0.5).await;
    assert_eq!(
        l.balance(&k, now).await.unwrap(),
        Balance {
            spent_usd: 0.9,
            reserved_usd: 0.0
        }
    );
    assert_eq!(
        l.balance(&k, tomorrow).await.unwrap(),
        Balance {
            spent_usd: 0.1,
            reserved_usd: 0.9
        }
    );
    l.release(next).await;

    // Accounts expire one day after their period ends.
    let mut raw = raw(&r.url).await;
    let start = now.div_euclid(DAY_MS) * DAY_MS;
    let expires: i64 = redis::cmd("PEXPIRETIME")
        .arg(format!("{p}budget:key_daily:{start}"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(expires, reset + DAY_MS);
}

// ---------------------------------------------------------------------------
// Outages

#[tokio::test]
async fn unreachable_redis_fails_open_and_is_counted() {
    // Nothing listens on this port: connections are refused.
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let o = || RedisOptions {
        timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    };
    let limiter = Limiter::redis_with(&url, "llmtest:down:", o())
        .await
        .unwrap();
    let ledger = Ledger::redis_with(&url, "llmtest:down:", o())
        .await
        .unwrap();
    let before = backend_errors_total();
    // TLS URLs are accepted and fail open the same way.
    let tls = url.replacen("redis://", "rediss://", 1);
    let tls = Limiter::redis_with(&tls, "llmtest:down:", o())
        .await
        .unwrap();
    assert!(tls.check_request("key_x", 1).await.is_ok());
    for _ in 0..3 {
        let d = limiter.check_request("key_x", 1).await.unwrap();
        assert_eq!((d.limit, d.remaining), (1, 1));
        limiter.check_tokens("key_x", 10, 1_000).await.unwrap();
        limiter.add_tokens("key_x", 10, 5).await;
    }
    let slots = vec![
        limiter.acquire("key_x", 1).await.unwrap(),
        limiter.acquire("key_x", 1).await.unwrap(),
    ];
    let k = key("key_x", 0.01, BudgetPeriod::Daily);
    let calls = Arc::new(AtomicUsize::new(0));
    let res = ledger
        .reserve(&k, 5.0, NOW, seed(&calls, 0.0))
        .await
        .unwrap();
    assert!(!res.is_tracked());
    ledger.settle(res, 5.0).await;
    drop(slots);
    // 3 × 3 rate calls, 2 acquires, 1 reserve (a release of an untracked
    // reservation or slot does not touch Redis).
    let counted = backend_errors_total() - before;
    assert!(counted >= 13, "{counted} backend errors counted");
    assert_eq!(ledger.balance(&k, NOW).await, None);
    // And on /metrics.
    let text = prometheus_text();
    let exported: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("llm_gateway_limit_backend_errors_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(exported >= before + 13, "{text}");
}

#[tokio::test]
async fn a_frozen_redis_times_out_open_and_limits_resume_when_it_returns() {
    let Some(r) = redis_own("frozen").await else {
        return;
    };
    let clock = ManualClock::new(NOW);
    let o = RedisOptions {
        timeout: Duration::from_millis(200),
        cooldown: Duration::from_millis(50),
        ..options(&clock)
    };
    let l = Limiter::redis_with(&r.url, &prefix("frozen"), o)
        .await
        .unwrap();
    assert!(l.check_request("key_f", 1).await.is_ok());
    assert!(l.check_request("key_f", 1).await.is_err());

    // SIGSTOP: the connection stays open, nothing answers.
    let server = r._server.as_ref().unwrap();
    server.signal("-STOP");
    let before = backend_errors_total();
    for _ in 0..3 {
        assert!(l.check_request("key_f", 1).await.is_ok(), "fails open");
    }
    assert!(backend_errors_total() >= before + 3);

    // Back: the limit is enforced again (state kept across the freeze).
    server.signal("-CONT");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let errors = backend_errors_total();
        let refused = l.check_request("key_f", 1).await.is_err();
        if refused && backend_errors_total() == errors {
            break;
        }
        assert!(Instant::now() < deadline, "limits never resumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn invalid_urls_are_refused_without_their_credentials() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let err = Limiter::redis("redis://:hunter2@[::1", "p:")
            .await
            .unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("invalid Redis URL"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let err = Ledger::redis("nonsense hunter2", "p:").await.unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        // A valid URL with a password: never in Debug output.
        let l = Limiter::redis("redis://user:hunter2@127.0.0.1:1/0?password=hunter3", "p:")
            .await
            .unwrap();
        assert_eq!(format!("{l:?}"), "Limiter(redis redis://***@127.0.0.1:1/0)");
    });
}
