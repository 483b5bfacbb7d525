package mllp_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/mllp"
)

// echoACK is a handler that answers AA with the payload's MSH-10, and records ConnInfo.
type recorder struct {
	mu    sync.Mutex
	infos []mllp.ConnInfo
	block chan struct{} // if set, the handler waits for it
}

func (rc *recorder) HandleMLLP(ctx context.Context, conn mllp.ConnInfo, payload []byte) []byte {
	rc.mu.Lock()
	rc.infos = append(rc.infos, conn)
	rc.mu.Unlock()
	if rc.block != nil {
		select {
		case <-rc.block:
		case <-ctx.Done():
		}
	}
	m, err := hl7v2.Parse(payload, hl7v2.Limits{})
	if err != nil {
		return hl7v2.BuildACK(nil, "AR", []hl7v2.AckError{hl7v2.AckErrorFrom(err)}, time.Unix(0, 0), "A")
	}
	return hl7v2.BuildACK(m, "AA", nil, time.Unix(0, 0), "A")
}

func msg(id string) []byte {
	return []byte("MSH|^~\\&|DEV||||20260101000000||ORU^R01^ORU_R01|" + id + "|P|2.6\rPID|||1\r")
}

// startServer serves on a loopback listener and returns the address; the server is shut
// down at the end of the test.
func startServer(t *testing.T, cfg mllp.Config, h mllp.Handler, wrap func(net.Listener) net.Listener) (*mllp.Server, string) {
	t.Helper()
	s, err := mllp.NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		l = wrap(l)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, mllp.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s, l.Addr().String()
}

func ackControlID(t *testing.T, r *mllp.Reader) string {
	t.Helper()
	p, err := r.ReadFrame()
	if err != nil {
		t.Fatalf("reading ACK: %v", err)
	}
	m, err := hl7v2.Parse(p, hl7v2.Limits{})
	if err != nil {
		t.Fatalf("ACK does not parse: %v", err)
	}
	return m.Segment("MSA").Field(1).Value() + " " + m.Segment("MSA").Field(2).Value()
}

func plain() mllp.Config { return mllp.Config{AllowPlaintext: true} }

func TestServerFrames(t *testing.T) {
	rec := &recorder{}
	cfg := plain()
	cfg.MaxFrameBytes = 200
	_, addr := startServer(t, cfg, rec, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := mllp.NewReader(c, 0)
	tests := []struct {
		name string
		send []byte
		want string
	}{
		{"one message", frame(msg("M1")), "AA M1"},
		{"garbage before frame", append([]byte("junk\r\n"), frame(msg("M2"))...), "AA M2"},
		{"split writes", frame(msg("M3")), "AA M3"},
		{"oversize gets AR", frame([]byte("MSH|^~\\&|" + strings.Repeat("x", 300))), "AR "},
		{"after oversize", frame(msg("M4")), "AA M4"},
		{"unparseable gets AR", frame([]byte("hello")), "AR "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "split writes" {
				for _, b := range tt.send {
					if _, err := c.Write([]byte{b}); err != nil {
						t.Fatal(err)
					}
				}
			} else if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if got := ackControlID(t, r); got != tt.want {
				t.Errorf("ACK %q, want %q", got, tt.want)
			}
		})
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.infos) == 0 || rec.infos[0].TLS != nil || rec.infos[0].RemoteAddr == nil {
		t.Errorf("conn info %+v", rec.infos)
	}
}

func frame(p []byte) []byte {
	return append(append([]byte{0x0b}, p...), 0x1c, 0x0d)
}

// expectClosed checks that the server closes c within d.
func expectClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := bufio.NewReader(c).ReadByte()
	if err == nil {
		t.Fatal("connection not closed: got data")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection not closed in time")
	}
}

func TestServerLimits(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*mllp.Config)
		run  func(t *testing.T, addr string)
	}{
		{"plaintext refused by default", func(c *mllp.Config) { c.AllowPlaintext = false }, func(t *testing.T, addr string) {
			c := dial(t, addr)
			expectClosed(t, c, 2*time.Second)
		}},
		{"per-IP limit", func(c *mllp.Config) { c.MaxConnsPerIP = 1 }, func(t *testing.T, addr string) {
			c1 := dial(t, addr)
			if _, err := c1.Write(frame(msg("X"))); err != nil { // make sure c1 is admitted
				t.Fatal(err)
			}
			if got := ackControlID(t, mllp.NewReader(c1, 0)); got != "AA X" {
				t.Fatal(got)
			}
			c2 := dial(t, addr)
			expectClosed(t, c2, 2*time.Second)
		}},
		{"total limit", func(c *mllp.Config) { c.MaxConns = 1 }, func(t *testing.T, addr string) {
			c1 := dial(t, addr)
			if _, err := c1.Write(frame(msg("X"))); err != nil {
				t.Fatal(err)
			}
			ackControlID(t, mllp.NewReader(c1, 0))
			expectClosed(t, dial(t, addr), 2*time.Second)
		}},
		{"idle timeout", func(c *mllp.Config) { c.IdleTimeout = 100 * time.Millisecond }, func(t *testing.T, addr string) {
			expectClosed(t, dial(t, addr), 2*time.Second)
		}},
		{"frame read timeout", func(c *mllp.Config) { c.ReadTimeout = 100 * time.Millisecond }, func(t *testing.T, addr string) {
			c := dial(t, addr)
			if _, err := c.Write([]byte("\x0bMSH|^~\\&|slow")); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c, 2*time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := plain()
			tt.cfg(&cfg)
			_, addr := startServer(t, cfg, &recorder{}, nil)
			tt.run(t, addr)
		})
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServerGracefulShutdown(t *testing.T) {
	rec := &recorder{block: make(chan struct{})}
	s, err := mllp.NewServer(plain(), rec)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	busy := dial(t, l.Addr().String())
	idle := dial(t, l.Addr().String())
	if _, err := busy.Write(frame(msg("B1"))); err != nil {
		t.Fatal(err)
	}
	// Wait until the handler runs.
	for range 200 {
		rec.mu.Lock()
		n := len(rec.infos)
		rec.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	expectClosed(t, idle, 2*time.Second) // the idle connection is closed at once
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a handler runs", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(rec.block)
	if got := ackControlID(t, mllp.NewReader(busy, 0)); got != "AA B1" {
		t.Errorf("in-flight message got %q", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, mllp.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if err := s.Serve(l); !errors.Is(err, mllp.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestServerShutdownDeadline(t *testing.T) {
	rec := &recorder{block: make(chan struct{})}
	defer close(rec.block)
	s, err := mllp.NewServer(plain(), rec)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	c := dial(t, l.Addr().String())
	if _, err := c.Write(frame(msg("B1"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
	expectClosed(t, c, 2*time.Second)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   mllp.Config
		field string
	}{
		{"zero is valid", mllp.Config{}, ""},
		{"small total takes small per-IP default", mllp.Config{MaxConns: 4}, ""},
		{"negative timeout", mllp.Config{ReadTimeout: -1}, "mllp.Config.ReadTimeout"},
		{"huge frames", mllp.Config{MaxFrameBytes: 1 << 30}, "mllp.Config.MaxFrameBytes"},
		{"per-IP above total", mllp.Config{MaxConns: 2, MaxConnsPerIP: 3}, "mllp.Config.MaxConnsPerIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if vitalgate.ErrorCode(err) != vitalgate.EINVALID || vitalgate.ErrorField(err) != tt.field {
				t.Errorf("got %v", err)
			}
		})
	}
	if _, err := mllp.NewServer(mllp.Config{}, nil); err == nil {
		t.Error("nil handler accepted")
	}
}

// testPKI is a throwaway CA with a server and a client certificate.
type testPKI struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey := mustKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
		k := mustKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	return testPKI{pool: pool, server: leaf(2, "server", x509.ExtKeyUsageServerAuth), client: leaf(3, "device-42", x509.ExtKeyUsageClientAuth)}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServerTLS(t *testing.T) {
	pki := newPKI(t)
	rec := &recorder{}
	srvConf := &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pki.server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool,
	}
	cfg := mllp.Config{HandshakeTimeout: time.Second}
	_, addr := startServer(t, cfg, rec, func(l net.Listener) net.Listener { return tls.NewListener(l, srvConf) })

	t.Run("client certificate reaches the handler", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := mllp.WriteFrame(c, msg("T1")); err != nil {
			t.Fatal(err)
		}
		if got := ackControlID(t, mllp.NewReader(c, 0)); got != "AA T1" {
			t.Fatalf("ACK %q", got)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		info := rec.infos[len(rec.infos)-1]
		if info.TLS == nil || !info.TLS.HandshakeComplete || len(info.TLS.PeerCertificates) == 0 ||
			info.TLS.PeerCertificates[0].Subject.CommonName != "device-42" {
			t.Fatalf("TLS state not passed: %+v", info.TLS)
		}
	})
	t.Run("client without certificate is refused", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS13})
		if err != nil {
			return // refused during the handshake
		}
		defer c.Close()
		_ = mllp.WriteFrame(c, msg("T2"))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := mllp.NewReader(c, 0).ReadFrame(); err == nil {
			t.Fatal("got an ACK without a client certificate")
		}
	})
	t.Run("silent client hits the handshake timeout", func(t *testing.T) {
		c := dial(t, addr)
		expectClosed(t, c, 3*time.Second)
	})
	_ = io.EOF
}

// authorizer is a test double of the registry's per-message decision: it refuses once
// revoked is set.
type authorizer struct {
	mu      sync.Mutex
	revoked bool
	asked   int
}

func (a *authorizer) Authorize(_ context.Context, cert *x509.Certificate) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked++
	if a.revoked {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client certificate has been revoked")
	}
	return cert.Subject.CommonName, nil
}

// TestServerReauthorizesEveryMessage (issue 13 finding 13): a connection kept open across a
// revocation gets AR for its next message, which is not handled, and is closed.
func TestServerReauthorizesEveryMessage(t *testing.T) {
	pki := newPKI(t)
	rec := &recorder{}
	auth := &authorizer{}
	srvConf := &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pki.server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool,
	}
	cfg := mllp.Config{HandshakeTimeout: time.Second, Authorizer: auth}
	_, addr := startServer(t, cfg, rec, func(l net.Listener) net.Listener { return tls.NewListener(l, srvConf) })
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := mllp.NewReader(c, 0)
	if err := mllp.WriteFrame(c, msg("R1")); err != nil {
		t.Fatal(err)
	}
	if got := ackControlID(t, r); got != "AA R1" {
		t.Fatalf("before the revocation: ACK %q", got)
	}
	auth.mu.Lock()
	auth.revoked = true
	auth.mu.Unlock()
	if err := mllp.WriteFrame(c, msg("R2")); err != nil {
		t.Fatal(err)
	}
	if got := ackControlID(t, r); got != "AR R2" {
		t.Fatalf("after the revocation: ACK %q, want AR R2", got)
	}
	rec.mu.Lock()
	handled := len(rec.infos)
	if handled > 0 && rec.infos[0].DeviceID != "device-42" {
		t.Errorf("ConnInfo.DeviceID = %q, want the authorized device-42", rec.infos[0].DeviceID)
	}
	rec.mu.Unlock()
	if handled != 1 {
		t.Errorf("handler saw %d messages, want 1 (the refused one never reaches it)", handled)
	}
	auth.mu.Lock()
	asked := auth.asked
	auth.mu.Unlock()
	if asked != 2 {
		t.Errorf("authorizer asked %d times, want once per message (2)", asked)
	}
	expectClosed(t, c, 3*time.Second)
}
