-- What the intake records of each delivery besides its payload (design §3.1, issue 3).
ALTER TABLE events ADD COLUMN action TEXT;
ALTER TABLE events ADD COLUMN repository TEXT;
ALTER TABLE events ADD COLUMN installation_id BIGINT;
ALTER TABLE events ADD COLUMN rules_matched TEXT NOT NULL DEFAULT '[]';  -- JSON list of rule names
CREATE INDEX events_by_source_type ON events (source, type, received_at);
