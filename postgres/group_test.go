package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/postgres"
)

// TestGroupCommitConflict: 64 audited CreateResources calls at once, so that they share group
// commits, one of which conflicts. The conflicting caller alone fails with ECONFLICT, none of
// its rows or audit entries are stored, and the log holds exactly the 63 others' entries at
// indexes 0..62.
func TestGroupCommitConflict(t *testing.T) {
	const callers = 64
	tests := []struct {
		name string
		// ids returns caller c's resource ids; existing are created before the callers run.
		ids      func(c int) []string
		existing []string
	}{
		{
			// The bad caller's second resource exists already: its first must not remain.
			name:     "existing-id",
			ids:      func(c int) []string { return ids(c, c == 17, "old") },
			existing: []string{"old"},
		},
		{
			// Two callers create the same id: whichever goes first wins.
			name: "same-id-twice",
			ids:  func(c int) []string { return ids(c, c == 40 || c == 41, "twice") },
		},
		{
			// The bad caller repeats an id within its own batch.
			name: "repeat-in-batch",
			ids: func(c int) []string {
				if c == 0 {
					return []string{"c00-a", "c00-a"}
				}
				return ids(c, false, "")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpen(t, "", postgres.Options{MaxConns: 4})
			ctx := t.Context()
			for _, id := range tt.existing {
				if err := db.CreateResources(ctx, []vitalgate.SealedResource{resource(id)}); err != nil {
					t.Fatal(err)
				}
			}
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				errs  = make([]error, callers)
			)
			for c := range callers {
				wg.Go(func() {
					var rs []vitalgate.SealedResource
					for _, id := range tt.ids(c) {
						rs = append(rs, resource(id))
					}
					<-start
					errs[c] = db.CreateResources(ctx, rs, []byte(fmt.Sprintf("caller %02d", c)))
				})
			}
			close(start)
			wg.Wait()

			ok := map[string]bool{} // audit entries of the callers that succeeded
			var stored, conflicts int
			for c, err := range errs {
				switch code := vitalgate.ErrorCode(err); {
				case err == nil:
					ok[fmt.Sprintf("caller %02d", c)] = true
					stored += len(tt.ids(c))
				case code == vitalgate.ECONFLICT:
					conflicts++
					// None of the failed caller's rows remain but those another caller stored.
					for _, id := range tt.ids(c) {
						if _, err := db.Resource(ctx, "Observation", id); err == nil && !storedBy(id, c, errs, tt.ids, tt.existing) {
							t.Errorf("caller %d failed, but its resource %s is stored", c, id)
						}
					}
				default:
					t.Errorf("caller %d: %v, want nil or conflict", c, err)
				}
			}
			if conflicts != 1 {
				t.Errorf("%d callers failed with a conflict, want 1", conflicts)
			}
			n := 0
			if err := db.Resources(ctx, vitalgate.ResourceFilter{}, func(vitalgate.SealedResource) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			if want := stored + len(tt.existing); n != want {
				t.Errorf("%d resources stored, want %d", n, want)
			}

			if size, err := db.AuditSize(ctx); err != nil || size != callers-1 {
				t.Errorf("AuditSize = %d, %v; want %d", size, err, callers-1)
			}
			seen := map[string]bool{}
			err := db.AuditEntries(ctx, 0, math.MaxUint64, func(r vitalgate.AuditRecord) error {
				if r.Index != uint64(len(seen)) {
					return fmt.Errorf("entry %d has index %d: not dense", len(seen), r.Index)
				}
				if h := vitalgate.AuditLeafHash(r.Data); !bytes.Equal(r.Hash, h[:]) {
					return fmt.Errorf("entry %d: wrong leaf hash", r.Index)
				}
				e := string(r.Data)
				if !ok[e] || seen[e] {
					return fmt.Errorf("entry %d %q: not from a successful call, or repeated", r.Index, e)
				}
				seen[e] = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != len(ok) {
				t.Errorf("log holds %d entries, want %d", len(seen), len(ok))
			}
		})
	}
}

// ids returns caller c's two resource ids, the second of which is shared if bad.
func ids(c int, bad bool, shared string) []string {
	second := fmt.Sprintf("c%02d-b", c)
	if bad {
		second = shared
	}
	return []string{fmt.Sprintf("c%02d-a", c), second}
}

// storedBy reports whether resource id was stored by someone other than the failed caller c:
// it existed before, or a successful caller created it too.
func storedBy(id string, c int, errs []error, idsOf func(int) []string, existing []string) bool {
	for _, e := range existing {
		if e == id {
			return true
		}
	}
	for o, err := range errs {
		if o == c || err != nil {
			continue
		}
		for _, x := range idsOf(o) {
			if x == id {
				return true
			}
		}
	}
	return false
}

func resource(id string) vitalgate.SealedResource {
	return vitalgate.SealedResource{
		Type: "Observation", ID: id, Body: []byte("b"),
		CodeIndexes: [][]byte{[]byte("code-1"), []byte("code-2")},
	}
}

// TestGroupCommitCancelled: a call whose context is done before the writer takes it returns
// the context's error and writes nothing.
func TestGroupCommitCancelled(t *testing.T) {
	db := MustOpen(t, "", postgres.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.CreateResources(ctx, []vitalgate.SealedResource{resource("x")}, []byte("e")); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateResources with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := db.AppendAudit(ctx, []byte("e")); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendAudit with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := db.Resource(t.Context(), "Observation", "x"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("Resource after a cancelled CreateResources = %v, want not found", err)
	}
	if n, err := db.AuditSize(t.Context()); err != nil || n != 0 {
		t.Errorf("AuditSize = %d, %v; want 0", n, err)
	}
}

// TestClosedWrites: writes after Close fail with EUNAVAILABLE.
func TestClosedWrites(t *testing.T) {
	db := MustOpen(t, "", postgres.Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateResources(t.Context(), []vitalgate.SealedResource{resource("x")}); vitalgate.ErrorCode(err) != vitalgate.EUNAVAILABLE {
		t.Errorf("CreateResources after Close = %v, want unavailable", err)
	}
	if _, err := db.AppendAudit(t.Context(), []byte("e")); vitalgate.ErrorCode(err) != vitalgate.EUNAVAILABLE {
		t.Errorf("AppendAudit after Close = %v, want unavailable", err)
	}
}
