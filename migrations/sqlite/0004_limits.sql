-- Cost controls: per-key limits, the reservation ledger, and usage summed per key and tenant.
-- A NULL limit falls back to the configured default (and is unlimited without one).
CREATE TABLE IF NOT EXISTS key_limits (
    key_id               TEXT PRIMARY KEY,
    rpm                  INTEGER,
    tpm                  INTEGER,
    daily_tokens         INTEGER,
    monthly_tokens       INTEGER,
    daily_budget_nanos   INTEGER,
    monthly_budget_nanos INTEGER,
    max_tokens           INTEGER
);
-- One row per reserved request in the last minute (requests and tokens per minute, sliding).
CREATE TABLE IF NOT EXISTS rate_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL,
    at_ms  INTEGER NOT NULL,
    tokens INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_events_key_at ON rate_events (key_id, at_ms);
-- Tokens and nano-dollars reserved or spent per key per UTC day (`d:YYYY-MM-DD`) and month (`m:YYYY-MM`).
CREATE TABLE IF NOT EXISTS budget_windows (
    key_id TEXT NOT NULL,
    period TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    nanos  INTEGER NOT NULL,
    PRIMARY KEY (key_id, period)
);
-- Reconciled usage per tenant, key, model and UTC day (key `-` for calls without a key).
CREATE TABLE IF NOT EXISTS usage_totals (
    tenant            TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    day               TEXT NOT NULL,
    requests          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    cost_nanos        INTEGER NOT NULL,
    estimated         INTEGER NOT NULL,
    cache_hits        INTEGER NOT NULL,
    PRIMARY KEY (tenant, key_id, model, day)
);
