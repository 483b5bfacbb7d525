package audit_test

import (
	"context"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// fakeStore is the audit part of a vitalgate.AuditStore, over a memLog.
type fakeStore struct{ log *memLog }

func (s fakeStore) AuditSize(ctx context.Context) (uint64, error) { return s.log.Size(ctx) }

func (s fakeStore) AuditEntries(ctx context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error {
	for _, e := range s.log.entries {
		if e.index >= from && e.index < to {
			if err := fn(vitalgate.AuditRecord{Index: e.index, Data: e.data}); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestStoreLog(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(*testLog)
		ok     bool
		index  uint64
	}{
		{"untampered", func(*testLog) {}, true, 0},
		{"entry changed: caught by the next checkpoint", func(tl *testLog) { tl.log.entries[37].data[40] ^= 1 }, false, 30},
		{"entry deleted: caught as a gap", func(tl *testLog) {
			tl.log.entries = append(tl.log.entries[:37], tl.log.entries[38:]...)
		}, false, 37},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTestLog(t)
			tl.log = tl.log.clone()
			tt.tamper(tl)
			var stored []vitalgate.AuditCheckpoint
			for i, c := range tl.checkpoints {
				stored = append(stored, vitalgate.AuditCheckpoint{Size: uint64(i * every), Note: c.Note})
			}
			src := audit.StoreLog{Store: fakeStore{tl.log}}
			_, err := audit.Verify(context.Background(), src, audit.SignedCheckpoints(stored), tl.signer.Verifier(), nil)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				proof, err := audit.ProveInclusion(context.Background(), src, 42, logSize)
				if err != nil {
					t.Fatal(err)
				}
				if err := audit.VerifyInclusion(tl.log.entries[42].hash, 42, logSize, proof, tl.roots[logSize]); err != nil {
					t.Error(err)
				}
				if _, err := audit.ProveInclusion(context.Background(), src, 42, logSize+1); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
					t.Errorf("proof beyond the log: err = %v, want EINVALID", err)
				}
				return
			}
			verr, isVerr := err.(*audit.VerifyError)
			if !isVerr || verr.Index != tt.index {
				t.Fatalf("err = %v, want a VerifyError at %d", err, tt.index)
			}
			if verr.Checkpoint != nil && verr.Source != "stored checkpoint at size 40" {
				t.Errorf("Source = %q", verr.Source)
			}
		})
	}
}
