-- 0003_audit: the tamper-evident audit log and its signed checkpoints.
--
-- audit_log holds one row per entry: idx is the entry's position in the log, dense from 0
-- and in commit order (the store assigns max(idx) + 1 inside the write transaction), data
-- is the entry's canonical encoding. idx is the rowid, so max(idx) is one b-tree seek.
CREATE TABLE audit_log (
	idx  INTEGER PRIMARY KEY CHECK (idx >= 0),
	data BLOB    NOT NULL
) STRICT;

-- The log is append-only at the SQL level: these triggers stop accidental edits and deletes
-- through the application (or a careless operator's sqlite3 shell). They are not the
-- security boundary: anyone who can write the file can drop a trigger or edit pages
-- directly. Deliberate tampering is caught by the RFC 6962 Merkle tree over the entries and
-- the signed checkpoints below, which any holder of the public key verifies offline.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;

-- An insert must add the next index: this refuses INSERT OR REPLACE over an existing entry
-- (REPLACE deletes without firing DELETE triggers) and gaps in the indexes. It costs one more
-- seek to the end of the rowid b-tree per entry.
CREATE TRIGGER audit_log_append_at_end BEFORE INSERT ON audit_log
WHEN NEW.idx IS NOT (SELECT coalesce(max(idx) + 1, 0) FROM audit_log)
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;

-- Signed checkpoints (C2SP signed notes), at most one per log size: the first one stored
-- for a size is kept. created_at is microseconds since the Unix epoch, UTC.
CREATE TABLE audit_checkpoints (
	size       INTEGER NOT NULL PRIMARY KEY CHECK (size >= 0),
	note       BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
