-- Gantry's state (design §2). Times are Unix epoch milliseconds; ids are ULIDs as text.

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    trace_id         TEXT NOT NULL,
    spec             TEXT NOT NULL,             -- the validated spec, as JSON
    context          TEXT NOT NULL,             -- what started the run (event, branch), as JSON
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);
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
    not_before  BIGINT,
    PRIMARY KEY (run_id, idx)
);

-- Append-only: every state change, keyed by trace id (seed 1's order_events).
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    trace_id    TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    job         TEXT,
    attempt     INTEGER,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    note        TEXT
);
CREATE INDEX audit_by_run ON audit_events (run_id, seq);
CREATE INDEX audit_by_trace ON audit_events (trace_id, seq);
CREATE INDEX audit_by_time ON audit_events (at);

-- Leases: a name held by one holder until it expires.
CREATE TABLE locks (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Events as received (filled by the intake; design §3.1).
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    type        TEXT NOT NULL,
    delivery_id TEXT UNIQUE,
    detail      TEXT NOT NULL,
    trace_id    TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX events_by_time ON events (received_at);
