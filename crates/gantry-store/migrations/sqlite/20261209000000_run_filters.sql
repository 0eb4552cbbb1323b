-- The run context's repository, branch and event as columns of `runs` (the context itself
-- stays in `run_specs`), each indexed with the id: a filtered list of runs (the dashboard's
-- `/?repo=…`) walks one index newest first and stops at the page's end, where it read and
-- parsed every run's context until the page was full (all of them when few or none matched).
ALTER TABLE runs ADD COLUMN repo TEXT;
ALTER TABLE runs ADD COLUMN branch TEXT;
ALTER TABLE runs ADD COLUMN event TEXT;
UPDATE runs SET (repo, branch, event) = (
    SELECT json_extract(context, '$.repo'), json_extract(context, '$.branch'),
           json_extract(context, '$.event')
    FROM run_specs WHERE run_specs.run_id = runs.id
);
CREATE INDEX runs_by_repo ON runs (repo, id);
CREATE INDEX runs_by_branch ON runs (branch, id);
CREATE INDEX runs_by_event ON runs (event, id);
