package mllp_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/mllp"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/seal"
	"github.com/vitalgate/vitalgate/simulator"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// registry is a test double of ingest.Registry: the device dev-1 (active unless barred)
// and its assignments; an assignment that ended more than window ago binds nothing.
type registry struct {
	assignments []vitalgate.Assignment
	window      time.Duration
	barred      bool
	fail        error
}

func (r *registry) Sender(_ context.Context, id string) (vitalgate.Device, error) {
	if r.fail != nil {
		return vitalgate.Device{}, r.fail
	}
	if id != "dev-1" || r.barred {
		return vitalgate.Device{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q may not send", id)
	}
	return vitalgate.Device{ID: id, Status: vitalgate.DeviceActive}, nil
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
	dir := t.TempDir()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	keys, err := seal.CreateKeyring(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(store, keys, nil, nil)
	if err := store.CreateDevice(ctx, vitalgate.Device{ID: "dev-1", Status: vitalgate.DeviceActive,
		PatientIndex: v.PatientIndex("pat-1"), CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("test", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.GenerateDeviceKey(nil)
	der, _ := pki.NewCSR("dev-1", key, nil)
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueDevice(csr, "dev-1", time.Now(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	reg := &registry{assignments: []vitalgate.Assignment{{DeviceID: "dev-1", PatientIndex: v.PatientIndex("pat-1"), From: time.Now().Add(-time.Hour)}}}
	ing := &ingest.Service{Registry: reg, Resources: store, Vault: v, Audit: audit.NewLog(store, signer, "test", "n", nil), Finder: store}
	return &intakeEnv{
		intake: &mllp.Intake{Ingest: ing},
		reg:    reg,
		vault:  v,
		store:  store,
		conn:   mllp.ConnInfo{RemoteAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, TLS: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}},
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
			n := 0
			_ = e.store.Resources(context.Background(), vitalgate.ResourceFilter{}, func(vitalgate.SealedResource) error { n++; return nil })
			if n != tt.stored {
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
	n := 0
	_ = e.store.Resources(context.Background(), vitalgate.ResourceFilter{}, func(vitalgate.SealedResource) error { n++; return nil })
	if n != 2 { // the pulse oximeter message holds two observations
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
