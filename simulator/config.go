// Package simulator runs simulated medical devices that talk to a Vitalgate server exactly as
// real devices do: each device enrolls over EST (RFC 7030) with its one-time secret, receives a
// short-lived X.509 certificate, and then streams FHIR R4 vital-sign Observations (single
// resources or batch/transaction Bundles) over mutual TLS 1.3, renewing its certificate with
// simplereenroll before it expires.
//
// It is real client code over real TLS: the same requests, headers and encodings a device in
// the field sends. `vitalgate demo`, `vitalgate simulate` and the benchmarks use it; the
// observation generator ([Generator], [NewObservation], [NewBundle]) is exported so tests and
// benchmarks can produce realistic payloads without a network.
//
// In HL7 mode ([Config.HL7Addr] set) devices still enroll over EST, then send each round as
// one HL7 v2.6 ORU^R01 message of the IHE PCD-01 transaction ([NewPCD01]) over MLLP on one
// persistent mutual TLS 1.3 connection per device (the EST certificate is the TLS client
// certificate), and read the HL7 acknowledgement (ACK) of every message.
//
// Trust is never taken on first use: the device is handed the server's CA out of band
// ([Config.CAPool] or [Config.CAFile]), verifies the server's TLS certificate against it from
// the very first request, and checks that the EST /cacerts answer holds that CA.
package simulator

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"time"
)

// Defaults applied by [Config] when a field is zero.
const (
	DefaultInterval          = time.Second
	DefaultHTTPClientTimeout = 10 * time.Second
	DefaultShutdownGrace     = 2 * time.Second
	DefaultEnrollConcurrency = 8
	DefaultBundleType        = "batch"
)

// Config configures a simulation run ([Run]) and the devices in it ([NewDevice]).
type Config struct {
	// ServerURL is the base URL of the Vitalgate server, for example https://127.0.0.1:8443.
	// It must use https.
	ServerURL string

	// HL7Addr, when set, is the host:port of the server's MLLP over TLS listener, and the
	// devices send their observations there as HL7 v2 ORU^R01 (IHE PCD-01) messages instead
	// of FHIR (enrollment still uses ServerURL). The server's certificate must be valid for
	// the host. BatchSize must then be 0: each round is one message.
	HL7Addr string
	// HL7Timeout bounds, in HL7 mode, connecting (TCP and TLS handshake) and each message
	// exchange: writing the message and reading its ACK (default HTTPClientTimeout).
	HL7Timeout time.Duration

	// CAPool holds the server's CA certificate, obtained out of band (RFC 7030 §4.1.1). The
	// server's TLS certificate is verified against it, and the EST cacerts answer must hold a
	// CA certificate that it trusts. If nil, CAFile is loaded.
	CAPool *x509.CertPool
	// CAFile is a PEM file with the server's CA certificate, used when CAPool is nil.
	CAFile string

	// Devices are the devices to simulate.
	Devices []DeviceConfig
	// CertDir, when set, is where each device keeps its key and certificate (ID.key and
	// ID.crt, mode 0600): Enroll reuses a saved certificate that is still valid for the
	// device and the CA instead of spending the one-time secret again, and every enrollment
	// and renewal saves the new one. Empty: certificates live in memory only.
	CertDir string

	// Interval is how often each device sends a round of observations (default 1 s).
	Interval time.Duration
	// Rand is the source of randomness for keys, identifiers and the seeds of the value
	// generators (default crypto/rand.Reader). Run serializes its reads; devices made one by
	// one with NewDevice and used concurrently need a Rand safe for concurrent use.
	Rand io.Reader
	// Now gives the time used for observation timestamps and certificate validation
	// (default time.Now). It must be safe for concurrent use.
	Now func() time.Time
	// HTTPClientTimeout bounds every HTTP exchange, connection included (default 10 s).
	HTTPClientTimeout time.Duration
	// BatchSize, when positive, makes each send one FHIR Bundle of BatchSize observations
	// (successive readings of the device, stamped Interval apart, as a device that buffers
	// readings would send them). Zero sends each observation on its own.
	BatchSize int
	// BundleType is "batch" (default) or "transaction"; it applies when BatchSize > 0.
	BundleType string
	// EnrollConcurrency bounds how many devices enroll at the same time (default 8).
	EnrollConcurrency int
	// ShutdownGrace is how long requests in flight may still run after the context given to
	// [Run] is done; past it they are cancelled and counted as failed (default 2 s).
	ShutdownGrace time.Duration
}

// DeviceConfig describes one simulated device, registered beforehand on the server
// (`vitalgate device add`).
type DeviceConfig struct {
	// ID is the device id; it becomes the CSR common name and the Device reference.
	ID string
	// PatientID is the patient the device is assigned to (the Patient reference).
	PatientID string
	// EnrollSecret is the one-time enrollment secret printed by `vitalgate device add`.
	EnrollSecret string
	// Kind chooses the vitals the device streams: see [Kinds].
	Kind string
}

// Validate reports whether c is usable: an https server URL, a host:port HL7 address if any
// (and then no batching), a CA to trust, valid devices
// with unique ids, and non-negative durations and sizes.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.ServerURL)
	switch {
	case c.ServerURL == "":
		errs = append(errs, errors.New("simulator: server URL is required"))
	case err != nil:
		errs = append(errs, fmt.Errorf("simulator: server URL: %w", err))
	case u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("simulator: server URL %q must be https://host[:port]", c.ServerURL))
	}
	if c.CAPool == nil && c.CAFile == "" {
		errs = append(errs, errors.New("simulator: the server's CA is required (CAPool or CAFile): it must be obtained out of band"))
	}
	if c.HL7Addr != "" {
		if host, port, err := net.SplitHostPort(c.HL7Addr); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("simulator: HL7 address %q must be host:port", c.HL7Addr))
		}
		if c.BatchSize > 0 {
			errs = append(errs, errors.New("simulator: batch size applies to FHIR only: in HL7 mode each round is one message"))
		}
	}
	if c.Interval < 0 || c.HTTPClientTimeout < 0 || c.ShutdownGrace < 0 || c.HL7Timeout < 0 {
		errs = append(errs, errors.New("simulator: durations must not be negative"))
	}
	if c.BatchSize < 0 {
		errs = append(errs, errors.New("simulator: batch size must not be negative"))
	}
	if c.EnrollConcurrency < 0 {
		errs = append(errs, errors.New("simulator: enroll concurrency must not be negative"))
	}
	switch c.BundleType {
	case "", "batch", "transaction":
	default:
		errs = append(errs, fmt.Errorf("simulator: bundle type %q is not batch or transaction", c.BundleType))
	}
	seen := make(map[string]bool, len(c.Devices))
	for i, d := range c.Devices {
		if err := d.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("device %d: %w", i, err))
			continue
		}
		if seen[d.ID] {
			errs = append(errs, fmt.Errorf("simulator: device id %q appears twice", d.ID))
		}
		if d.Kind == KindBloodGas && c.HL7Addr == "" {
			errs = append(errs, fmt.Errorf("simulator: device %q: a %s device sends HL7 v2 lab results: give the MLLP address (HL7Addr, --hl7)", d.ID, KindBloodGas))
		}
		seen[d.ID] = true
	}
	return errors.Join(errs...)
}

// Validate reports whether d has an id, a patient, an enrollment secret and a known kind.
func (d DeviceConfig) Validate() error {
	var errs []error
	if d.ID == "" {
		errs = append(errs, errors.New("simulator: device id is required"))
	}
	if d.PatientID == "" {
		errs = append(errs, fmt.Errorf("simulator: device %q: patient id is required", d.ID))
	}
	if d.EnrollSecret == "" {
		errs = append(errs, fmt.Errorf("simulator: device %q: enrollment secret is required", d.ID))
	}
	if _, ok := kindVitals[d.Kind]; !ok && d.Kind != KindBloodGas {
		errs = append(errs, fmt.Errorf("simulator: device %q: unknown kind %q (want one of %v)", d.ID, d.Kind, Kinds()))
	}
	return errors.Join(errs...)
}

// settings is a validated Config with defaults applied and the CA loaded.
type settings struct {
	Config
	base *url.URL
}

// resolve validates c, applies defaults and loads the CA file if needed.
func (c Config) resolve() (*settings, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.HTTPClientTimeout == 0 {
		c.HTTPClientTimeout = DefaultHTTPClientTimeout
	}
	if c.HL7Timeout == 0 {
		c.HL7Timeout = c.HTTPClientTimeout
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.EnrollConcurrency == 0 {
		c.EnrollConcurrency = DefaultEnrollConcurrency
	}
	if c.BundleType == "" {
		c.BundleType = DefaultBundleType
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	} else if _, ok := c.Rand.(*lockedReader); !ok {
		c.Rand = &lockedReader{r: c.Rand}
	}
	if c.CAPool == nil {
		pemBytes, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("simulator: reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("simulator: CA file %s holds no PEM certificate", c.CAFile)
		}
		c.CAPool = pool
	}
	base, err := url.Parse(c.ServerURL)
	if err != nil {
		return nil, err
	}
	return &settings{Config: c, base: base}, nil
}

// endpoint returns the absolute URL of path (no leading slash) under the server URL.
func (s *settings) endpoint(path string) string {
	return s.base.JoinPath(path).String() // #nosec G125 -- path is always one of the package's constant routes (PathCACerts, PathObservation, ...)
}

// lockedReader serializes reads from a reader that may not be safe for concurrent use.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
