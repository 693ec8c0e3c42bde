-- Governance: approved answers (versioned), conversations with their turns, escalations.

-- Every edit of an approved answer is a new row; the current version is the highest.
-- (id, version) as the primary key makes two edits from the same base version collide:
-- the second insert fails instead of silently overwriting the first.
CREATE TABLE IF NOT EXISTS approved_answers (
    id         TEXT NOT NULL,
    version    INTEGER NOT NULL,
    question   TEXT NOT NULL,
    answer     TEXT NOT NULL,
    intent     TEXT,
    cites      TEXT NOT NULL,
    status     TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (id, version)
);

CREATE TABLE IF NOT EXISTS conversations (
    id           TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL,
    user_turns   INTEGER NOT NULL,
    status       TEXT NOT NULL,
    closed_reason TEXT,
    created_at   INTEGER NOT NULL,
    last_at      INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS conversation_turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq        INTEGER NOT NULL,
    role       TEXT NOT NULL,
    text       TEXT NOT NULL,
    trace_id   TEXT,
    delivered  INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE IF NOT EXISTS escalations (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT,
    tenant          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    status          TEXT NOT NULL,
    question        TEXT NOT NULL,
    transcript      TEXT NOT NULL,
    trace_ids       TEXT NOT NULL,
    assignee        TEXT,
    created_at      INTEGER NOT NULL,
    claimed_at      INTEGER,
    first_reply_at  INTEGER,
    resolved_at     INTEGER
);

CREATE INDEX IF NOT EXISTS escalations_status ON escalations(status, created_at)
