-- Stored Responses (`POST /v1/responses` with `store` not false): the conversation so far as
-- chat messages, the reply included, so a later request can continue it with
-- `previous_response_id`; and the Response object as it was returned, for `GET`. Per tenant;
-- rows older than 30 days are removed when new ones are written.
CREATE TABLE IF NOT EXISTS responses (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    messages    TEXT NOT NULL,
    response    TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS responses_created ON responses(created_at);
