-- 0031_audit_archive: archive segments of the audit log (vitalgate audit archive).
--
-- audit_segments records each segment: the entries from_idx <= idx < to_idx, whose data was
-- moved into a sealed file (file: its hex SHA-256) that must be kept until keep_until. Times
-- are microseconds since the Unix epoch, UTC. Segments are never changed or removed.
CREATE TABLE audit_segments (
	id         TEXT    NOT NULL PRIMARY KEY,
	from_idx   INTEGER NOT NULL CHECK (from_idx >= 0),
	to_idx     INTEGER NOT NULL UNIQUE CHECK (to_idx > from_idx),
	before     INTEGER NOT NULL,
	last_time  INTEGER NOT NULL,
	keep_until INTEGER NOT NULL,
	file       TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER audit_segments_no_update BEFORE UPDATE ON audit_segments
BEGIN
	SELECT RAISE(ABORT, 'audit segments are append-only');
END;

CREATE TRIGGER audit_segments_no_delete BEFORE DELETE ON audit_segments
BEGIN
	SELECT RAISE(ABORT, 'audit segments are append-only');
END;

-- An archived entry keeps its row and its leaf hash, so that the Merkle tree, its root and the
-- proofs of every other entry are unchanged; only its data leaves (an empty blob: a live entry
-- is never empty). The one update the log allows is that one, for an entry of a recorded
-- segment, keeping (or, for an entry logged before 0004, filling in) its leaf hash.
DROP TRIGGER audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN coalesce(NOT (NEW.idx = OLD.idx AND length(NEW.data) = 0 AND length(OLD.data) > 0
	AND NEW.hash IS NOT NULL AND length(NEW.hash) = 32 AND (OLD.hash IS NULL OR NEW.hash = OLD.hash)
	AND EXISTS (SELECT 1 FROM audit_segments s WHERE OLD.idx >= s.from_idx AND OLD.idx < s.to_idx)), 1)
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;
