package mllp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/mllp"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/simulator"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// registry is a test double of ingest.Registry: the device dev-1 (active unless barred)
// and its assignments; an assignment that ended more than window ago binds nothing.
type registry struct {
	device      string
	assignments []vitalgate.Assignment
	window      time.Duration
	barred      bool
	fail        error
	binding     vitalgate.Binding // the device model's policy; "" is assigned
}

func (r *registry) Sender(_ context.Context, id string) (vitalgate.Device, error) {
	if r.fail != nil {
		return vitalgate.Device{}, r.fail
	}
	if id != r.device || r.barred {
		return vitalgate.Device{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q may not send", id)
	}
	return vitalgate.Device{ID: id, Site: vitalgate.DefaultSite, Status: vitalgate.DeviceActive}, nil
}

func (r *registry) Binding(context.Context, vitalgate.Device) (vitalgate.Binding, error) {
	if r.binding != "" {
		return r.binding, nil
	}
	return vitalgate.BindingAssigned, nil
}

func (r *registry) PatientAt(_ context.Context, id string, t time.Time) (vitalgate.Assignment, error) {
	for _, a := range r.assignments {
		if a.DeviceID == id && a.Covers(t) && (a.Current() || time.Since(a.To) <= r.window) {
			return a, nil
		}
	}
	return vitalgate.Assignment{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "no assignment binds this")
}

type intakeEnv struct {
	intake *mllp.Intake
	reg    *registry
	vault  *vault.Vault
	store  *sqlite.DB
	conn   mllp.ConnInfo
}

// MustIntake builds an Intake over a real store with device dev-1 assigned to pat-1, and the
// connection of that device's certificate.
func MustIntake(t *testing.T) *intakeEnv {
	t.Helper()
	return mustIntakeFor(t, "dev-1")
}

// mustIntakeFor is MustIntake for the device id device.
func mustIntakeFor(t testing.TB, device string) *intakeEnv {
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
	v := vault.New(store, keys, nil, nil)
	ca, err := pki.NewCA("test", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.GenerateDeviceKey(nil)
	der, _ := pki.NewCSR(device, key, nil)
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueDevice(csr, device, time.Now(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	reg := &registry{device: device, assignments: []vitalgate.Assignment{{DeviceID: device, PatientIndex: v.PatientIndex("pat-1"), From: time.Now().Add(-time.Hour)}}}
	ing := &ingest.Service{Registry: reg, Resources: store, Vault: v, Audit: audit.NewLog(store, signer, "test", "n", nil), Finder: store}
	return &intakeEnv{
		intake: &mllp.Intake{Ingest: ing},
		reg:    reg,
		vault:  v,
		store:  store,
		// As the server passes it: the registry authorized the certificate's device.
		conn: mllp.ConnInfo{RemoteAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, TLS: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}},
			DeviceID: device},
	}
}

func message(t *testing.T, device, patient string) []byte {
	t.Helper()
	g, err := simulator.NewGenerator(simulator.KindPulseOximeter, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m, err := simulator.NewPCD01(g.Next(), device, patient, time.Now(), "ctl-1")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ackOf(t *testing.T, b []byte) (code, cond string) {
	t.Helper()
	m, err := hl7v2.Parse(b, hl7v2.Limits{})
	if err != nil {
		t.Fatalf("ACK does not parse: %v\n%q", err, b)
	}
	code = m.Segment("MSA").Field(1).Value()
	if e := m.Segment("ERR"); e != nil {
		cond = e.Field(3).Rep(1).Comp(1).Value()
	}
	return code, cond
}

func TestIntake(t *testing.T) {
	tests := []struct {
		name     string
		conn     func(e *intakeEnv) mllp.ConnInfo
		payload  func(t *testing.T) []byte
		ack      string
		stored   int
		wantCond string
	}{
		{"valid message", nil, func(t *testing.T) []byte { return message(t, "dev-1", "pat-1") }, "AA", 2, ""},
		{"another patient", nil, func(t *testing.T) []byte { return message(t, "dev-1", "pat-2") }, "AR", 0, "204"},
		{"another device named", nil, func(t *testing.T) []byte { return message(t, "dev-9", "pat-1") }, "AR", 0, "204"},
		{"no client certificate", func(e *intakeEnv) mllp.ConnInfo { return mllp.ConnInfo{RemoteAddr: e.conn.RemoteAddr} },
			func(t *testing.T) []byte { return message(t, "dev-1", "pat-1") }, "AR", 0, ""},
		{"garbage", nil, func(*testing.T) []byte { return []byte("\x00\x01not hl7 at all") }, "AR", 0, ""},
		{"not an ORU", nil, func(t *testing.T) []byte {
			return []byte(strings.Replace(string(message(t, "dev-1", "pat-1")), "ORU^R01^ORU_R01", "ADT^A01^ADT_A01", 1))
		}, "AR", 0, "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustIntake(t)
			conn := e.conn
			if tt.conn != nil {
				conn = tt.conn(e)
			}
			code, cond := ackOf(t, e.intake.HandleMLLP(context.Background(), conn, tt.payload(t)))
			if code != tt.ack || (tt.wantCond != "" && cond != tt.wantCond) {
				t.Fatalf("ACK %s %s, want %s %s", code, cond, tt.ack, tt.wantCond)
			}
			if n := countStored(t, e); n != tt.stored {
				t.Fatalf("%d resources stored, want %d", n, tt.stored)
			}
		})
	}
}

// TestIntakeRetransmission: the same message sent twice (a lost ACK) is stored once and
// acknowledged AA both times.
func TestIntakeRetransmission(t *testing.T) {
	e := MustIntake(t)
	msg := message(t, "dev-1", "pat-1")
	for i := 0; i < 2; i++ {
		if code, cond := ackOf(t, e.intake.HandleMLLP(context.Background(), e.conn, msg)); code != "AA" {
			t.Fatalf("send %d: %s %s", i+1, code, cond)
		}
	}
	if n := countStored(t, e); n != 2 { // the pulse oximeter message holds two observations
		t.Fatalf("%d observations stored after a retransmission, want 2", n)
	}
}

// TestIntakeRateLimit: the per-device rate counts observations (OBX segments), not
// messages: a bucket of 2n tokens lets two n-OBX messages through, one of n+1 only one.
func TestIntakeRateLimit(t *testing.T) {
	n := strings.Count(string(message(t, "dev-1", "pat-1")), "\rOBX|")
	tests := []struct {
		name  string
		burst int
		want  string
	}{
		{"two messages' worth", 2 * n, "AA AA AR AR"},
		{"one message and one observation", n + 1, "AA AR AR AR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustIntake(t)
			e.intake.Limit = guard.NewLimiter(0.001, tt.burst, nil)
			var codes []string
			for i := 0; i < 4; i++ {
				code, _ := ackOf(t, e.intake.HandleMLLP(context.Background(), e.conn, message(t, "dev-1", "pat-1")))
				codes = append(codes, code)
			}
			if strings.Join(codes, " ") != tt.want {
				t.Fatalf("ACKs %v, want %s (%d OBX per message)", codes, tt.want, n)
			}
		})
	}
}

// hl7 returns a one-OBX SpO2 message with the given MSH-3, PID-3, control id and
// observation time.
func hl7(msh3, pid3, ctl string, at time.Time) []byte {
	ts := at.UTC().Format("20060102150405") + "+0000"
	return []byte("MSH|^~\\&|" + msh3 + "|FAC|VITALGATE||" + ts + "||ORU^R01^ORU_R01|" + ctl + "|P|2.6\r" +
		"PID|||" + pid3 + "\r" +
		"OBR|1|||182777000^monitoring of patient^SNOMED-CT|||" + ts + "\r" +
		"OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.0.1|97|262688^MDC_DIM_PERCENT^MDC|||||R|||" + ts + "\r")
}

type ack struct{ code, cond, text, loc string }

func parseACK(t *testing.T, b []byte) ack {
	t.Helper()
	m, err := hl7v2.Parse(b, hl7v2.Limits{})
	if err != nil {
		t.Fatalf("ACK does not parse: %v\n%q", err, b)
	}
	a := ack{code: m.Segment("MSA").Field(1).Value()}
	if e := m.Segment("ERR"); e != nil {
		a.cond = e.Field(3).Rep(1).Comp(1).Value()
		a.text = e.Field(8).Value()
		a.loc = fmt.Sprint(e.Field(2))
	}
	return a
}

// countStored returns the number of stored Observations, checking the store's error.
func countStored(t *testing.T, e *intakeEnv) int {
	t.Helper()
	n := 0
	if err := e.store.Resources(context.Background(), vitalgate.ResourceFilter{Type: "Observation"}, func(vitalgate.SealedResource) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// auditText returns the stored audit log, checking the store's error.
func auditText(t *testing.T, e *intakeEnv) string {
	t.Helper()
	var sb strings.Builder
	if err := e.store.AuditEntries(context.Background(), 0, 1<<62, func(r vitalgate.AuditRecord) error {
		sb.Write(r.Data)
		sb.WriteByte('\n')
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// TestIntakeChecksEveryFormOfMSH3: MSH-3 must name the sender whatever its form (finding
// 14: "monitor-2^x" was accepted).
func TestIntakeChecksEveryFormOfMSH3(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name, msh3, want string
	}{
		{"bare id", "dev-1", "AA"},
		{"id with a universal id", "dev-1^x", "AA"},
		{"empty", "", "AA"},
		{"another bare id", "monitor-2", "AR"},
		{"another id with a universal id", "monitor-2^x", "AR"},
		{"another id with a typed universal id", "monitor-2^1.2.3^ISO", "AR"},
		{"universal id only", "^monitor-2^ISO", "AR"},
		{"another EUI-64", "Acme^0123456789ABCDEF^EUI-64", "AR"},
		{"second repetition", "dev-1~monitor-2", "AR"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustIntake(t)
			a := parseACK(t, e.intake.HandleMLLP(context.Background(), e.conn, hl7(tt.msh3, "pat-1^^^VITALGATE^PI", "c"+strconv.Itoa(i), now.Add(-time.Minute))))
			if a.code != tt.want {
				t.Fatalf("ACK %+v, want %s", a, tt.want)
			}
			if tt.want == "AR" && (a.cond != "204" || countStored(t, e) != 0) {
				t.Fatalf("refused with %+v and %d stored, want 204 and none", a, countStored(t, e))
			}
		})
	}
}

// TestIntakeUnknownPatientAnswersLikeWrongPatient: an MRN that names no Patient and one that
// names another patient get the same ACK (finding 14).
func TestIntakeUnknownPatientAnswersLikeWrongPatient(t *testing.T) {
	e := MustIntake(t)
	ctx := context.Background()
	for _, p := range []struct{ id, mrn string }{{"pat-1", "m-1"}, {"pat-2", "m-2"}} {
		if _, err := e.intake.Ingest.CreatePatient(ctx, vitalgate.Principal{Kind: "client", Site: vitalgate.DefaultSite, ID: "admin", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Patient.c"}},
			[]byte(`{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3.4","value":"`+p.mrn+`"}]}`)); err != nil {
			t.Fatal(err)
		}
	}
	// CreatePatient assigns ids: point the device at the Patient with m-1.
	var p1 string
	if err := e.store.Resources(ctx, vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: e.vault.IdentifierIndex("urn:oid:1.2.3.4|m-1")},
		func(r vitalgate.SealedResource) error { p1 = r.ID; return nil }); err != nil || p1 == "" {
		t.Fatalf("patient m-1: %q %v", p1, err)
	}
	e.reg.assignments[0].PatientIndex = e.vault.PatientIndex(p1)
	now := time.Now().Add(-time.Minute)
	send := func(pid3, ctl string) ack {
		return parseACK(t, e.intake.HandleMLLP(ctx, e.conn, hl7("dev-1", pid3, ctl, now)))
	}
	if a := send("m-1^^^&1.2.3.4&ISO^MR", "ok"); a.code != "AA" {
		t.Fatalf("own patient by its OID-typed MRN: %+v", a)
	}
	unknown := send("m-9^^^&1.2.3.4&ISO^MR", "unknown")
	wrong := send("m-2^^^&1.2.3.4&ISO^MR", "wrong")
	if unknown.code != "AR" || unknown != wrong {
		t.Fatalf("unknown MRN answered %+v, another patient's %+v: want the same AR", unknown, wrong)
	}
}

// TestIntakeBufferedUploadAcrossReassignment: HL7 readings bind to the patient assigned
// when they were measured (finding 18).
func TestIntakeBufferedUploadAcrossReassignment(t *testing.T) {
	e := MustIntake(t)
	now := time.Now()
	at := now.Add(-3 * time.Hour)
	e.reg.window = 24 * time.Hour
	e.reg.assignments = []vitalgate.Assignment{
		{DeviceID: "dev-1", PatientIndex: e.vault.PatientIndex("pat-0"), From: now.Add(-72 * time.Hour), To: now.Add(-48 * time.Hour)},
		{DeviceID: "dev-1", PatientIndex: e.vault.PatientIndex("pat-1"), From: now.Add(-48 * time.Hour), To: at},
		{DeviceID: "dev-1", PatientIndex: e.vault.PatientIndex("pat-2"), From: at},
	}
	tests := []struct {
		name, patient string
		at            time.Time
		want          string
	}{
		{"before, old patient", "pat-1", at.Add(-time.Hour), "AA"},
		{"after, new patient", "pat-2", at.Add(time.Hour), "AA"},
		{"before, new patient", "pat-2", at.Add(-time.Hour), "AR"},
		{"after, old patient", "pat-1", at.Add(time.Hour), "AR"},
		{"assignment ended beyond the window", "pat-0", now.Add(-60 * time.Hour), "AR"},
	}
	for i, tt := range tests {
		a := parseACK(t, e.intake.HandleMLLP(context.Background(), e.conn, hl7("dev-1", tt.patient+"^^^VITALGATE^PI", "r"+strconv.Itoa(i), tt.at)))
		if a.code != tt.want {
			t.Errorf("%s: ACK %+v, want %s", tt.name, a, tt.want)
		}
	}
	byPatient := map[string]int{}
	if err := e.store.Resources(context.Background(), vitalgate.ResourceFilter{Type: "Observation"}, func(r vitalgate.SealedResource) error {
		for _, p := range []string{"pat-0", "pat-1", "pat-2"} {
			if bytes.Equal(r.PatientIndex, e.vault.PatientIndex(p)) {
				byPatient[p]++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if byPatient["pat-1"] != 1 || byPatient["pat-2"] != 1 || byPatient["pat-0"] != 0 {
		t.Fatalf("stored per patient %v, want one each for pat-1 and pat-2", byPatient)
	}
}

// TestIntakeCapsObservations: more OBX than the Bundle entry limit is refused with an ERR.
func TestIntakeCapsObservations(t *testing.T) {
	e := MustIntake(t)
	e.intake.Ingest.Limits = fhir.Limits{MaxEntries: 2}
	msg := string(hl7("dev-1", "pat-1^^^VITALGATE^PI", "cap", time.Now().Add(-time.Minute)))
	obx := msg[strings.Index(msg, "OBX|"):]
	three := msg + strings.Replace(obx, "OBX|1|", "OBX|2|", 1) + strings.Replace(obx, "OBX|1|", "OBX|3|", 1)
	if a := parseACK(t, e.intake.HandleMLLP(context.Background(), e.conn, []byte(three))); a.code != "AR" || a.cond != "207" || a.text == "" {
		t.Fatalf("3 OBX over a cap of 2: %+v", a)
	}
	if n := countStored(t, e); n != 0 {
		t.Fatalf("%d stored", n)
	}
	two := msg + strings.Replace(obx, "OBX|1|", "OBX|2|", 1)
	if a := parseACK(t, e.intake.HandleMLLP(context.Background(), e.conn, []byte(two))); a.code != "AA" {
		t.Fatalf("2 OBX with a cap of 2: %+v", a)
	}
}

// TestIntakeSharesWriteShedding: MLLP writes count in the node's in-flight write bound.
func TestIntakeSharesWriteShedding(t *testing.T) {
	e := MustIntake(t)
	shed := guard.NewShedder(1, nil)
	e.intake.Writes = shed
	if !shed.Acquire() { // an HTTPS write in progress
		t.Fatal("acquire")
	}
	if a := parseACK(t, e.intake.HandleMLLP(context.Background(), e.conn, message(t, "dev-1", "pat-1"))); a.code != "AR" || a.cond != "207" {
		t.Fatalf("at the bound: %+v, want AR 207", a)
	}
	shed.Release()
	if a := parseACK(t, e.intake.HandleMLLP(context.Background(), e.conn, message(t, "dev-1", "pat-1"))); a.code != "AA" {
		t.Fatalf("under the bound: %+v", a)
	}
	if shed.InFlight() != 0 {
		t.Fatalf("%d writes left in flight", shed.InFlight())
	}
}

// TestIntakeAuditsRefusalsWithTheSource: refusals before ingest leave an audit entry with
// the source address (issue 12, item 5).
func TestIntakeAuditsRefusalsWithTheSource(t *testing.T) {
	tests := []struct {
		name    string
		conn    func(e *intakeEnv) mllp.ConnInfo
		payload func(t *testing.T) []byte
		setup   func(e *intakeEnv)
		desc    string
	}{
		{"no certificate", func(e *intakeEnv) mllp.ConnInfo { return mllp.ConnInfo{RemoteAddr: e.conn.RemoteAddr} },
			func(t *testing.T) []byte { return message(t, "dev-1", "pat-1") }, nil, "unauthorized"},
		{"unparseable", nil, func(*testing.T) []byte { return []byte("garbage") }, nil, "invalid"},
		{"throttled", nil, func(t *testing.T) []byte { return message(t, "dev-1", "pat-1") },
			func(e *intakeEnv) {
				e.intake.Limit = guard.NewLimiter(0.001, 1, nil)
				e.intake.Limit.AllowN("dev-1", 1)
			}, "throttled"},
		{"another sending device", nil, func(t *testing.T) []byte { return hl7("monitor-2^x", "pat-1^^^VITALGATE^PI", "m", time.Now()) }, nil, "forbidden: MSH-3"},
		{"another patient", nil, func(t *testing.T) []byte { return message(t, "dev-1", "pat-2") }, nil, "forbidden: PID-3"},
		// The refusal detection's device-impersonation rule counts (rules.json).
		{"another device in OBX-18", nil, func(t *testing.T) []byte {
			m := hl7("dev-1", "pat-1^^^VITALGATE^PI", "o18", time.Now().Add(-time.Minute))
			return append(m[:len(m)-1], "||||dev-2^VITALGATE\r"...) // OBX-18 after OBX-14
		}, nil, "forbidden: OBX-18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustIntake(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			conn := e.conn
			if tt.conn != nil {
				conn = tt.conn(e)
			}
			if a := parseACK(t, e.intake.HandleMLLP(context.Background(), conn, tt.payload(t))); a.code == "AA" {
				t.Fatalf("accepted")
			}
			text := auditText(t, e)
			if !strings.Contains(text, `"outcomeDesc":"`+tt.desc) || !strings.Contains(text, `"sourceIp":"127.0.0.1"`) || !strings.Contains(text, `"requestId":"`) {
				t.Fatalf("audit log lacks the refusal %q with its source:\n%s", tt.desc, text)
			}
		})
	}
}

// TestIntakeInternalErrorHasAnID: an internal error answers AR with an error id that is
// also in the log, never the cause.
func TestIntakeInternalErrorHasAnID(t *testing.T) {
	e := MustIntake(t)
	var logBuf bytes.Buffer
	e.intake.Log = slog.New(slog.NewTextHandler(&logBuf, nil))
	e.reg.fail = vitalgate.Internal(errors.New("disk on fire"), "registry")
	a := parseACK(t, e.intake.HandleMLLP(context.Background(), e.conn, message(t, "dev-1", "pat-1")))
	m := regexp.MustCompile(`error id ([0-9a-f]{20})`).FindStringSubmatch(a.text)
	if a.code != "AR" || a.cond != "207" || m == nil || strings.Contains(a.text, "disk") {
		t.Fatalf("ACK %+v, want AR 207 with an error id and no cause", a)
	}
	if !strings.Contains(logBuf.String(), "error_id="+m[1]) || !strings.Contains(logBuf.String(), "disk on fire") {
		t.Fatalf("log lacks the error id %s with its cause:\n%s", m[1], logBuf.String())
	}
}

// TestIntakeRealSamples: the PCD-01 samples of real devices are accepted from their
// gateways (MSH-3 EUI-64), for patients registered by their PID-3 identifiers.
func TestIntakeRealSamples(t *testing.T) {
	tests := []struct {
		file, device, system, mrn string
		want                      string
	}{
		{"01_ipf_pcd01_icu_monitor_awaregateway.hl7", "080019FFFF4F6AC0", mllp.AuthoritySystem("A"), "AB60001", "AA"},
		{"02_ipf_pcd01_nibp.hl7", "ACDE48234567ABCD", mllp.AuthoritySystem("Imaginary Hospital"), "789567", "AA"},
		{"03_ipf_pcd01_nibp_maximum_fields.hl7", "ACDE48234567ABCD", "urn:oid:1.3.4.565", "111222333444", "AA"},
		{"04_ipf_continua_wan_pulse_oximeter.hl7", "ACDE48234567ABCD", mllp.AuthoritySystem("Imaginary Hospital"), "789567", "AA"},
		{"05_ipf_continua_wan_bp.hl7", "ACDE48234567ABCD", mllp.AuthoritySystem("Imaginary Hospital"), "789567", "AA"},
		{"06_ipf_continua_wan_thermometer.hl7", "ACDE48234567ABCD", mllp.AuthoritySystem("Imaginary Hospital"), "789567", "AA"},
		{"07_philips_intellivue_mx500_pcd01_TRUNCATED_WAVEFORM.hl7.txt", "SendingApplication", mllp.AuthoritySystem("Philips"), "12345", "AR"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "pcd01", "testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\r"))
			msg, err := hl7v2.Parse(data, hl7v2.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			sent, _, err := hl7v2.ParseTS(msg.Segment("MSH").Field(7).Value(), time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			e := mustIntakeFor(t, tt.device)
			now := sent.Add(60 * 24 * time.Hour) // the samples' readings lie up to a month after MSH-7
			e.intake.Now, e.intake.Ingest.Now = func() time.Time { return now }, func() time.Time { return now }
			e.intake.Ingest.MaxBackdate = 365 * 24 * time.Hour
			c, err := e.intake.Ingest.CreatePatient(context.Background(), vitalgate.Principal{Kind: "client", Site: vitalgate.DefaultSite, ID: "admin", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Patient.c"}},
				[]byte(`{"resourceType":"Patient","identifier":[{"system":"`+tt.system+`","value":"`+tt.mrn+`"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			e.reg.device = tt.device
			e.reg.assignments = []vitalgate.Assignment{{DeviceID: tt.device, PatientIndex: e.vault.PatientIndex(c.ID), From: sent.Add(-365 * 24 * time.Hour)}}
			a := parseACK(t, e.intake.HandleMLLP(context.Background(), e.conn, data))
			if a.code != tt.want {
				t.Fatalf("ACK %+v, want %s", a, tt.want)
			}
			if n := countStored(t, e); (n > 0) != (tt.want == "AA") {
				t.Fatalf("%d observations stored after %s", n, a.code)
			}
		})
	}
}
