package httpapi

import (
	"crypto/tls"
	"testing"
)

// TestHelloFingerprint: the same TLS stack gives the same fingerprint whatever GREASE
// values it draws; another order of suites or extensions, or other protocols, another one.
func TestHelloFingerprint(t *testing.T) {
	hello := func(edit func(h *tls.ClientHelloInfo)) *tls.ClientHelloInfo {
		h := &tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
			CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384}, Extensions: []uint16{0, 10, 11, 13, 16, 43, 51},
			SupportedCurves: []tls.CurveID{tls.X25519, tls.CurveP256}, SupportedPoints: []uint8{0},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}, SupportedProtos: []string{"h2", "http/1.1"}}
		if edit != nil {
			edit(h)
		}
		return h
	}
	base := helloFingerprint(hello(nil))
	if len(base) != 32 {
		t.Fatalf("fingerprint %q is not 16 bytes in hex", base)
	}
	tests := []struct {
		name string
		edit func(h *tls.ClientHelloInfo)
		same bool
	}{
		{"GREASE drawn anew", func(h *tls.ClientHelloInfo) {
			h.CipherSuites = append([]uint16{0x3a3a}, h.CipherSuites...)
			h.Extensions = append([]uint16{0xdada}, append(h.Extensions, 0x1a1a)...)
			h.SupportedCurves = append([]tls.CurveID{0x4a4a}, h.SupportedCurves...)
		}, true},
		{"suites in another order", func(h *tls.ClientHelloInfo) {
			h.CipherSuites = []uint16{tls.TLS_AES_256_GCM_SHA384, tls.TLS_AES_128_GCM_SHA256}
		}, false},
		{"extensions in another order", func(h *tls.ClientHelloInfo) { h.Extensions = []uint16{0, 11, 10, 13, 16, 43, 51} }, false},
		{"no ALPN", func(h *tls.ClientHelloInfo) { h.SupportedProtos = nil }, false},
		{"TLS 1.2 only", func(h *tls.ClientHelloInfo) { h.SupportedVersions = []uint16{tls.VersionTLS12} }, false},
	}
	for _, tc := range tests {
		if got := helloFingerprint(hello(tc.edit)); (got == base) != tc.same {
			t.Errorf("%s: fingerprint %s, base %s, want same=%v", tc.name, got, base, tc.same)
		}
	}
}
