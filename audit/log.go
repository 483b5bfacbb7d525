package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
)

// Log appends entries to the stored audit log and signs checkpoints of it. Several Logs
// (one per node) may share one store: the store orders entries, and every node computes the
// same root for the same size, so their checkpoints agree.
type Log struct {
	store  vitalgate.AuditStore
	signer *Signer
	origin string
	node   string
	now    func() time.Time

	mu       sync.Mutex
	tree     *Tree
	lastSign uint64
}

// NewLog returns a Log over store that signs checkpoints with signer under origin. node
// names this server in entries; now may be nil.
func NewLog(store vitalgate.AuditStore, signer *Signer, origin, node string, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{store: store, signer: signer, origin: origin, node: node, now: now, tree: &Tree{}}
}

// Origin returns the log's checkpoint origin line.
func (l *Log) Origin() string { return l.origin }

// Verifier returns the public key that verifies the log's checkpoints.
func (l *Log) Verifier() Verifier { return l.signer.Verifier() }

// Entry returns an entry stamped with the time, this node, and the request's id and
// address from ctx; the caller fills in the rest.
func (l *Log) Entry(ctx context.Context, e Entry) Entry {
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	ri := vitalgate.RequestInfoFrom(ctx)
	if e.RequestID == "" {
		e.RequestID = ri.ID
	}
	if e.SourceIP == "" {
		e.SourceIP = ri.RemoteIP
	}
	if e.Node == "" {
		e.Node = l.node
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeSuccess
	}
	return e
}

// Encode returns the stored form of an entry (to pass to a store write, so that the entry
// is committed together with the write it describes).
func (l *Log) Encode(ctx context.Context, e Entry) []byte {
	return l.Entry(ctx, e).Marshal()
}

// Append appends entries on their own (reads, authentications, failures).
func (l *Log) Append(ctx context.Context, es ...Entry) error {
	data := make([][]byte, len(es))
	for i, e := range es {
		data[i] = l.Encode(ctx, e)
	}
	_, err := l.store.AppendAudit(ctx, data...)
	return err
}

// PatientIndex formats a patient blind index for an entry.
func PatientIndex(idx []byte) string { return hex.EncodeToString(idx) }

// sync extends the in-memory tree with the entries stored since it was last extended.
func (l *Log) sync(ctx context.Context) error {
	size, err := l.store.AuditSize(ctx)
	if err != nil {
		return err
	}
	from := l.tree.Size()
	if size <= from {
		return nil
	}
	next := from
	return l.store.AuditEntries(ctx, from, size, func(r vitalgate.AuditRecord) error {
		if r.Index != next {
			return vitalgate.Internal(errors.New("audit log has a gap"), "audit sync")
		}
		l.tree.Append(LeafHash(r.Data))
		next++
		return nil
	})
}

// Checkpoint brings the tree up to date and, when the log grew since the last signature,
// signs and stores a checkpoint. It returns the checkpoint it stands on.
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.sync(ctx); err != nil {
		return Checkpoint{}, err
	}
	c := Checkpoint{Origin: l.origin, Size: l.tree.Size(), Root: l.tree.Root()}
	if c.Size == l.lastSign && c.Size > 0 {
		return c, nil
	}
	note, err := SignCheckpoint(c, l.signer)
	if err != nil {
		return Checkpoint{}, err
	}
	if err := l.store.AddAuditCheckpoint(ctx, vitalgate.AuditCheckpoint{Size: c.Size, Note: note, CreatedAt: l.now().UTC()}); err != nil {
		return Checkpoint{}, err
	}
	l.lastSign = c.Size
	return c, nil
}

// Latest returns the latest stored signed checkpoint note.
func (l *Log) Latest(ctx context.Context) ([]byte, error) {
	cps, err := l.store.AuditCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	if len(cps) == 0 {
		return nil, vitalgate.Errorf(vitalgate.ENOTFOUND, "no checkpoint has been signed yet")
	}
	return cps[len(cps)-1].Note, nil
}

// Run signs a checkpoint every interval while the log grows, until ctx is done, and a final
// one then (with its own short deadline), so that a clean shutdown leaves everything signed.
func (l *Log) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := l.Checkpoint(fctx); err != nil && onError != nil {
				onError(err)
			}
			return
		case <-t.C:
			if _, err := l.Checkpoint(ctx); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}
