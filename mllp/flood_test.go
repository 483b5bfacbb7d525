package mllp_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/mllp"
)

// flood opens perAddr idle TCP connections to addr from each of the loopback addresses
// 127.0.0.first ... 127.0.0.(first+addrs-1) (all of 127/8 is loopback on Linux), sends
// nothing on them, and closes them at the end of the test.
func flood(t *testing.T, addr string, first, addrs, perAddr int) [][]net.Conn {
	t.Helper()
	out := make([][]net.Conn, addrs)
	for a := range addrs {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(first+a))}, Timeout: 5 * time.Second}
		for range perAddr {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("flood dial from 127.0.0.%d: %v", first+a, err)
			}
			t.Cleanup(func() { c.Close() })
			out[a] = append(out[a], c)
		}
	}
	return out
}

// exchange connects as a device with its certificate from local (nil: any address), sends
// one message and reads its ACK.
func exchange(addr string, local net.Addr, pool *tls.Config, id string) error {
	d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: local, Timeout: 2 * time.Second}, Config: pool}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if err := mllp.WriteFrame(c, msg(id)); err != nil {
		return err
	}
	p, err := mllp.NewReader(c, 0).ReadFrame()
	if err != nil {
		return err
	}
	if len(p) == 0 {
		return fmt.Errorf("empty ACK")
	}
	return nil
}

// eventually polls exchange until it succeeds or the deadline passes.
func eventually(t *testing.T, within time.Duration, try func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = try(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("a device with a valid certificate could not exchange a message: %v", err)
}

// TestHandshakeFloodDoesNotLockOutDevices is finding 6 of issue 13: 16 idle TCP
// connections from each of 16 addresses used to fill every connection slot (256) before any
// TLS handshake, so a device with a valid certificate was refused for as long as the flood
// lasted. Connections in the handshake now have their own budget per address, apart from
// authenticated connections. The handshake deadline here is a minute, so the flood lasts
// for the whole test: only the separate budget lets the device in.
func TestHandshakeFloodDoesNotLockOutDevices(t *testing.T) {
	pki := newPKI(t)
	srvConf := &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pki.server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool,
	}
	cliConf := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS13}
	tests := []struct {
		name         string
		cfg          mllp.Config
		addrs, perIP int
	}{
		{"defaults, 16 idle sockets from each of 16 addresses", mllp.Config{HandshakeTimeout: time.Minute}, 16, 16},
		{"small budget, 4 idle sockets from each of 16 addresses", mllp.Config{HandshakeTimeout: time.Minute, MaxConns: 16, MaxConnsPerIP: 4}, 16, 4},
		{"handshake budget full: the oldest makes room", mllp.Config{HandshakeTimeout: time.Minute, MaxHandshakes: 32, MaxHandshakesPerIP: 4}, 16, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startServer(t, tt.cfg, &recorder{}, func(l net.Listener) net.Listener { return tls.NewListener(l, srvConf) })
			flood(t, addr, 2, tt.addrs, tt.perIP)
			eventually(t, 20*time.Second, func() error { return exchange(addr, nil, cliConf, "D1") })
		})
	}
}

// closedCount polls cs until at least want of them have been closed by the server, and
// returns how many were closed when it stopped (at the deadline at the latest).
func closedCount(t *testing.T, cs []net.Conn, want int) int {
	t.Helper()
	closed := make([]bool, len(cs))
	n := 0
	deadline := time.Now().Add(10 * time.Second)
	for n < want && time.Now().Before(deadline) {
		for i, c := range cs {
			if closed[i] {
				continue
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				closed[i] = true
				n++
			}
		}
	}
	return n
}

// TestHandshakeBudgetPerAddress: connections in handshake from one address beyond
// MaxHandshakesPerIP are closed, oldest first, long before the handshake deadline; a device
// from that same address still gets in, and connections past the handshake are not touched.
func TestHandshakeBudgetPerAddress(t *testing.T) {
	pki := newPKI(t)
	srvConf := &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pki.server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool,
	}
	cliConf := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS13}
	cfg := mllp.Config{HandshakeTimeout: time.Minute, MaxHandshakesPerIP: 4}
	_, addr := startServer(t, cfg, &recorder{}, func(l net.Listener) net.Listener { return tls.NewListener(l, srvConf) })

	// An authenticated device connection from 127.0.0.2, kept open through the flood.
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: local, Timeout: 2 * time.Second}, Config: cliConf}
	dev, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	r := mllp.NewReader(dev, 0)
	if err := mllp.WriteFrame(dev, msg("K1")); err != nil {
		t.Fatal(err)
	}
	if got := ackControlID(t, r); got != "AA K1" {
		t.Fatal(got)
	}

	cs := flood(t, addr, 2, 1, 10)[0]
	if n := closedCount(t, cs, 6); n != 6 {
		t.Fatalf("%d of 10 idle connections in handshake from one address closed, want 6 (MaxHandshakesPerIP 4)", n)
	}
	eventually(t, 20*time.Second, func() error { return exchange(addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, cliConf, "K2") })
	if err := mllp.WriteFrame(dev, msg("K3")); err != nil {
		t.Fatal(err)
	}
	if got := ackControlID(t, r); got != "AA K3" {
		t.Fatalf("the authenticated connection was disturbed by the flood: %q", got)
	}
}
