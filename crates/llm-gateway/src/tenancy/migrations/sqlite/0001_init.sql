-- Virtual keys, the raw spend log and its daily aggregates.
CREATE TABLE IF NOT EXISTS llm_keys (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    owner TEXT,
    team TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    hash BLOB NOT NULL,
    prefix TEXT NOT NULL,
    models TEXT NOT NULL DEFAULT '[]',
    rpm INTEGER,
    tpm INTEGER,
    max_concurrency INTEGER,
    budget_usd REAL,
    budget_period TEXT NOT NULL DEFAULT 'total',
    expires_at INTEGER,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS llm_keys_hash ON llm_keys (hash);

CREATE TABLE IF NOT EXISTS llm_spend_log (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    key_id TEXT,
    key_name TEXT,
    team TEXT,
    model TEXT NOT NULL,
    provider TEXT,
    api TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    tokens_cached INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    cache_hit BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS llm_spend_log_ts ON llm_spend_log (ts_ms);

-- key_id '' stands for requests without a virtual key.
CREATE TABLE IF NOT EXISTS llm_spend_daily (
    day INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    PRIMARY KEY (day, key_id, model)
);
CREATE INDEX IF NOT EXISTS llm_spend_daily_key ON llm_spend_daily (key_id, day);
