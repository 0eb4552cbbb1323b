-- The schema on PostgreSQL: the same tables, columns and indexes as the SQLite migrations make
-- (migrations/schema.sql), in PostgreSQL's dialect. Every integer column is a BIGINT (SQLite's
-- are 64-bit too, so both backends read and bind the same types); flags stay integers (0 or 1)
-- so that the statements both backends share test them alike. Large event payloads stay in
-- `events.detail` (the `payload_*` columns, where SQLite points into segment files, stay NULL).
-- `a_postgres_schema_has_the_sqlite_tables_and_columns` checks that the two do not drift.
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    trace_id         TEXT NOT NULL,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    repo             TEXT,
    branch           TEXT,
    event            TEXT
);
CREATE INDEX runs_by_status ON runs (status, id);
CREATE INDEX runs_by_finish ON runs (finished_at);
CREATE INDEX runs_by_repo ON runs (repo, id);
CREATE INDEX runs_by_branch ON runs (branch, id);
CREATE INDEX runs_by_event ON runs (event, id);

CREATE TABLE run_specs (
    run_id  TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    spec    TEXT NOT NULL,
    context TEXT NOT NULL
);

CREATE TABLE jobs (
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx          BIGINT NOT NULL,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    exit_code    BIGINT,
    started_at   BIGINT,
    finished_at  BIGINT,
    not_before   BIGINT,
    retries_used BIGINT NOT NULL DEFAULT 0,
    lost_reruns  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE locks (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    type            TEXT NOT NULL,
    delivery_id     TEXT UNIQUE,
    detail          TEXT NOT NULL,
    trace_id        TEXT NOT NULL,
    received_at     BIGINT NOT NULL,
    action          TEXT,
    repository      TEXT,
    installation_id BIGINT,
    rules_matched   TEXT NOT NULL DEFAULT '[]',
    outcome         TEXT,
    payload_segment BIGINT,
    payload_offset  BIGINT,
    payload_len     BIGINT
);
CREATE INDEX events_by_source_type ON events (source, type, received_at);
CREATE INDEX events_by_payload_segment ON events (payload_segment) WHERE payload_segment IS NOT NULL;
CREATE INDEX events_by_time_id ON events (received_at, id);

CREATE TABLE secrets (
    scope      TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    ciphertext BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scope, name)
);

CREATE TABLE rules (
    name       TEXT   PRIMARY KEY,
    body       TEXT   NOT NULL,
    origin     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE bus_deliveries (
    event_id   TEXT   NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    rule       TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    attempts   BIGINT NOT NULL,
    next_at    BIGINT NOT NULL,
    result     TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, rule)
);
CREATE INDEX bus_deliveries_pending ON bus_deliveries (next_at) WHERE status = 'pending';

CREATE TABLE schedule_fires (
    rule         TEXT   PRIMARY KEY,
    last_fire_at BIGINT NOT NULL
);

-- A chunk's key is the seq of its last record; its records are `last_seq - n + 1 ..= last_seq`,
-- taken from this sequence (never handed out twice, even after expiry).
CREATE SEQUENCE audit_chunks_seq;
CREATE TABLE audit_chunks (
    last_seq BIGINT PRIMARY KEY,
    n        BIGINT NOT NULL,
    run_id   TEXT   NOT NULL,
    trace_id TEXT   NOT NULL,
    last_at  BIGINT NOT NULL,
    records  TEXT   NOT NULL
);
CREATE INDEX audit_chunks_by_run ON audit_chunks (run_id, last_seq);
CREATE INDEX audit_chunks_by_time ON audit_chunks (last_at);

CREATE TABLE runners (
    name        TEXT   PRIMARY KEY,
    pool        TEXT   NOT NULL,
    active      BIGINT NOT NULL,
    queued_at   BIGINT NOT NULL,
    finished_at BIGINT,
    record      TEXT   NOT NULL
);
CREATE INDEX runners_active ON runners (active, queued_at);
CREATE INDEX runners_by_time ON runners (queued_at);

CREATE TABLE deployments (
    session_id TEXT   PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    kind       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    record     TEXT   NOT NULL
);
CREATE INDEX deployments_by_time ON deployments (kind, created_at);
