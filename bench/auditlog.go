package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/node"
)

// benchAudit is the audit log of the audit scenarios: the real store (SQLite, production
// options) and audit.Log on a data dir of their own, so that verification covers exactly
// the entries the scenarios wrote.
type benchAudit struct {
	store vitalgate.Store
	log   *audit.Log
	next  atomic.Int64 // entries made so far, to vary them
}

// auditLog opens the audit scenarios' log on first use.
func (b *benchRun) auditLog(ctx context.Context) (*benchAudit, error) {
	if b.audit != nil {
		return b.audit, nil
	}
	dir := filepath.Join(b.tmp, "audit")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	store, err := node.StoreConfig{Driver: "sqlite"}.Open(ctx, dir, b.opt.Env)
	if err != nil {
		return nil, err
	}
	key, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	const origin = "vitalgate/bench"
	signer, err := audit.NewSigner(origin, key)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	b.audit = &benchAudit{store: store, log: audit.NewLog(store, signer, origin, "bench-node", nil)}
	return b.audit, nil
}

func (a *benchAudit) close() { _ = a.store.Close() }

// entry returns a realistic entry, as ingest writes for a created Observation.
func (a *benchAudit) entry(ctx context.Context) []byte {
	i := a.next.Add(1)
	var rnd [24]byte
	_, _ = rand.Read(rnd[:])
	sum := sha256.Sum256(fmt.Appendf(nil, "patient-%d", i%512))
	return a.log.Encode(ctx, audit.Entry{Action: audit.ActionCreate, Type: "rest", Subtype: "create",
		AgentType: audit.AgentDevice, AgentID: fmt.Sprintf("bench-device-%04d", i%512), AgentRole: "device",
		SourceIP: "127.0.0.1", PatientIndex: hex.EncodeToString(sum[:]), RequestID: hex.EncodeToString(rnd[:8]),
		Resources: []string{"Observation/" + hex.EncodeToString(rnd[8:])}})
}

// benchAuditAppend measures entries appended durably, one per call from --devices
// goroutines, with the checkpointer signing every 2 s as serve runs it.
func (b *benchRun) benchAuditAppend(ctx context.Context) ([]Row, error) {
	a, err := b.auditLog(ctx)
	if err != nil {
		return nil, err
	}
	cpCtx, stopCheckpoints := context.WithCancel(context.Background())
	cpDone := make(chan struct{})
	var cpErr atomic.Pointer[string]
	go func() {
		defer close(cpDone)
		a.log.Run(cpCtx, 2*time.Second, func(err error) { msg := err.Error(); cpErr.CompareAndSwap(nil, &msg) })
	}()
	fig := b.load(ctx, "audit-append", "entries", b.opt.Devices, func(ctx context.Context, w int) (int, error) {
		_, err := a.store.AppendAudit(ctx, a.entry(ctx))
		return 1, err
	})
	stopCheckpoints()
	<-cpDone
	note := errorNote(fig)
	if p := cpErr.Load(); p != nil {
		note = strings.TrimPrefix(note+"; checkpoint failed: "+*p, "; ")
	}
	return []Row{
		{Scenario: "audit-append", Metric: fmt.Sprintf("entries/s durable, %d writers, checkpoints every 2 s", b.opt.Devices), Unit: "entries/s",
			Value: fig.UnitRate(), Target: AtLeast(20000), Note: note},
		{Scenario: "audit-append", Metric: "p99 append latency", Unit: "ms", Value: ms(fig.P99), Lower: true},
	}, nil
}

// benchAuditVerify fills the audit log to --audit-entries entries (bulk appends, a signed
// checkpoint every 100 000 and at the end) and measures audit.Verify over the store
// against SHA-256 over the same entry bytes, read from the store beforehand.
func (b *benchRun) benchAuditVerify(ctx context.Context) ([]Row, error) {
	a, err := b.auditLog(ctx)
	if err != nil {
		return nil, err
	}
	target := uint64(b.opt.AuditEntries) // #nosec G115 -- a positive flag value
	size, err := a.store.AuditSize(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	lastCheckpoint := size
	for size < target {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		batch := make([][]byte, min(1000, target-size))
		for i := range batch {
			batch[i] = a.entry(ctx)
		}
		if size, err = a.store.AppendAudit(ctx, batch...); err != nil {
			return nil, err
		}
		if size-lastCheckpoint >= 100_000 {
			if _, err := a.log.Checkpoint(ctx); err != nil {
				return nil, err
			}
			lastCheckpoint = size
		}
		b.progress("   filling the audit log: %d/%d entries", size, target)
	}
	if _, err := a.log.Checkpoint(ctx); err != nil {
		return nil, err
	}
	if size, err = a.store.AuditSize(ctx); err != nil {
		return nil, err
	}
	b.done("audit log of %d entries ready in %s", size, time.Since(start).Round(100*time.Millisecond))
	stored, err := a.store.AuditCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	b.progress("   audit.Verify over the store ...")
	vstart := time.Now()
	rep, err := audit.Verify(ctx, audit.StoreLog{Store: a.store}, audit.SignedCheckpoints(stored), a.log.Verifier(), func(done, total uint64) {
		b.progress("   audit.Verify over the store: %d/%d entries", done, total)
	})
	vtime := time.Since(vstart)
	if err != nil {
		return nil, fmt.Errorf("audit log does not verify: %w", err)
	}
	b.done("verified %d entries, %.1f MB, %d checkpoints in %s", rep.Entries, float64(rep.Bytes)/1e6, rep.Checkpoints, vtime.Round(time.Millisecond))
	// Baseline: SHA-256 over the same bytes, read into memory in chunks (not timed).
	var hashTime time.Duration
	var hashed, hashedBytes uint64
	for from := uint64(0); from < rep.Entries; from += 50_000 {
		b.progress("   baseline SHA-256 over the same bytes: %d/%d entries", from, rep.Entries)
		var chunk [][]byte
		if err := a.store.AuditEntries(ctx, from, min(from+50_000, rep.Entries), func(r vitalgate.AuditRecord) error {
			chunk = append(chunk, bytes.Clone(r.Data))
			return nil
		}); err != nil {
			return nil, err
		}
		t := time.Now()
		for _, e := range chunk {
			_ = sha256.Sum256(e)
			hashedBytes += uint64(len(e))
		}
		hashTime += time.Since(t)
		hashed += uint64(len(chunk))
	}
	b.done("baseline: SHA-256 over the same %d entries in %s", hashed, hashTime.Round(time.Millisecond))
	if hashed != rep.Entries || hashedBytes != rep.Bytes {
		return nil, fmt.Errorf("baseline hashed %d entries (%d bytes), verification %d (%d bytes)", hashed, hashedBytes, rep.Entries, rep.Bytes)
	}
	vs, hs := vtime.Seconds(), hashTime.Seconds()
	const bn = "SHA-256 of the same bytes"
	return []Row{
		{Scenario: "audit-verify", Metric: fmt.Sprintf("entries/s verified, %d entries, %d checkpoints", rep.Entries, rep.Checkpoints), Unit: "entries/s",
			Value: float64(rep.Entries) / vs, Baseline: float64(hashed) / hs, BaselineName: bn},
		{Scenario: "audit-verify", Metric: fmt.Sprintf("MB/s verified (%.0f bytes/entry)", float64(rep.Bytes)/float64(rep.Entries)), Unit: "MB/s",
			Value: float64(rep.Bytes) / 1e6 / vs, Baseline: float64(hashedBytes) / 1e6 / hs, BaselineName: bn, Target: RatioAtLeast(0.5)},
	}, nil
}
