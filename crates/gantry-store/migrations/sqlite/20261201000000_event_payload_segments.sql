-- Large payloads live in segment files beside the database (segments.rs); the row says where.
-- `detail` is '' for those rows.
ALTER TABLE events ADD COLUMN payload_segment BIGINT;
ALTER TABLE events ADD COLUMN payload_offset BIGINT;
ALTER TABLE events ADD COLUMN payload_len BIGINT;
CREATE INDEX events_by_payload_segment ON events (payload_segment) WHERE payload_segment IS NOT NULL;
