-- Secrets, each value age-encrypted on its own (with its scope and name inside the ciphertext,
-- so a row copied to another scope or name does not decrypt as that secret).
CREATE TABLE secrets (
    scope      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    ciphertext BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, name)
) WITHOUT ROWID;

-- What became of an event: the run it started, or why nothing ran.
ALTER TABLE events ADD COLUMN outcome TEXT;
