package postgres

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"
	"github.com/vitalgate/vitalgate"
)

const (
	upsertNodeConfigSQL = `INSERT INTO node_configs (node, recorded_at, config) VALUES ($1, $2, $3)
	ON CONFLICT (node) DO UPDATE SET recorded_at = excluded.recorded_at, config = excluded.config`
	selectNodeConfigsSQL = `SELECT config FROM node_configs ORDER BY node COLLATE "C"`
)

// RecordNodeConfig stores c as the latest configuration of c.Node.
func (db *DB) RecordNodeConfig(ctx context.Context, c vitalgate.NodeConfig) error {
	if err := vitalgate.CheckNodeConfig(c); err != nil {
		return err
	}
	c.RecordedAt = c.RecordedAt.UTC()
	data, err := json.Marshal(c)
	if err != nil {
		return vitalgate.Internal(err, "postgres: encode node configuration")
	}
	_, err = db.pool.Exec(ctx, upsertNodeConfigSQL, c.Node, dbTime(c.RecordedAt), string(data))
	return mapError(err, "record node configuration")
}

// NodeConfigs returns the latest configuration of every node, ordered by node name.
func (db *DB) NodeConfigs(ctx context.Context) ([]vitalgate.NodeConfig, error) {
	rows, err := db.pool.Query(ctx, selectNodeConfigsSQL)
	if err != nil {
		return nil, mapError(err, "node configurations")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (vitalgate.NodeConfig, error) {
		var data string
		var c vitalgate.NodeConfig
		if err := r.Scan(&data); err != nil {
			return c, err
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return c, vitalgate.Internal(err, "postgres: decode node configuration")
		}
		c.RecordedAt = c.RecordedAt.UTC()
		return c, nil
	})
	if err != nil {
		return nil, mapError(err, "node configurations")
	}
	return out, nil
}
