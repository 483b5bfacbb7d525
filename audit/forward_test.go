package audit_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// fwdLog is an in-memory audit log for the forwarder under test.
type fwdLog struct {
	mu      sync.Mutex
	entries [][]byte
}

func (m *fwdLog) add(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < n; i++ {
		e := audit.Entry{Time: time.Now(), Action: "R", Type: "rest", Subtype: "read", AgentType: "client", AgentID: "ehr", Outcome: "0"}
		m.entries = append(m.entries, e.Marshal())
	}
}

func (m *fwdLog) AuditSize(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.entries)), nil
}

func (m *fwdLog) AuditEntries(_ context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error {
	m.mu.Lock()
	es := m.entries
	m.mu.Unlock()
	for i := from; i < to && i < uint64(len(es)); i++ {
		if err := fn(vitalgate.AuditRecord{Index: i, Data: es[i]}); err != nil {
			return err
		}
	}
	return nil
}

// collector is a TLS syslog receiver (RFC 5425 octet counting) on a fixed loopback port.
type collector struct {
	mu    sync.Mutex
	seen  map[int]int
	ln    net.Listener
	conns []net.Conn
}

// stop takes the collector down: listener and every open connection.
func (c *collector) stop() {
	c.ln.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

func startCollector(t *testing.T, addr string, cfg *tls.Config, c *collector) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly after a restart
		if ln, err = tls.Listen("tcp", addr, cfg); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.ln = ln
	idx := regexp.MustCompile(`index="(\d+)"`)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					lenStr, err := r.ReadString(' ')
					if err != nil {
						return
					}
					n, err := strconv.Atoi(strings.TrimSpace(lenStr))
					if err != nil || n <= 0 || n > 1<<20 {
						return
					}
					msg := make([]byte, n)
					if _, err := io.ReadFull(r, msg); err != nil {
						return
					}
					if m := idx.FindSubmatch(msg); m != nil {
						i, _ := strconv.Atoi(string(m[1]))
						c.mu.Lock()
						c.seen[i]++
						c.mu.Unlock()
					}
				}
			}()
		}
	}()
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "collector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestForwarderSurvivesCollectorOutage: entries logged while the collector is down are
// delivered once it is back; every entry arrives, none is lost.
func TestForwarderSurvivesCollectorOutage(t *testing.T) {
	cert, pool := selfSigned(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	col := &collector{seen: map[int]int{}}
	startCollector(t, addr, srvCfg, col)

	log := &fwdLog{}
	log.add(10)
	f := &audit.Forwarder{Store: log, CursorFile: filepath.Join(t.TempDir(), "syslog.cursor"), Hostname: "node1", App: "vitalgate",
		Interval: 20 * time.Millisecond,
		Dial: func(ctx context.Context) (net.Conn, error) {
			d := tls.Dialer{Config: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			return d.DialContext(ctx, "tcp", addr)
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, func() bool { return col.count() == 10 }, "the first 10 entries")
	col.stop() // outage: the collector goes away
	log.add(5)
	time.Sleep(300 * time.Millisecond)
	if n := col.count(); n != 10 {
		t.Fatalf("%d entries arrived during the outage", n)
	}
	startCollector(t, addr, srvCfg, col) // and comes back
	log.add(5)
	waitFor(t, func() bool { return col.count() == 20 }, "all 20 entries after the outage")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
