package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// exportTests are the conformance tests of vitalgate.ExportStore (migrations sqlite 0032,
// postgres 0029).
func (s *suite) exportTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Export/Lifecycle", s.testExportLifecycle},
		{"Export/ClaimOnce", s.testExportClaimOnce},
		{"Export/Takeover", s.testExportTakeover},
		{"Export/CancelAndExpire", s.testExportCancelAndExpire},
	}
}

// exportStore opens a store that must implement vitalgate.ExportStore.
func (s *suite) exportStore(t *testing.T) (vitalgate.Store, vitalgate.ExportStore) {
	t.Helper()
	st := s.store(t)
	es, ok := st.(vitalgate.ExportStore)
	if !ok {
		t.Fatalf("%T does not implement vitalgate.ExportStore", st)
	}
	return st, es
}

func testExportJob(id string, minute int) vitalgate.ExportJob {
	return vitalgate.ExportJob{ID: id, Client: "ehr-1", Site: "default", Request: "https://vg/fhir/Patient/$export?_type=Observation",
		Group: "careteam-dr-lee", Types: []string{"Patient", "Observation"}, Since: at(-60),
		Filters:    []vitalgate.ExportFilter{{Type: "Observation", Code: "http://loinc.org|8867-4", From: at(-30)}},
		WrappedKey: []byte("wrapped-" + id), CreatedAt: at(minute), ExpiresAt: at(minute + 24*60)}
}

// chunksOf returns the sealed chunks of a job's file, in order.
func chunksOf(t *testing.T, es vitalgate.ExportStore, id string, file int) []string {
	t.Helper()
	var out []string
	must(t, "ExportChunks", es.ExportChunks(ctxT(t), id, file, func(seq int, sealed []byte) error {
		if seq != len(out) {
			t.Errorf("chunk %d came as number %d", seq, len(out))
		}
		out = append(out, string(sealed))
		return nil
	}))
	return out
}

// testExportLifecycle: a job round-trips, is claimed, renewed, filled and finished with its
// audit entries; a finished job is claimed no more; only its owner writes to it.
func (s *suite) testExportLifecycle(t *testing.T) {
	st, es := s.exportStore(t)
	ctx := ctxT(t)
	j := testExportJob("x-1", 0)
	wantCode(t, "CreateExportJob without a key", es.CreateExportJob(ctx, vitalgate.ExportJob{ID: "x", Client: "c", Types: []string{"Patient"}}), vitalgate.EINVALID)
	must(t, "CreateExportJob", es.CreateExportJob(ctx, j, []byte("kick-off")))
	wantCode(t, "CreateExportJob again", es.CreateExportJob(ctx, j), vitalgate.ECONFLICT)
	got, err := es.ExportJob(ctx, "x-1")
	must(t, "ExportJob", err)
	if got.Status != vitalgate.ExportQueued || got.Client != j.Client || got.Site != j.Site || got.Request != j.Request ||
		got.Group != j.Group || !slices.Equal(got.Types, j.Types) || len(got.Filters) != 1 ||
		got.Filters[0].Code != j.Filters[0].Code || !got.Filters[0].From.Equal(j.Filters[0].From) || string(got.WrappedKey) != "wrapped-x-1" {
		t.Errorf("ExportJob = %+v, want %+v queued", got, j)
	}
	checkTime(t, "Since", got.Since, j.Since)
	checkTime(t, "CreatedAt", got.CreatedAt, j.CreatedAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, j.ExpiresAt)
	_, err = es.ExportJob(ctx, "nope")
	wantCode(t, "ExportJob of an unknown id", err, vitalgate.ENOTFOUND)

	wantCode(t, "PutExportChunk before a claim", es.PutExportChunk(ctx, "x-1", "node-a/1", 0, 0, []byte("c")), vitalgate.ECONFLICT)
	c, err := es.ClaimExportJob(ctx, "node-a/1", at(1), at(2))
	must(t, "ClaimExportJob", err)
	if c.ID != "x-1" || c.Status != vitalgate.ExportRunning || c.Owner != "node-a/1" {
		t.Errorf("claimed %+v, want x-1 running for node-a/1", c)
	}
	checkTime(t, "LeaseUntil", c.LeaseUntil, at(2))
	_, err = es.ClaimExportJob(ctx, "node-b/1", at(1), at(2))
	wantCode(t, "ClaimExportJob of a job under lease", err, vitalgate.ENOTFOUND)
	must(t, "RenewExportLease", es.RenewExportLease(ctx, "x-1", "node-a/1", at(3), "Observation: 10"))
	wantCode(t, "RenewExportLease by another run", es.RenewExportLease(ctx, "x-1", "node-b/1", at(3), ""), vitalgate.ECONFLICT)
	if got, _ := es.ExportJob(ctx, "x-1"); got.Progress != "Observation: 10" || !sameTime(got.LeaseUntil, at(3)) {
		t.Errorf("after renewal: progress %q lease %v", got.Progress, got.LeaseUntil)
	}
	for f, chunks := range [][]string{{"p0"}, {"o0", "o1", "o2"}} {
		for i, ch := range chunks {
			must(t, "PutExportChunk", es.PutExportChunk(ctx, "x-1", "node-a/1", f, i, []byte(ch)))
		}
	}
	wantCode(t, "PutExportChunk by another run", es.PutExportChunk(ctx, "x-1", "node-b/1", 0, 1, []byte("x")), vitalgate.ECONFLICT)
	if n := len(chunksOf(t, es, "x-1", 1)); n != 0 {
		t.Errorf("a running job serves %d chunks, want none until it is done", n)
	}
	before := auditSize(t, st)
	done := c
	done.Status, done.DoneAt, done.ExpiresAt = vitalgate.ExportDone, at(4), at(4+24*60)
	done.Files = []vitalgate.ExportFile{{Seq: 0, Type: "Patient", Count: 1}, {Seq: 1, Type: "Observation", Count: 3}}
	other := done
	other.Owner = "node-b/1"
	wantCode(t, "FinishExportJob by another run", es.FinishExportJob(ctx, other, []byte("x")), vitalgate.ECONFLICT)
	if auditSize(t, st) != before {
		t.Error("a refused finish appended its audit entry")
	}
	must(t, "FinishExportJob", es.FinishExportJob(ctx, done, []byte("done")))
	if auditSize(t, st) != before+1 {
		t.Error("FinishExportJob did not append its audit entry")
	}
	got, err = es.ExportJob(ctx, "x-1")
	must(t, "ExportJob", err)
	if got.Status != vitalgate.ExportDone || !slices.Equal(got.Files, done.Files) || got.Progress != "" {
		t.Errorf("finished job = %+v", got)
	}
	checkTime(t, "DoneAt", got.DoneAt, at(4))
	checkTime(t, "ExpiresAt", got.ExpiresAt, at(4+24*60))
	if got := chunksOf(t, es, "x-1", 1); !slices.Equal(got, []string{"o0", "o1", "o2"}) {
		t.Errorf("file 1 chunks = %q", got)
	}
	_, err = es.ClaimExportJob(ctx, "node-b/1", at(100), at(101))
	wantCode(t, "ClaimExportJob of a finished job", err, vitalgate.ENOTFOUND)
	wantCode(t, "RenewExportLease of a finished job", es.RenewExportLease(ctx, "x-1", "node-a/1", at(5), ""), vitalgate.ECONFLICT)

	failed := testExportJob("x-2", 10)
	must(t, "CreateExportJob", es.CreateExportJob(ctx, failed))
	c, err = es.ClaimExportJob(ctx, "node-a/2", at(11), at(12))
	must(t, "ClaimExportJob", err)
	c.Status, c.Error = vitalgate.ExportFailed, "the client was disabled"
	must(t, "FinishExportJob failed", es.FinishExportJob(ctx, c))
	if got, _ := es.ExportJob(ctx, "x-2"); got.Status != vitalgate.ExportFailed || got.Error != c.Error {
		t.Errorf("failed job = %+v", got)
	}
	c.Status = vitalgate.ExportRunning
	wantCode(t, "FinishExportJob as running", es.FinishExportJob(ctx, c), vitalgate.EINVALID)
}

// testExportClaimOnce: of many runs claiming at once, exactly one gets each job, oldest
// first.
func (s *suite) testExportClaimOnce(t *testing.T) {
	_, es := s.exportStore(t)
	ctx := ctxT(t)
	const jobs, runs = 5, 12
	for i := range jobs {
		must(t, "CreateExportJob", es.CreateExportJob(ctx, testExportJob(fmt.Sprintf("c-%d", i), i)))
	}
	var (
		mu  sync.Mutex
		got = map[string]string{}
		wg  sync.WaitGroup
	)
	for r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("node-%d/1", r)
			j, err := es.ClaimExportJob(ctx, owner, at(30), at(31))
			if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
				return
			}
			if err != nil {
				t.Errorf("ClaimExportJob: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := got[j.ID]; ok {
				t.Errorf("job %s claimed by %s and %s", j.ID, prev, owner)
			}
			got[j.ID] = owner
		}()
	}
	wg.Wait()
	if len(got) != jobs {
		t.Errorf("%d of %d jobs claimed: %v", len(got), jobs, got)
	}
}

// testExportTakeover: a job whose lease ran out is claimed by another run; the first run can
// no longer write, and the files are those of the run that finished it.
func (s *suite) testExportTakeover(t *testing.T) {
	_, es := s.exportStore(t)
	ctx := ctxT(t)
	must(t, "CreateExportJob", es.CreateExportJob(ctx, testExportJob("t-1", 0)))
	a, err := es.ClaimExportJob(ctx, "node-a/1", at(1), at(2))
	must(t, "ClaimExportJob", err)
	must(t, "PutExportChunk", es.PutExportChunk(ctx, "t-1", a.Owner, 0, 0, []byte("stale-0")))
	must(t, "PutExportChunk", es.PutExportChunk(ctx, "t-1", a.Owner, 0, 1, []byte("stale-1")))
	_, err = es.ClaimExportJob(ctx, "node-b/1", at(2).Add(-time.Second), at(3))
	wantCode(t, "ClaimExportJob before the lease ran out", err, vitalgate.ENOTFOUND)
	b, err := es.ClaimExportJob(ctx, "node-b/1", at(2).Add(time.Second), at(5))
	must(t, "ClaimExportJob after the lease ran out", err)
	if b.ID != "t-1" || b.Owner != "node-b/1" {
		t.Fatalf("takeover claimed %+v", b)
	}
	wantCode(t, "RenewExportLease by the first run", es.RenewExportLease(ctx, "t-1", a.Owner, at(6), ""), vitalgate.ECONFLICT)
	wantCode(t, "PutExportChunk by the first run", es.PutExportChunk(ctx, "t-1", a.Owner, 0, 2, []byte("x")), vitalgate.ECONFLICT)
	must(t, "PutExportChunk", es.PutExportChunk(ctx, "t-1", b.Owner, 0, 0, []byte("b-0")))
	a.Status, a.ExpiresAt = vitalgate.ExportDone, at(99)
	wantCode(t, "FinishExportJob by the first run", es.FinishExportJob(ctx, a), vitalgate.ECONFLICT)
	b.Status, b.ExpiresAt, b.Files = vitalgate.ExportDone, at(99), []vitalgate.ExportFile{{Type: "Patient", Count: 1}}
	must(t, "FinishExportJob", es.FinishExportJob(ctx, b))
	if got := chunksOf(t, es, "t-1", 0); !slices.Equal(got, []string{"b-0"}) {
		t.Errorf("file 0 = %q, want the finishing run's chunk only", got)
	}
}

// testExportCancelAndExpire: a cancelled job keeps no chunks and is cancelled once; expired
// jobs are deleted with their chunks, others stay.
func (s *suite) testExportCancelAndExpire(t *testing.T) {
	st, es := s.exportStore(t)
	ctx := ctxT(t)
	must(t, "CreateExportJob", es.CreateExportJob(ctx, testExportJob("k-1", 0)))
	c, err := es.ClaimExportJob(ctx, "node-a/1", at(1), at(2))
	must(t, "ClaimExportJob", err)
	must(t, "PutExportChunk", es.PutExportChunk(ctx, "k-1", c.Owner, 0, 0, []byte("c")))
	before := auditSize(t, st)
	must(t, "CancelExportJob", es.CancelExportJob(ctx, "k-1", at(3), []byte("cancel")))
	if auditSize(t, st) != before+1 {
		t.Error("CancelExportJob did not append its audit entry")
	}
	wantCode(t, "CancelExportJob again", es.CancelExportJob(ctx, "k-1", at(3)), vitalgate.ECONFLICT)
	wantCode(t, "CancelExportJob of an unknown job", es.CancelExportJob(ctx, "nope", at(3)), vitalgate.ENOTFOUND)
	wantCode(t, "RenewExportLease of a cancelled job", es.RenewExportLease(ctx, "k-1", c.Owner, at(4), ""), vitalgate.ECONFLICT)
	wantCode(t, "PutExportChunk to a cancelled job", es.PutExportChunk(ctx, "k-1", c.Owner, 0, 1, []byte("c")), vitalgate.ECONFLICT)
	if got, _ := es.ExportJob(ctx, "k-1"); got.Status != vitalgate.ExportCancelled {
		t.Errorf("cancelled job status %s", got.Status)
	}

	must(t, "CreateExportJob", es.CreateExportJob(ctx, testExportJob("k-2", 10)))
	must(t, "CreateExportJob", es.CreateExportJob(ctx, testExportJob("k-3", 2000)))
	ids, err := es.DeleteExpiredExports(ctx, at(10+24*60+1))
	must(t, "DeleteExpiredExports", err)
	if !slices.Equal(ids, []string{"k-1", "k-2"}) {
		t.Errorf("DeleteExpiredExports = %v, want k-1 and k-2", ids)
	}
	_, err = es.ExportJob(ctx, "k-2")
	wantCode(t, "ExportJob of an expired job", err, vitalgate.ENOTFOUND)
	if _, err := es.ExportJob(ctx, "k-3"); err != nil {
		t.Errorf("a job not yet expired is gone: %v", err)
	}
}
