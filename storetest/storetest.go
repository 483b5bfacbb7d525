// Package storetest is the conformance suite for vitalgate.Store implementations, in the style
// of testing/fstest.TestFS: every store (sqlite, postgres, …) runs the same named subtests, so
// the stores cannot disagree about the contract in the root package.
//
// Use it from a store's own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) vitalgate.Store {
//			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return db
//		})
//	}
//
// open is called once per subtest, possibly from parallel subtests, and must return a new,
// empty store; Run closes it when the subtest ends. A store that needs an external server
// should call t.Skip in open when none is reachable.
//
// The suite uses only the vitalgate interfaces. It checks error codes with
// vitalgate.ErrorCode, times to microsecond precision (stores must return UTC), byte slices
// with nil and empty treated alike, and code indexes as sets. It cannot kill processes, so
// durability across crashes is tested beside each store.
//
// The audit subtests check that every write method appends its trailing audit entries
// atomically with the write (all of them on success, none on failure), that indexes are
// dense from 0 and follow commit order under concurrent writers, and the range and checkpoint
// queries of vitalgate.AuditStore.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// Run runs the conformance suite against stores returned by open.
func Run(t *testing.T, open func(t *testing.T) vitalgate.Store) {
	t.Helper()
	s := &suite{open: open}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Ping", s.testPing},
		{"Device/CreateGet", s.testDeviceCreateGet},
		{"Device/Duplicate", s.testDeviceDuplicate},
		{"Device/NotFound", s.testDeviceNotFound},
		{"Device/List", s.testDevices},
		{"Enroll/ConsumeOnce", s.testConsumeOnce},
		{"Enroll/ConsumeWrongSecret", s.testConsumeWrongSecret},
		{"Enroll/ConsumeAtomic", s.testConsumeAtomic},
		{"Enroll/ConsumeConcurrent", s.testConsumeConcurrent},
		{"Enroll/SetSecret", s.testSetEnrollSecret},
		{"Device/AssignPatient", s.testAssignPatient},
		{"Certificate/AddGet", s.testCertificate},
		{"Device/Revoke", s.testRevokeDevice},
		{"Client", s.testClient},
		{"Resource/RoundTrip", s.testResourceRoundTrip},
		{"Erasure/ErasePatient", s.testErasePatient},
		{"Erasure/RetireKEKs", s.testRetireKEKs},
		{"Resource/AllOrNothing", s.testAllOrNothing},
		{"Resource/NewVersion", s.testNewVersion},
		{"Resource/Filter", s.testResourceFilter},
		{"Resource/Paging", s.testResourcePaging},
		{"Resource/StopOnError", s.testResourceStop},
		{"Resource/Concurrent", s.testResourceConcurrent},
		{"Resource/IdentifierLookup", s.testIdentifierLookup},
		{"Resource/PatientIdentifierUnique", s.testPatientIdentifierUnique},
		{"Resource/PatientIdentifierConcurrent", s.testPatientIdentifierConcurrent},
		{"Nonce/Once", s.testNonce},
		{"Node/Heartbeat", s.testHeartbeat},
		{"Client/KeysAndCareTeam", s.testClientKeysAndCareTeam},
		{"Client/Update", s.testClientUpdate},
		{"Resource/SearchByEffective", s.testSearchByEffective},
		{"DataKey/PutGet", s.testDataKey},
		{"DataKey/FirstWriterWins", s.testDataKeyConcurrent},
		{"DataKey/Rewrap", s.testRewrap},
		{"DataKey/RewrapError", s.testRewrapError},
		{"Audit/Empty", s.testAuditEmpty},
		{"Audit/Append", s.testAuditAppend},
		{"Audit/WithWrites", s.testAuditWithWrites},
		{"Audit/Concurrent", s.testAuditConcurrent},
		{"Audit/Range", s.testAuditRange},
		{"Audit/Checkpoints", s.testAuditCheckpoints},
		{"Audit/Search", s.testAuditSearch},
		{"Audit/SearchWithWrites", s.testAuditSearchWithWrites},
		{"Outbox/Cursor", s.testOutboxCursor},
		{"Outbox/Claim", s.testOutboxClaim},
	}
	tests = append(tests, s.siteTests()...)
	tests = append(tests, s.deviceTests()...)
	tests = append(tests, s.nodeConfigTests()...)
	tests = append(tests, s.updateTests()...)
	tests = append(tests, s.rolloutTests()...)
	tests = append(tests, s.postureTests()...)
	tests = append(tests, s.exportTests()...)
	tests = append(tests, s.subscriptionTests()...)
	tests = append(tests, s.archiveTests()...)
	tests = append(tests, s.userTests()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t)
		})
	}
}

type suite struct {
	open func(t *testing.T) vitalgate.Store
}

// store opens a fresh store and closes it when t ends.
func (s *suite) store(t *testing.T) vitalgate.Store {
	t.Helper()
	st := s.open(t)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// base is a time with nanoseconds and a non-UTC zone: stores must keep at least microseconds
// and return UTC.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))

func at(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }

func ctxT(t *testing.T) context.Context { return t.Context() }

// wantCode fails t unless err has the given vitalgate error code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := vitalgate.ErrorCode(err); got != code {
		t.Errorf("%s: error code %q (%v), want %q", what, got, err, code)
	}
}

// must fails t now if err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// sameTime reports whether got equals want to the microsecond and is in UTC (or zero).
func sameTime(got, want time.Time) bool {
	if want.IsZero() {
		return got.IsZero()
	}
	return got.Location() == time.UTC && got.Truncate(time.Microsecond).Equal(want.Truncate(time.Microsecond))
}

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !sameTime(got, want) {
		t.Errorf("%s = %v (%v), want %v in UTC to the microsecond", what, got, got.Location(), want)
	}
}

func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}

func testDevice(id string) vitalgate.Device {
	return vitalgate.Device{
		ID:               id,
		Model:            "acme-bp-3",
		Status:           vitalgate.DeviceActive,
		PatientIndex:     []byte("pidx-" + id),
		PatientSealed:    []byte("sealed-" + id),
		CreatedAt:        at(0),
		UpdatedAt:        at(1),
		EnrollSecretHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$" + id,
		EnrollExpiresAt:  at(60 * 24),
	}
}

func checkDevice(t *testing.T, got, want vitalgate.Device) {
	t.Helper()
	if got.ID != want.ID || got.Model != want.Model || got.Status != want.Status ||
		got.EnrollSecretHash != want.EnrollSecretHash {
		t.Errorf("device = %+v, want %+v", got, want)
	}
	checkBytes(t, "PatientIndex", got.PatientIndex, want.PatientIndex)
	checkBytes(t, "PatientSealed", got.PatientSealed, want.PatientSealed)
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	checkTime(t, "EnrollExpiresAt", got.EnrollExpiresAt, want.EnrollExpiresAt)
}

func testCert(serial, deviceID string) vitalgate.Certificate {
	return vitalgate.Certificate{
		Serial:    serial,
		DeviceID:  deviceID,
		NotBefore: at(-5),
		NotAfter:  at(60 * 24 * 30),
		IssuedAt:  at(0),
	}
}

func checkCert(t *testing.T, got, want vitalgate.Certificate) {
	t.Helper()
	if got.Serial != want.Serial || got.DeviceID != want.DeviceID {
		t.Errorf("certificate = %+v, want %+v", got, want)
	}
	checkTime(t, "NotBefore", got.NotBefore, want.NotBefore)
	checkTime(t, "NotAfter", got.NotAfter, want.NotAfter)
	checkTime(t, "IssuedAt", got.IssuedAt, want.IssuedAt)
	checkTime(t, "RevokedAt", got.RevokedAt, want.RevokedAt)
}

func (s *suite) testPing(t *testing.T) {
	st := s.store(t)
	must(t, "Ping", st.Ping(ctxT(t)))
}

func (s *suite) testDeviceCreateGet(t *testing.T) {
	tests := []struct {
		name string
		d    vitalgate.Device
	}{
		{"full", testDevice("dev-full")},
		{"unassigned", vitalgate.Device{ID: "dev-bare", Model: "m", Status: vitalgate.DeviceActive,
			CreatedAt: at(0), UpdatedAt: at(0)}},
		{"revoked", func() vitalgate.Device {
			d := testDevice("dev-revoked")
			d.Status, d.EnrollSecretHash, d.EnrollExpiresAt = vitalgate.DeviceRevoked, "", time.Time{}
			return d
		}()},
	}
	st := s.store(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, "CreateDevice", st.CreateDevice(ctxT(t), tt.d))
			got, err := st.Device(ctxT(t), tt.d.ID)
			must(t, "Device", err)
			checkDevice(t, got, tt.d)
		})
	}
}

func (s *suite) testDeviceDuplicate(t *testing.T) {
	st := s.store(t)
	d := testDevice("dev-1")
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), d))
	d.Model = "other"
	wantCode(t, "second CreateDevice", st.CreateDevice(ctxT(t), d), vitalgate.ECONFLICT)
	got, err := st.Device(ctxT(t), "dev-1")
	must(t, "Device", err)
	if got.Model != "acme-bp-3" {
		t.Errorf("duplicate create changed the device: model %q", got.Model)
	}
}

func (s *suite) testDeviceNotFound(t *testing.T) {
	st := s.store(t)
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-1")))
	ctx := ctxT(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"Device", func() error { _, err := st.Device(ctx, "nope"); return err }},
		{"ConsumeEnrollSecret", func() error {
			return st.ConsumeEnrollSecret(ctx, "nope", "h", testCert("aa01", "nope"))
		}},
		{"SetEnrollSecret", func() error { return st.SetEnrollSecret(ctx, "nope", "h", at(10)) }},
		{"AssignPatient", func() error { return st.AssignPatient(ctx, "nope", []byte("p"), []byte("s"), at(1)) }},
		{"AddCertificate", func() error { return st.AddCertificate(ctx, testCert("aa02", "nope")) }},
		{"Certificate", func() error { _, err := st.Certificate(ctx, "ffff"); return err }},
		{"RevokeDevice", func() error { return st.RevokeDevice(ctx, "nope", at(1)) }},
		{"Client", func() error { _, err := st.Client(ctx, "nope"); return err }},
		{"Resource", func() error { _, err := st.Resource(ctx, "Observation", "nope"); return err }},
		{"DataKey", func() error { _, err := st.DataKey(ctx, []byte("nope")); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.name, tt.call(), vitalgate.ENOTFOUND)
		})
	}
}

func (s *suite) testDevices(t *testing.T) {
	st := s.store(t)
	ds, err := st.Devices(ctxT(t))
	must(t, "Devices (empty)", err)
	if len(ds) != 0 {
		t.Fatalf("empty store lists %d devices", len(ds))
	}
	for _, id := range []string{"dev-c", "dev-a", "dev-b"} {
		must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice(id)))
	}
	ds, err = st.Devices(ctxT(t))
	must(t, "Devices", err)
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	if want := []string{"dev-a", "dev-b", "dev-c"}; !slices.Equal(ids, want) {
		t.Fatalf("Devices ids = %v, want %v", ids, want)
	}
	checkDevice(t, ds[0], testDevice("dev-a"))
}

func (s *suite) testConsumeOnce(t *testing.T) {
	st := s.store(t)
	d := testDevice("dev-1")
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), d))
	cert := testCert("0a01", "dev-1")
	must(t, "ConsumeEnrollSecret", st.ConsumeEnrollSecret(ctxT(t), "dev-1", d.EnrollSecretHash, cert))
	got, err := st.Certificate(ctxT(t), cert.Serial)
	must(t, "Certificate", err)
	checkCert(t, got, cert)
	dev, err := st.Device(ctxT(t), "dev-1")
	must(t, "Device", err)
	if dev.EnrollSecretHash != "" {
		t.Errorf("EnrollSecretHash = %q after use, want empty", dev.EnrollSecretHash)
	}
	err = st.ConsumeEnrollSecret(ctxT(t), "dev-1", d.EnrollSecretHash, testCert("0a02", "dev-1"))
	wantCode(t, "second ConsumeEnrollSecret", err, vitalgate.ECONFLICT)
	_, err = st.Certificate(ctxT(t), "0a02")
	wantCode(t, "certificate of the refused enrollment", err, vitalgate.ENOTFOUND)
	// An empty hash never matches the used (empty) secret.
	err = st.ConsumeEnrollSecret(ctxT(t), "dev-1", "", testCert("0a03", "dev-1"))
	wantCode(t, "ConsumeEnrollSecret with empty hash", err, vitalgate.ECONFLICT)
}

func (s *suite) testConsumeWrongSecret(t *testing.T) {
	st := s.store(t)
	d := testDevice("dev-1")
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), d))
	err := st.ConsumeEnrollSecret(ctxT(t), "dev-1", "wrong", testCert("0b01", "dev-1"))
	wantCode(t, "ConsumeEnrollSecret with wrong hash", err, vitalgate.ECONFLICT)
	// The right secret still works.
	must(t, "ConsumeEnrollSecret", st.ConsumeEnrollSecret(ctxT(t), "dev-1", d.EnrollSecretHash, testCert("0b02", "dev-1")))
}

// testConsumeAtomic: if the certificate cannot be recorded, the secret is not consumed.
func (s *suite) testConsumeAtomic(t *testing.T) {
	st := s.store(t)
	d1, d2 := testDevice("dev-1"), testDevice("dev-2")
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), d1))
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), d2))
	must(t, "ConsumeEnrollSecret", st.ConsumeEnrollSecret(ctxT(t), "dev-1", d1.EnrollSecretHash, testCert("0c01", "dev-1")))
	err := st.ConsumeEnrollSecret(ctxT(t), "dev-2", d2.EnrollSecretHash, testCert("0c01", "dev-2"))
	wantCode(t, "ConsumeEnrollSecret with an existing serial", err, vitalgate.ECONFLICT)
	dev, err := st.Device(ctxT(t), "dev-2")
	must(t, "Device", err)
	if dev.EnrollSecretHash != d2.EnrollSecretHash {
		t.Errorf("failed enrollment consumed the secret: hash %q", dev.EnrollSecretHash)
	}
	must(t, "ConsumeEnrollSecret retry", st.ConsumeEnrollSecret(ctxT(t), "dev-2", d2.EnrollSecretHash, testCert("0c02", "dev-2")))
}

func (s *suite) testConsumeConcurrent(t *testing.T) {
	const n = 20
	st := s.store(t)
	d := testDevice("dev-1")
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), d))
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = st.ConsumeEnrollSecret(ctxT(t), "dev-1", d.EnrollSecretHash, testCert(fmt.Sprintf("0d%02d", i), "dev-1"))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch code := vitalgate.ErrorCode(err); code {
		case "":
			if winner >= 0 {
				t.Errorf("goroutines %d and %d both consumed the secret", winner, i)
			}
			winner = i
		case vitalgate.ECONFLICT:
		default:
			t.Errorf("goroutine %d: %v, want nil or %s", i, err, vitalgate.ECONFLICT)
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine consumed the secret")
	}
	for i := range n {
		_, err := st.Certificate(ctxT(t), fmt.Sprintf("0d%02d", i))
		if i == winner {
			must(t, "winner's certificate", err)
		} else {
			wantCode(t, fmt.Sprintf("certificate of loser %d", i), err, vitalgate.ENOTFOUND)
		}
	}
}

func (s *suite) testSetEnrollSecret(t *testing.T) {
	st := s.store(t)
	d := testDevice("dev-1")
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), d))
	must(t, "SetEnrollSecret", st.SetEnrollSecret(ctxT(t), "dev-1", "new-hash", at(120)))
	got, err := st.Device(ctxT(t), "dev-1")
	must(t, "Device", err)
	if got.EnrollSecretHash != "new-hash" {
		t.Errorf("EnrollSecretHash = %q, want new-hash", got.EnrollSecretHash)
	}
	checkTime(t, "EnrollExpiresAt", got.EnrollExpiresAt, at(120))
	err = st.ConsumeEnrollSecret(ctxT(t), "dev-1", d.EnrollSecretHash, testCert("0e01", "dev-1"))
	wantCode(t, "ConsumeEnrollSecret with replaced hash", err, vitalgate.ECONFLICT)
	must(t, "ConsumeEnrollSecret", st.ConsumeEnrollSecret(ctxT(t), "dev-1", "new-hash", testCert("0e02", "dev-1")))
	// A used secret can be re-issued.
	must(t, "SetEnrollSecret again", st.SetEnrollSecret(ctxT(t), "dev-1", "third-hash", at(240)))
	must(t, "ConsumeEnrollSecret again", st.ConsumeEnrollSecret(ctxT(t), "dev-1", "third-hash", testCert("0e03", "dev-1")))
}

func (s *suite) testAssignPatient(t *testing.T) {
	st := s.store(t)
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-1")))
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-2")))
	must(t, "AssignPatient", st.AssignPatient(ctxT(t), "dev-1", []byte("pidx-new"), []byte("sealed-new"), at(30)))
	got, err := st.Device(ctxT(t), "dev-1")
	must(t, "Device", err)
	want := testDevice("dev-1")
	want.PatientIndex, want.PatientSealed, want.UpdatedAt = []byte("pidx-new"), []byte("sealed-new"), at(30)
	checkDevice(t, got, want)
	other, err := st.Device(ctxT(t), "dev-2")
	must(t, "Device", err)
	checkDevice(t, other, testDevice("dev-2"))
}

func (s *suite) testCertificate(t *testing.T) {
	st := s.store(t)
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-1")))
	cert := testCert("0f01", "dev-1")
	must(t, "AddCertificate", st.AddCertificate(ctxT(t), cert))
	got, err := st.Certificate(ctxT(t), cert.Serial)
	must(t, "Certificate", err)
	checkCert(t, got, cert)
	if got.Revoked() {
		t.Error("new certificate is revoked")
	}
	wantCode(t, "AddCertificate with existing serial", st.AddCertificate(ctxT(t), cert), vitalgate.ECONFLICT)
	wantCode(t, "AddCertificate for unknown device", st.AddCertificate(ctxT(t), testCert("0f02", "nope")), vitalgate.ENOTFOUND)
}

func (s *suite) testRevokeDevice(t *testing.T) {
	st := s.store(t)
	for _, id := range []string{"dev-1", "dev-2"} {
		must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice(id)))
	}
	certs := []vitalgate.Certificate{testCert("1001", "dev-1"), testCert("1002", "dev-1"), testCert("2001", "dev-2")}
	for _, c := range certs {
		must(t, "AddCertificate", st.AddCertificate(ctxT(t), c))
	}
	must(t, "RevokeDevice", st.RevokeDevice(ctxT(t), "dev-1", at(90)))

	dev, err := st.Device(ctxT(t), "dev-1")
	must(t, "Device", err)
	if dev.Status != vitalgate.DeviceRevoked {
		t.Errorf("Status = %q, want %q", dev.Status, vitalgate.DeviceRevoked)
	}
	tests := []struct {
		serial  string
		revoked time.Time
	}{
		{"1001", at(90)},
		{"1002", at(90)},
		{"2001", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.serial, func(t *testing.T) {
			c, err := st.Certificate(ctxT(t), tt.serial)
			must(t, "Certificate", err)
			checkTime(t, "RevokedAt", c.RevokedAt, tt.revoked)
		})
	}
	other, err := st.Device(ctxT(t), "dev-2")
	must(t, "Device", err)
	if other.Status != vitalgate.DeviceActive {
		t.Errorf("other device's status = %q", other.Status)
	}
}

func (s *suite) testClient(t *testing.T) {
	st := s.store(t)
	tests := []struct {
		name string
		c    vitalgate.Client
	}{
		{"ehr", vitalgate.Client{ID: "ehr-1", Role: vitalgate.RoleEHRSystem, SecretHash: "$argon2id$x", // #nosec G101 -- test fixture: a placeholder, not a hash of any secret
			Scopes: []string{"system/Observation.rs", "system/Patient.r"}, CreatedAt: at(0)}},
		{"disabled-no-scopes", vitalgate.Client{ID: "old", Role: vitalgate.RoleClinician, CreatedAt: at(5), Disabled: true}},
		{"admin", vitalgate.Client{ID: "admin", Role: vitalgate.RoleAdmin, SecretHash: "$argon2id$y", // #nosec G101 -- test fixture: a placeholder, not a hash of any secret
			Scopes: []string{"admin"}, CreatedAt: at(9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, "CreateClient", st.CreateClient(ctxT(t), tt.c))
			got, err := st.Client(ctxT(t), tt.c.ID)
			must(t, "Client", err)
			if got.ID != tt.c.ID || got.Role != tt.c.Role || got.SecretHash != tt.c.SecretHash ||
				got.Disabled != tt.c.Disabled || !slices.Equal(got.Scopes, tt.c.Scopes) {
				t.Errorf("Client = %+v, want %+v", got, tt.c)
			}
			checkTime(t, "CreatedAt", got.CreatedAt, tt.c.CreatedAt)
			wantCode(t, "second CreateClient", st.CreateClient(ctxT(t), tt.c), vitalgate.ECONFLICT)
		})
	}
}

// resource returns a test resource; codes name code indexes.
func resource(typ, id, patient string, effective, updated time.Time, codes ...string) vitalgate.SealedResource {
	r := vitalgate.SealedResource{
		Type:        typ,
		ID:          id,
		Version:     1,
		Effective:   effective,
		LastUpdated: updated,
		Body:        []byte("sealed:" + typ + "/" + id),
	}
	if patient != "" {
		r.PatientIndex = []byte(patient)
	}
	for _, c := range codes {
		r.CodeIndexes = append(r.CodeIndexes, []byte(c))
	}
	return r
}

func sortedCodes(cs [][]byte) [][]byte {
	out := slices.Clone(cs)
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	return out
}

func checkResource(t *testing.T, got, want vitalgate.SealedResource) {
	t.Helper()
	if got.Type != want.Type || got.ID != want.ID || got.Version != want.Version {
		t.Errorf("resource %s/%s v%d, want %s/%s v%d", got.Type, got.ID, got.Version, want.Type, want.ID, want.Version)
	}
	checkBytes(t, "PatientIndex", got.PatientIndex, want.PatientIndex)
	if got.Site != vitalgate.StoredSite(want.Site) {
		t.Errorf("resource %s/%s of site %q, want %q", got.Type, got.ID, got.Site, vitalgate.StoredSite(want.Site))
	}
	checkBytes(t, "Body", got.Body, want.Body)
	checkTime(t, "Effective", got.Effective, want.Effective)
	checkTime(t, "LastUpdated", got.LastUpdated, want.LastUpdated)
	gc, wc := sortedCodes(got.CodeIndexes), sortedCodes(want.CodeIndexes)
	if !slices.EqualFunc(gc, wc, bytes.Equal) {
		t.Errorf("CodeIndexes = %q, want %q", gc, wc)
	}
	gi, wi := slices.CompactFunc(sortedCodes(got.IdentifierIndexes), bytes.Equal), slices.CompactFunc(sortedCodes(want.IdentifierIndexes), bytes.Equal)
	if !slices.EqualFunc(gi, wi, bytes.Equal) {
		t.Errorf("IdentifierIndexes = %q, want %q", gi, wi)
	}
}

func (s *suite) testResourceRoundTrip(t *testing.T) {
	binary := make([]byte, 4096)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	tests := []struct {
		name string
		r    vitalgate.SealedResource
	}{
		{"observation", resource("Observation", "obs-1", "p1", at(-10), at(0), "loinc|8867-4", "mdc|147842")},
		{"no-codes", resource("Patient", "pat-1", "p1", time.Time{}, at(1))},
		{"binary-body", func() vitalgate.SealedResource {
			r := resource("Observation", "obs-bin", "p\x00\xff", at(-3), at(2), "\x00\x01\x02")
			r.Body, r.Version = binary, 7
			return r
		}()},
		{"no-patient", resource("Device", "dev-1", "", time.Time{}, at(3))},
		{"same-id-other-type", resource("Device", "obs-1", "", time.Time{}, at(4))},
	}
	st := s.store(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, "CreateResources", st.CreateResources(ctxT(t), []vitalgate.SealedResource{tt.r}))
			got, err := st.Resource(ctxT(t), tt.r.Type, tt.r.ID)
			must(t, "Resource", err)
			checkResource(t, got, tt.r)
			err = st.CreateResources(ctxT(t), []vitalgate.SealedResource{tt.r})
			wantCode(t, "second CreateResources", err, vitalgate.ECONFLICT)
		})
	}
	wantCode(t, "CreateResources(nil)", st.CreateResources(ctxT(t), nil), "")
}

func (s *suite) testAllOrNothing(t *testing.T) {
	st := s.store(t)
	must(t, "CreateResources", st.CreateResources(ctxT(t), []vitalgate.SealedResource{
		resource("Observation", "existing", "p1", at(0), at(0), "c1"),
	}))
	tests := []struct {
		name  string
		batch []vitalgate.SealedResource
	}{
		{"duplicate-in-batch", []vitalgate.SealedResource{
			resource("Observation", "a1", "p1", at(0), at(0), "c1"),
			resource("Observation", "a2", "p1", at(0), at(0), "c2"),
			resource("Observation", "a1", "p1", at(0), at(0), "c3"),
		}},
		{"existing-id-last", []vitalgate.SealedResource{
			resource("Observation", "b1", "p1", at(0), at(0), "c1"),
			resource("Observation", "b2", "p2", at(0), at(0)),
			resource("Observation", "existing", "p1", at(0), at(0)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateResources", st.CreateResources(ctxT(t), tt.batch), vitalgate.ECONFLICT)
			for _, r := range tt.batch {
				if r.ID == "existing" {
					continue
				}
				_, err := st.Resource(ctxT(t), r.Type, r.ID)
				wantCode(t, "Resource "+r.ID+" of the failed batch", err, vitalgate.ENOTFOUND)
			}
		})
	}
	// The failed batches left no code index rows behind.
	n := 0
	must(t, "Resources", st.Resources(ctxT(t), vitalgate.ResourceFilter{CodeIndex: []byte("c1")},
		func(vitalgate.SealedResource) error { n++; return nil }))
	if n != 1 {
		t.Errorf("code c1 matches %d resources, want 1", n)
	}
}

// filterData is the data set of the filter and paging tests.
func filterData() []vitalgate.SealedResource {
	var rs []vitalgate.SealedResource
	patients := []string{"p1", "p2", ""}
	codes := [][]string{{"hr"}, {"bp", "bp-sys"}, {}, {"hr", "spo2"}}
	for i := range 60 {
		typ := "Observation"
		if i%7 == 3 {
			typ = "Device"
		}
		rs = append(rs, resource(typ, fmt.Sprintf("r%03d", (i*37)%60), patients[i%3],
			at(i), at(i%20), codes[i%4]...))
	}
	// The same id under another type.
	rs = append(rs, resource("Patient", "r010", "p1", time.Time{}, at(3)))
	return rs
}

// matches is the reference implementation of ResourceFilter (without paging).
func matches(r vitalgate.SealedResource, f vitalgate.ResourceFilter) bool {
	if f.Type != "" && r.Type != f.Type {
		return false
	}
	if len(f.PatientIndex) > 0 && !bytes.Equal(r.PatientIndex, f.PatientIndex) {
		return false
	}
	if len(f.CodeIndex) > 0 && !slices.ContainsFunc(r.CodeIndexes, func(c []byte) bool { return bytes.Equal(c, f.CodeIndex) }) {
		return false
	}
	if !f.Since.IsZero() && r.LastUpdated.Before(f.Since) {
		return false
	}
	return true
}

func key(r vitalgate.SealedResource) string { return r.ID + " " + r.Type }

// expected returns the keys of the resources in rs that f selects, in id order.
func expected(rs []vitalgate.SealedResource, f vitalgate.ResourceFilter) []string {
	var keys []string
	for _, r := range rs {
		if matches(r, f) && r.ID > f.After {
			keys = append(keys, key(r))
		}
	}
	sort.Strings(keys)
	if f.Limit > 0 && len(keys) > f.Limit {
		keys = keys[:f.Limit]
	}
	return keys
}

var filters = []struct {
	name string
	f    vitalgate.ResourceFilter
}{
	{"all", vitalgate.ResourceFilter{}},
	{"type", vitalgate.ResourceFilter{Type: "Observation"}},
	{"type-device", vitalgate.ResourceFilter{Type: "Device"}},
	{"patient", vitalgate.ResourceFilter{PatientIndex: []byte("p1")}},
	{"code", vitalgate.ResourceFilter{CodeIndex: []byte("hr")}},
	{"since", vitalgate.ResourceFilter{Since: at(15)}},
	{"type-patient-code", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p2"), CodeIndex: []byte("bp")}},
	{"patient-since", vitalgate.ResourceFilter{PatientIndex: []byte("p1"), Since: at(10)}},
	{"code-since", vitalgate.ResourceFilter{CodeIndex: []byte("spo2"), Since: at(5)}},
	{"code-patient", vitalgate.ResourceFilter{CodeIndex: []byte("bp-sys"), PatientIndex: []byte("p1")}},
	{"type-since", vitalgate.ResourceFilter{Type: "Observation", Since: at(18)}},
	{"type-code", vitalgate.ResourceFilter{Type: "Device", CodeIndex: []byte("hr")}},
	{"unknown-patient", vitalgate.ResourceFilter{PatientIndex: []byte("nobody")}},
	{"unknown-code", vitalgate.ResourceFilter{CodeIndex: []byte("none")}},
	{"after", vitalgate.ResourceFilter{After: "r030"}},
	{"limit", vitalgate.ResourceFilter{Limit: 5}},
	{"patient-after-limit", vitalgate.ResourceFilter{PatientIndex: []byte("p2"), After: "r010", Limit: 4}},
	{"since-future", vitalgate.ResourceFilter{Since: at(1000)}},
}

// load stores rs in a few batches and returns them with the times as stored.
func load(t *testing.T, st vitalgate.Store, rs []vitalgate.SealedResource) {
	t.Helper()
	for i := 0; i < len(rs); i += 8 {
		must(t, "CreateResources", st.CreateResources(ctxT(t), rs[i:min(i+8, len(rs))]))
	}
}

// collect returns the keys of what Resources yields, checking each against want by key.
func collect(t *testing.T, st vitalgate.Store, f vitalgate.ResourceFilter, byKey map[string]vitalgate.SealedResource) []string {
	t.Helper()
	var keys []string
	err := st.Resources(ctxT(t), f, func(r vitalgate.SealedResource) error {
		keys = append(keys, key(r))
		if want, ok := byKey[key(r)]; ok {
			checkResource(t, r, want)
		} else {
			t.Errorf("Resources yields unknown %s/%s", r.Type, r.ID)
		}
		return nil
	})
	must(t, "Resources", err)
	return keys
}

func (s *suite) testResourceFilter(t *testing.T) {
	st := s.store(t)
	rs := filterData()
	load(t, st, rs)
	byKey := make(map[string]vitalgate.SealedResource)
	for _, r := range rs {
		byKey[key(r)] = r
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			got := collect(t, st, tt.f, byKey)
			if want := expected(rs, tt.f); !slices.Equal(got, want) {
				t.Errorf("Resources(%+v)\n got %q\nwant %q", tt.f, got, want)
			}
		})
	}
}

func (s *suite) testResourcePaging(t *testing.T) {
	st := s.store(t)
	// Ids are unique across types here: paging resumes after an id.
	var rs []vitalgate.SealedResource
	for _, r := range filterData() {
		if r.Type != "Patient" {
			rs = append(rs, r)
		}
	}
	load(t, st, rs)
	byKey := make(map[string]vitalgate.SealedResource)
	for _, r := range rs {
		byKey[key(r)] = r
	}
	for _, tt := range filters {
		if tt.f.Limit > 0 || tt.f.After != "" {
			continue
		}
		for _, limit := range []int{1, 3, 7, 100} {
			t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
				f := tt.f
				f.Limit = limit
				var got []string
				for pages := 0; ; pages++ {
					if pages > len(rs)+1 {
						t.Fatal("paging does not end")
					}
					page := collect(t, st, f, byKey)
					if len(page) > limit {
						t.Fatalf("page of %d with Limit %d", len(page), limit)
					}
					got = append(got, page...)
					if len(page) < limit {
						break
					}
					f.After = byKey[page[len(page)-1]].ID
				}
				if want := expected(rs, tt.f); !slices.Equal(got, want) {
					t.Errorf("pages\n got %q\nwant %q", got, want)
				}
			})
		}
	}
}

func (s *suite) testResourceStop(t *testing.T) {
	st := s.store(t)
	load(t, st, filterData())
	stop := errors.New("stop")
	calls := 0
	err := st.Resources(ctxT(t), vitalgate.ResourceFilter{}, func(vitalgate.SealedResource) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("Resources = %v, want fn's error", err)
	}
	if calls != 2 {
		t.Errorf("fn called %d times, want 2", calls)
	}
}

func (s *suite) testResourceConcurrent(t *testing.T) {
	const workers, calls = 16, 50
	st := s.store(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	want := make(map[string]bool)
	for w := range workers {
		for c := range calls {
			for k := range 1 + c%3 {
				want[fmt.Sprintf("w%02d-c%02d-%d", w, c, k)] = true
			}
		}
		wg.Go(func() {
			for c := range calls {
				var batch []vitalgate.SealedResource
				for k := range 1 + c%3 {
					id := fmt.Sprintf("w%02d-c%02d-%d", w, c, k)
					batch = append(batch, resource("Observation", id, fmt.Sprintf("p%d", w%4), at(c), at(c), "hr"))
				}
				if err := st.CreateResources(ctxT(t), batch); err != nil {
					errs <- fmt.Errorf("worker %d call %d: %w", w, c, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := make(map[string]int)
	must(t, "Resources", st.Resources(ctxT(t), vitalgate.ResourceFilter{}, func(r vitalgate.SealedResource) error {
		seen[r.ID]++
		return nil
	}))
	if len(seen) != len(want) {
		t.Errorf("stored %d resources, want %d", len(seen), len(want))
	}
	for id, n := range seen {
		if n != 1 || !want[id] {
			t.Errorf("resource %s seen %d times (expected: %v)", id, n, want[id])
		}
	}
}

func (s *suite) testDataKey(t *testing.T) {
	st := s.store(t)
	k := vitalgate.DataKey{PatientIndex: []byte("p1"), Wrapped: []byte("wrapped-1"), CreatedAt: at(0)}
	got, err := st.PutDataKey(ctxT(t), k)
	must(t, "PutDataKey", err)
	checkDataKey(t, got, k)
	got, err = st.DataKey(ctxT(t), k.PatientIndex)
	must(t, "DataKey", err)
	checkDataKey(t, got, k)

	other := vitalgate.DataKey{PatientIndex: []byte("p1"), Wrapped: []byte("wrapped-2"), CreatedAt: at(5)}
	got, err = st.PutDataKey(ctxT(t), other)
	must(t, "second PutDataKey", err)
	checkDataKey(t, got, k)
	got, err = st.DataKey(ctxT(t), k.PatientIndex)
	must(t, "DataKey", err)
	checkDataKey(t, got, k)
}

func checkDataKey(t *testing.T, got, want vitalgate.DataKey) {
	t.Helper()
	checkBytes(t, "PatientIndex", got.PatientIndex, want.PatientIndex)
	checkBytes(t, "Wrapped", got.Wrapped, want.Wrapped)
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
}

func (s *suite) testDataKeyConcurrent(t *testing.T) {
	const n = 16
	st := s.store(t)
	got := make([]vitalgate.DataKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errs[i] = st.PutDataKey(ctxT(t), vitalgate.DataKey{
				PatientIndex: []byte("p-race"), Wrapped: fmt.Appendf(nil, "wrapped-%d", i), CreatedAt: at(i),
			})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		must(t, fmt.Sprintf("PutDataKey %d", i), errs[i])
	}
	stored, err := st.DataKey(ctxT(t), []byte("p-race"))
	must(t, "DataKey", err)
	for i := range n {
		if !bytes.Equal(got[i].Wrapped, stored.Wrapped) {
			t.Errorf("caller %d got %q, stored is %q", i, got[i].Wrapped, stored.Wrapped)
		}
	}
}

func (s *suite) testRewrap(t *testing.T) {
	st := s.store(t)
	const n = 10
	for i := range n {
		_, err := st.PutDataKey(ctxT(t), vitalgate.DataKey{
			PatientIndex: fmt.Appendf(nil, "p%02d", i), Wrapped: fmt.Appendf(nil, "old-%d", i), CreatedAt: at(i),
		})
		must(t, "PutDataKey", err)
	}
	seen := 0
	count, err := st.RewrapDataKeys(ctxT(t), func(k vitalgate.DataKey) ([]byte, bool, error) {
		seen++
		var i int
		if _, err := fmt.Sscanf(string(k.PatientIndex), "p%d", &i); err != nil {
			return nil, false, err
		}
		if i%3 == 0 {
			return nil, false, nil // already under the new key
		}
		return fmt.Appendf(nil, "new-%d", i), true, nil
	})
	must(t, "RewrapDataKeys", err)
	if seen != n {
		t.Errorf("rewrap called for %d keys, want %d", seen, n)
	}
	if want := 6; count != want {
		t.Errorf("RewrapDataKeys = %d, want %d", count, want)
	}
	for i := range n {
		k, err := st.DataKey(ctxT(t), fmt.Appendf(nil, "p%02d", i))
		must(t, "DataKey", err)
		want := fmt.Sprintf("new-%d", i)
		if i%3 == 0 {
			want = fmt.Sprintf("old-%d", i)
		}
		if string(k.Wrapped) != want {
			t.Errorf("key %d = %q, want %q", i, k.Wrapped, want)
		}
		checkTime(t, "CreatedAt", k.CreatedAt, at(i))
	}
}

func (s *suite) testRewrapError(t *testing.T) {
	st := s.store(t)
	for i := range 5 {
		_, err := st.PutDataKey(ctxT(t), vitalgate.DataKey{
			PatientIndex: fmt.Appendf(nil, "p%d", i), Wrapped: fmt.Appendf(nil, "old-%d", i), CreatedAt: at(i),
		})
		must(t, "PutDataKey", err)
	}
	boom := errors.New("kek unavailable")
	calls := 0
	_, err := st.RewrapDataKeys(ctxT(t), func(k vitalgate.DataKey) ([]byte, bool, error) {
		calls++
		if calls == 3 {
			return nil, false, boom
		}
		return []byte("new"), true, nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("RewrapDataKeys = %v, want rewrap's error", err)
	}
	for i := range 5 {
		k, err := st.DataKey(ctxT(t), fmt.Appendf(nil, "p%d", i))
		must(t, "DataKey", err)
		if want := fmt.Sprintf("old-%d", i); string(k.Wrapped) != want {
			t.Errorf("key %d = %q after a failed rewrap, want %q (all or nothing)", i, k.Wrapped, want)
		}
	}
}
