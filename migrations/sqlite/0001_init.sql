-- Documents, chunks and corpus versions: the source of truth for the knowledge base.
-- The BM25 index and the in-memory vectors are derived from these tables.
CREATE TABLE IF NOT EXISTS documents (
    id           TEXT PRIMARY KEY,
    path         TEXT NOT NULL,
    title        TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_path ON documents(path);

CREATE TABLE IF NOT EXISTS chunks (
    id         TEXT PRIMARY KEY,
    doc_id     TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal    INTEGER NOT NULL,
    title      TEXT NOT NULL,
    heading    TEXT NOT NULL,
    body       TEXT NOT NULL,
    start_char INTEGER NOT NULL,
    end_char   INTEGER NOT NULL,
    embedding  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);

CREATE TABLE IF NOT EXISTS corpus_versions (
    version    TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    documents  INTEGER NOT NULL,
    chunks     INTEGER NOT NULL,
    added      INTEGER NOT NULL,
    changed    INTEGER NOT NULL,
    removed    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per request; spans in their own table, one row per pipeline stage.
CREATE TABLE IF NOT EXISTS traces (
    id          TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    route       TEXT NOT NULL,
    status      TEXT NOT NULL,
    duration_us INTEGER NOT NULL,
    input       TEXT NOT NULL,
    output      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spans (
    trace_id    TEXT NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    start_us    INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    attrs       TEXT NOT NULL,
    PRIMARY KEY (trace_id, seq)
);
