//! Connection pools per thread.
//!
//! A provider's HTTP client ([`http::HttpClient`](crate::http::HttpClient),
//! feature `http`) keeps one connection pool shared by every thread, unless
//! the calling thread asked for pools of its own with
//! [`thread_local_connection_pools`]. A thread that runs a single-threaded
//! runtime of its own (as each worker of `llm serve` does) should: an
//! upstream connection is driven by a task of the runtime that opened it,
//! so a connection from a shared pool, opened by another runtime, wakes
//! that runtime's thread for every request sent on it and back again for
//! the answer. With pools per thread, a provider call never leaves its
//! thread (other connections, such as Redis's, are still shared).

use std::cell::Cell;

thread_local! {
    static LOCAL: Cell<bool> = const { Cell::new(false) };
}

/// Gives this thread connection pools of its own from now on (one per
/// provider client, opened on first use). Idempotent.
pub fn thread_local_connection_pools() {
    LOCAL.with(|l| l.set(true));
}

/// Whether this thread asked for pools of its own.
pub fn uses_thread_local_pools() -> bool {
    LOCAL.with(Cell::get)
}
