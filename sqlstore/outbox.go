package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	outboxCursorSQL    = `SELECT next FROM outbox_cursors WHERE destination = $1`
	setOutboxCursorSQL = `INSERT INTO outbox_cursors (destination, next, updated_at) VALUES ($1, $2, $3)
	ON CONFLICT (destination) DO UPDATE SET next = excluded.next, updated_at = excluded.updated_at
	WHERE excluded.next > outbox_cursors.next`
	outboxCursorsSQL = `SELECT destination, next FROM outbox_cursors ORDER BY destination`
)

// OutboxCursors returns the cursor of every destination that has one.
func (s Shared) OutboxCursors(ctx context.Context) (map[string]uint64, error) {
	type cursor struct {
		dest string
		next int64
	}
	cs, err := collect(ctx, s, "outbox cursors", func(r rowiter.Scanner) (cursor, error) {
		var c cursor
		err := r.Scan(&c.dest, &c.next)
		return c, err
	}, outboxCursorsSQL)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(cs))
	for _, c := range cs {
		out[c.dest] = uint64(c.next) // #nosec G115 -- next is non-negative by the column's CHECK (next >= 0)
	}
	return out, nil
}

// OutboxCursor returns the index of the next audit entry to deliver to destination, 0 when
// nothing was delivered to it yet.
func (s Shared) OutboxCursor(ctx context.Context, destination string) (uint64, error) {
	var n int64
	err := s.b.Reader().QueryRow(ctx, outboxCursorSQL, destination).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, s.b.MapError(err, "outbox cursor")
	}
	return uint64(n), nil // #nosec G115 -- next is non-negative by the column's CHECK (next >= 0)
}

// SetOutboxCursor records that every audit entry before next was delivered to destination.
// The cursor only moves forward (a lower next is ignored, as when two nodes deliver).
// Returns EINVALID for an empty destination or a next beyond what the log can hold.
func (s Shared) SetOutboxCursor(ctx context.Context, destination string, next uint64) error {
	if err := vitalgate.CheckOutboxCursor(destination, next); err != nil {
		return err
	}
	_, err := s.b.Writer().Exec(ctx, setOutboxCursorSQL, destination, int64(next), s.b.Time(s.orNow(time.Time{}))) // #nosec G115 -- CheckOutboxCursor bounds next to math.MaxInt64
	return s.b.MapError(err, "outbox cursor")
}

// claimOutboxSQL takes the lease of a destination ($1) for a holder ($2) until $3, unless
// another holder's lease runs past now ($4): an insert, or an update of one's own or an
// expired lease; no row changed means someone else holds it.
const claimOutboxSQL = `INSERT INTO outbox_leases (destination, holder, expires_at) VALUES ($1, $2, $3)
	ON CONFLICT (destination) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
	WHERE outbox_leases.holder = excluded.holder OR outbox_leases.expires_at <= $4`

// ClaimOutbox takes or renews the lease of destination for holder for ttl from the store's
// clock and reports whether holder has it (vitalgate.OutboxStore).
func (s Shared) ClaimOutbox(ctx context.Context, destination, holder string, ttl time.Duration) (bool, error) {
	if err := vitalgate.CheckOutboxClaim(destination, holder, ttl); err != nil {
		return false, err
	}
	now := s.b.Now()
	n, err := s.b.Writer().Exec(ctx, claimOutboxSQL, destination, holder, s.b.Time(now.Add(ttl)), s.b.Time(now))
	if err != nil {
		return false, s.b.MapError(err, "outbox lease")
	}
	return n > 0, nil
}
