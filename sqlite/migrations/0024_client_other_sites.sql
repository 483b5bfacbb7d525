-- 0024_client_other_sites: an EHR system or auditor may act within further sites (JSON array
-- of site ids), one site per token.
ALTER TABLE clients ADD COLUMN other_sites TEXT NOT NULL DEFAULT '[]';
