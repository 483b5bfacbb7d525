package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// registry is a test double of ingest.Registry (the real one is the registry package):
// active devices and their assignments; an assignment that ended more than window before
// now binds nothing.
type registry struct {
	devices     map[string]vitalgate.Device
	assignments []vitalgate.Assignment
	window      time.Duration
	now         func() time.Time
	// bindings are the binding policies by device model (assigned when absent).
	bindings map[string]vitalgate.Binding
}

func (r *registry) Sender(_ context.Context, id string) (vitalgate.Device, error) {
	d, ok := r.devices[id]
	if d.Site == "" {
		d.Site = vitalgate.DefaultSite
	}
	if !ok || d.Status != vitalgate.DeviceActive {
		return d, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q may not send", id)
	}
	return d, nil
}

func (r *registry) Binding(_ context.Context, d vitalgate.Device) (vitalgate.Binding, error) {
	if b, ok := r.bindings[d.Model]; ok {
		return b, nil
	}
	return vitalgate.BindingAssigned, nil
}

func (r *registry) PatientAt(_ context.Context, id string, t time.Time) (vitalgate.Assignment, error) {
	for _, a := range r.assignments {
		if a.DeviceID == id && a.Covers(t) && (a.Current() || r.now().Sub(a.To) <= r.window) {
			return a, nil
		}
	}
	return vitalgate.Assignment{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "no assignment binds this")
}

type env struct {
	svc   *ingest.Service
	store *sqlite.DB
	vault *vault.Vault
	reg   *registry
	now   time.Time
	// patients created with identifiers: name -> id
	pat map[string]string
}

const mrnSystem = "urn:oid:1.2.3.4"

// mustEnv builds a Service over a real store; patients "a" and "b" exist (identifiers
// urn:oid:1.2.3.4|mrn-a and |mrn-b); device dev-1 is assigned to a, dev-2 to b, since a day.
func mustEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	keys, err := vault.CreateKeyring(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	v := vault.New(store, keys, clock, nil)
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	reg := &registry{devices: map[string]vitalgate.Device{
		"dev-1": {ID: "dev-1", Model: "Oximeter X", Status: vitalgate.DeviceActive},
		"dev-2": {ID: "dev-2", Status: vitalgate.DeviceActive},
	}, window: 24 * time.Hour, now: clock}
	e := &env{svc: &ingest.Service{Registry: reg, Resources: store, Vault: v, Now: clock,
		Audit: audit.NewLog(store, signer, "test", "n", clock), Finder: store},
		store: store, vault: v, reg: reg, now: now, pat: map[string]string{}}
	for _, name := range []string{"a", "b"} {
		c, err := e.svc.CreatePatient(ctx, vitalgate.Principal{Kind: "client", Site: vitalgate.DefaultSite, ID: "admin", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Patient.c"}},
			[]byte(`{"resourceType":"Patient","identifier":[{"system":"`+mrnSystem+`","value":"mrn-`+name+`"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		e.pat[name] = c.ID
	}
	e.assign("dev-1", "a", now.Add(-24*time.Hour), time.Time{})
	e.assign("dev-2", "b", now.Add(-24*time.Hour), time.Time{})
	return e
}

func (e *env) assign(dev, patient string, from, to time.Time) {
	e.reg.assignments = append(e.reg.assignments, vitalgate.Assignment{DeviceID: dev,
		PatientIndex: e.vault.PatientIndex(e.pat[patient]), From: from, To: to})
}

// obs returns a heart-rate Observation about patient id measured at t, changed by edit.
func obs(t *testing.T, patientID string, at time.Time, edit func(o map[string]any)) []byte {
	t.Helper()
	o := map[string]any{
		"resourceType": "Observation", "status": "final",
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
		"subject":           map[string]any{"reference": "Patient/" + patientID},
		"effectiveDateTime": at.UTC().Format(time.RFC3339),
		"valueQuantity":     map[string]any{"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
	}
	if edit != nil {
		edit(o)
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCreate(t *testing.T, e *env, dev string, body []byte) ingest.Created {
	t.Helper()
	c, err := e.svc.CreateObservation(context.Background(), dev, body)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestObservationNamesOnlyItsPatientAndDevice: every element that names a patient or a
// device is tied to the sender (security review finding 7).
func TestObservationNamesOnlyItsPatientAndDevice(t *testing.T) {
	e := mustEnv(t)
	a, b := e.pat["a"], e.pat["b"]
	ownObs := mustCreate(t, e, "dev-1", obs(t, a, e.now.Add(-time.Hour), nil))
	otherObs := mustCreate(t, e, "dev-2", obs(t, b, e.now.Add(-time.Hour), nil))
	tests := []struct {
		name  string
		edit  func(o map[string]any)
		code  string
		field string
	}{
		{"valid", nil, "", ""},
		{"focus on another patient", func(o map[string]any) {
			o["focus"] = []any{map[string]any{"reference": "Patient/" + b}}
		}, vitalgate.EFORBIDDEN, "Observation.focus[0]"},
		{"focus on another device", func(o map[string]any) {
			o["focus"] = []any{map[string]any{"reference": "Device/dev-2"}}
		}, vitalgate.EFORBIDDEN, "Observation.focus[0]"},
		{"focus on its own patient", func(o map[string]any) {
			o["focus"] = []any{map[string]any{"reference": "Patient/" + a}}
		}, "", ""},
		{"subject.identifier of another patient", func(o map[string]any) {
			o["subject"] = map[string]any{"reference": "Patient/" + a, "identifier": map[string]any{"system": mrnSystem, "value": "mrn-b"}}
		}, vitalgate.EFORBIDDEN, "Observation.subject.identifier"},
		{"subject.identifier of no patient", func(o map[string]any) {
			o["subject"] = map[string]any{"reference": "Patient/" + a, "identifier": map[string]any{"system": mrnSystem, "value": "mrn-x"}}
		}, vitalgate.EFORBIDDEN, "Observation.subject.identifier"},
		{"subject.identifier of its own patient", func(o map[string]any) {
			o["subject"] = map[string]any{"reference": "Patient/" + a, "identifier": map[string]any{"system": mrnSystem, "value": "mrn-a"}}
		}, "", ""},
		{"subject another patient", func(o map[string]any) {
			o["subject"] = map[string]any{"reference": "Patient/" + b}
		}, vitalgate.EFORBIDDEN, "Observation.subject"},
		{"device.identifier of another device", func(o map[string]any) {
			o["device"] = map[string]any{"reference": "Device/dev-1", "identifier": map[string]any{"value": "dev-2"}}
		}, vitalgate.EFORBIDDEN, "Observation.device.identifier"},
		{"device.display of another device", func(o map[string]any) {
			o["device"] = map[string]any{"reference": "Device/dev-1", "display": "dev-2"}
		}, vitalgate.EFORBIDDEN, "Observation.device.display"},
		{"device.display its model", func(o map[string]any) {
			o["device"] = map[string]any{"reference": "Device/dev-1", "display": "Oximeter X"}
		}, "", ""},
		{"device another device", func(o map[string]any) {
			o["device"] = map[string]any{"reference": "Device/dev-2"}
		}, vitalgate.EFORBIDDEN, "Observation.device"},
		{"derivedFrom another patient's observation", func(o map[string]any) {
			o["derivedFrom"] = []any{map[string]any{"reference": "Observation/" + otherObs.ID}}
		}, vitalgate.EFORBIDDEN, "Observation.derivedFrom[0]"},
		{"derivedFrom an unknown observation", func(o map[string]any) {
			o["derivedFrom"] = []any{map[string]any{"reference": "Observation/nope"}}
		}, vitalgate.EFORBIDDEN, "Observation.derivedFrom[0]"},
		{"derivedFrom its patient's observation", func(o map[string]any) {
			o["derivedFrom"] = []any{map[string]any{"reference": "Observation/" + ownObs.ID}}
		}, "", ""},
		{"measured in 1901", func(o map[string]any) { o["effectiveDateTime"] = "1901-01-01T00:00:00Z" },
			vitalgate.EUNPROCESSABLE, "Observation.effective[x]"},
		{"buffered 8 days", func(o map[string]any) {
			o["effectiveDateTime"] = e.now.Add(-8 * 24 * time.Hour).Format(time.RFC3339)
		}, vitalgate.EUNPROCESSABLE, "Observation.effective[x]"},
		{"note of 9 KiB", func(o map[string]any) {
			o["note"] = []any{map[string]any{"text": strings.Repeat("x", 9<<10)}}
		}, vitalgate.EUNPROCESSABLE, "Observation.note[0].text"},
		{"note of 8 KiB", func(o map[string]any) {
			o["note"] = []any{map[string]any{"text": strings.Repeat("x", 8<<10)}}
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := e.now.Add(-time.Duration(len(tt.name)) * time.Minute) // distinct content per case
			_, err := e.svc.CreateObservation(context.Background(), "dev-1", obs(t, a, at, tt.edit))
			if vitalgate.ErrorCode(err) != tt.code || vitalgate.ErrorField(err) != tt.field {
				t.Fatalf("error %v (field %q), want code %q at %q", err, vitalgate.ErrorField(err), tt.code, tt.field)
			}
		})
	}
}

// TestDeviceIsSetFromTheCertificate: an Observation without device gets the sender's.
func TestDeviceIsSetFromTheCertificate(t *testing.T) {
	e := mustEnv(t)
	c := mustCreate(t, e, "dev-1", obs(t, e.pat["a"], e.now.Add(-time.Minute), nil))
	if !bytes.Contains(c.Body, []byte(`"device":{"reference":"Device/dev-1"}`)) {
		t.Fatalf("stored body has no device from the certificate: %s", c.Body)
	}
}

func TestMaxBackdateIsConfigurable(t *testing.T) {
	e := mustEnv(t)
	e.svc.MaxBackdate = time.Hour
	_, err := e.svc.CreateObservation(context.Background(), "dev-1", obs(t, e.pat["a"], e.now.Add(-2*time.Hour), nil))
	if vitalgate.ErrorField(err) != "Observation.effective[x]" {
		t.Fatalf("2 h old with a 1 h bound: %v", err)
	}
	if _, err := e.svc.CreateObservation(context.Background(), "dev-1", obs(t, e.pat["a"], e.now.Add(-30*time.Minute), nil)); err != nil {
		t.Fatalf("30 min old with a 1 h bound: %v", err)
	}
}

// reassigned sets dev-1 up as reassigned from patient a to b 3 h ago, after having been
// assigned to b from 3 days to 2 days ago (ended longer ago than the 24 h window).
func reassigned(e *env) (reassignedAt time.Time) {
	at := e.now.Add(-3 * time.Hour)
	e.reg.assignments = nil
	e.assign("dev-1", "b", e.now.Add(-72*time.Hour), e.now.Add(-48*time.Hour))
	e.assign("dev-1", "a", e.now.Add(-48*time.Hour), at)
	e.assign("dev-1", "b", at, time.Time{})
	return at
}

// storedPatients returns the patient index of every stored Observation, by id.
func storedPatients(t *testing.T, e *env) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := e.store.Resources(context.Background(), vitalgate.ResourceFilter{Type: "Observation"}, func(r vitalgate.SealedResource) error {
		out[r.ID] = r.PatientIndex
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBufferedUploadAcrossReassignment: a batch a device buffered across a reassignment
// binds each reading to the patient assigned when it was measured (finding 18).
func TestBufferedUploadAcrossReassignment(t *testing.T) {
	e := mustEnv(t)
	at := reassigned(e)
	a, b := e.pat["a"], e.pat["b"]
	entries := []struct {
		name    string
		patient string
		at      time.Time
		code    string
	}{
		{"before, old patient", a, at.Add(-time.Hour), ""},
		{"after, new patient", b, at.Add(time.Hour), ""},
		{"before, new patient", b, at.Add(-2 * time.Hour), vitalgate.EFORBIDDEN},
		{"after, old patient", a, at.Add(2 * time.Hour), vitalgate.EFORBIDDEN},
		{"assignment ended beyond the window", b, e.now.Add(-60 * time.Hour), vitalgate.EFORBIDDEN},
	}
	var bundle struct {
		ResourceType string           `json:"resourceType"`
		Type         string           `json:"type"`
		Entry        []map[string]any `json:"entry"`
	}
	bundle.ResourceType, bundle.Type = "Bundle", "batch"
	for _, en := range entries {
		var o map[string]any
		_ = json.Unmarshal(obs(t, en.patient, en.at, nil), &o)
		bundle.Entry = append(bundle.Entry, map[string]any{"resource": o, "request": map[string]any{"method": "POST", "url": "Observation"}})
	}
	body, _ := json.Marshal(bundle)
	res, err := e.svc.CreateBundle(context.Background(), "dev-1", body)
	if err != nil {
		t.Fatal(err)
	}
	stored := storedPatients(t, e)
	for i, en := range entries {
		got := res.Entries[i]
		if vitalgate.ErrorCode(got.Err) != en.code {
			t.Errorf("%s: error %v, want code %q", en.name, got.Err, en.code)
			continue
		}
		if en.code == "" && !bytes.Equal(stored[got.Created.ID], e.vault.PatientIndex(en.patient)) {
			t.Errorf("%s: sealed under another patient", en.name)
		}
	}

	// The HL7 path (already-decoded observations) binds each by its own time too.
	var list []*fhir.Observation
	for _, en := range entries[:2] {
		o, err := fhir.DecodeObservation(obs(t, en.patient, en.at.Add(time.Minute), nil))
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, o)
	}
	created, err := e.svc.CreateObservations(context.Background(), "dev-1", list)
	if err != nil {
		t.Fatal(err)
	}
	stored = storedPatients(t, e)
	for i, c := range created {
		if !bytes.Equal(stored[c.ID], e.vault.PatientIndex(entries[i].patient)) {
			t.Errorf("HL7 %s: sealed under another patient", entries[i].name)
		}
	}
	for _, en := range entries[2:] {
		o, _ := fhir.DecodeObservation(obs(t, en.patient, en.at.Add(time.Minute), nil))
		if _, err := e.svc.CreateObservations(context.Background(), "dev-1", []*fhir.Observation{o}); vitalgate.ErrorCode(err) != en.code {
			t.Errorf("HL7 %s: error %v, want %q", en.name, err, en.code)
		}
	}
}

// TestTransactionMembers: derivedFrom may name a member of the same transaction, but not a
// member about another patient.
func TestTransactionMembers(t *testing.T) {
	e := mustEnv(t)
	at := reassigned(e)
	tx := func(p0, p1 string) []byte {
		var o0, o1 map[string]any
		_ = json.Unmarshal(obs(t, p0, at.Add(-time.Hour), nil), &o0)
		_ = json.Unmarshal(obs(t, p1, at.Add(time.Hour), func(o map[string]any) {
			o["derivedFrom"] = []any{map[string]any{"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"}}
		}), &o1)
		b, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
			map[string]any{"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": o0, "request": map[string]any{"method": "POST", "url": "Observation"}},
			map[string]any{"resource": o1, "request": map[string]any{"method": "POST", "url": "Observation"}},
		}})
		return b
	}
	if _, err := e.svc.CreateBundle(context.Background(), "dev-1", tx(e.pat["a"], e.pat["b"])); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN ||
		vitalgate.ErrorField(err) != "Bundle.entry[1].resource.derivedFrom[0]" {
		t.Fatalf("member of another patient: %v (%s)", err, vitalgate.ErrorField(err))
	}
	e.reg.assignments = nil
	e.assign("dev-1", "a", e.now.Add(-48*time.Hour), time.Time{})
	if _, err := e.svc.CreateBundle(context.Background(), "dev-1", tx(e.pat["a"], e.pat["a"])); err != nil {
		t.Fatalf("member of the same patient: %v", err)
	}
}

// auditText returns every stored audit entry.
func auditText(t *testing.T, e *env) string {
	t.Helper()
	var sb strings.Builder
	err := e.store.AuditEntries(context.Background(), 0, 1<<62, func(r vitalgate.AuditRecord) error {
		sb.Write(r.Data)
		sb.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// TestRefusalAuditHasNoClinicalValues: a refused create is audited with its code and
// element, never the message that quotes the value (finding 11).
func TestRefusalAuditHasNoClinicalValues(t *testing.T) {
	e := mustEnv(t)
	_, err := e.svc.CreateObservation(context.Background(), "dev-1", obs(t, e.pat["a"], e.now.Add(-time.Minute), func(o map[string]any) {
		o["valueQuantity"].(map[string]any)["value"] = 400.5 // with its point: never part of a hex blind index
	}))
	if !strings.Contains(vitalgate.ErrorMessage(err), "400.5") {
		t.Fatalf("the refusal should quote the value to the device: %v", err)
	}
	text := auditText(t, e)
	if strings.Contains(text, "400.5") || strings.Contains(text, "/min") || strings.Contains(text, "heart rate") {
		t.Fatalf("audit log holds the clinical value:\n%s", text)
	}
	if !strings.Contains(text, `"outcomeDesc":"unprocessable: Observation.valueQuantity.value"`) {
		t.Fatalf("audit log lacks the refusal's code and element:\n%s", text)
	}
}

// TestRefuseHL7CarriesTheSource: a refusal before ingest is audited with the request's
// source address and id.
func TestRefuseHL7CarriesTheSource(t *testing.T) {
	e := mustEnv(t)
	ctx := vitalgate.WithRequestInfo(context.Background(), vitalgate.RequestInfo{ID: "req-9", RemoteIP: "192.0.2.7"})
	e.svc.RefuseHL7(ctx, "dev-1", vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, "MSH-3", "names another device"))
	text := auditText(t, e)
	for _, want := range []string{`"outcomeDesc":"forbidden: MSH-3"`, `"sourceIp":"192.0.2.7"`, `"requestId":"req-9"`, `"type":"hl7"`} {
		if !strings.Contains(text, want) {
			t.Errorf("audit log lacks %s:\n%s", want, text)
		}
	}
}

// TestResendReturnsTheStoredObservations: an HL7 retransmission is answered with the
// observations stored the first time, not with nothing, and reported to detection as a
// resend (the replay-burst rule counts them).
func TestResendReturnsTheStoredObservations(t *testing.T) {
	e := mustEnv(t)
	sigs := &sink{}
	e.svc.Signals = sigs
	mk := func() []*fhir.Observation {
		o, err := fhir.DecodeObservation(obs(t, e.pat["a"], e.now.Add(-time.Minute), func(o map[string]any) {
			o["identifier"] = []any{map[string]any{"system": "urn:test", "value": "msg-1/1"}}
		}))
		if err != nil {
			t.Fatal(err)
		}
		return []*fhir.Observation{o}
	}
	first, err := e.svc.CreateObservations(context.Background(), "dev-1", mk())
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.svc.CreateObservations(context.Background(), "dev-1", mk())
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || !again[0].Existing || again[0].ID != first[0].ID {
		t.Fatalf("resend answered %+v, want the stored observation %s", again, first[0].ID)
	}
	var kinds []detect.Kind
	for _, s := range sigs.sigs {
		kinds = append(kinds, s.Kind)
	}
	if !slices.Equal(kinds, []detect.Kind{detect.KindAccepted, detect.KindValue, detect.KindResend}) || sigs.sigs[2].Device != "dev-1" {
		t.Fatalf("signals %v, want the first message accepted and the second a resend", kinds)
	}
}

func TestCreateObservationsIsCapped(t *testing.T) {
	e := mustEnv(t)
	e.svc.Limits = fhir.Limits{MaxEntries: 2}
	var list []*fhir.Observation
	for i := 0; i < 3; i++ {
		o, _ := fhir.DecodeObservation(obs(t, e.pat["a"], e.now.Add(-time.Duration(i+1)*time.Minute), nil))
		list = append(list, o)
	}
	if _, err := e.svc.CreateObservations(context.Background(), "dev-1", list); vitalgate.ErrorCode(err) != vitalgate.ETOOLARGE {
		t.Fatalf("3 observations with a cap of 2: %v", err)
	}
	if _, err := e.svc.CreateObservations(context.Background(), "dev-1", list[:2]); err != nil {
		t.Fatalf("2 observations with a cap of 2: %v", err)
	}
}

func TestLocationHasTheVersion(t *testing.T) {
	c := ingest.Created{Type: "Observation", ID: "x1", Version: 3}
	if got := c.Location(); got != "Observation/x1/_history/3" {
		t.Fatalf("Location %s", got)
	}
}

// TestResolvePatient: PID-3 identifiers map to FHIR identifier systems by the HL7
// v2-to-FHIR rules (finding 16), and an unknown identifier gets the very answer of a
// patient the device is not assigned to (finding 14).
func TestResolvePatient(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	for _, p := range []struct{ system, value string }{
		{"urn:uuid:0f2a4c3e-1111-4222-8333-444455556666", "u-1"},
		{"https://hospital.example/mrn", "h-1"},
		{hl7v2.AuthoritySystemFallback("Imaginary Hospital"), "789567"},
	} {
		c, err := e.svc.CreatePatient(ctx, vitalgate.Principal{Kind: "client", Site: vitalgate.DefaultSite, ID: "admin", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Patient.c"}},
			[]byte(`{"resourceType":"Patient","identifier":[{"system":"`+p.system+`","value":"`+p.value+`"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		e.pat[p.value] = c.ID
	}
	e.svc.Authorities = hl7v2.AuthorityTable{"HOSP": "https://hospital.example/mrn", "Oid Hospital": mrnSystem}
	tests := []struct {
		name  string
		value string
		hd    hl7v2.HD
		want  string // patient key in e.pat, or "" for refused
	}{
		{"ISO universal id", "mrn-a", hl7v2.HD{Namespace: "Imaginary Hospital", UniversalID: "1.2.3.4", UniversalIDType: "ISO"}, "a"},
		{"ISO without namespace", "mrn-b", hl7v2.HD{UniversalID: "1.2.3.4", UniversalIDType: "ISO"}, "b"},
		{"UUID", "u-1", hl7v2.HD{UniversalID: "0F2A4C3E-1111-4222-8333-444455556666", UniversalIDType: "UUID"}, "u-1"},
		{"URI", "h-1", hl7v2.HD{UniversalID: "https://hospital.example/mrn", UniversalIDType: "URI"}, "h-1"},
		{"namespace through the table", "h-1", hl7v2.HD{Namespace: "HOSP"}, "h-1"},
		{"namespace through the table to an OID", "mrn-a", hl7v2.HD{Namespace: "Oid Hospital"}, "a"},
		{"namespace only: the fallback scheme", "789567", hl7v2.HD{Namespace: "Imaginary Hospital"}, "789567"},
		{"VITALGATE is the Patient id", e.pat["b"], hl7v2.HD{Namespace: "VITALGATE"}, "b"},
		{"unknown identifier", "nobody", hl7v2.HD{UniversalID: "1.2.3.4", UniversalIDType: "ISO"}, ""},
		{"no authority", "mrn-a", hl7v2.HD{}, ""},
	}
	// The answer for a patient the device is not assigned to.
	_, wrong := e.svc.CreateObservation(ctx, "dev-1", obs(t, e.pat["b"], e.now.Add(-time.Minute), nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := e.svc.ResolvePatient(ctx, "dev-1", tt.value, tt.hd)
			if tt.want == "" {
				if vitalgate.ErrorCode(err) != vitalgate.ErrorCode(wrong) || vitalgate.ErrorMessage(err) != vitalgate.ErrorMessage(wrong) {
					t.Fatalf("refusal %v differs from the wrong-patient answer %v", err, wrong)
				}
				return
			}
			if err != nil || id != e.pat[tt.want] {
				t.Fatalf("resolved %q, %v; want patient %s", id, err, e.pat[tt.want])
			}
		})
	}
}
