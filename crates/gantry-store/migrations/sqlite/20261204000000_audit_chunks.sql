-- The audit trail in chunks: one row per run per commit, holding that commit's records of the
-- run as one JSON array, instead of one row per record. A busy run's commit carried ~300
-- records; each went into the table and three indexes (the B-tree inserts, the JSON read back
-- field by field, and the index pages rewritten to the WAL were about a quarter of SQLite's
-- work in the 1000-job DAG). A record's `seq` is still its own, consecutive across chunks: a
-- chunk's key is the seq of its last record, and its records are `last_seq - n + 1 ..= last_seq`
-- (AUTOINCREMENT, so no seq is ever handed out twice, even after expiry).
CREATE TABLE audit_chunks (
    last_seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    n         INTEGER NOT NULL,        -- how many records
    run_id    TEXT    NOT NULL,
    trace_id  TEXT    NOT NULL,
    last_at   BIGINT  NOT NULL,        -- the newest record's time: the chunk expires after it
    records   TEXT    NOT NULL         -- [[at, job, attempt, from, to, note], ...], in seq order
);
CREATE INDEX audit_chunks_by_run ON audit_chunks (run_id, last_seq);
CREATE INDEX audit_chunks_by_time ON audit_chunks (last_at);
-- Each stored record becomes a chunk of one, keeping its seq; the sequence carries on from the
-- old table's (which may be past its rows, if the newest were expired).
INSERT INTO audit_chunks (last_seq, n, run_id, trace_id, last_at, records)
    SELECT seq, 1, run_id, trace_id, at,
           json_array(json_array(at, job, attempt, from_status, to_status, note))
    FROM audit_events ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'audit_chunks'
    AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'audit_events');
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'audit_chunks', seq FROM sqlite_sequence WHERE name = 'audit_events';
DROP TABLE audit_events;
