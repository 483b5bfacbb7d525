-- 0027_outbox_leases_update_blocks: which node delivers to an outbox destination (package outbox), so
-- that a cluster sends each audit entry and alert to a webhook once. A node takes the lease
-- for a short time and renews it while it delivers; another takes it over once it expires.
CREATE TABLE outbox_leases (
	destination text        NOT NULL PRIMARY KEY,
	holder      text        NOT NULL,
	expires_at  timestamptz NOT NULL
);

-- A quarantined device may still fetch updates (remediation) unless an operator blocked
-- them too (vitalgate device quarantine --block-updates); its release clears the block.
ALTER TABLE devices ADD COLUMN updates_blocked boolean NOT NULL DEFAULT false;
