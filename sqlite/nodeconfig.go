package sqlite

import (
	"context"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	upsertNodeConfigSQL = `INSERT INTO node_configs (node, recorded_at, config) VALUES (?, ?, ?)
	ON CONFLICT (node) DO UPDATE SET recorded_at = excluded.recorded_at, config = excluded.config`
	selectNodeConfigsSQL = `SELECT config FROM node_configs ORDER BY node`
)

// RecordNodeConfig stores c as the latest configuration of c.Node.
func (db *DB) RecordNodeConfig(ctx context.Context, c vitalgate.NodeConfig) error {
	data, err := vitalgate.EncodeNodeConfig(c)
	if err != nil {
		return err
	}
	_, err = db.w.ExecContext(ctx, upsertNodeConfigSQL, c.Node, dbTime(c.RecordedAt), string(data))
	return mapError(err, "record node configuration")
}

// NodeConfigs returns the latest configuration of every node, ordered by node name.
func (db *DB) NodeConfigs(ctx context.Context) ([]vitalgate.NodeConfig, error) {
	return collect(ctx, db, "node configurations", scanNodeConfig, selectNodeConfigsSQL)
}

// scanNodeConfig reads a node_configs row selected as config.
func scanNodeConfig(s rowiter.Scanner) (vitalgate.NodeConfig, error) {
	var data string
	if err := s.Scan(&data); err != nil {
		return vitalgate.NodeConfig{}, err
	}
	return vitalgate.DecodeNodeConfig([]byte(data))
}
