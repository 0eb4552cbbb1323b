-- Agents on other hosts: their tokens (SHA-256 of the token, never the token), the agents
-- that registered (labels as a JSON array), and the queue of attempts waiting for or held by
-- agents (state: queued, taken, done, lost, cancelled; `task` is what the agent runs, as JSON,
-- without secret values; `result` the reported result, once done).
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
