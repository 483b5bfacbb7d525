-- 0019_model_site_bindings: a site may settle the patient binding of its own devices of a
-- model (JSON object site id -> binding); the model's binding holds for the other sites.
ALTER TABLE device_models ADD COLUMN site_bindings TEXT NOT NULL DEFAULT '{}';
