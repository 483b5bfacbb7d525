package postgres_test

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/postgres"
)

// TestAuditDenseAcrossNodes: two stores on one schema (two pools, as two nodes would have)
// append audit entries concurrently, alone and with resource writes, some of which fail. The
// log ends up with exactly the entries of the writes that succeeded, at indexes 0..N-1, and
// each writer's entries appear in the order it committed them.
func TestAuditDenseAcrossNodes(t *testing.T) {
	const workers, calls = 8, 40
	schema := NewSchema(t)
	nodes := []*postgres.DB{
		MustOpen(t, schema, postgres.Options{MaxConns: 4}),
		MustOpen(t, schema, postgres.Options{MaxConns: 4}),
	}
	ctx := t.Context()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		want   = map[string]bool{}
		failed = map[string]bool{}
		firsts = map[string]uint64{}
		order  = make([][]string, workers) // each worker's entries in commit order
	)
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Go(func() {
			for c := range calls {
				db := nodes[(w+c)%len(nodes)]
				name := fmt.Sprintf("w%d-c%02d", w, c)
				es := [][]byte{[]byte(name + "/0"), []byte(name + "/1")}
				switch c % 4 {
				case 0, 1:
					first, err := db.AppendAudit(ctx, es...)
					if err != nil {
						errs <- fmt.Errorf("%s: AppendAudit: %w", name, err)
						continue
					}
					mu.Lock()
					firsts[string(es[0])], firsts[string(es[1])] = first, first+1
					mu.Unlock()
				case 2:
					rs := []vitalgate.SealedResource{{Type: "Observation", ID: name, Body: []byte("b")}}
					if err := db.CreateResources(ctx, rs, es...); err != nil {
						errs <- fmt.Errorf("%s: CreateResources: %w", name, err)
						continue
					}
				case 3: // conflicts with call c-1 of this worker: nothing may be appended
					rs := []vitalgate.SealedResource{
						{Type: "Observation", ID: name, Body: []byte("b")},
						{Type: "Observation", ID: fmt.Sprintf("w%d-c%02d", w, c-1), Body: []byte("b")},
					}
					if err := db.CreateResources(ctx, rs, es...); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
						errs <- fmt.Errorf("%s: conflicting CreateResources = %v, want conflict", name, err)
					}
					mu.Lock()
					failed[string(es[0])], failed[string(es[1])] = true, true
					mu.Unlock()
					continue
				}
				mu.Lock()
				want[string(es[0])], want[string(es[1])] = true, true
				order[w] = append(order[w], string(es[0]), string(es[1]))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	for i, db := range nodes {
		size, err := db.AuditSize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if size != uint64(len(want)) {
			t.Errorf("node %d: AuditSize = %d, want %d", i, size, len(want))
		}
	}
	index := map[string]uint64{}
	err := nodes[1].AuditEntries(ctx, 0, math.MaxUint64, func(r vitalgate.AuditRecord) error {
		if r.Index != uint64(len(index)) {
			return fmt.Errorf("entry %d has index %d: not dense", len(index), r.Index)
		}
		e := string(r.Data)
		if h := vitalgate.AuditLeafHash(r.Data); !bytes.Equal(r.Hash, h[:]) {
			return fmt.Errorf("entry %d: stored leaf hash %x, want %x", r.Index, r.Hash, h)
		}
		if _, dup := index[e]; dup {
			return fmt.Errorf("entry %q appears twice", e)
		}
		if failed[e] || !want[e] {
			return fmt.Errorf("entry %d %q belongs to no successful write", r.Index, e)
		}
		if f, ok := firsts[e]; ok && f != r.Index {
			return fmt.Errorf("entry %q at index %d, AppendAudit said %d", e, r.Index, f)
		}
		index[e] = r.Index
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(index) != len(want) {
		t.Fatalf("log holds %d entries, want %d", len(index), len(want))
	}
	for w, es := range order {
		for i := 1; i < len(es); i++ {
			if index[es[i]] <= index[es[i-1]] {
				t.Errorf("worker %d: %q (index %d) committed after %q (index %d) but precedes it in the log",
					w, es[i], index[es[i]], es[i-1], index[es[i-1]])
			}
		}
	}
}

// TestServerRestart terminates every connection of a store's pool, as a PostgreSQL restart or
// failover would: requests then fail cleanly with EUNAVAILABLE (no panic, no internal error),
// and the same *DB recovers on retry, without being reopened.
func TestServerRestart(t *testing.T) {
	const maxConns = 3
	schema := NewSchema(t)
	db := MustOpen(t, schema, postgres.Options{MaxConns: maxConns})
	admin := MustServer(t)
	ctx := t.Context()

	calls := []struct {
		name string
		call func(i int) error
	}{
		{"CreateResources", func(i int) error {
			return db.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: fmt.Sprintf("o%d", i), Body: []byte("b")}}, []byte("audit"))
		}},
		{"CreateDevice", func(i int) error {
			return db.CreateDevice(ctx, vitalgate.Device{ID: fmt.Sprintf("d%d", i)}, []byte("audit"))
		}},
		{"Resources", func(int) error {
			return db.Resources(ctx, vitalgate.ResourceFilter{}, func(vitalgate.SealedResource) error { return nil })
		}},
		{"AuditSize", func(int) error { _, err := db.AuditSize(ctx); return err }},
		{"Ping", func(int) error { return db.Ping(ctx) }},
	}
	n := 0
	for round := range 3 {
		// Use (and so open) the pool's connections, then terminate them all.
		var wg sync.WaitGroup
		for range maxConns {
			wg.Go(func() {
				if err := db.Ping(ctx); err != nil {
					t.Errorf("round %d: Ping before termination: %v", round, err)
				}
			})
		}
		wg.Wait()
		var killed int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND pid <> pg_backend_pid()`, schema).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed == 0 {
			t.Fatal("no connection of the store's pool found in pg_stat_activity")
		}
		killedAt := time.Now()
		waitGone(t, schema)

		// Each round starts with another kind of call, which meets the dead connections.
		total := 0
		for k := range calls {
			c := calls[(round+k)%len(calls)]
			failures, started := 0, time.Now()
			for attempt := 0; ; attempt++ {
				n++
				err := c.call(n)
				if err == nil {
					break
				}
				if code := vitalgate.ErrorCode(err); code != vitalgate.EUNAVAILABLE {
					t.Fatalf("round %d: %s after termination = %v (code %q), want nil or %s",
						round, c.name, err, code, vitalgate.EUNAVAILABLE)
				}
				if msg := vitalgate.ErrorMessage(err); msg != "database unavailable" {
					t.Errorf("%s: message %q", c.name, msg)
				}
				failures++
				if attempt > maxConns+1 {
					t.Fatalf("round %d: %s still fails after %d attempts: %v", round, c.name, attempt+1, err)
				}
			}
			t.Logf("round %d: %s failed %d times, then succeeded (%v)", round, c.name, failures, time.Since(started))
			total += failures
		}
		// The pool pings a connection idle for more than a second before handing it out, and
		// would then replace a dead one silently; quicker than that, requests must fail.
		if total == 0 && time.Since(killedAt) < 500*time.Millisecond {
			t.Errorf("round %d: no request failed after the connections were terminated", round)
		}
	}
	// The writes that succeeded are all there, with their audit entries.
	size, err := db.AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if size == 0 {
		t.Error("no audit entries after recovery")
	}
}

// waitGone waits until no backend with the given application_name is left.
func waitGone(t *testing.T, app string) {
	t.Helper()
	admin := MustServer(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left int
		if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d terminated backends still present", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
