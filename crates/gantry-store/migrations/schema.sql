-- The schema every migration in sqlite/ makes, in one piece: a new database is made from it in
-- one transaction (~1.5 ms instead of ~5 ms of DDL, ALTERs included), and the migrations are
-- recorded as applied. Generated; `schema_is_what_the_migrations_make` (src/sqlite/mod.rs)
-- fails with the text to put here when a migration is added.
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    trace_id         TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
, repo TEXT, branch TEXT, event TEXT);
CREATE INDEX runs_by_status ON runs (status, id);
CREATE INDEX runs_by_finish ON runs (finished_at);
CREATE TABLE jobs (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    exit_code   INTEGER,
    started_at  BIGINT,
    finished_at BIGINT,
    not_before  BIGINT, retries_used INTEGER NOT NULL DEFAULT 0, lost_reruns INTEGER NOT NULL DEFAULT 0, claimed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE locks (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    type        TEXT NOT NULL,
    delivery_id TEXT UNIQUE,
    detail      TEXT NOT NULL,
    trace_id    TEXT NOT NULL,
    received_at BIGINT NOT NULL
, action TEXT, repository TEXT, installation_id BIGINT, rules_matched TEXT NOT NULL DEFAULT '[]', outcome TEXT, payload_segment BIGINT, payload_offset BIGINT, payload_len BIGINT, payload_key TEXT, payload_size BIGINT, payload_digest TEXT);
CREATE INDEX events_by_source_type ON events (source, type, received_at);
CREATE TABLE secrets (
    scope      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    ciphertext BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, name)
) WITHOUT ROWID;
CREATE TABLE rules (
    name       TEXT    PRIMARY KEY,
    body       TEXT    NOT NULL,           -- the rule as written (JSON)
    origin     TEXT    NOT NULL,           -- 'config' or 'api'
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE bus_deliveries (
    event_id   TEXT    NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    rule       TEXT    NOT NULL,
    status     TEXT    NOT NULL,           -- pending, delivered, failed
    attempts   INTEGER NOT NULL,
    next_at    INTEGER NOT NULL,
    result     TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (event_id, rule)
) WITHOUT ROWID;
CREATE INDEX bus_deliveries_pending ON bus_deliveries (next_at) WHERE status = 'pending';
CREATE TABLE schedule_fires (
    rule         TEXT    PRIMARY KEY,
    last_fire_at INTEGER NOT NULL
);
CREATE INDEX events_by_payload_segment ON events (payload_segment) WHERE payload_segment IS NOT NULL;
CREATE TABLE run_specs (
    run_id  TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    spec    TEXT NOT NULL,             -- the validated spec, as JSON
    context TEXT NOT NULL              -- what started the run (event, branch), as JSON
);
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
CREATE TABLE runners (
    name        TEXT    PRIMARY KEY,
    pool        TEXT    NOT NULL,
    active      INTEGER NOT NULL,      -- 1 until the runner is done
    queued_at   BIGINT  NOT NULL,
    finished_at BIGINT,
    record      TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX runners_active ON runners (active, queued_at);
CREATE INDEX runners_by_time ON runners (queued_at);
CREATE TABLE deployments (
    session_id TEXT    PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,       -- deploy, test
    created_at BIGINT  NOT NULL,
    record     TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX deployments_by_time ON deployments (kind, created_at);
CREATE INDEX runs_by_repo ON runs (repo, id);
CREATE INDEX runs_by_branch ON runs (branch, id);
CREATE INDEX runs_by_event ON runs (event, id);
CREATE INDEX events_by_time_id ON events (received_at, id);
CREATE TABLE agent_tokens (
    name         TEXT    PRIMARY KEY,
    hash         BLOB    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT
) WITHOUT ROWID;
CREATE TABLE agents (
    name      TEXT    PRIMARY KEY,
    token     TEXT    NOT NULL,
    labels    TEXT    NOT NULL,
    slots     INTEGER NOT NULL,
    last_seen BIGINT  NOT NULL
) WITHOUT ROWID;
CREATE TABLE agent_jobs (
    id               TEXT    PRIMARY KEY,
    run_id           TEXT    NOT NULL,
    job              TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
    trace_id         TEXT    NOT NULL,
    labels           TEXT    NOT NULL,
    task             TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    agent            TEXT,
    lease_expires    BIGINT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    result           TEXT,
    created_at       BIGINT  NOT NULL,
    UNIQUE (run_id, job, attempt)
) WITHOUT ROWID;
CREATE INDEX agent_jobs_open ON agent_jobs (state, created_at);
CREATE TABLE cancel_requests (
    run_id TEXT   PRIMARY KEY,
    at     BIGINT NOT NULL
) WITHOUT ROWID;
CREATE INDEX events_by_payload_blob ON events (payload_key) WHERE payload_key IS NOT NULL;
