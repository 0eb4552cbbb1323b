-- Payloads at or above the object store threshold live in the object store (payload_blobs.rs):
-- the row keeps the object's key, the payload's size and its SHA-256 digest; `detail` is ''.
ALTER TABLE events ADD COLUMN payload_key TEXT;
ALTER TABLE events ADD COLUMN payload_size BIGINT;
ALTER TABLE events ADD COLUMN payload_digest TEXT;
CREATE INDEX events_by_payload_blob ON events (payload_key) WHERE payload_key IS NOT NULL;
