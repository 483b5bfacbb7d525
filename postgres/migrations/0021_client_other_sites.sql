-- 0021_client_other_sites: an EHR system or auditor may act within further sites, one site
-- per token.
ALTER TABLE clients ADD COLUMN other_sites text[] NOT NULL DEFAULT '{}';
