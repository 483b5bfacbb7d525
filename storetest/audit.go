package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// auditLog returns every entry of st's log, checking that the indexes run 0, 1, 2… in order.
func auditLog(t *testing.T, st vitalgate.Store) [][]byte {
	t.Helper()
	var data [][]byte
	err := st.AuditEntries(ctxT(t), 0, math.MaxUint64, func(r vitalgate.AuditRecord) error {
		if r.Index != uint64(len(data)) {
			return fmt.Errorf("entry %d has index %d: indexes must be dense from 0 and in order", len(data), r.Index)
		}
		data = append(data, r.Data)
		return nil
	})
	must(t, "AuditEntries", err)
	size, err := st.AuditSize(ctxT(t))
	must(t, "AuditSize", err)
	if size != uint64(len(data)) {
		t.Errorf("AuditSize = %d, AuditEntries yields %d entries", size, len(data))
	}
	return data
}

// auditSize returns st's AuditSize or fails t now.
func auditSize(t *testing.T, st vitalgate.Store) uint64 {
	t.Helper()
	n, err := st.AuditSize(ctxT(t))
	must(t, "AuditSize", err)
	return n
}

// entries returns n audit entries named prefix/0, prefix/1, …
func entries(prefix string, n int) [][]byte {
	es := make([][]byte, n)
	for i := range es {
		es[i] = fmt.Appendf(nil, "%s/%d", prefix, i)
	}
	return es
}

// testAuditEmpty: a new store has an empty log and no checkpoints.
func (s *suite) testAuditEmpty(t *testing.T) {
	st := s.store(t)
	if n := auditSize(t, st); n != 0 {
		t.Errorf("AuditSize of a new store = %d, want 0", n)
	}
	if data := auditLog(t, st); len(data) != 0 {
		t.Errorf("a new store's log holds %q", data)
	}
	cs, err := st.AuditCheckpoints(ctxT(t))
	must(t, "AuditCheckpoints", err)
	if len(cs) != 0 {
		t.Errorf("a new store has %d checkpoints", len(cs))
	}
}

// testAuditAppend: AppendAudit returns the index of its first entry, indexes are dense from 0,
// and entries round-trip byte for byte.
func (s *suite) testAuditAppend(t *testing.T) {
	st := s.store(t)
	large := make([]byte, 64<<10)
	for i := range large {
		large[i] = byte(i * 31 & 0xff)
	}
	tests := []struct {
		name    string
		entries [][]byte
	}{
		{"one", [][]byte{[]byte("first")}},
		{"three", entries("three", 3)},
		{"binary", [][]byte{{0x00, 0xff, 0x00, '\n'}}},
		{"large", [][]byte{large}},
		{"many", entries("many", 100)},
	}
	var want [][]byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, err := st.AppendAudit(ctxT(t), tt.entries...)
			must(t, "AppendAudit", err)
			if first != uint64(len(want)) {
				t.Errorf("AppendAudit = %d, want %d", first, len(want))
			}
			want = append(want, tt.entries...)
			if n := auditSize(t, st); n != uint64(len(want)) {
				t.Errorf("AuditSize = %d, want %d", n, len(want))
			}
		})
	}
	if got := auditLog(t, st); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("log holds %d entries, want %d (or the data differs)", len(got), len(want))
	}
}

// testAuditWithWrites: every write method appends its audit entries in the same transaction:
// all of them if the write succeeds, none if it fails.
func (s *suite) testAuditWithWrites(t *testing.T) {
	st := s.store(t)
	ctx := ctxT(t)
	// Setup without audit entries: it must not append any.
	dev := testDevice("dev-b")
	must(t, "CreateDevice", st.CreateDevice(ctx, dev))
	must(t, "CreateResources", st.CreateResources(ctx, []vitalgate.SealedResource{resource("Observation", "existing", "p1", at(0), at(0))}))
	if n := auditSize(t, st); n != 0 {
		t.Fatalf("writes without audit entries appended %d", n)
	}
	a := testDevice("dev-a")
	a.EnrollSecretHash = "hash-a"
	tests := []struct {
		name    string
		call    func(audit ...[]byte) error
		entries int    // how many audit entries to pass; 0 means 2
		code    string // wanted error code; "" for success
	}{
		{"CreateDevice", func(e ...[]byte) error { return st.CreateDevice(ctx, a, e...) }, 0, ""},
		{"CreateDevice/duplicate", func(e ...[]byte) error { return st.CreateDevice(ctx, a, e...) }, 0, vitalgate.ECONFLICT},
		{"CreateDevice/one-entry", func(e ...[]byte) error { return st.CreateDevice(ctx, testDevice("dev-c"), e...) }, 1, ""},
		{"SetEnrollSecret", func(e ...[]byte) error { return st.SetEnrollSecret(ctx, "dev-a", "hash-a2", at(60), e...) }, 0, ""},
		{"SetEnrollSecret/unknown", func(e ...[]byte) error { return st.SetEnrollSecret(ctx, "nope", "h", at(60), e...) }, 0, vitalgate.ENOTFOUND},
		{"ConsumeEnrollSecret", func(e ...[]byte) error {
			return st.ConsumeEnrollSecret(ctx, "dev-a", "hash-a2", testCert("a001", "dev-a"), e...)
		}, 0, ""},
		{"ConsumeEnrollSecret/used", func(e ...[]byte) error {
			return st.ConsumeEnrollSecret(ctx, "dev-a", "hash-a2", testCert("a002", "dev-a"), e...)
		}, 0, vitalgate.ECONFLICT},
		{"ConsumeEnrollSecret/unknown-device", func(e ...[]byte) error {
			return st.ConsumeEnrollSecret(ctx, "nope", "h", testCert("a003", "nope"), e...)
		}, 0, vitalgate.ENOTFOUND},
		// The secret matches but the serial exists: the transaction fails after its first
		// update, and must take the audit entries with it.
		{"ConsumeEnrollSecret/existing-serial", func(e ...[]byte) error {
			return st.ConsumeEnrollSecret(ctx, "dev-b", dev.EnrollSecretHash, testCert("a001", "dev-b"), e...)
		}, 0, vitalgate.ECONFLICT},
		{"AssignPatient", func(e ...[]byte) error {
			return st.AssignPatient(ctx, "dev-a", []byte("pidx-x"), []byte("sealed-x"), at(5), e...)
		}, 0, ""},
		{"AssignPatient/unknown", func(e ...[]byte) error {
			return st.AssignPatient(ctx, "nope", []byte("p"), []byte("s"), at(5), e...)
		}, 0, vitalgate.ENOTFOUND},
		{"AddCertificate", func(e ...[]byte) error { return st.AddCertificate(ctx, testCert("a004", "dev-a"), e...) }, 0, ""},
		{"AddCertificate/existing-serial", func(e ...[]byte) error { return st.AddCertificate(ctx, testCert("a004", "dev-a"), e...) }, 0, vitalgate.ECONFLICT},
		{"AddCertificate/unknown-device", func(e ...[]byte) error { return st.AddCertificate(ctx, testCert("a005", "nope"), e...) }, 0, vitalgate.ENOTFOUND},
		{"RevokeDevice", func(e ...[]byte) error { return st.RevokeDevice(ctx, "dev-a", at(90), e...) }, 0, ""},
		{"RevokeDevice/unknown", func(e ...[]byte) error { return st.RevokeDevice(ctx, "nope", at(90), e...) }, 0, vitalgate.ENOTFOUND},
		{"CreateClient", func(e ...[]byte) error {
			return st.CreateClient(ctx, vitalgate.Client{ID: "ehr-1", Role: vitalgate.RoleEHRSystem, CreatedAt: at(0),
				PatientIndexes: [][]byte{[]byte("p1")}}, e...)
		}, 0, ""},
		{"CreateClient/duplicate", func(e ...[]byte) error {
			return st.CreateClient(ctx, vitalgate.Client{ID: "ehr-1", Role: vitalgate.RoleEHRSystem, CreatedAt: at(0)}, e...)
		}, 0, vitalgate.ECONFLICT},
		{"CreateResources", func(e ...[]byte) error {
			return st.CreateResources(ctx, []vitalgate.SealedResource{
				resource("Observation", "o1", "p1", at(0), at(0), "hr"),
				resource("Observation", "o2", "p1", at(0), at(0), "hr"),
			}, e...)
		}, 0, ""},
		{"CreateResources/existing-id", func(e ...[]byte) error {
			return st.CreateResources(ctx, []vitalgate.SealedResource{
				resource("Observation", "o3", "p1", at(0), at(0)),
				resource("Observation", "existing", "p1", at(0), at(0)),
			}, e...)
		}, 0, vitalgate.ECONFLICT},
		{"CreateResources/duplicate-in-batch", func(e ...[]byte) error {
			return st.CreateResources(ctx, []vitalgate.SealedResource{
				resource("Observation", "o4", "p1", at(0), at(0)),
				resource("Observation", "o4", "p1", at(0), at(0)),
			}, e...)
		}, 0, vitalgate.ECONFLICT},
		{"CreateResources/many-entries", func(e ...[]byte) error {
			return st.CreateResources(ctx, []vitalgate.SealedResource{resource("Observation", "o5", "p1", at(0), at(0))}, e...)
		}, 20, ""},
	}
	var want [][]byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.entries
			if n == 0 {
				n = 2
			}
			es := entries(tt.name, n)
			before := auditSize(t, st)
			wantCode(t, tt.name, tt.call(es...), tt.code)
			after := auditSize(t, st)
			if tt.code != "" {
				if after != before {
					t.Errorf("failed %s appended %d audit entries, want none", tt.name, after-before)
				}
				return
			}
			want = append(want, es...)
			if after != before+uint64(n) {
				t.Fatalf("%s appended %d audit entries, want %d", tt.name, after-before, n)
			}
			var got [][]byte
			must(t, "AuditEntries", st.AuditEntries(ctx, before, after, func(r vitalgate.AuditRecord) error {
				got = append(got, r.Data)
				return nil
			}))
			if !slices.EqualFunc(got, es, bytes.Equal) {
				t.Errorf("%s appended %q, want %q", tt.name, got, es)
			}
		})
	}
	if got := auditLog(t, st); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("log\n got %q\nwant %q", got, want)
	}
	// The failed writes left nothing else behind either.
	for _, id := range []string{"o3", "o4"} {
		_, err := st.Resource(ctx, "Observation", id)
		wantCode(t, "Resource "+id+" of a failed batch", err, vitalgate.ENOTFOUND)
	}
	d, err := st.Device(ctx, "dev-b")
	must(t, "Device", err)
	if d.EnrollSecretHash != dev.EnrollSecretHash {
		t.Errorf("failed enrollment consumed dev-b's secret")
	}
}

// testAuditConcurrent: many goroutines append through CreateResources and AppendAudit at
// once, some with batches that fail. The log ends up with exactly the entries of the calls
// that succeeded, each once, indexed 0..N-1, and AppendAudit's returned index points at its
// own entries.
func (s *suite) testAuditConcurrent(t *testing.T) {
	const workers, calls = 16, 50
	st := s.store(t)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		want   = make(map[string]bool) // entries of calls that must succeed
		failed = make(map[string]bool) // entries of calls that must fail
		firsts = make(map[string]uint64)
	)
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Go(func() {
			ctx := ctxT(t)
			for c := range calls {
				name := fmt.Sprintf("w%02d-c%02d", w, c)
				switch c % 5 {
				case 0, 1: // resources with one or two audit entries
					es := entries(name, 1+c%2)
					rs := []vitalgate.SealedResource{resource("Observation", name, fmt.Sprintf("p%d", w%4), at(c), at(c), "hr")}
					if err := st.CreateResources(ctx, rs, es...); err != nil {
						errs <- fmt.Errorf("%s: CreateResources: %w", name, err)
						continue
					}
					mu.Lock()
					for _, e := range es {
						want[string(e)] = true
					}
					mu.Unlock()
				case 2, 3: // AppendAudit alone, one to three entries
					es := entries(name, 1+c%3)
					first, err := st.AppendAudit(ctx, es...)
					if err != nil {
						errs <- fmt.Errorf("%s: AppendAudit: %w", name, err)
						continue
					}
					mu.Lock()
					for k, e := range es {
						want[string(e)] = true
						firsts[string(e)] = first + uint64(k)
					}
					mu.Unlock()
				case 4: // a batch that conflicts with this worker's call c-4: nothing appended
					es := entries("fail-"+name, 2)
					rs := []vitalgate.SealedResource{
						resource("Observation", name, "p0", at(c), at(c)),
						resource("Observation", fmt.Sprintf("w%02d-c%02d", w, c-4), "p0", at(c), at(c)),
					}
					err := st.CreateResources(ctx, rs, es...)
					if code := vitalgate.ErrorCode(err); code != vitalgate.ECONFLICT {
						errs <- fmt.Errorf("%s: conflicting CreateResources = %v, want %s", name, err, vitalgate.ECONFLICT)
					}
					mu.Lock()
					for _, e := range es {
						failed[string(e)] = true
					}
					mu.Unlock()
				}
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
	seen := make(map[string]int)
	for i, e := range auditLog(t, st) {
		seen[string(e)]++
		if failed[string(e)] {
			t.Errorf("entry %d %q belongs to a failed write", i, e)
		} else if !want[string(e)] {
			t.Errorf("entry %d %q was never appended", i, e)
		}
		if idx, ok := firsts[string(e)]; ok && idx != uint64(i) {
			t.Errorf("entry %q is at index %d, AppendAudit said %d", e, i, idx)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("log holds %d distinct entries, want %d", len(seen), len(want))
	}
	for e, n := range seen {
		if n != 1 {
			t.Errorf("entry %q appears %d times", e, n)
		}
	}
	for w := range workers {
		for c := 4; c < calls; c += 5 {
			id := fmt.Sprintf("w%02d-c%02d", w, c)
			if _, err := st.Resource(ctxT(t), "Observation", id); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
				t.Errorf("resource %s of a failed batch: %v, want %s", id, err, vitalgate.ENOTFOUND)
			}
		}
	}
}

// testAuditRange: AuditEntries yields exactly the entries with from <= Index < to, in order,
// for bounds inside, at and beyond the end of the log, and stops at fn's error.
func (s *suite) testAuditRange(t *testing.T) {
	const n = 10
	st := s.store(t)
	_, err := st.AppendAudit(ctxT(t), entries("e", n)...)
	must(t, "AppendAudit", err)
	span := func(from, to uint64) []uint64 {
		var is []uint64
		for i := from; i < to && i < n; i++ {
			is = append(is, i)
		}
		return is
	}
	tests := []struct {
		name     string
		from, to uint64
	}{
		{"all", 0, n},
		{"middle", 3, 7},
		{"one", 4, 5},
		{"first", 0, 1},
		{"last", n - 1, n},
		{"empty", 5, 5},
		{"reversed", 7, 3},
		{"past-end", 8, n + 5},
		{"beyond-end", n, n + 5},
		{"far-beyond-end", n + 100, n + 200},
		{"to-max", 0, math.MaxUint64},
		{"from-max", math.MaxUint64, math.MaxUint64},
		{"tail-to-max", n - 2, math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			must(t, "AuditEntries", st.AuditEntries(ctxT(t), tt.from, tt.to, func(r vitalgate.AuditRecord) error {
				if want := fmt.Sprintf("e/%d", r.Index); string(r.Data) != want {
					t.Errorf("entry %d = %q, want %q", r.Index, r.Data, want)
				}
				got = append(got, r.Index)
				return nil
			}))
			if want := span(tt.from, tt.to); !slices.Equal(got, want) {
				t.Errorf("AuditEntries(%d, %d) yields %v, want %v", tt.from, tt.to, got, want)
			}
		})
	}
	t.Run("stop", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := st.AuditEntries(ctxT(t), 0, n, func(vitalgate.AuditRecord) error {
			calls++
			if calls == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Errorf("AuditEntries = %v, want fn's error", err)
		}
		if calls != 2 {
			t.Errorf("fn called %d times, want 2", calls)
		}
	})
}

// testAuditCheckpoints: checkpoints come back in ascending size order, and a second
// checkpoint for a size is ignored without error.
func (s *suite) testAuditCheckpoints(t *testing.T) {
	st := s.store(t)
	_, err := st.AppendAudit(ctxT(t), entries("e", 10)...)
	must(t, "AppendAudit", err)
	note := func(size uint64, signer string) []byte {
		return fmt.Appendf(nil, "vitalgate.example/audit\n%d\nroot\n\n— %s sig\n", size, signer)
	}
	for i, size := range []uint64{5, 2, 10, 0, 7} {
		must(t, "AddAuditCheckpoint", st.AddAuditCheckpoint(ctxT(t), vitalgate.AuditCheckpoint{
			Size: size, Note: note(size, "node-a"), CreatedAt: at(i),
		}))
	}
	// Another node signs size 5 too: ignored, the first one stays.
	must(t, "AddAuditCheckpoint duplicate size", st.AddAuditCheckpoint(ctxT(t), vitalgate.AuditCheckpoint{
		Size: 5, Note: note(5, "node-b"), CreatedAt: at(50),
	}))
	cs, err := st.AuditCheckpoints(ctxT(t))
	must(t, "AuditCheckpoints", err)
	want := []struct {
		size    uint64
		created time.Time
	}{{0, at(3)}, {2, at(1)}, {5, at(0)}, {7, at(4)}, {10, at(2)}}
	if len(cs) != len(want) {
		t.Fatalf("AuditCheckpoints returns %d checkpoints, want %d", len(cs), len(want))
	}
	for i, w := range want {
		c := cs[i]
		if c.Size != w.size {
			t.Errorf("checkpoint %d has size %d, want %d (ascending)", i, c.Size, w.size)
			continue
		}
		checkBytes(t, fmt.Sprintf("Note of size %d", c.Size), c.Note, note(w.size, "node-a"))
		checkTime(t, fmt.Sprintf("CreatedAt of size %d", c.Size), c.CreatedAt, w.created)
	}
}

// searchEntry is a canonical audit entry (package audit's encoding) with the searchable
// members set.
func searchEntry(t time.Time, agent, action, outcome, patient, tag string) []byte {
	return audit.Entry{Time: t, Action: action, Type: "rest", Subtype: tag, Outcome: outcome,
		AgentType: audit.AgentClient, AgentID: agent, PatientIndex: patient}.Marshal()
}

// searchIndexes runs AuditSearch and returns the indexes it yields, checking that each
// record's data is the stored entry.
func searchIndexes(t *testing.T, st vitalgate.Store, q vitalgate.AuditQuery, log [][]byte) []uint64 {
	t.Helper()
	var got []uint64
	must(t, "AuditSearch", st.AuditSearch(ctxT(t), q, func(r vitalgate.AuditRecord) error {
		if r.Index >= uint64(len(log)) || !bytes.Equal(r.Data, log[r.Index]) {
			return fmt.Errorf("record %d holds %q, not the stored entry", r.Index, r.Data)
		}
		got = append(got, r.Index)
		return nil
	}))
	return got
}

// testAuditSearch: AuditSearch finds entries by patient, agent, action, outcome and time
// (to the nanosecond, From inclusive, To exclusive), each combination, newest first, at most
// Limit; entries that are not audit JSON are not indexed; a bad limit is EINVALID.
func (s *suite) testAuditSearch(t *testing.T) {
	st := s.store(t)
	ns := func(m int, n int) time.Time { return at(m).Add(time.Duration(n)) }
	log := [][]byte{
		searchEntry(ns(0, 0), "ehr-1", "R", "0", "aa01", "0"),                                 // 0
		searchEntry(ns(1, 0), "ehr-2", "R", "4", "aa01", "1"),                                 // 1
		[]byte("not an audit entry"),                                                          // 2
		searchEntry(ns(2, 0), "ehr-1", "C", "0", "bb02", "3"),                                 // 3
		searchEntry(ns(2, 1), "ehr-1", "R", "0", "", "4"),                                     // 4: 1 ns later
		[]byte(`{"time":"broken`),                                                             // 5
		searchEntry(ns(3, 0), "dev-1", "C", "0", "aa01", "6"),                                 // 6
		searchEntry(time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC), "ehr-2", "E", "8", "", "7"), // 7: whole second
	}
	_, err := st.AppendAudit(ctxT(t), log...)
	must(t, "AppendAudit", err)
	tests := []struct {
		name string
		q    vitalgate.AuditQuery
		want []uint64
	}{
		{"all", vitalgate.AuditQuery{Limit: 100}, []uint64{7, 6, 4, 3, 1, 0}},
		{"limit", vitalgate.AuditQuery{Limit: 2}, []uint64{7, 6}},
		{"patient", vitalgate.AuditQuery{PatientIndex: "aa01", Limit: 100}, []uint64{6, 1, 0}},
		{"patient limit", vitalgate.AuditQuery{PatientIndex: "aa01", Limit: 1}, []uint64{6}},
		{"unknown patient", vitalgate.AuditQuery{PatientIndex: "ffff", Limit: 100}, nil},
		{"agent", vitalgate.AuditQuery{AgentID: "ehr-1", Limit: 100}, []uint64{4, 3, 0}},
		{"action", vitalgate.AuditQuery{Action: "C", Limit: 100}, []uint64{6, 3}},
		{"outcome", vitalgate.AuditQuery{Outcome: "4", Limit: 100}, []uint64{1}},
		{"patient and agent", vitalgate.AuditQuery{PatientIndex: "aa01", AgentID: "ehr-2", Limit: 100}, []uint64{1}},
		{"agent and action", vitalgate.AuditQuery{AgentID: "ehr-1", Action: "R", Limit: 100}, []uint64{4, 0}},
		{"agent and outcome", vitalgate.AuditQuery{AgentID: "ehr-2", Outcome: "8", Limit: 100}, []uint64{7}},
		{"patient and time", vitalgate.AuditQuery{PatientIndex: "aa01", From: at(1), Limit: 100}, []uint64{6, 1}},
		{"from inclusive to the nanosecond", vitalgate.AuditQuery{From: ns(2, 1), Limit: 100}, []uint64{6, 4}},
		{"to exclusive to the nanosecond", vitalgate.AuditQuery{From: at(2), To: ns(2, 1), Limit: 100}, []uint64{3}},
		{"time range, latest first", vitalgate.AuditQuery{From: at(1), To: at(3), Limit: 100}, []uint64{4, 3, 1}},
		{"to only", vitalgate.AuditQuery{To: at(0).Add(time.Nanosecond), Limit: 100}, []uint64{0, 7}},
		{"whole-second time", vitalgate.AuditQuery{From: time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 3, 14, 0, 0, 1, 0, time.UTC), Limit: 100}, []uint64{7}},
		{"action and time", vitalgate.AuditQuery{Action: "R", To: at(2), Limit: 100}, []uint64{1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := searchIndexes(t, st, tt.q, log); !slices.Equal(got, tt.want) {
				t.Errorf("AuditSearch(%+v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
	for _, limit := range []int{0, -1, vitalgate.MaxAuditSearch + 1} {
		err := st.AuditSearch(ctxT(t), vitalgate.AuditQuery{Limit: limit}, func(vitalgate.AuditRecord) error { return nil })
		wantCode(t, fmt.Sprintf("AuditSearch with limit %d", limit), err, vitalgate.EINVALID)
	}
	stop := errors.New("stop")
	if err := st.AuditSearch(ctxT(t), vitalgate.AuditQuery{Limit: 10}, func(vitalgate.AuditRecord) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("AuditSearch = %v, want fn's error", err)
	}
}

// testAuditSearchWithWrites: entries appended by a write are searchable as soon as the
// write returns (the index is written in its transaction), and a failed write leaves
// nothing searchable.
func (s *suite) testAuditSearchWithWrites(t *testing.T) {
	st := s.store(t)
	ctx := ctxT(t)
	ok := searchEntry(at(0), "dev-1", "C", "0", "cc03", "ok")
	must(t, "CreateResources", st.CreateResources(ctx, []vitalgate.SealedResource{resource("Observation", "o1", "p1", at(0), at(0))}, ok))
	failed := searchEntry(at(1), "dev-1", "C", "0", "cc03", "failed")
	err := st.CreateResources(ctx, []vitalgate.SealedResource{resource("Observation", "o1", "p1", at(0), at(0))}, failed)
	wantCode(t, "CreateResources with an existing id", err, vitalgate.ECONFLICT)
	var got [][]byte
	must(t, "AuditSearch", st.AuditSearch(ctx, vitalgate.AuditQuery{PatientIndex: "cc03", Limit: 10}, func(r vitalgate.AuditRecord) error {
		got = append(got, r.Data)
		return nil
	}))
	if !slices.EqualFunc(got, [][]byte{ok}, bytes.Equal) {
		t.Errorf("AuditSearch after a write and a failed write = %q, want the written entry only", got)
	}
}

// testOutboxCursor: a cursor starts at 0, is kept per destination, only moves forward, and
// refuses an empty destination.
func (s *suite) testOutboxCursor(t *testing.T) {
	st := s.store(t)
	ctx := ctxT(t)
	cursor := func(dest string) uint64 {
		t.Helper()
		n, err := st.OutboxCursor(ctx, dest)
		must(t, "OutboxCursor", err)
		return n
	}
	steps := []struct {
		name string
		dest string
		set  uint64
		want uint64
	}{
		{"first", "syslog:a:6514", 10, 10},
		{"forward", "syslog:a:6514", 25, 25},
		{"backward is ignored", "syslog:a:6514", 5, 25},
		{"other destination", "syslog:b:6514", 3, 3},
	}
	if n := cursor("syslog:a:6514"); n != 0 {
		t.Errorf("new cursor = %d, want 0", n)
	}
	for _, st2 := range steps {
		t.Run(st2.name, func(t *testing.T) {
			must(t, "SetOutboxCursor", st.SetOutboxCursor(ctx, st2.dest, st2.set))
			if n := cursor(st2.dest); n != st2.want {
				t.Errorf("cursor %s = %d, want %d", st2.dest, n, st2.want)
			}
		})
	}
	if n := cursor("syslog:a:6514"); n != 25 {
		t.Errorf("cursor of a = %d after b moved, want 25", n)
	}
	wantCode(t, "SetOutboxCursor with no destination", st.SetOutboxCursor(ctx, "", 1), vitalgate.EINVALID)
	all, err := st.OutboxCursors(ctx)
	must(t, "OutboxCursors", err)
	if len(all) != 2 || all["syslog:a:6514"] != 25 || all["syslog:b:6514"] != 3 {
		t.Errorf("OutboxCursors = %v, want a at 25 and b at 3", all)
	}
}

// testOutboxClaim: one holder at a time has a destination's lease; it renews its own, and
// another takes it over once it expired; leases of two destinations are apart; bad
// arguments are EINVALID.
func (s *suite) testOutboxClaim(t *testing.T) {
	st := s.store(t)
	ctx := ctxT(t)
	steps := []struct {
		name, dest, holder string
		ttl                time.Duration
		want               bool
	}{
		{"first holder takes it", "webhook:a", "node-1", time.Hour, true},
		{"another is refused", "webhook:a", "node-2", time.Hour, false},
		{"the holder renews", "webhook:a", "node-1", time.Hour, true},
		{"another destination is apart", "webhook:b", "node-2", time.Hour, true},
		{"a short lease", "webhook:c", "node-1", time.Millisecond, true},
	}
	for _, c := range steps {
		got, err := st.ClaimOutbox(ctx, c.dest, c.holder, c.ttl)
		must(t, "ClaimOutbox "+c.name, err)
		if got != c.want {
			t.Errorf("%s: ClaimOutbox(%s, %s) = %v, want %v", c.name, c.dest, c.holder, got, c.want)
		}
	}
	time.Sleep(5 * time.Millisecond) // the 1 ms lease of webhook:c is over on any clock
	if got, err := st.ClaimOutbox(ctx, "webhook:c", "node-2", time.Hour); err != nil || !got {
		t.Errorf("ClaimOutbox of an expired lease = %v, %v; want true", got, err)
	}
	if got, err := st.ClaimOutbox(ctx, "webhook:c", "node-1", time.Hour); err != nil || got {
		t.Errorf("ClaimOutbox by the former holder after a takeover = %v, %v; want false", got, err)
	}
	for _, c := range []struct {
		name, dest, holder string
		ttl                time.Duration
	}{{"no destination", "", "n", time.Second}, {"no holder", "d", "", time.Second},
		{"no ttl", "d", "n", 0}, {"ttl too long", "d", "n", 2 * time.Hour}} {
		_, err := st.ClaimOutbox(ctx, c.dest, c.holder, c.ttl)
		wantCode(t, "ClaimOutbox with "+c.name, err, vitalgate.EINVALID)
	}
}
