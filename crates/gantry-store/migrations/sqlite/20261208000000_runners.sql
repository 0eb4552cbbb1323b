-- Ephemeral GitHub Actions runners: one record per job and attempt (its runner's name), with
-- where it is in its life. The record itself is JSON; the columns are what lists filter on.
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
