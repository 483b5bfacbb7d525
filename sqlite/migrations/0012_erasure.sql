-- 0012_erasure: erasure requests (two people: one requests, another approves) and legal
-- holds, which block an erasure. Patients appear only as blind indexes.
CREATE TABLE erasure_requests (
	id            TEXT    NOT NULL PRIMARY KEY,
	site          TEXT    NOT NULL,
	patient_index BLOB    NOT NULL,
	reason        TEXT    NOT NULL,
	requested_by  TEXT    NOT NULL,
	requested_at  INTEGER NOT NULL,
	approved_by   TEXT    NOT NULL DEFAULT '',
	approved_at   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE legal_holds (
	site          TEXT    NOT NULL,
	patient_index BLOB    NOT NULL,
	reason        TEXT    NOT NULL,
	placed_by     TEXT    NOT NULL,
	placed_at     INTEGER NOT NULL,
	PRIMARY KEY (site, patient_index)
) STRICT;
