-- Events are listed newest first by (received_at, id) and paged by that pair (keyset): one
-- index in that order serves the listing and a page's start without a sort.
CREATE INDEX events_by_time_id ON events (received_at, id);
DROP INDEX events_by_time;
