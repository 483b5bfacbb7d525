package sqlstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

// Audit archive SQL (audit_segments: sqlite migration 0031, postgres 0028). An archived entry
// keeps its row and its leaf hash; its data becomes the empty blob, which the audit_log
// update trigger allows only for an entry of a recorded segment.
const (
	archivedEndSQL   = `SELECT coalesce(max(to_idx), 0) FROM audit_segments`
	auditLogEndSQL   = `SELECT coalesce(max(idx) + 1, 0) FROM audit_log`
	segmentExistsSQL = `SELECT EXISTS (SELECT 1 FROM audit_segments WHERE id = $1)`
	insertSegmentSQL = `INSERT INTO audit_segments (id, from_idx, to_idx, before, last_time, keep_until, file, created_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	auditHashesSQL     = `SELECT idx, hash FROM audit_log WHERE idx >= $1 AND idx < $2 ORDER BY idx`
	archiveEntrySQL    = `UPDATE audit_log SET data = $1, hash = $2 WHERE idx = $3`
	archiveRangeSQL    = `UPDATE audit_log SET data = $1 WHERE idx >= $2 AND idx < $3 AND hash IS NOT NULL`
	unindexArchivedSQL = `DELETE FROM audit_index WHERE idx >= $1 AND idx < $2`
	selectSegmentsSQL  = `SELECT id, from_idx, to_idx, before, last_time, keep_until, file, created_at FROM audit_segments ORDER BY from_idx`
)

// ArchiveAudit records segment s and, with the audit entries, in one transaction, empties the
// data of entries s.From to s.To (their leaf hashes stay: hashes fills in the ones a store
// logged without, and must equal the others) and removes them from the search index. Errors
// as vitalgate.AuditArchiver.
func (s Shared) ArchiveAudit(ctx context.Context, seg vitalgate.AuditSegment, hashes [][32]byte, audit ...[]byte) error {
	if err := vitalgate.CheckAuditSegment(seg, hashes); err != nil {
		return err
	}
	from, to := int64(seg.From), int64(seg.To) // #nosec G115 -- CheckAuditSegment bounds To to math.MaxInt64
	t := s.b.Time
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		var end, size int64
		var exists bool
		if err := tx.QueryRow(ctx, archivedEndSQL).Scan(&end); err != nil {
			return s.b.MapError(err, "audit segments")
		}
		if err := tx.QueryRow(ctx, auditLogEndSQL).Scan(&size); err != nil {
			return s.b.MapError(err, "audit log")
		}
		if err := tx.QueryRow(ctx, segmentExistsSQL, seg.ID).Scan(&exists); err != nil {
			return s.b.MapError(err, "audit segments")
		}
		switch {
		case exists:
			return vitalgate.Errorf(vitalgate.ECONFLICT, "audit segment %s exists", seg.ID)
		case from != end:
			return vitalgate.Errorf(vitalgate.ECONFLICT, "the archived part of the audit log ends at entry %d, not %d: archive again from there", end, from)
		case to > size:
			return vitalgate.Errorf(vitalgate.ECONFLICT, "the audit log holds %d entries, fewer than the segment's end %d", size, to)
		}
		if _, err := tx.Exec(ctx, insertSegmentSQL, seg.ID, from, to, t(seg.Before), t(seg.LastTime), t(seg.KeepUntil),
			seg.File, t(s.orNow(seg.CreatedAt))); err != nil {
			return s.b.MapError(err, "audit segment")
		}
		rows, err := tx.Query(ctx, auditHashesSQL, from, to)
		if err != nil {
			return s.b.MapError(err, "audit log")
		}
		stored, err := rowiter.Collect(rows, scanLeaf)
		rows.Close()
		if err != nil {
			return s.b.MapError(err, "audit log")
		}
		var missing []int64
		for i, l := range stored {
			want := hashes[i]
			switch {
			case l.idx != from+int64(i):
				return vitalgate.Errorf(vitalgate.ECONFLICT, "audit log entry %d is missing", from+int64(i))
			case len(l.hash) == 0:
				missing = append(missing, l.idx)
			case !bytes.Equal(l.hash, want[:]):
				return vitalgate.Errorf(vitalgate.ECONFLICT, "audit log entry %d does not have the leaf hash the segment holds for it", l.idx)
			}
		}
		if int64(len(stored)) != to-from {
			return vitalgate.Errorf(vitalgate.ECONFLICT, "audit log entry %d is missing", from+int64(len(stored)))
		}
		for _, idx := range missing {
			h := hashes[idx-from]
			if _, err := tx.Exec(ctx, archiveEntrySQL, []byte{}, h[:], idx); err != nil {
				return s.b.MapError(err, "archive audit entry")
			}
		}
		n, err := tx.Exec(ctx, archiveRangeSQL, []byte{}, from, to)
		if err != nil {
			return s.b.MapError(err, "archive audit entries")
		}
		if n+int64(len(missing)) != to-from {
			return vitalgate.Internal(fmt.Errorf("archived %d entries of %d", n+int64(len(missing)), to-from), "archive audit entries")
		}
		if _, err := tx.Exec(ctx, unindexArchivedSQL, from, to); err != nil {
			return s.b.MapError(err, "audit index")
		}
		return nil
	})
}

// AuditSegments returns every recorded archive segment in log order.
func (s Shared) AuditSegments(ctx context.Context) ([]vitalgate.AuditSegment, error) {
	return collect(ctx, s, "audit segments", scanSegment, selectSegmentsSQL)
}

func scanSegment(r rowiter.Scanner) (vitalgate.AuditSegment, error) {
	var (
		g                             vitalgate.AuditSegment
		from, to                      int64
		before, last, keep, createdAt Time
	)
	err := r.Scan(&g.ID, &from, &to, &before, &last, &keep, &g.File, &createdAt)
	g.From, g.To = uint64(from), uint64(to) // #nosec G115 -- non-negative by the columns' CHECKs
	g.Before, g.LastTime, g.KeepUntil, g.CreatedAt = before.T, last.T, keep.T, createdAt.T
	return g, err
}

// leaf is an audit_log row's index and stored leaf hash.
type leaf struct {
	idx  int64
	hash []byte
}

func scanLeaf(r rowiter.Scanner) (leaf, error) {
	var l leaf
	err := r.Scan(&l.idx, &l.hash)
	return l, err
}
