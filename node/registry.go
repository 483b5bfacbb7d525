package node

import (
	"log/slog"

	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/registry"
)

// NewRegistry returns the device registry over the node's store, CA and vault, recording
// its actions in alog. cfg carries the settings (start from registry.DefaultConfig()); its
// collaborators are filled in here, and so is the data dir's secret hash algorithm
// (argon2id, or PBKDF2 in a FIPS data dir). log may be nil.
func (n *Node) NewRegistry(alog *audit.Log, cfg registry.Config, log *slog.Logger) (*registry.Service, error) {
	cfg.Store, cfg.CA, cfg.Vault, cfg.Audit, cfg.Now = n.Store, n.CA, n.Vault, alog, n.env.Now
	cfg.HashParams = n.HashParams()
	if log != nil {
		cfg.Logger = log
	}
	return registry.New(cfg)
}
