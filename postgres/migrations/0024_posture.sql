-- 0024_posture: the vulnerability posture documents (package posture): SBOMs of device
-- models' versions, OSV advisories, CISA KEV entries and VEX statements, each JSON under a
-- kind and a key unique within it. Read whole per kind; the capability parses them.
CREATE TABLE posture_docs (
	kind       text COLLATE "C" NOT NULL,
	key        text COLLATE "C" NOT NULL,
	data       bytea       NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (kind, key)
);
