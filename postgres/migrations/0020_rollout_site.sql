-- 0020_rollout_site: a rollout may target one site's devices of its model (update rollout
-- --site S); '' is every site the model has devices in. A model still has at most one live
-- rollout (rollouts_model_live).
ALTER TABLE rollouts ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT '';
