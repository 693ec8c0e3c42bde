-- API keys: only a SHA-256 of each key is stored; the key itself is shown once at creation.
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
