package storetest

import (
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
)

// postureTests are the conformance tests of vitalgate.PostureStore (migration sqlite 0027,
// postgres 0024): documents by kind and key, replaced in place, listed in key order, with
// audit entries atomic with each write.
func (s *suite) postureTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Posture/PutList", s.testPosturePutList},
		{"Posture/Invalid", s.testPostureInvalid},
	}
}

func (s *suite) postureStore(t *testing.T) (vitalgate.Store, vitalgate.PostureStore) {
	t.Helper()
	st := s.store(t)
	ps, ok := st.(vitalgate.PostureStore)
	if !ok {
		t.Fatalf("%T does not implement vitalgate.PostureStore", st)
	}
	return st, ps
}

func (s *suite) testPosturePutList(t *testing.T) {
	st, ps := s.postureStore(t)
	docs := []vitalgate.PostureDoc{
		{Kind: "advisory", Key: "GO-2023-2102", Data: []byte(`{"id":"GO-2023-2102"}`), UpdatedAt: at(1)},
		{Kind: "advisory", Key: "GO-2022-0535", Data: []byte(`{"id":"GO-2022-0535"}`), UpdatedAt: at(2)},
		{Kind: "sbom", Key: "VM-100/1.0.0", Data: []byte(`{"bomFormat":"CycloneDX"}`), UpdatedAt: at(3)},
	}
	must(t, "PutPostureDocs", ps.PutPostureDocs(ctxT(t), docs, entries("posture", 2)...))
	if n := auditSize(t, st); n != 2 {
		t.Errorf("audit size %d after a write with two entries, want 2", n)
	}
	got, err := ps.PostureDocs(ctxT(t), "advisory")
	must(t, "PostureDocs", err)
	if len(got) != 2 || got[0].Key != "GO-2022-0535" || got[1].Key != "GO-2023-2102" {
		t.Fatalf("PostureDocs(advisory) = %+v, want the two advisories in key order", got)
	}
	checkBytes(t, "Data", got[0].Data, docs[1].Data)
	checkTime(t, "UpdatedAt", got[0].UpdatedAt, at(2))
	// Replaced in place by kind and key; other kinds untouched.
	must(t, "PutPostureDocs(replace)", ps.PutPostureDocs(ctxT(t), []vitalgate.PostureDoc{
		{Kind: "advisory", Key: "GO-2022-0535", Data: []byte(`{"id":"GO-2022-0535","modified":"x"}`), UpdatedAt: at(5)}}))
	got, err = ps.PostureDocs(ctxT(t), "advisory")
	must(t, "PostureDocs", err)
	if len(got) != 2 || !strings.Contains(string(got[0].Data), "modified") {
		t.Fatalf("after a replace: %+v", got)
	}
	checkTime(t, "UpdatedAt after replace", got[0].UpdatedAt, at(5))
	sb, err := ps.PostureDocs(ctxT(t), "sbom")
	must(t, "PostureDocs(sbom)", err)
	if len(sb) != 1 || sb[0].Key != "VM-100/1.0.0" {
		t.Fatalf("PostureDocs(sbom) = %+v", sb)
	}
	none, err := ps.PostureDocs(ctxT(t), "vex")
	must(t, "PostureDocs(vex)", err)
	if len(none) != 0 {
		t.Errorf("PostureDocs(vex) = %+v, want none", none)
	}
}

func (s *suite) testPostureInvalid(t *testing.T) {
	st, ps := s.postureStore(t)
	for name, d := range map[string]vitalgate.PostureDoc{
		"no kind":  {Key: "k", Data: []byte("{}")},
		"no key":   {Kind: "kev", Data: []byte("{}")},
		"no data":  {Kind: "kev", Key: "CVE-2023-44487"},
		"long key": {Kind: "kev", Key: strings.Repeat("k", vitalgate.MaxPostureKeyBytes+1), Data: []byte("{}")},
	} {
		// A valid document first: nothing of the batch may be kept, nor its audit entry.
		err := ps.PutPostureDocs(ctxT(t), []vitalgate.PostureDoc{{Kind: "kev", Key: "ok", Data: []byte("{}")}, d}, entries("bad", 1)...)
		wantCode(t, name, err, vitalgate.EINVALID)
	}
	if n := auditSize(t, st); n != 0 {
		t.Errorf("audit size %d after refused writes, want 0", n)
	}
	if got, _ := ps.PostureDocs(ctxT(t), "kev"); len(got) != 0 {
		t.Errorf("a refused batch left %+v", got)
	}
}
