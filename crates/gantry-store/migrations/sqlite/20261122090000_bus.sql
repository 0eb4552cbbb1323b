-- The event bus: rules (from gantry.toml or the API), each matched event's deliveries to its
-- rules' targets (retried until delivered or given up), and schedules' last fire times.
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
