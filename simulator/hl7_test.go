package simulator_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/mllp"
	"github.com/vitalgate/vitalgate/pcd01"
	"github.com/vitalgate/vitalgate/simulator"
)

// fakeMLLP is a test double of Vitalgate's MLLP over TLS listener: it requires a client
// certificate from the fake server's CA, maps every message with pcd01 as the device of the
// certificate (whose CN must also be MSH-3 and OBX-18) and answers AA, or what the test asks.
type fakeMLLP struct {
	tb   testing.TB
	f    *fakeServer
	addr string

	mu sync.Mutex
	// mode is "" (map and acknowledge), "AE" or "AR" (reject with an ERR), "hang" (answer
	// after release is closed), "wrong-id" (acknowledge another control id) or "drop"
	// (close the connection without an answer).
	mode    string
	release chan struct{}
	serials []string // certificate serial of every connection, in order

	conns    atomic.Int64 // connections accepted
	accepted atomic.Int64 // observations acknowledged with AA
	messages atomic.Int64
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// newFakeMLLP starts the listener on a loopback port; idle connections are closed after idle.
func newFakeMLLP(tb testing.TB, f *fakeServer, idle time.Duration) *fakeMLLP {
	tb.Helper()
	m := &fakeMLLP{tb: tb, f: f, release: make(chan struct{})}
	srv, err := mllp.NewServer(mllp.Config{IdleTimeout: idle, HandlerTimeout: 10 * time.Second}, mllp.HandlerFunc(m.handle))
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	m.addr = ln.Addr().String()
	tl := tls.NewListener(countingListener{ln, &m.conns}, &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{f.ca.serverCert(tb)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    f.ca.pool,
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tl)
	}()
	tb.Cleanup(func() {
		m.set(func(m *fakeMLLP) {
			select {
			case <-m.release:
			default:
				close(m.release)
			}
		})
		_ = srv.Close()
		<-done
	})
	return m
}

func (m *fakeMLLP) set(fn func(m *fakeMLLP)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m)
}

// config returns the fake server's config in HL7 mode.
func (m *fakeMLLP) config(devices ...simulator.DeviceConfig) simulator.Config {
	cfg := m.f.config(devices...)
	cfg.HL7Addr = m.addr
	cfg.HL7Timeout = 2 * time.Second
	return cfg
}

func (m *fakeMLLP) handle(ctx context.Context, conn mllp.ConnInfo, payload []byte) []byte {
	m.messages.Add(1)
	m.mu.Lock()
	mode, release := m.mode, m.release
	m.mu.Unlock()
	msg, err := hl7v2.Parse(payload, hl7v2.Limits{})
	if err != nil {
		m.tb.Errorf("fake MLLP: message does not parse: %v", err)
		return hl7v2.BuildACK(nil, hl7v2.AckAR, []hl7v2.AckError{hl7v2.AckErrorFrom(err)}, time.Now(), "A1")
	}
	if conn.TLS == nil || len(conn.TLS.VerifiedChains) == 0 {
		m.tb.Error("fake MLLP: no verified client certificate")
		return nil
	}
	leaf := conn.TLS.VerifiedChains[0][0]
	m.set(func(m *fakeMLLP) {
		if len(m.serials) == 0 || m.serials[len(m.serials)-1] != leaf.SerialNumber.String() {
			m.serials = append(m.serials, leaf.SerialNumber.String())
		}
	})
	deviceID := leaf.Subject.CommonName
	switch mode {
	case "AE", "AR":
		e := hl7v2.AckError{Loc: hl7v2.Location{Segment: "OBX", Seq: 1, Field: 6}, Condition: hl7v2.CondTableValue,
			Message: "unit \"x\" is not allowed for heart rate"}
		return hl7v2.BuildACK(msg, mode, []hl7v2.AckError{e}, time.Now(), "A2")
	case "hang":
		select {
		case <-release:
		case <-ctx.Done():
		}
	case "wrong-id":
		msg.Segment("MSH").Fields[9] = hl7v2.Field{hl7v2.Rep{hl7v2.Comp{"someone-else"}}}
		return hl7v2.BuildACK(msg, hl7v2.AckAA, nil, time.Now(), "A3")
	case "drop":
		return nil // the test closes nothing: no answer at all, the client times out
	}
	if got := msg.Segment("MSH").Field(3).Value(); got != deviceID {
		m.tb.Errorf("fake MLLP: MSH-3 %q, certificate %q", got, deviceID)
	}
	for _, obx := range msg.All("OBX") {
		if got := obx.Field(18).Value(); got != deviceID {
			m.tb.Errorf("fake MLLP: OBX-18 %q, certificate %q", got, deviceID)
		}
	}
	m.f.mu.Lock()
	patient := m.f.patients[deviceID]
	m.f.mu.Unlock()
	res, err := pcd01.Map(msg, pcd01.Options{
		DeviceID:          deviceID,
		ExpectedDeviceIDs: []string{deviceID},
		ResolvePatient: func(p pcd01.PatientIdentifier) (string, error) {
			if p.Authority != simulator.HL7PatientAuthority || p.Value != patient {
				return "", vitalgate.Errorf(vitalgate.EFORBIDDEN, "patient %s^%s is not the device's", p.Value, p.Authority)
			}
			return p.Value, nil
		},
	})
	if err != nil {
		m.tb.Errorf("fake MLLP: Map: %v", err)
		code, cond := pcd01.AckCodeFor(err)
		e := hl7v2.AckErrorFrom(err)
		e.Condition = cond
		return hl7v2.BuildACK(msg, code, []hl7v2.AckError{e}, time.Now(), "A4")
	}
	m.accepted.Add(int64(len(res.Observations)))
	return hl7v2.BuildACK(msg, hl7v2.AckAA, nil, time.Now(), "A5")
}

func TestHL7Send(t *testing.T) {
	f := newFakeServer(t)
	m := newFakeMLLP(t, f, time.Minute)
	for _, kind := range simulator.Kinds() {
		t.Run(kind, func(t *testing.T) {
			dc := f.addDevice("hl7-"+kind, "pat-"+kind, kind)
			d := mustDevice(t, m.config(), dc)
			if _, err := d.Send(context.Background()); !errors.Is(err, simulator.ErrNotEnrolled) {
				t.Fatalf("Send before Enroll: %v, want ErrNotEnrolled", err)
			}
			mustEnroll(t, d)
			conns, before := m.conns.Load(), m.accepted.Load()
			want := 0
			for _, v := range simulator.KindVitals(kind) {
				want++
				if v == simulator.BloodPressure {
					want++ // systolic and diastolic OBX
				}
			}
			for range 3 {
				res, err := d.Send(context.Background())
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if res.Accepted != want || res.Sent() != want {
					t.Errorf("result %+v, want %d accepted", res, want)
				}
			}
			if got := m.accepted.Load() - before; got != int64(3*want) {
				t.Errorf("server acknowledged %d observations, want %d", got, 3*want)
			}
			if got := m.conns.Load() - conns; got != 1 {
				t.Errorf("%d connections for 3 messages, want 1 persistent connection", got)
			}
		})
	}
	if f.fhirPosts.Load() != 0 {
		t.Errorf("%d FHIR requests in HL7 mode", f.fhirPosts.Load())
	}
}

func TestHL7Rejected(t *testing.T) {
	f := newFakeServer(t)
	m := newFakeMLLP(t, f, time.Minute)
	d := mustDevice(t, m.config(), f.addDevice("hl7-mon", "pat-1", simulator.KindMonitor))
	mustEnroll(t, d)
	for _, code := range []string{"AE", "AR"} {
		m.set(func(m *fakeMLLP) { m.mode = code })
		res, err := d.Send(context.Background())
		if err != nil {
			t.Fatalf("%s: Send: %v", code, err)
		}
		if res.Rejected != 5 || res.Sent() != 5 || !strings.Contains(res.Diagnostics, `not allowed for heart rate`) {
			t.Errorf("%s: result %+v", code, res)
		}
	}
	m.set(func(m *fakeMLLP) { m.mode = "" })
	if res, err := d.Send(context.Background()); err != nil || res.Accepted != 5 {
		t.Errorf("after rejections: %+v, %v", res, err)
	}
	if m.conns.Load() != 1 {
		t.Errorf("%d connections: a rejection must not close the connection", m.conns.Load())
	}
}

// TestHL7Reconnect has the server close idle connections: the next message goes out on a new
// connection, without a failure.
func TestHL7Reconnect(t *testing.T) {
	f := newFakeServer(t)
	m := newFakeMLLP(t, f, 100*time.Millisecond)
	d := mustDevice(t, m.config(), f.addDevice("hl7-scale", "pat-1", simulator.KindScale))
	mustEnroll(t, d)
	for i := range 3 {
		res, err := d.Send(context.Background())
		if err != nil || res.Accepted != 1 {
			t.Fatalf("send %d: %+v, %v", i, res, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got := m.conns.Load(); got != 3 {
		t.Errorf("%d connections, want 3 (one per idle period)", got)
	}
}

// TestHL7Failures checks that a missing or wrong ACK fails the round with an error, closes
// the connection, and that the device recovers on a new connection.
func TestHL7Failures(t *testing.T) {
	for _, mode := range []string{"hang", "drop", "wrong-id"} {
		t.Run(mode, func(t *testing.T) {
			f := newFakeServer(t)
			m := newFakeMLLP(t, f, time.Minute)
			cfg := m.config()
			cfg.HL7Timeout = 300 * time.Millisecond
			d := mustDevice(t, cfg, f.addDevice("hl7-ox", "pat-1", simulator.KindPulseOximeter))
			mustEnroll(t, d)
			m.set(func(m *fakeMLLP) { m.mode = mode })
			start := time.Now()
			res, err := d.Send(context.Background())
			if err == nil || res.Failed != 2 || res.Sent() != 2 {
				t.Fatalf("Send: %+v, %v; want 2 failed and an error", res, err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("Send took %v with a 300 ms timeout", el)
			}
			m.set(func(m *fakeMLLP) { m.mode = ""; close(m.release); m.release = make(chan struct{}) })
			res, err = d.Send(context.Background())
			if err != nil || res.Accepted != 2 {
				t.Fatalf("Send after the failure: %+v, %v", res, err)
			}
			if got := m.conns.Load(); got != 2 {
				t.Errorf("%d connections, want 2: the failed one must be replaced", got)
			}
		})
	}
}

func TestHL7Cancel(t *testing.T) {
	f := newFakeServer(t)
	m := newFakeMLLP(t, f, time.Minute)
	d := mustDevice(t, m.config(), f.addDevice("hl7-th", "pat-1", simulator.KindThermometer))
	mustEnroll(t, d)
	m.set(func(m *fakeMLLP) { m.mode = "hang" })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res, err := d.Send(ctx)
	if !errors.Is(err, context.Canceled) || res.Failed != 1 {
		t.Errorf("Send: %+v, %v; want canceled", res, err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("cancelled Send took %v", el)
	}
}

// TestHL7Reenroll checks that a renewed certificate is used at once: the connection opened
// with the old one is replaced.
func TestHL7Reenroll(t *testing.T) {
	f := newFakeServer(t)
	m := newFakeMLLP(t, f, time.Minute)
	d := mustDevice(t, m.config(), f.addDevice("hl7-re", "pat-1", simulator.KindScale))
	mustEnroll(t, d)
	if _, err := d.Send(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Reenroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-f.reenrollOld
	if res, err := d.Send(context.Background()); err != nil || res.Accepted != 1 {
		t.Fatalf("Send after Reenroll: %+v, %v", res, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.serials) != 2 || m.serials[1] != d.Certificate().SerialNumber.String() {
		t.Errorf("certificates seen %v, want the old then the new (%s)", m.serials, d.Certificate().SerialNumber)
	}
}

func TestRunHL7(t *testing.T) {
	f := newFakeServer(t)
	m := newFakeMLLP(t, f, time.Minute)
	cfg := m.config(
		f.addDevice("run-mon", "pat-1", simulator.KindMonitor),
		f.addDevice("run-scale", "pat-2", simulator.KindScale),
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var last simulator.Stats
	err := simulator.Run(ctx, cfg, func(s simulator.Stats) {
		last = s
		if s.Elapsed > 600*time.Millisecond {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if last.Devices != 2 || last.Failed != 0 || last.Rejected != 0 || last.LastError != "" || last.Accepted < 6*10 {
		t.Errorf("final stats %+v", last)
	}
	if int64(last.Accepted) != m.accepted.Load() {
		t.Errorf("simulator counted %d accepted, server %d", last.Accepted, m.accepted.Load())
	}
	if m.conns.Load() != 2 {
		t.Errorf("%d connections for 2 devices", m.conns.Load())
	}
}

func TestHL7ConfigValidate(t *testing.T) {
	base := simulator.Config{
		ServerURL: "https://127.0.0.1:8443",
		CAPool:    mustCA(t, "ca").pool,
		Devices:   []simulator.DeviceConfig{{ID: "d1", PatientID: "p1", EnrollSecret: "s", Kind: simulator.KindScale}},
	}
	tests := []struct {
		name   string
		mutate func(*simulator.Config)
		ok     bool
	}{
		{"valid", func(c *simulator.Config) { c.HL7Addr = "127.0.0.1:2575" }, true},
		{"host name", func(c *simulator.Config) { c.HL7Addr = "localhost:2575" }, true},
		{"no port", func(c *simulator.Config) { c.HL7Addr = "127.0.0.1" }, false},
		{"no host", func(c *simulator.Config) { c.HL7Addr = ":2575" }, false},
		{"batch", func(c *simulator.Config) { c.HL7Addr = "127.0.0.1:2575"; c.BatchSize = 10 }, false},
		{"negative timeout", func(c *simulator.Config) { c.HL7Addr = "127.0.0.1:2575"; c.HL7Timeout = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mutate(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
