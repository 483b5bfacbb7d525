-- 0004_audit_hash: each audit entry's RFC 6962 leaf hash, stored when it is appended, so
-- that verification names the exact entry whose bytes changed afterwards (the signed
-- checkpoints still catch changes that also rewrite the stored hash).
ALTER TABLE audit_log ADD COLUMN hash BLOB;
