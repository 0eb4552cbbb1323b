-- Event payloads (`events.detail`, a GitHub delivery is often 10–30 KB) are compressed by
-- TOAST; lz4 costs a fraction of pglz's CPU per payload (intake writes one per delivery).
-- Only new rows are compressed with it. A server built without lz4 (or older than
-- PostgreSQL 14, which has no per-column compression) keeps its default: nothing to do.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE events ALTER COLUMN detail SET COMPRESSION lz4';
EXCEPTION
    WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
        RAISE NOTICE 'events.detail keeps the default compression: %', SQLERRM;
END
$$;
