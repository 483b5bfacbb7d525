package guard_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/guard"
)

func TestNetworks(t *testing.T) {
	n, err := guard.ParseNetworks(" 10.20.0.0/16, 192.0.2.7 ,2001:db8::/32,10.1.2.3/8")
	if err != nil {
		t.Fatal(err)
	}
	if got := n.String(); got != "10.20.0.0/16,192.0.2.7/32,2001:db8::/32,10.0.0.0/8" {
		t.Errorf("String = %s", got)
	}
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.20.3.4", true}, {"10.21.0.1", true}, {"192.0.2.7", true}, {"192.0.2.8", false},
		{"::ffff:10.20.0.1", true}, {"2001:db8::1", true}, {"2001:db9::1", false},
		{"fe80::1%eth0", false}, {"not-an-ip", false}, {"", false}, {"127.0.0.1", false},
	}
	for _, tc := range tests {
		if got := n.Allows(tc.ip); got != tc.want {
			t.Errorf("Allows(%q) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	var none guard.Networks
	if !none.Allows("203.0.113.1") || !none.Empty() {
		t.Error("an empty list must allow every address")
	}
	for _, bad := range []string{"10.0.0.0/33", "10.0.0", "host.example", "fe80::/10%eth0"} {
		if _, err := guard.ParseNetworks(bad); err == nil || !strings.Contains(err.Error(), "10.20.0.0/16") && !strings.Contains(err.Error(), "zone") {
			t.Errorf("ParseNetworks(%q) = %v, want an error showing the form", bad, err)
		}
	}
}

// TestNetworkListenerRefusesBeforeTLS: a connection from outside the list is closed at
// accept, before the server sends a byte of its handshake; an allowed one gets TLS.
func TestNetworkListenerRefusesBeforeTLS(t *testing.T) {
	for _, tc := range []struct {
		name, list string
		allowed    bool
	}{{"allowed", "127.0.0.0/8", true}, {"refused", "10.0.0.0/8", false}} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			allow, _ := guard.ParseNetworks(tc.list)
			rejected := make(chan string, 1)
			cert, pool := mustServerCert(t)
			ln := tls.NewListener(guard.NewNetworkListener(raw, allow, func(ip string) { rejected <- ip }), &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { _ = c.(*tls.Conn).Handshake(); _, _ = io.Copy(io.Discard, c); c.Close() }()
				}
			}()
			c, err := net.Dial("tcp", raw.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc2 := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			err = tc2.Handshake()
			if tc.allowed != (err == nil) {
				t.Fatalf("handshake: %v, want allowed=%v", err, tc.allowed)
			}
			if !tc.allowed {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("the refused connection was left open: %v", err)
				}
				if ip := <-rejected; ip != "127.0.0.1" {
					t.Errorf("rejected %q", ip)
				}
			}
		})
	}
}

func TestModelNetworksFlag(t *testing.T) {
	m := guard.ModelNetworks{}
	for _, v := range []string{"VM-100=10.20.0.0/16", "VM-100=10.30.0.0/16, 2001:db8::/48", "PX-2 = 192.0.2.0/24"} {
		if err := m.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if got := m.String(); got != "PX-2=192.0.2.0/24 VM-100=10.20.0.0/16,10.30.0.0/16,2001:db8::/48" {
		t.Errorf("String = %s", got)
	}
	if !m["VM-100"].Allows("10.30.1.1") || m["VM-100"].Allows("192.0.2.1") {
		t.Error("VM-100's list is not what was set")
	}
	for _, bad := range []string{"VM-100", "=10.0.0.0/8", "VM-100=", "VM-100=10.0.0.0/99"} {
		if err := m.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}
