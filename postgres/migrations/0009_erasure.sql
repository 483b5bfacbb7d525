-- 0009_erasure: erasure requests (two people: one requests, another approves) and legal
-- holds, which block an erasure. Patients appear only as blind indexes.
CREATE TABLE erasure_requests (
	id            text COLLATE "C" NOT NULL PRIMARY KEY,
	site          text COLLATE "C" NOT NULL,
	patient_index bytea       NOT NULL,
	reason        text        NOT NULL,
	requested_by  text        NOT NULL,
	requested_at  timestamptz NOT NULL,
	approved_by   text        NOT NULL DEFAULT '',
	approved_at   timestamptz
);

CREATE TABLE legal_holds (
	site          text COLLATE "C" NOT NULL,
	patient_index bytea       NOT NULL,
	reason        text        NOT NULL,
	placed_by     text        NOT NULL,
	placed_at     timestamptz NOT NULL,
	PRIMARY KEY (site, patient_index)
);
