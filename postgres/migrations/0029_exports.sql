-- 0029_exports: FHIR Bulk Data export jobs (package bulk) and their files, sealed in chunks
-- under each job's data key, so that any node runs a job (exactly one run holds its lease),
-- answers its status and serves its files, and a job survives a restart. The JSON columns
-- hold resource types, _typeFilter criteria and the files' types and counts: never patient
-- data.
CREATE TABLE export_jobs (
	id           text COLLATE "C" NOT NULL PRIMARY KEY,
	client_id    text        NOT NULL,
	site         text        NOT NULL DEFAULT '',
	request      text        NOT NULL,
	group_id     text        NOT NULL DEFAULT '',
	types_json   text        NOT NULL,
	since        timestamptz,
	filters_json text        NOT NULL DEFAULT '[]',
	status       text        NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
	owner        text        NOT NULL DEFAULT '',
	lease_until  timestamptz,
	progress     text        NOT NULL DEFAULT '',
	error        text        NOT NULL DEFAULT '',
	wrapped_key  bytea       NOT NULL,
	files_json   text        NOT NULL DEFAULT '[]',
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL,
	done_at      timestamptz,
	expires_at   timestamptz NOT NULL
);

CREATE INDEX export_jobs_claim ON export_jobs (status, created_at);
CREATE INDEX export_jobs_expires ON export_jobs (expires_at);

CREATE TABLE export_chunks (
	job_id   text COLLATE "C" NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
	owner    text    NOT NULL,
	file_seq integer NOT NULL CHECK (file_seq >= 0),
	seq      integer NOT NULL CHECK (seq >= 0),
	sealed   bytea   NOT NULL,
	PRIMARY KEY (job_id, owner, file_seq, seq)
);
