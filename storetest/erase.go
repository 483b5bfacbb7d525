package storetest

import (
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// erasureStore returns st as an ErasureStore, failing t if it is not one.
func erasureStore(t *testing.T, st vitalgate.Store) vitalgate.ErasureStore {
	t.Helper()
	es, ok := st.(vitalgate.ErasureStore)
	if !ok {
		t.Fatalf("%T does not implement vitalgate.ErasureStore", st)
	}
	return es
}

func siteResource(typ, id, patient string, codes ...string) vitalgate.SealedResource {
	r := resource(typ, id, patient, at(0), at(0), codes...)
	r.Site = vitalgate.DefaultSite
	return r
}

// testErasePatient: an approved erasure deletes the patient's data key, resources and index
// rows, in one transaction with its audit entry, and leaves every other patient and every
// audit entry in place.
func (s *suite) testErasePatient(t *testing.T) {
	st := s.store(t)
	es := erasureStore(t, st)
	ctx := ctxT(t)
	for _, p := range []string{"gone", "kept"} {
		pat := siteResource("Patient", "pat-"+p, p)
		pat.IdentifierIndexes = [][]byte{[]byte("mrn|" + p)}
		must(t, "CreateResources", st.CreateResources(ctx, []vitalgate.SealedResource{pat,
			siteResource("Observation", "obs-"+p, p, "loinc|8867-4")}, []byte(`{"entry":"`+p+`"}`)))
		if _, err := st.PutDataKey(ctx, vitalgate.DataKey{Site: vitalgate.DefaultSite, PatientIndex: []byte(p), Wrapped: []byte("wrapped-" + p), CreatedAt: at(0)}); err != nil {
			t.Fatalf("PutDataKey: %v", err)
		}
	}
	before, err := st.AuditSize(ctx)
	must(t, "AuditSize", err)

	req := vitalgate.ErasureRequest{ID: "er-1", Site: vitalgate.DefaultSite, PatientIndex: []byte("gone"), Reason: "patient's request", RequestedBy: "alice", RequestedAt: at(1)}
	must(t, "CreateErasureRequest", es.CreateErasureRequest(ctx, req))
	wantCode(t, "CreateErasureRequest again", es.CreateErasureRequest(ctx, req), vitalgate.ECONFLICT)
	got, err := es.ErasureRequest(ctx, "er-1")
	must(t, "ErasureRequest", err)
	if got.RequestedBy != "alice" || got.Reason != req.Reason || got.ApprovedBy != "" || !got.RequestedAt.Equal(at(1).Truncate(time.Microsecond)) || string(got.PatientIndex) != "gone" {
		t.Fatalf("ErasureRequest = %+v", got)
	}
	_, err = es.ErasureRequest(ctx, "nope")
	wantCode(t, "ErasureRequest(unknown)", err, vitalgate.ENOTFOUND)

	// The requester cannot approve; a legal hold blocks until released.
	_, err = es.ErasePatient(ctx, "er-1", "alice", at(2))
	wantCode(t, "ErasePatient by requester", err, vitalgate.EFORBIDDEN)
	hold := vitalgate.LegalHold{Site: vitalgate.DefaultSite, PatientIndex: []byte("gone"), Reason: "litigation", PlacedBy: "carol", PlacedAt: at(2)}
	must(t, "PutLegalHold", es.PutLegalHold(ctx, hold))
	wantCode(t, "PutLegalHold again", es.PutLegalHold(ctx, hold), vitalgate.ECONFLICT)
	h, err := es.LegalHold(ctx, vitalgate.DefaultSite, []byte("gone"))
	must(t, "LegalHold", err)
	if h.PlacedBy != "carol" || h.Reason != "litigation" {
		t.Fatalf("LegalHold = %+v", h)
	}
	_, err = es.ErasePatient(ctx, "er-1", "bob", at(3), []byte(`{"entry":"erased"}`))
	wantCode(t, "ErasePatient under hold", err, vitalgate.ECONFLICT)
	if _, err := st.DataKey(ctx, []byte("gone")); err != nil {
		t.Fatalf("a refused erasure deleted the data key: %v", err)
	}
	must(t, "ReleaseLegalHold", es.ReleaseLegalHold(ctx, vitalgate.DefaultSite, []byte("gone")))
	wantCode(t, "ReleaseLegalHold again", es.ReleaseLegalHold(ctx, vitalgate.DefaultSite, []byte("gone")), vitalgate.ENOTFOUND)

	n, err := es.ErasePatient(ctx, "er-1", "bob", at(4), []byte(`{"entry":"erased"}`))
	must(t, "ErasePatient", err)
	if n.DataKeys != 1 || n.Resources != 2 {
		t.Fatalf("ErasePatient = %+v, want 1 data key and 2 resources", n)
	}
	_, err = es.ErasePatient(ctx, "er-1", "dave", at(5))
	wantCode(t, "ErasePatient twice", err, vitalgate.ECONFLICT)
	got, err = es.ErasureRequest(ctx, "er-1")
	must(t, "ErasureRequest", err)
	if got.ApprovedBy != "bob" || !got.ApprovedAt.Equal(at(4).Truncate(time.Microsecond)) {
		t.Fatalf("approved request = %+v", got)
	}

	_, err = st.DataKey(ctx, []byte("gone"))
	wantCode(t, "DataKey(erased)", err, vitalgate.ENOTFOUND)
	for _, id := range [][2]string{{"Patient", "pat-gone"}, {"Observation", "obs-gone"}} {
		_, err := st.Resource(ctx, id[0], id[1])
		wantCode(t, "Resource("+id[1]+")", err, vitalgate.ENOTFOUND)
	}
	for _, id := range [][2]string{{"Patient", "pat-kept"}, {"Observation", "obs-kept"}} {
		_, err := st.Resource(ctx, id[0], id[1])
		must(t, "Resource("+id[1]+")", err)
	}
	if _, err := st.DataKey(ctx, []byte("kept")); err != nil {
		t.Fatalf("DataKey(kept): %v", err)
	}
	// The identifier index row is gone: a new Patient may take the identifier.
	again := siteResource("Patient", "pat-new", "new")
	again.IdentifierIndexes = [][]byte{[]byte("mrn|gone")}
	must(t, "CreateResources(identifier of the erased)", st.CreateResources(ctx, []vitalgate.SealedResource{again}))
	// Audit entries stay; the erasure's own entry is appended.
	after, err := st.AuditSize(ctx)
	must(t, "AuditSize", err)
	if after != before+1 {
		t.Fatalf("audit size %d after erasure, want %d", after, before+1)
	}
}

// testRetireKEKs: once a KEK is retired, PutDataKeyUnder refuses a data key under it with
// ECONFLICT and stores nothing, while other KEKs and other keyrings still take keys;
// retiring again is no error; RetiredKEKs lists every retired KEK by keyring and id.
func (s *suite) testRetireKEKs(t *testing.T) {
	st := s.store(t)
	ctx := ctxT(t)
	key := func(p string) vitalgate.DataKey {
		return vitalgate.DataKey{Site: vitalgate.DefaultSite, PatientIndex: []byte(p), Wrapped: []byte("wrapped-" + p), CreatedAt: at(0)}
	}
	if _, err := st.PutDataKeyUnder(ctx, key("before"), "", "kek-1"); err != nil {
		t.Fatalf("PutDataKeyUnder before any retirement: %v", err)
	}
	rs, err := st.RetiredKEKs(ctx)
	must(t, "RetiredKEKs", err)
	if len(rs) != 0 {
		t.Fatalf("RetiredKEKs of a new store = %v", rs)
	}
	must(t, "RetireKEKs", st.RetireKEKs(ctx, "", []string{"kek-1", "kek-2"}, at(1)))
	must(t, "RetireKEKs again", st.RetireKEKs(ctx, "", []string{"kek-1"}, at(2)))
	wantCode(t, "RetireKEKs of none", st.RetireKEKs(ctx, "", nil, at(2)), vitalgate.EINVALID)
	_, err = st.PutDataKeyUnder(ctx, key("late"), "", "kek-1")
	wantCode(t, "PutDataKeyUnder a retired KEK", err, vitalgate.ECONFLICT)
	_, err = st.DataKey(ctx, []byte("late"))
	wantCode(t, "DataKey after a refused PutDataKeyUnder", err, vitalgate.ENOTFOUND)
	if _, err := st.PutDataKeyUnder(ctx, key("late"), "", "kek-3"); err != nil {
		t.Fatalf("PutDataKeyUnder the current KEK: %v", err)
	}
	if _, err := st.PutDataKeyUnder(ctx, key("site"), "st-marys", "kek-1"); err != nil {
		t.Fatalf("PutDataKeyUnder kek-1 of another keyring: %v", err)
	}
	rs, err = st.RetiredKEKs(ctx)
	must(t, "RetiredKEKs", err)
	if len(rs) != 2 || rs[0].Keyring != "" || rs[0].KEK != "kek-1" || rs[1].KEK != "kek-2" || !rs[0].RetiredAt.Equal(at(1).Truncate(time.Microsecond)) {
		t.Fatalf("RetiredKEKs = %+v", rs)
	}
}
