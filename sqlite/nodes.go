package sqlite

import (
	"context"
	"time"
)

const (
	upsertNodeSQL = `INSERT INTO nodes (id, seen_at) VALUES (?, ?)
	ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at`
	countNodesSQL = `SELECT count(*) FROM nodes WHERE seen_at >= ?`
)

// Heartbeat records that node is alive at `at` and returns how many nodes were seen within
// the last `within`, this one included.
func (db *DB) Heartbeat(ctx context.Context, node string, at time.Time, within time.Duration) (int, error) {
	if _, err := db.w.ExecContext(ctx, upsertNodeSQL, node, dbTime(at)); err != nil {
		return 0, mapError(err, "node heartbeat")
	}
	var n int
	if err := db.queryRow(ctx, countNodesSQL, dbTime(at.Add(-within))).Scan(&n); err != nil {
		return 0, mapError(err, "node heartbeat")
	}
	return max(n, 1), nil
}
