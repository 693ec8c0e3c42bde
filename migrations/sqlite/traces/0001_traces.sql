-- The trace database (`keel.traces.db` beside `keel.db`): request traces only, appended by the
-- thousand per second, in 64 KiB pages. Same columns as the store's old `traces` table, whose
-- rows move here once when this database is created.
CREATE TABLE IF NOT EXISTS traces (
    id          TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    route       TEXT NOT NULL,
    status      TEXT NOT NULL,
    duration_us INTEGER NOT NULL,
    input       TEXT NOT NULL,
    output      TEXT NOT NULL,
    spans       TEXT
);
