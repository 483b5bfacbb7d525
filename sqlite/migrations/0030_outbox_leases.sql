-- 0030_outbox_leases: which node delivers to an outbox destination (package outbox), so
-- that a cluster sends each audit entry and alert to a webhook once. A node takes the lease
-- for a short time and renews it while it delivers; another takes it over once it expires.
CREATE TABLE outbox_leases (
	destination TEXT    NOT NULL PRIMARY KEY,
	holder      TEXT    NOT NULL,
	expires_at  INTEGER NOT NULL
) STRICT;
