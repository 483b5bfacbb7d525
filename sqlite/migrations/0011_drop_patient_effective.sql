-- 0011_drop_patient_effective: one index fewer per stored resource. resources_patient_effective
-- (patient_index, effective) is served by resources_patient_type_effective (patient_index,
-- type, effective, id), which every search by date walks; no query reads it (the query-plan
-- tests list the index of every hot query). Each Observation costs one b-tree insert and
-- about 80 bytes less.
DROP INDEX IF EXISTS resources_patient_effective;
