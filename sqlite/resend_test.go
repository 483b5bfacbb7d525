package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/sqlite"
)

// resendStore returns a store (with readers readers) holding a patient's history of
// identified Observations, and a resend check of one of them (ingest's lookup before every
// create).
func resendStore(tb testing.TB, readers int) (*sqlite.DB, func(k int) error) {
	db := MustOpen(tb, filepath.Join(tb.TempDir(), "vitalgate.db"), sqlite.Options{Readers: readers})
	patient := []byte("patient-index-with-history-0001")
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if err := db.CreateResources(context.Background(), historyRows(patient, 2000, at, "r")); err != nil {
		tb.Fatal(err)
	}
	return db, func(k int) error {
		found := 0
		err := db.Resources(context.Background(), vitalgate.ResourceFilter{Type: "Observation", PatientIndex: patient,
			IdentifierIndex: fmt.Appendf(nil, "ident-r-%d", k%2000), Limit: 1}, func(vitalgate.SealedResource) error { found++; return nil })
		if err == nil && found != 1 {
			err = fmt.Errorf("found %d", found)
		}
		return err
	}
}

// TestResendCheckIsNotRecompiled checks that the resend check, once prepared, runs without
// SQLite compiling it again. A type bound as a bare ?1 was matched against the WHERE of the
// partial index resource_identifiers_patient_unique, which made SQLite re-prepare the
// statement at every new binding, that is every check (about 7 times the cost of a check
// by benchmark).
func TestResendCheckIsNotRecompiled(t *testing.T) {
	db, check := resendStore(t, 1)
	k := 0
	compiles, err := sqlite.CountCompiles(t.Context(), db, func() error {
		for range 20 {
			if err := check(k); err != nil {
				return err
			}
			k++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if compiles != 0 {
		t.Errorf("20 resend checks compiled %d SELECTs: the statement is prepared again on each run", compiles)
	}
}

// BenchmarkResendCheck measures ingest's resend check of one identified observation.
func BenchmarkResendCheck(b *testing.B) {
	_, check := resendStore(b, 0)
	b.ReportAllocs()
	for k := 0; b.Loop(); k++ {
		if err := check(k); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHotReadsAreNotRecompiled checks the same of the other reads of every ingest and every
// search: prepared once, run again without a compilation.
func TestHotReadsAreNotRecompiled(t *testing.T) {
	db, _ := resendStore(t, 1)
	ctx := t.Context()
	patient := []byte("patient-index-with-history-0001")
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ignore := func(err error) error { // a row that is not there is fine here
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return nil
		}
		return err
	}
	search := func(f vitalgate.ResourceFilter) func(int) error {
		return func(int) error { return db.Resources(ctx, f, func(vitalgate.SealedResource) error { return nil }) }
	}
	tests := []struct {
		name string
		read func(k int) error
	}{
		{"last 24 h, newest first", search(vitalgate.ResourceFilter{Type: "Observation", PatientIndex: patient, ByEffective: true, Desc: true,
			EffectiveFrom: at.Add(-24 * time.Hour), Limit: 101})},
		{"newest first", search(vitalgate.ResourceFilter{Type: "Observation", PatientIndex: patient, ByEffective: true, Desc: true, Limit: 101})},
		{"patient page", search(vitalgate.ResourceFilter{Type: "Observation", PatientIndex: patient, Limit: 100})},
		{"resource", func(k int) error {
			return ignore(func() error { _, err := db.Resource(ctx, "Observation", fmt.Sprint(k)); return err }())
		}},
		{"device", func(k int) error {
			return ignore(func() error { _, err := db.Device(ctx, fmt.Sprint("d", k)); return err }())
		}},
		{"assignment at", func(k int) error {
			return ignore(func() error { _, err := db.AssignmentAt(ctx, fmt.Sprint("d", k), at); return err }())
		}},
		{"data key", func(k int) error {
			return ignore(func() error { _, err := db.DataKey(ctx, fmt.Appendf(nil, "p%d", k)); return err }())
		}},
		{"client", func(k int) error {
			return ignore(func() error { _, err := db.Client(ctx, fmt.Sprint("c", k)); return err }())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := 0
			compiles, err := sqlite.CountCompiles(ctx, db, func() error {
				for range 5 {
					if err := tt.read(k); err != nil {
						return err
					}
					k++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if compiles != 0 {
				t.Errorf("5 runs compiled %d SELECTs", compiles)
			}
		})
	}
}
