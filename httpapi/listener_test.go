package httpapi_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/httpapi"
)

// TestHandshakeFloodDoesNotLockOutDevices is finding 6 of issue 13 on HTTPS: the connection
// limits were applied before TLS, so idle TCP sockets from a handful of addresses filled
// every slot for as long as the handshake deadline (ReadHeaderTimeout) let them stay. The
// handshake stage now has its own budget per address, apart from connections past their
// handshake. The handshake deadline (ReadHeaderTimeout before the fix) is a minute here, so the
// flood lasts for the whole test.
func TestHandshakeFloodDoesNotLockOutDevices(t *testing.T) {
	e := MustEnvWith(t, func(c *httpapi.Config) {
		c.MaxConns, c.MaxConnsPerIP = 64, 16
		c.ReadHeaderTimeout = time.Minute
		c.HandshakeTimeout = time.Minute // the flood outlasts the test: only the separate budget lets the device in
	})
	cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
	addr := strings.TrimPrefix(e.url, "https://")
	for a := range 16 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+a))}, Timeout: 5 * time.Second}
		for range 16 {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("flood dial: %v", err)
			}
			t.Cleanup(func() { c.Close() })
		}
	}
	o := mustJSON(t, example(t, "Observation-heart-rate.json", "pat-1", "dev-1"))
	deadline := time.Now().Add(20 * time.Second)
	var last result
	for time.Now().Before(deadline) {
		c := e.client(cert)
		c.Timeout = 2 * time.Second
		if last = e.do(c, "POST", "/fhir/Observation", "application/fhir+json", o); last.err == nil && last.status == 201 {
			return
		}
		c.CloseIdleConnections()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("a device with a valid certificate could not post during the flood: %v %d", last.err, last.status)
}
