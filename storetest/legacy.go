package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/migration"
)

// LegacyDB is how a store's migration test writes a database at an older schema, in the
// store's own SQL dialect.
type LegacyDB struct {
	// Exec runs one statement, failing t if it fails.
	Exec func(t *testing.T, query string, args ...any)
	// Migrations are the store's migration files; those below Before are applied.
	Migrations []migration.Migration
	Before     int
	// CreateMigrations creates schema_migrations; RecordMigration inserts (version, name)
	// into it, with the time of the database.
	CreateMigrations, RecordMigration string
	// InsertResource inserts (type, id, patient_index, body) with version 1; InsertCode
	// inserts (type, id, code_index) into resource_codes.
	InsertResource, InsertCode string
	// InsertClient inserts (id, role) into clients.
	InsertClient string
}

// legacyClients are the API clients of the legacy database: after the upgrade the auditor
// is deployment-wide and the others are the default site's.
var legacyClients = map[string]vitalgate.Role{"old-ehr": vitalgate.RoleEHRSystem, "old-auditor": vitalgate.RoleAuditor}

// WriteLegacyIdentifiers applies the migrations before l.Before and writes
// LegacyIdentifierData.
func WriteLegacyIdentifiers(t *testing.T, l LegacyDB) {
	t.Helper()
	l.Exec(t, l.CreateMigrations)
	for _, m := range l.Migrations {
		if m.Version < l.Before {
			l.Exec(t, m.SQL)
			l.Exec(t, l.RecordMigration, m.Version, m.Name)
		}
	}
	for id, role := range legacyClients {
		l.Exec(t, l.InsertClient, id, string(role))
	}
	for _, r := range LegacyIdentifierData() {
		l.Exec(t, l.InsertResource, r.Type, r.ID, r.Patient, []byte("sealed"))
		for _, c := range r.Codes {
			l.Exec(t, l.InsertCode, r.Type, r.ID, c)
		}
	}
}

// LegacyResource is a resource as a database written before identifier indexes had a table
// of their own holds it: its identifier indexes are among its code indexes.
type LegacyResource struct {
	Type, ID string
	Patient  []byte
	Codes    [][]byte // code and identifier indexes, mixed
}

// LegacyIdentifierData is what a store's migration test writes, with the store's own SQL,
// into a database at the schema before resource_identifiers, before opening it with the
// current build and calling CheckLegacyIdentifiers: two Patients that share an MRN (the older
// one has the lower id), a Patient of its own, and an Observation whose codes include its
// identifier.
func LegacyIdentifierData() []LegacyResource {
	return []LegacyResource{
		{"Patient", "0001-old", []byte("p-old"), [][]byte{[]byte("mrn|dup"), []byte("ssn|old")}},
		{"Patient", "0002-new", []byte("p-new"), [][]byte{[]byte("mrn|dup"), []byte("ssn|new")}},
		{"Patient", "0003-own", []byte("p-own"), [][]byte{[]byte("mrn|own")}},
		{"Observation", "obs-1", []byte("p-old"), [][]byte{[]byte("loinc|8867-4"), []byte("8867-4"), []byte("ctl-1/1")}},
	}
}

// PatientConflicts is the store method that reports what the migration did with Patients
// that shared an identifier.
type PatientConflicts interface {
	PatientIdentifierConflicts(ctx context.Context) ([]vitalgate.IdentifierConflict, error)
}

// CheckLegacyIdentifiers checks a store migrated over LegacyIdentifierData: the oldest
// Patient keeps a shared identifier and the other is reported, every other identifier is
// found as before, an observation stored before the upgrade is found by its identifier (so
// its resend is recognised), and the identifiers are unique from now on.
func CheckLegacyIdentifiers(t *testing.T, st vitalgate.Store, pc PatientConflicts) {
	t.Helper()
	lookups := []struct {
		name string
		f    vitalgate.ResourceFilter
		want []string
	}{
		{"shared identifier kept by the oldest", vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: []byte("mrn|dup")}, []string{"0001-old"}},
		{"the newer one's own identifier", vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: []byte("ssn|new")}, []string{"0002-new"}},
		{"the older one's own identifier", vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: []byte("ssn|old")}, []string{"0001-old"}},
		{"no conflict", vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: []byte("mrn|own")}, []string{"0003-own"}},
		{"observation by identifier", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-old"), IdentifierIndex: []byte("ctl-1/1")}, []string{"obs-1"}},
		{"observation by code", vitalgate.ResourceFilter{Type: "Observation", CodeIndex: []byte("loinc|8867-4")}, []string{"obs-1"}},
	}
	for _, tt := range lookups {
		if got := ids(t, st, tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	got, err := pc.PatientIdentifierConflicts(ctxT(t))
	must(t, "PatientIdentifierConflicts", err)
	if want := []vitalgate.IdentifierConflict{{ID: "0002-new", KeptID: "0001-old"}}; !slices.Equal(got, want) {
		t.Errorf("PatientIdentifierConflicts = %+v, want %+v", got, want)
	}
	for _, id := range []string{"0001-old", "0002-new"} {
		_, err := st.Resource(ctxT(t), "Patient", id)
		must(t, "Patient "+id+" readable by id", err)
	}
	wantCode(t, "a new Patient with a migrated identifier", st.CreateResources(ctxT(t), []vitalgate.SealedResource{
		withIdentifiers(resource("Patient", "0004", "p4", at(0), at(0)), "mrn|own")}), vitalgate.ECONFLICT)

	// Sites (sqlite 0009, postgres 0006): everything that existed moved to the default site,
	// whose identifiers stay unique within it and are free in another site.
	if _, err := st.Site(ctxT(t), vitalgate.DefaultSite); err != nil {
		t.Errorf("the default site after the upgrade: %v", err)
	}
	for _, r := range LegacyIdentifierData() {
		got, err := st.Resource(ctxT(t), r.Type, r.ID)
		must(t, "Resource", err)
		if got.Site != vitalgate.DefaultSite {
			t.Errorf("%s/%s of site %q after the upgrade, want the default site", r.Type, r.ID, got.Site)
		}
	}
	if got := ids(t, st, vitalgate.ResourceFilter{Site: vitalgate.DefaultSite, Type: "Patient", IdentifierIndex: []byte("mrn|own")}); !slices.Equal(got, []string{"0003-own"}) {
		t.Errorf("the default site's Patient by a migrated identifier: %q", got)
	}
	for id, role := range legacyClients {
		c, err := st.Client(ctxT(t), id)
		must(t, "Client", err)
		want := vitalgate.DefaultSite
		if role == vitalgate.RoleAuditor {
			want = vitalgate.AllSites
		}
		if c.Site != want {
			t.Errorf("client %s (%s) of site %q after the upgrade, want %q", id, role, c.Site, want)
		}
	}
	must(t, "CreateSite", st.CreateSite(ctxT(t), vitalgate.Site{ID: "other", Name: "Other"}))
	p := withIdentifiers(resource("Patient", "0005", "p5", at(0), at(0)), "mrn|own")
	p.Site = "other"
	must(t, "a Patient of another site with a migrated identifier", st.CreateResources(ctxT(t), []vitalgate.SealedResource{p}))
}
