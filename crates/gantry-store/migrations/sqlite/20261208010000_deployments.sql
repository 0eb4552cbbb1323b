-- Deployer sessions (a deploy or a sanity test): the run a session is, and what it found and
-- made, as JSON. A session goes with its run (retention).
CREATE TABLE deployments (
    session_id TEXT    PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,       -- deploy, test
    created_at BIGINT  NOT NULL,
    record     TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX deployments_by_time ON deployments (kind, created_at);
