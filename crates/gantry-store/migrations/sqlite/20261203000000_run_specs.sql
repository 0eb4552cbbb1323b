-- A run's spec and context are written once, with the run; its status, times and cancel flag
-- change as it goes. SQLite rewrites a changed row whole, overflow pages included, so with the
-- spec in the row every status change of a large run rewrote its spec (~200 KB for a 1000-job
-- DAG, read back and written to the WAL at the run's start and again at its end).
CREATE TABLE run_specs (
    run_id  TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    spec    TEXT NOT NULL,             -- the validated spec, as JSON
    context TEXT NOT NULL              -- what started the run (event, branch), as JSON
);
INSERT INTO run_specs (run_id, spec, context) SELECT id, spec, context FROM runs;
ALTER TABLE runs DROP COLUMN spec;
ALTER TABLE runs DROP COLUMN context;
