-- 0032_exports: FHIR Bulk Data export jobs (package bulk) and their files, sealed in chunks
-- under each job's data key, so that any node runs a job (exactly one run holds its lease),
-- answers its status and serves its files, and a job survives a restart. The JSON columns
-- hold resource types, _typeFilter criteria and the files' types and counts: never patient
-- data.
CREATE TABLE export_jobs (
	id           TEXT    NOT NULL PRIMARY KEY,
	client_id    TEXT    NOT NULL,
	site         TEXT    NOT NULL DEFAULT '',
	request      TEXT    NOT NULL,
	group_id     TEXT    NOT NULL DEFAULT '',
	types_json   TEXT    NOT NULL,
	since        INTEGER,
	filters_json TEXT    NOT NULL DEFAULT '[]',
	status       TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
	owner        TEXT    NOT NULL DEFAULT '',
	lease_until  INTEGER,
	progress     TEXT    NOT NULL DEFAULT '',
	error        TEXT    NOT NULL DEFAULT '',
	wrapped_key  BLOB    NOT NULL,
	files_json   TEXT    NOT NULL DEFAULT '[]',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	done_at      INTEGER,
	expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX export_jobs_claim ON export_jobs (status, created_at);
CREATE INDEX export_jobs_expires ON export_jobs (expires_at);

CREATE TABLE export_chunks (
	job_id   TEXT    NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
	owner    TEXT    NOT NULL,
	file_seq INTEGER NOT NULL CHECK (file_seq >= 0),
	seq      INTEGER NOT NULL CHECK (seq >= 0),
	sealed   BLOB    NOT NULL,
	PRIMARY KEY (job_id, owner, file_seq, seq)
) STRICT;
