-- 0005_nodes: the nodes serving this database and when each was last seen (microseconds),
-- so that deployment-wide limits can be shared out between them.
CREATE TABLE nodes (
	id      TEXT    NOT NULL PRIMARY KEY,
	seen_at INTEGER NOT NULL
) STRICT;
