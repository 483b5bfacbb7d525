package sqlstore

import (
	"context"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	insertCheckpointSQL = `INSERT INTO audit_checkpoints (size, note, created_at) VALUES ($1, $2, $3)
	ON CONFLICT (size) DO NOTHING`
	selectCheckpointsSQL = `SELECT size, note, created_at FROM audit_checkpoints ORDER BY size`
)

// AddAuditCheckpoint stores a signed checkpoint. A checkpoint for a size that has one already
// is ignored: the first one stored is kept, whichever node stored it. A zero CreatedAt is set
// to the current time. Returns EINVALID for an empty note or a size beyond what the log can
// hold.
func (s Shared) AddAuditCheckpoint(ctx context.Context, c vitalgate.AuditCheckpoint) error {
	if err := vitalgate.CheckAuditCheckpoint(c); err != nil {
		return err
	}
	_, err := s.b.Writer().Exec(ctx, insertCheckpointSQL, int64(c.Size), c.Note, s.b.Time(s.orNow(c.CreatedAt))) // #nosec G115 -- CheckAuditCheckpoint bounds c.Size to math.MaxInt64
	return s.b.MapError(err, "audit checkpoint")
}

// AuditCheckpoints returns every stored checkpoint in ascending size order.
func (s Shared) AuditCheckpoints(ctx context.Context) ([]vitalgate.AuditCheckpoint, error) {
	return collect(ctx, s, "audit checkpoints", scanCheckpoint, selectCheckpointsSQL)
}

// scanCheckpoint reads an audit_checkpoints row selected as size, note, created_at.
func scanCheckpoint(r rowiter.Scanner) (vitalgate.AuditCheckpoint, error) {
	var (
		c       vitalgate.AuditCheckpoint
		size    int64
		created Time
	)
	err := r.Scan(&size, &c.Note, &created)
	c.Size, c.CreatedAt = uint64(size), created.T // #nosec G115 -- size is non-negative by the column's CHECK (size >= 0)
	return c, err
}
