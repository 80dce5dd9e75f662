-- Additive: cached input tokens and response-cache hits per day, key and
-- model. Defaults keep the previous version's inserts valid.
ALTER TABLE llm_spend_daily ADD COLUMN tokens_cached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llm_spend_daily ADD COLUMN cache_hits INTEGER NOT NULL DEFAULT 0;
