-- 0002_nodes: the nodes serving this database and when each was last seen,
-- so that deployment-wide limits can be shared out between them.
CREATE TABLE nodes (
	id      text   NOT NULL PRIMARY KEY,
	seen_at timestamptz NOT NULL
);
