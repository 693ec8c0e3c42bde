-- A trace's spans as one JSON array in its own row: one insert per trace (gateway traces come
-- by the thousand per second). Rows written before this keep their spans in `spans`.
ALTER TABLE traces ADD COLUMN spans TEXT;
