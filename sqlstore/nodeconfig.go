package sqlstore

import (
	"context"
	"slices"
	"strings"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	upsertNodeConfigSQL = `INSERT INTO node_configs (node, recorded_at, config) VALUES ($1, $2, $3)
	ON CONFLICT (node) DO UPDATE SET recorded_at = excluded.recorded_at, config = excluded.config`
	selectNodeConfigsSQL = `SELECT config FROM node_configs`
)

// RecordNodeConfig stores c as the latest configuration of c.Node.
func (s Shared) RecordNodeConfig(ctx context.Context, c vitalgate.NodeConfig) error {
	data, err := vitalgate.EncodeNodeConfig(c)
	if err != nil {
		return err
	}
	_, err = s.b.Writer().Exec(ctx, upsertNodeConfigSQL, c.Node, s.b.Time(c.RecordedAt), string(data))
	return s.b.MapError(err, "record node configuration")
}

// NodeConfigs returns the latest configuration of every node, ordered by node name (byte
// order: the same on both stores, whatever a PostgreSQL database's collation).
func (s Shared) NodeConfigs(ctx context.Context) ([]vitalgate.NodeConfig, error) {
	cs, err := collect(ctx, s, "node configurations", scanNodeConfig, selectNodeConfigsSQL)
	slices.SortFunc(cs, func(a, b vitalgate.NodeConfig) int { return strings.Compare(a.Node, b.Node) })
	return cs, err
}

// scanNodeConfig reads a node_configs row selected as config.
func scanNodeConfig(r rowiter.Scanner) (vitalgate.NodeConfig, error) {
	var data string
	if err := r.Scan(&data); err != nil {
		return vitalgate.NodeConfig{}, err
	}
	return vitalgate.DecodeNodeConfig([]byte(data))
}
