-- Reviews of chunks the document scanner flags (instructions aimed at an AI): an approval lets
-- one exact content of a chunk back into answers; a changed chunk needs a new review.
CREATE TABLE IF NOT EXISTS chunk_approvals (
    chunk_id      TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    approved_by   TEXT NOT NULL,
    note          TEXT NOT NULL,
    approved_at   INTEGER NOT NULL,
    PRIMARY KEY (chunk_id, content_hash)
)
