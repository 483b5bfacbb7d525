package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
)

// LogStore is what a Log needs from the stored audit log (vitalgate.AuditStore has it).
type LogStore interface {
	// AppendAudit appends entries in one transaction and returns the index of the first.
	// Returns EUNAVAILABLE when the store is busy or full.
	AppendAudit(ctx context.Context, entries ...[]byte) (uint64, error)
	AuditReader
	// AddAuditCheckpoint stores a signed checkpoint (one per size, the first kept).
	AddAuditCheckpoint(ctx context.Context, c vitalgate.AuditCheckpoint) error
	// AuditCheckpoints returns every stored checkpoint in ascending size order.
	AuditCheckpoints(ctx context.Context) ([]vitalgate.AuditCheckpoint, error)
}

// DefaultRefusalWindow is how long a Log folds repeated refusals into one entry.
const DefaultRefusalWindow = 10 * time.Second

// maxRefusalKeys bounds the refusals a Log holds open at once; beyond it, every open
// window is written out at once (so many distinct sources cost entries, not memory).
const maxRefusalKeys = 10_000

// Log appends entries to the stored audit log and signs checkpoints of it. Several Logs
// (one per node) may share one store: the store orders entries, and every node computes the
// same root for the same size, so their checkpoints agree.
//
// Repeated refusals are folded, so that a flood of bad requests cannot flood the log: the
// first entry with an outcome other than success for a key (agent type and id, source
// address, action, type, subtype, outcome, patient, and the outcome description up to its
// first colon, i.e. its code or route) is written at once and opens a window
// (DefaultRefusalWindow, see SetRefusalWindow); further refusals with the same key in that
// window are counted, not written, and when the window has ended (at the next Append, Flush,
// or Run's tick) one entry stands for them: the last of them with Occurrences set to their
// number (or the one itself, if there was one). Every decision is thus recorded, the first
// at once and the rest as a count. Close (or Run, when it stops) writes the open counts; a
// crash loses at most one window of counts, never a first refusal.
type Log struct {
	store  LogStore
	signer *Signer
	origin string
	node   string
	now    func() time.Time

	mu       sync.Mutex
	tree     *Tree
	lastSign uint64

	amu     sync.Mutex
	window  time.Duration
	open    map[refusalKey]*refusal
	pending []Entry // folded entries whose write failed, written with the next append
}

// refusalKey is what makes two refusals "the same" for folding.
type refusalKey struct {
	agentType, agentID, source, action, typ, subtype, outcome, patient, code string
}

// refusal is an open folding window: refusals counted since the first was written.
type refusal struct {
	until time.Time
	n     int   // refusals counted (not written) since the first
	last  Entry // the latest of them
}

// NewLog returns a Log over store that signs checkpoints with signer under origin. node
// names this server in entries; now may be nil.
func NewLog(store LogStore, signer *Signer, origin, node string, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{store: store, signer: signer, origin: origin, node: node, now: now, tree: &Tree{},
		window: DefaultRefusalWindow, open: map[refusalKey]*refusal{}}
}

// SetRefusalWindow sets how long repeated refusals are folded into one entry; 0 writes
// every refusal on its own. Call it before the Log is used.
func (l *Log) SetRefusalWindow(d time.Duration) {
	l.amu.Lock()
	defer l.amu.Unlock()
	l.window = max(d, 0)
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

// Append appends entries on their own (reads, authentications, failures), folding repeated
// refusals (see Log). It returns nil once every entry is written or, for a repeated
// refusal, counted; an error means the entries were not recorded (a read must then fail).
func (l *Log) Append(ctx context.Context, es ...Entry) error {
	now := l.now()
	l.amu.Lock()
	write := l.takeLocked(now, false)
	flushed := len(write)
	var opened []refusalKey
	for _, e := range es {
		e = l.Entry(ctx, e)
		if e.Outcome == OutcomeSuccess || l.window <= 0 {
			write = append(write, e)
			continue
		}
		k := keyOf(e)
		if r, ok := l.open[k]; ok {
			r.n++
			r.last = e
			continue
		}
		if len(l.open) >= maxRefusalKeys {
			write = append(write, l.takeLocked(now, true)...)
		}
		l.open[k] = &refusal{until: now.Add(l.window)}
		opened = append(opened, k)
		write = append(write, e)
	}
	if len(write) == 0 {
		l.amu.Unlock()
		return nil
	}
	l.amu.Unlock()
	err := l.write(ctx, write)
	if err != nil {
		l.amu.Lock()
		// The folded entries are kept for the next write; the refusals whose first entry
		// was not written open no window, so the next one is written again.
		l.pending = append(write[:flushed:flushed], l.pending...)
		for _, k := range opened {
			if r := l.open[k]; r != nil && r.n == 0 {
				delete(l.open, k)
			}
		}
		l.amu.Unlock()
	}
	return err
}

// Flush writes the folded refusals whose window has ended (all of them if all is set, as at
// shutdown). Run calls it on every tick and when it stops.
func (l *Log) Flush(ctx context.Context, all bool) error {
	l.amu.Lock()
	write := l.takeLocked(l.now(), all)
	l.amu.Unlock()
	if len(write) == 0 {
		return nil
	}
	err := l.write(ctx, write)
	if err != nil {
		l.amu.Lock()
		l.pending = append(write, l.pending...)
		l.amu.Unlock()
	}
	return err
}

// Close writes every folded refusal still open. Call it when the server stops (Run does).
func (l *Log) Close(ctx context.Context) error { return l.Flush(ctx, true) }

// takeLocked removes the pending entries and the windows that have ended (or all of them)
// and returns the entries that stand for them. l.amu is held.
func (l *Log) takeLocked(now time.Time, all bool) []Entry {
	out := l.pending
	l.pending = nil
	if len(out) > maxRefusalKeys { // a store that stays down: keep the counts bounded
		out = out[len(out)-maxRefusalKeys:]
	}
	for k, r := range l.open {
		if !all && now.Before(r.until) {
			continue
		}
		delete(l.open, k)
		switch {
		case r.n == 1:
			out = append(out, r.last)
		case r.n > 1:
			e := r.last
			e.Occurrences = r.n
			out = append(out, e)
		}
	}
	return out
}

func (l *Log) write(ctx context.Context, es []Entry) error {
	data := make([][]byte, len(es))
	for i, e := range es {
		data[i] = e.Marshal()
	}
	_, err := l.store.AppendAudit(ctx, data...)
	return err
}

// keyOf returns the folding key of a refusal: the outcome description counts up to its
// first colon (an error code, or the route), so that the same refusal with different
// details still folds.
func keyOf(e Entry) refusalKey {
	code, _, _ := strings.Cut(e.OutcomeDesc, ":")
	return refusalKey{agentType: e.AgentType, agentID: e.AgentID, source: e.SourceIP, action: e.Action,
		typ: e.Type, subtype: e.Subtype, outcome: e.Outcome, patient: e.PatientIndex, code: code}
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
		h, err := RecordLeaf(r)
		if err != nil {
			return err
		}
		l.tree.Append(h)
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

// Run writes the folded refusals whose window ended and signs a checkpoint every interval
// while the log grows, until ctx is done, and then writes every open count and a final
// checkpoint (with its own short deadline), so that a clean shutdown leaves everything signed.
func (l *Log) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := l.Close(fctx); err != nil && onError != nil {
				onError(err)
			}
			if _, err := l.Checkpoint(fctx); err != nil && onError != nil {
				onError(err)
			}
			return
		case <-t.C:
			if err := l.Flush(ctx, false); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
			if _, err := l.Checkpoint(ctx); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}
