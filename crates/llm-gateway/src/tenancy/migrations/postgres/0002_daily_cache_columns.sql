-- Additive: cached input tokens and response-cache hits per day, key and
-- model. Defaults keep the previous version's inserts valid.
ALTER TABLE llm_spend_daily ADD COLUMN IF NOT EXISTS tokens_cached BIGINT NOT NULL DEFAULT 0;
ALTER TABLE llm_spend_daily ADD COLUMN IF NOT EXISTS cache_hits BIGINT NOT NULL DEFAULT 0;
