-- Answer snapshots (response versioning) and corrections.

-- One row per (normalised question, versions) key: the answer as first given under those
-- versions, returned byte for byte afterwards in deterministic mode.
CREATE TABLE IF NOT EXISTS answer_snapshots (
    id            TEXT PRIMARY KEY,
    snapshot_key  TEXT NOT NULL UNIQUE,
    question      TEXT NOT NULL,
    versions      TEXT NOT NULL,
    answer        TEXT NOT NULL,
    trace_id      TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS answer_snapshots_question ON answer_snapshots(question, created_at);

CREATE TABLE IF NOT EXISTS corrections (
    id            TEXT PRIMARY KEY,
    trace_id      TEXT NOT NULL,
    question      TEXT NOT NULL,
    wrong_answer  TEXT NOT NULL,
    correction    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    approved_id   TEXT,
    author        TEXT NOT NULL,
    created_at    INTEGER NOT NULL
)
