package storetest

import (
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// deviceTests are the conformance tests of the assignment history and certificate renewal
// (run by Run with the other device tests).
func (s *suite) deviceTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Assignment/History", s.testAssignmentHistory},
		{"Assignment/Unassigned", s.testAssignmentUnassigned},
		{"Assignment/NotBackwards", s.testAssignmentNotBackwards},
		{"Assignment/Atomic", s.testAssignmentAtomic},
		{"Certificate/Renew", s.testRenewCertificate},
		{"Device/RevokeEndsOverlap", s.testRevokeEndsOverlap},
	}
}

func checkAssignment(t *testing.T, what string, got vitalgate.Assignment, device, patient string, from, to time.Time) {
	t.Helper()
	if got.DeviceID != device {
		t.Errorf("%s: DeviceID = %q, want %q", what, got.DeviceID, device)
	}
	checkBytes(t, what+": PatientIndex", got.PatientIndex, []byte("pidx-"+patient))
	checkBytes(t, what+": PatientSealed", got.PatientSealed, []byte("sealed-"+patient))
	checkTime(t, what+": From", got.From, from)
	checkTime(t, what+": To", got.To, to)
}

// testAssignmentHistory: a reassignment closes the current assignment and opens the next;
// AssignmentAt finds the one that covered a given time, Assignments lists them newest first.
func (s *suite) testAssignmentHistory(t *testing.T) {
	st := s.store(t)
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-1"))) // patient "dev-1" from at(0)
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-2")))
	must(t, "AssignPatient", st.AssignPatient(ctxT(t), "dev-1", []byte("pidx-b"), []byte("sealed-b"), at(10)))
	must(t, "AssignPatient", st.AssignPatient(ctxT(t), "dev-1", []byte("pidx-c"), []byte("sealed-c"), at(20)))

	tests := []struct {
		name     string
		t        time.Time
		patient  string
		from, to time.Time
	}{
		{"first at its start", at(0), "dev-1", at(0), at(10)},
		{"first before its end", at(10).Add(-time.Microsecond), "dev-1", at(0), at(10)},
		{"second at its start", at(10), "b", at(10), at(20)},
		{"current", at(20), "c", at(20), time.Time{}},
		{"current much later", at(60 * 24 * 365), "c", at(20), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := st.AssignmentAt(ctxT(t), "dev-1", tt.t)
			must(t, "AssignmentAt", err)
			checkAssignment(t, "AssignmentAt", a, "dev-1", tt.patient, tt.from, tt.to)
		})
	}
	_, err := st.AssignmentAt(ctxT(t), "dev-1", at(-1))
	wantCode(t, "AssignmentAt before the first assignment", err, vitalgate.ENOTFOUND)
	_, err = st.AssignmentAt(ctxT(t), "nope", at(5))
	wantCode(t, "AssignmentAt of an unknown device", err, vitalgate.ENOTFOUND)

	as, err := st.Assignments(ctxT(t), "dev-1", 10)
	must(t, "Assignments", err)
	if len(as) != 3 {
		t.Fatalf("Assignments = %d, want 3", len(as))
	}
	checkAssignment(t, "Assignments[0]", as[0], "dev-1", "c", at(20), time.Time{})
	checkAssignment(t, "Assignments[1]", as[1], "dev-1", "b", at(10), at(20))
	checkAssignment(t, "Assignments[2]", as[2], "dev-1", "dev-1", at(0), at(10))
	as, err = st.Assignments(ctxT(t), "dev-1", 1)
	must(t, "Assignments limit 1", err)
	if len(as) != 1 || !as[0].Current() {
		t.Errorf("Assignments limit 1 = %+v, want the current one", as)
	}
	other, err := st.Assignments(ctxT(t), "dev-2", 10)
	must(t, "Assignments dev-2", err)
	if len(other) != 1 {
		t.Fatalf("other device's assignments = %d, want 1", len(other))
	}
	checkAssignment(t, "other device", other[0], "dev-2", "dev-2", at(0), time.Time{})
}

// testAssignmentUnassigned: a device created without a patient has no assignment until it is
// assigned.
func (s *suite) testAssignmentUnassigned(t *testing.T) {
	st := s.store(t)
	d := testDevice("dev-1")
	d.PatientIndex, d.PatientSealed = nil, nil
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), d))
	_, err := st.AssignmentAt(ctxT(t), "dev-1", at(5))
	wantCode(t, "AssignmentAt of an unassigned device", err, vitalgate.ENOTFOUND)
	as, err := st.Assignments(ctxT(t), "dev-1", 10)
	must(t, "Assignments", err)
	if len(as) != 0 {
		t.Errorf("Assignments = %+v, want none", as)
	}
	must(t, "AssignPatient", st.AssignPatient(ctxT(t), "dev-1", []byte("pidx-a"), []byte("sealed-a"), at(3)))
	a, err := st.AssignmentAt(ctxT(t), "dev-1", at(5))
	must(t, "AssignmentAt", err)
	checkAssignment(t, "AssignmentAt", a, "dev-1", "a", at(3), time.Time{})
}

// testAssignmentNotBackwards: a reassignment must not start before the latest assignment's
// start, and a refused one changes nothing.
func (s *suite) testAssignmentNotBackwards(t *testing.T) {
	st := s.store(t)
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-1")))
	must(t, "AssignPatient", st.AssignPatient(ctxT(t), "dev-1", []byte("pidx-b"), []byte("sealed-b"), at(10)))
	err := st.AssignPatient(ctxT(t), "dev-1", []byte("pidx-c"), []byte("sealed-c"), at(5))
	wantCode(t, "AssignPatient before the latest assignment's start", err, vitalgate.ECONFLICT)
	a, err := st.AssignmentAt(ctxT(t), "dev-1", at(30))
	must(t, "AssignmentAt", err)
	checkAssignment(t, "AssignmentAt", a, "dev-1", "b", at(10), time.Time{})
	d, err := st.Device(ctxT(t), "dev-1")
	must(t, "Device", err)
	checkBytes(t, "device PatientIndex", d.PatientIndex, []byte("pidx-b"))

	// In the same instant as the current assignment's start: that assignment lasted no time
	// and is replaced.
	must(t, "AssignPatient in the same instant", st.AssignPatient(ctxT(t), "dev-1", []byte("pidx-c"), []byte("sealed-c"), at(10)))
	as, err := st.Assignments(ctxT(t), "dev-1", 10)
	must(t, "Assignments", err)
	if len(as) != 2 {
		t.Fatalf("Assignments = %d, want 2 (the zero-length one replaced)", len(as))
	}
	checkAssignment(t, "Assignments[0]", as[0], "dev-1", "c", at(10), time.Time{})
	checkAssignment(t, "Assignments[1]", as[1], "dev-1", "dev-1", at(0), at(10))
	// A closed assignment is never replaced: reassigning at its start is backwards.
	err = st.AssignPatient(ctxT(t), "dev-1", []byte("pidx-d"), []byte("sealed-d"), at(0))
	wantCode(t, "AssignPatient at a closed assignment's start", err, vitalgate.ECONFLICT)
}

// testAssignmentAtomic: when the audit entry cannot be appended, the reassignment does not
// happen (neither the device nor its history change).
func (s *suite) testAssignmentAtomic(t *testing.T) {
	st := s.store(t)
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-1")))
	err := st.AssignPatient(ctxT(t), "dev-1", []byte("pidx-b"), []byte("sealed-b"), at(10), []byte{})
	if err == nil {
		t.Fatal("AssignPatient with an empty audit entry succeeded")
	}
	as, err := st.Assignments(ctxT(t), "dev-1", 10)
	must(t, "Assignments", err)
	if len(as) != 1 || !as[0].Current() {
		t.Fatalf("Assignments after a failed reassignment = %+v, want the first, current", as)
	}
	checkAssignment(t, "Assignments[0]", as[0], "dev-1", "dev-1", at(0), time.Time{})
}

// testRenewCertificate: a renewal records the new certificate and ends the old one at the end
// of the overlap, unless it ends earlier already.
func (s *suite) testRenewCertificate(t *testing.T) {
	st := s.store(t)
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-1")))
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-2")))
	must(t, "AddCertificate", st.AddCertificate(ctxT(t), testCert("a001", "dev-1")))
	must(t, "AddCertificate", st.AddCertificate(ctxT(t), testCert("b001", "dev-2")))

	must(t, "RenewCertificate", st.RenewCertificate(ctxT(t), testCert("a002", "dev-1"), "a001", at(5)))
	old, err := st.Certificate(ctxT(t), "a001")
	must(t, "Certificate old", err)
	checkTime(t, "old RevokedAt", old.RevokedAt, at(5))
	if old.RevokedBy(at(4)) || !old.RevokedBy(at(5)) {
		t.Errorf("old certificate RevokedBy: usable until %v, want until at(5)", old.RevokedAt)
	}
	cur, err := st.Certificate(ctxT(t), "a002")
	must(t, "Certificate new", err)
	checkCert(t, cur, testCert("a002", "dev-1"))

	// A second renewal of the same old certificate does not extend its life.
	must(t, "RenewCertificate again", st.RenewCertificate(ctxT(t), testCert("a003", "dev-1"), "a001", at(50)))
	old, err = st.Certificate(ctxT(t), "a001")
	must(t, "Certificate old", err)
	checkTime(t, "old RevokedAt after a later renewal", old.RevokedAt, at(5))

	tests := []struct {
		name string
		cert vitalgate.Certificate
		old  string
		code string
	}{
		{"unknown old serial", testCert("a009", "dev-1"), "ffff", vitalgate.ENOTFOUND},
		{"another device's serial", testCert("a009", "dev-1"), "b001", vitalgate.ENOTFOUND},
		{"unknown device", testCert("a009", "nope"), "a001", vitalgate.ENOTFOUND},
		{"existing new serial", testCert("a002", "dev-1"), "a003", vitalgate.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "RenewCertificate", st.RenewCertificate(ctxT(t), tt.cert, tt.old, at(7)), tt.code)
		})
	}
	other, err := st.Certificate(ctxT(t), "b001")
	must(t, "Certificate other", err)
	if other.Revoked() {
		t.Errorf("a refused renewal revoked another device's certificate: %+v", other)
	}
	if _, err := st.Certificate(ctxT(t), "a009"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("a refused renewal recorded its certificate: %v", err)
	}
}

// testRevokeEndsOverlap: revoking a device ends a renewed certificate's overlap at once.
func (s *suite) testRevokeEndsOverlap(t *testing.T) {
	st := s.store(t)
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-1")))
	must(t, "AddCertificate", st.AddCertificate(ctxT(t), testCert("c001", "dev-1")))
	must(t, "RenewCertificate", st.RenewCertificate(ctxT(t), testCert("c002", "dev-1"), "c001", at(60)))
	must(t, "RevokeDevice", st.RevokeDevice(ctxT(t), "dev-1", at(10)))
	for _, serial := range []string{"c001", "c002"} {
		c, err := st.Certificate(ctxT(t), serial)
		must(t, "Certificate", err)
		checkTime(t, serial+" RevokedAt", c.RevokedAt, at(10))
	}
}
