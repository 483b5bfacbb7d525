-- 0027_posture: the vulnerability posture documents (package posture): SBOMs of device
-- models' versions, OSV advisories, CISA KEV entries and VEX statements, each JSON under a
-- kind and a key unique within it. Read whole per kind; the capability parses them.
CREATE TABLE posture_docs (
	kind       TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	data       BLOB    NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
) STRICT;
