-- 0022_site_erasure: a whole site can be erased (crypto-shredded); its record stays, marked
-- with when, so that its id is never reused.
ALTER TABLE sites ADD COLUMN erased_at timestamptz;
