-- A queued attempt claimed ahead of a free slot (it may start the moment one frees, without
-- waiting for a commit): after a crash it counts as lost, as a running one does. 1 or 0.
ALTER TABLE jobs ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
