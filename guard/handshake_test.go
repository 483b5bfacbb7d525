package guard_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/guard"
)

func mustServerCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, pool
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestTLSListenerBudgets: connections in handshake have their own budget (per address and
// in total, the oldest making room), apart from the slots of connections past it.
func TestTLSListenerBudgets(t *testing.T) {
	cert, pool := mustServerCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var rejected []string
	rec := func(r string) { mu.Lock(); rejected = append(rejected, r); mu.Unlock() }
	count := func(r string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(slices.DeleteFunc(slices.Clone(rejected), func(s string) bool { return s != r }))
	}
	hs := guard.NewHandshakes(guard.HandshakeLimits{Total: 4, PerIP: 2, Timeout: time.Minute}, rec)
	tl := guard.NewTLSListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}, hs, guard.ConnLimits{Total: 1, PerIP: 1}, rec)
	defer tl.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	idle := func(ip byte) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, ip)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	for range 3 {
		idle(2)
	}
	waitFor(t, "a per-address eviction", func() bool { return count("handshake_per_ip") == 1 && tl.InHandshake() == 2 })
	idle(3)
	idle(3)
	idle(4)
	waitFor(t, "a total eviction", func() bool { return count("handshake_total") == 1 && tl.InHandshake() == 4 })

	dial := func() (*tls.Conn, error) {
		return tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})
	}
	c1, err := dial()
	if err != nil {
		t.Fatalf("a TLS client could not connect while the handshake budget was full: %v", err)
	}
	defer c1.Close()
	a1 := <-accepted
	defer a1.Close()
	if st := a1.(*tls.Conn).ConnectionState(); !st.HandshakeComplete {
		t.Fatal("Accept returned a connection before its handshake")
	}
	if tl.Open() != 1 {
		t.Fatalf("Open = %d, want 1", tl.Open())
	}
	// The connection slots (Total 1) are full: a second handshaken connection is closed.
	c2, err := dial()
	if err == nil {
		_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c2.Read(make([]byte, 1))
		c2.Close()
	}
	if err == nil {
		t.Fatal("a connection over the slot limit was served")
	}
	waitFor(t, "the slot refusal", func() bool { return count("total") == 1 })
	a1.Close()
	waitFor(t, "the slot to be released", func() bool { return tl.Open() == 0 })
}
