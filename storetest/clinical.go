package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// testNonce: a nonce is usable once until it expires, also under concurrency.
func (s *suite) testNonce(t *testing.T) {
	st := s.store(t)
	exp := time.Now().Add(time.Minute)
	must(t, "UseNonce", st.UseNonce(ctxT(t), "client-a|jti-1", exp))
	wantCode(t, "UseNonce again", st.UseNonce(ctxT(t), "client-a|jti-1", exp), vitalgate.ECONFLICT)
	must(t, "UseNonce other key", st.UseNonce(ctxT(t), "client-a|jti-2", exp))
	// An expired nonce is forgotten.
	must(t, "UseNonce expired", st.UseNonce(ctxT(t), "client-a|old", time.Now().Add(-time.Minute)))
	must(t, "UseNonce after expiry", st.UseNonce(ctxT(t), "client-a|old", exp))

	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() { errs <- st.UseNonce(ctxT(t), "race", exp) }()
	}
	ok := 0
	for i := 0; i < 16; i++ {
		if err := <-errs; err == nil {
			ok++
		} else if vitalgate.ErrorCode(err) != vitalgate.ECONFLICT && vitalgate.ErrorCode(err) != vitalgate.EUNAVAILABLE {
			t.Errorf("concurrent UseNonce: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent uses of one nonce succeeded, want exactly 1", ok)
	}
}

// testClientKeysAndCareTeam: a client's JWKS and care team round-trip.
func (s *suite) testClientKeysAndCareTeam(t *testing.T) {
	st := s.store(t)
	c := vitalgate.Client{ID: "clin-1", Role: vitalgate.RoleClinician, JWKS: []byte(`{"keys":[]}`),
		PatientIndexes: [][]byte{[]byte("pat-b"), []byte("pat-a")}, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	must(t, "CreateClient", st.CreateClient(ctxT(t), c))
	got, err := st.Client(ctxT(t), "clin-1")
	must(t, "Client", err)
	if !bytes.Equal(got.JWKS, c.JWKS) {
		t.Errorf("JWKS = %q, want %q", got.JWKS, c.JWKS)
	}
	want := [][]byte{[]byte("pat-a"), []byte("pat-b")}
	if !slices.EqualFunc(got.PatientIndexes, want, bytes.Equal) {
		t.Errorf("PatientIndexes = %q, want %q (sorted)", got.PatientIndexes, want)
	}
}

// testSearchByEffective: a patient's resources of a type by date range, both orders, with
// code filter and cursor paging that neither skips nor repeats, even with equal times.
func (s *suite) testSearchByEffective(t *testing.T) {
	st := s.store(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var rs []vitalgate.SealedResource
	for i := 0; i < 30; i++ {
		eff := base.Add(time.Duration(i/3) * time.Minute) // three resources share each time
		code := "hr"
		if i%2 == 1 {
			code = "spo2"
		}
		rs = append(rs, resource("Observation", fmt.Sprintf("o%02d", i), "p1", eff, eff, code))
	}
	rs = append(rs, resource("Observation", "other-patient", "p2", base, base, "hr"))
	rs = append(rs, resource("Patient", "p1-itself", "p1", base, base))
	load(t, st, rs)

	from, to := base.Add(2*time.Minute), base.Add(8*time.Minute) // i in [6, 24)
	for _, tt := range []struct {
		name string
		desc bool
		code string
	}{{"ascending", false, ""}, {"descending", true, ""}, {"descending by code", true, "spo2"}} {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for i := 6; i < 24; i++ {
				if tt.code == "" || (tt.code == "spo2") == (i%2 == 1) {
					want = append(want, fmt.Sprintf("o%02d", i))
				}
			}
			if tt.desc {
				slices.Reverse(want)
			}
			for _, limit := range []int{1, 4, 100} {
				f := vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p1"), ByEffective: true,
					Desc: tt.desc, EffectiveFrom: from, EffectiveTo: to, Limit: limit}
				if tt.code != "" {
					f.CodeIndex = []byte(tt.code)
				}
				var got []string
				for pages := 0; pages < 100; pages++ {
					var last vitalgate.SealedResource
					n := 0
					must(t, "Resources", st.Resources(ctxT(t), f, func(r vitalgate.SealedResource) error {
						got = append(got, r.ID)
						last = r
						n++
						return nil
					}))
					if n < limit {
						break
					}
					f.After, f.AfterEffective = last.ID, last.Effective
				}
				if !slices.Equal(got, want) {
					t.Fatalf("limit %d: got %v\nwant %v", limit, got, want)
				}
			}
		})
	}
	err := st.Resources(ctxT(t), vitalgate.ResourceFilter{ByEffective: true, Type: "Observation"}, func(vitalgate.SealedResource) error { return nil })
	wantCode(t, "date search without a patient", err, vitalgate.EINVALID)
}
