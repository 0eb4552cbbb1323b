-- A job's retries are counted apart from its attempt number: a lost attempt (its server
-- stopped while it ran) is run again once without counting against `retries`, and a re-run
-- starts the count over.
ALTER TABLE jobs ADD COLUMN retries_used INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lost_reruns INTEGER NOT NULL DEFAULT 0;
