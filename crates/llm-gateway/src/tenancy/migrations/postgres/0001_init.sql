-- Virtual keys, the raw spend log and its daily aggregates.
CREATE TABLE IF NOT EXISTS llm_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT,
    team TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    hash BYTEA NOT NULL,
    prefix TEXT NOT NULL,
    models TEXT NOT NULL DEFAULT '[]',
    rpm BIGINT,
    tpm BIGINT,
    max_concurrency BIGINT,
    budget_usd DOUBLE PRECISION,
    budget_period TEXT NOT NULL DEFAULT 'total',
    expires_at BIGINT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS llm_keys_hash ON llm_keys (hash);

CREATE TABLE IF NOT EXISTS llm_spend_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    key_id TEXT,
    key_name TEXT,
    team TEXT,
    model TEXT NOT NULL,
    provider TEXT,
    api TEXT NOT NULL,
    tokens_in BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL,
    tokens_cached BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    latency_ms BIGINT NOT NULL,
    status INTEGER NOT NULL,
    cache_hit BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS llm_spend_log_ts ON llm_spend_log (ts_ms);

-- key_id '' stands for requests without a virtual key.
CREATE TABLE IF NOT EXISTS llm_spend_daily (
    day BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    tokens_in BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (day, key_id, model)
);
CREATE INDEX IF NOT EXISTS llm_spend_daily_key ON llm_spend_daily (key_id, day);
