-- 0017_idevid: a device model may name the maker CAs of its devices' manufacturer
-- identities (IDevID, IEEE 802.1AR), PEM; a registered device of such a model enrolls with
-- its IDevID instead of a secret. Empty: secrets only.
ALTER TABLE device_models ADD COLUMN idevid_ca TEXT NOT NULL DEFAULT '';
