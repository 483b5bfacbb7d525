package outbox_test

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
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/outbox"
	"github.com/vitalgate/vitalgate/sqlite"
)

// openStore returns a real SQLite store: its audit log is the outbox's retry buffer and it
// keeps the cursors.
func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// add appends n entries to the store's audit log.
func add(t *testing.T, st *sqlite.DB, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		e := audit.Entry{Time: time.Now(), Action: "R", Type: "rest", Subtype: "read", AgentType: "client", AgentID: "ehr", Outcome: "0"}
		if _, err := st.AppendAudit(context.Background(), e.Marshal()); err != nil {
			t.Fatal(err)
		}
	}
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
// delivered once it is back; every entry arrives, none is lost, and the cursor is stored.
func TestForwarderSurvivesCollectorOutage(t *testing.T) {
	cert, pool := selfSigned(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	col := &collector{seen: map[int]int{}}
	startCollector(t, addr, srvCfg, col)

	st := openStore(t)
	add(t, st, 10)
	ob, err := outbox.New(outbox.Config{Log: st, Cursors: st, Allow: []string{addr}, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ob.Syslog(addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, "node1", "vitalgate")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, func() bool { return col.count() == 10 }, "the first 10 entries")
	col.stop() // outage: the collector goes away
	add(t, st, 5)
	time.Sleep(300 * time.Millisecond)
	if n := col.count(); n != 10 {
		t.Fatalf("%d entries arrived during the outage", n)
	}
	startCollector(t, addr, srvCfg, col) // and comes back
	add(t, st, 5)
	waitFor(t, func() bool { return col.count() == 20 }, "all 20 entries after the outage")
	waitFor(t, func() bool {
		n, err := st.OutboxCursor(context.Background(), f.Name())
		return err == nil && n == 20
	}, "the stored cursor to reach 20")
}

// TestAllowList: the outbox delivers only to allow-listed addresses.
func TestAllowList(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		name  string
		allow []string
		addr  string
		ok    bool
	}{
		{"listed", []string{"127.0.0.1:6514"}, "127.0.0.1:6514", true},
		{"host names ignore case", []string{"SIEM.example:6514"}, "siem.example:6514", true},
		{"other port", []string{"127.0.0.1:6514"}, "127.0.0.1:6515", false},
		{"other host", []string{"siem.example:6514"}, "evil.example:6514", false},
		{"empty list", nil, "127.0.0.1:6514", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ob, err := outbox.New(outbox.Config{Log: st, Cursors: st, Allow: tt.allow})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ob.Syslog(tt.addr, nil, "h", "vitalgate")
			if (err == nil) != tt.ok {
				t.Errorf("Syslog(%s) with allow-list %v: %v, want ok=%v", tt.addr, tt.allow, err, tt.ok)
			}
		})
	}
	if _, err := outbox.New(outbox.Config{Log: st, Cursors: st, Allow: []string{"no-port"}}); err == nil {
		t.Error("an allow-list entry without a port was accepted")
	}
}

// TestImportCursorFile: an upgrade takes the old DIR/syslog.cursor position once, so that
// nothing is resent; a stored cursor wins over the file.
func TestImportCursorFile(t *testing.T) {
	st := openStore(t)
	ob, err := outbox.New(outbox.Config{Log: st, Cursors: st, Allow: []string{"127.0.0.1:6514"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := ob.Syslog("127.0.0.1:6514", nil, "h", "vitalgate")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "syslog.cursor")
	if err := d.ImportCursorFile(ctx, file); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(file, []byte("42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		file string
		want uint64
	}{
		{"imported", "42\n", 42},
		{"stored cursor wins", "7\n", 42},
	}
	for _, s := range steps {
		if err := os.WriteFile(file, []byte(s.file), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.ImportCursorFile(ctx, file); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n, _ := st.OutboxCursor(ctx, d.Name()); n != s.want {
			t.Errorf("%s: cursor %d, want %d", s.name, n, s.want)
		}
	}
	if err := os.WriteFile(file, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.ImportCursorFile(ctx, file); err == nil {
		t.Error("a corrupt cursor file was accepted")
	}
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
