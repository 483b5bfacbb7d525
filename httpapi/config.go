package httpapi

import (
	"crypto/tls"
	"fmt"
	"time"
)

// Config holds every limit and TLS setting of the HTTPS listener, with secure defaults from
// DefaultConfig. Change limits here and only here.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:8443".
	Addr string
	// PublicURL is the base URL clients use to reach the server (e.g.
	// https://vitalgate.example.org:8443). It is the token issuer and audience; empty means
	// https://<Addr>.
	PublicURL string
	// AllowTLS12 also offers TLS 1.2 (ECDHE with AES-GCM or ChaCha20-Poly1305 only). Off by
	// default: TLS 1.3 only.
	AllowTLS12 bool

	MaxBodyBytes      int64         // request body limit (413 above it)
	MaxBundleEntries  int           // Bundle entries limit (413 above it)
	MaxJSONDepth      int           // JSON nesting limit (400 above it)
	MaxHeaderBytes    int           // request header limit
	ReadHeaderTimeout time.Duration // time to read the first request's headers, after the TLS handshake
	ReadTimeout       time.Duration // time to read the whole request
	WriteTimeout      time.Duration // time to write the response
	IdleTimeout       time.Duration // keep-alive idle time
	ShutdownTimeout   time.Duration // grace for in-flight requests on SIGINT/SIGTERM
	MaxConns          int           // connections past their TLS handshake open at once (all clients)
	MaxConnsPerIP     int           // connections past their TLS handshake open at once from one address
	// HandshakeTimeout, MaxHandshakes and MaxHandshakesPerIP bound connections still in
	// their TLS handshake, apart from MaxConns: at a limit a new connection closes the
	// oldest one in handshake (of its address, or of all), so idle sockets cannot fill the
	// slots devices and clients need (see guard.HandshakeLimits).
	HandshakeTimeout      time.Duration
	MaxHandshakes         int
	MaxHandshakesPerIP    int
	MaxInFlightPerCaller  int     // concurrent requests of one device or client
	MaxInFlightWrites     int     // writes waiting for or in a commit; beyond it new writes get 503
	RatePerCaller         float64 // sustained requests per second of one device or client
	BurstPerCaller        int     // burst above that rate
	RatePerIP             float64 // requests per second from one address, before authentication
	BurstPerIP            int
	AuthFailuresPerMinute int           // failed authentications per (client, address) per minute before 429
	EmergencyTTL          time.Duration // life of an emergency-access ("break glass") token, at most 5 minutes
	// CryptoMode is the node's FIPS 140-3 mode as /readyz states it (for example
	// "fips140=only; secrets pbkdf2-sha256 (FIPS data dir)"); the node fills it in.
	CryptoMode string
}

// DefaultConfig returns the secure defaults.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8443",
		MaxBodyBytes:      1 << 20,
		MaxBundleEntries:  1000,
		MaxJSONDepth:      32,
		MaxHeaderBytes:    16 << 10,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   20 * time.Second,

		MaxConns:              10000,
		MaxConnsPerIP:         512,
		HandshakeTimeout:      5 * time.Second,
		MaxHandshakes:         1024,
		MaxHandshakesPerIP:    32,
		MaxInFlightPerCaller:  16,
		MaxInFlightWrites:     1024,
		RatePerCaller:         50,
		BurstPerCaller:        100,
		RatePerIP:             500,
		BurstPerIP:            1000,
		AuthFailuresPerMinute: 5,
		EmergencyTTL:          2 * time.Minute,
	}
}

// Validate reports the first setting that is missing or unsafe.
func (c Config) Validate() error {
	switch {
	case c.Addr == "":
		return fmt.Errorf("listen address is empty")
	case c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20:
		return fmt.Errorf("max body size must be between 1 KiB and 64 MiB")
	case c.MaxBundleEntries < 1 || c.MaxBundleEntries > 100000:
		return fmt.Errorf("max bundle entries must be between 1 and 100000")
	case c.MaxJSONDepth < 8 || c.MaxJSONDepth > 256:
		return fmt.Errorf("max JSON depth must be between 8 and 256")
	case c.MaxHeaderBytes < 1024:
		return fmt.Errorf("max header size must be at least 1 KiB")
	case c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0:
		return fmt.Errorf("timeouts must be positive")
	case c.MaxConns < 1 || c.MaxConnsPerIP < 1 || c.MaxInFlightPerCaller < 1 || c.MaxInFlightWrites < 1:
		return fmt.Errorf("connection and concurrency limits must be at least 1")
	case c.HandshakeTimeout <= 0 || c.HandshakeTimeout > time.Minute:
		return fmt.Errorf("handshake timeout must be between 0 and 1 minute")
	case c.MaxHandshakes < 1 || c.MaxHandshakesPerIP < 1 || c.MaxHandshakesPerIP > c.MaxHandshakes:
		return fmt.Errorf("handshake limits must be at least 1, and at most max handshakes per address")
	case c.RatePerCaller <= 0 || c.BurstPerCaller < 1 || c.RatePerIP <= 0 || c.BurstPerIP < 1:
		return fmt.Errorf("rate limits must be positive")
	case c.EmergencyTTL < 10*time.Second || c.EmergencyTTL > 5*time.Minute:
		return fmt.Errorf("emergency token life must be between 10 s and 5 min")
	case c.AuthFailuresPerMinute < 1:
		return fmt.Errorf("auth failures per minute must be at least 1")
	}
	return nil
}

// tls12Suites are the only TLS 1.2 suites offered: ECDHE key exchange with AEAD ciphers.
// (TLS 1.3 suites are not configurable in Go and are all AEAD.)
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}
