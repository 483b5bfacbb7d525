package simulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Media types the simulator sends.
const (
	ContentTypeFHIRJSON = "application/fhir+json"
	ContentTypePKCS10   = "application/pkcs10"
)

// Endpoint paths, relative to [Config.ServerURL].
const (
	PathCACerts        = ".well-known/est/cacerts"
	PathSimpleEnroll   = ".well-known/est/simpleenroll"
	PathSimpleReenroll = ".well-known/est/simplereenroll"
	PathObservation    = "fhir/Observation"
	PathFHIR           = "fhir"
)

// maxResponseBody bounds how much of a response the simulator reads.
const maxResponseBody = 16 << 20

// maxRetryAfter caps how long a device honours a Retry-After.
const maxRetryAfter = 5 * time.Minute

// ErrNotEnrolled is returned by [Device.Send] and [Device.Reenroll] before a successful
// [Device.Enroll].
var ErrNotEnrolled = errors.New("simulator: device is not enrolled")

// StatusError is an HTTP answer the simulator did not expect: an EST error, a 5xx, or a
// rejected or throttled request when it is returned as an error.
type StatusError struct {
	Op          string // what was attempted, for example "simpleenroll"
	StatusCode  int
	Diagnostics string // issue[0].diagnostics of the OperationOutcome, if the server sent one
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("simulator: %s: HTTP %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Diagnostics != "" {
		msg += ": " + e.Diagnostics
	}
	return msg
}

// Result is what happened to the observations of one [Device.Send].
type Result struct {
	// Accepted counts observations the server stored (2xx).
	Accepted int
	// Rejected counts observations the server refused (4xx other than 429).
	Rejected int
	// Throttled counts observations refused with 429, or 503 with Retry-After, plus those
	// of the round the device then held back.
	Throttled int
	// Failed counts observations lost to network errors, cancellation, timeouts, 5xx or
	// answers that do not parse.
	Failed int
	// Diagnostics is the OperationOutcome diagnostics of the first rejection.
	Diagnostics string
	// RetryAfter is how long the server asked the device to wait, when throttled.
	RetryAfter time.Duration
}

// Sent returns the number of observations the round held.
func (r Result) Sent() int { return r.Accepted + r.Rejected + r.Throttled + r.Failed }

// outcome classifies one observation.
type outcome int

const (
	accepted outcome = iota
	rejected
	throttled
	failed
)

func (r *Result) add(o outcome, n int) {
	switch o {
	case accepted:
		r.Accepted += n
	case rejected:
		r.Rejected += n
	case throttled:
		r.Throttled += n
	default:
		r.Failed += n
	}
}

// Device is one simulated device: an EST client and a FHIR client with its own key, its own
// certificate and its own HTTP client (keep-alive, TLS 1.3 only, trusting only the server's
// CA) or, in HL7 mode, its own persistent MLLP over TLS connection. Its methods are safe for
// concurrent use; rounds of Send are serialized.
type Device struct {
	s    *settings
	conf DeviceConfig

	transport *http.Transport
	client    *http.Client
	cert      atomic.Pointer[tls.Certificate]

	estMu  sync.Mutex // serializes Enroll and Reenroll
	sendMu sync.Mutex // serializes Send (the generator is not concurrency-safe)
	gen    *Generator

	hl7Mu sync.Mutex // guards hl7
	hl7   *hl7Conn   // the open MLLP connection in HL7 mode, or nil
}

// NewDevice returns an unenrolled device described by dev, using the server, trust, timing,
// randomness and batching settings of cfg (cfg.Devices is ignored).
func NewDevice(cfg Config, dev DeviceConfig) (*Device, error) {
	cfg.Devices = nil
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if err := dev.Validate(); err != nil {
		return nil, err
	}
	return newDevice(s, dev)
}

func newDevice(s *settings, dev DeviceConfig) (*Device, error) {
	gen, err := NewGenerator(dev.Kind, s.Rand)
	if err != nil {
		return nil, err
	}
	d := &Device{s: s, conf: dev, gen: gen}
	d.transport = &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   s.HTTPClientTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig: &tls.Config{
			MinVersion:           tls.VersionTLS13,
			RootCAs:              s.CAPool,
			GetClientCertificate: d.clientCertificate,
			Time:                 s.Now,
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   s.HTTPClientTimeout,
		ExpectContinueTimeout: time.Second,
	}
	d.client = &http.Client{
		Transport: d.transport,
		Timeout:   s.HTTPClientTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a device follows no redirects
		},
	}
	return d, nil
}

// clientCertificate presents the device certificate once there is one.
func (d *Device) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if c := d.cert.Load(); c != nil {
		return c, nil
	}
	return &tls.Certificate{}, nil // no certificate yet: enrollment uses HTTP Basic
}

// ID returns the device id.
func (d *Device) ID() string { return d.conf.ID }

// Config returns the device's configuration.
func (d *Device) Config() DeviceConfig { return d.conf }

// Certificate returns the current device certificate, or nil before enrollment.
func (d *Device) Certificate() *x509.Certificate {
	if c := d.cert.Load(); c != nil {
		return c.Leaf
	}
	return nil
}

// TLSCertificate returns the current certificate and private key as used for mutual TLS, or
// nil before enrollment.
func (d *Device) TLSCertificate() *tls.Certificate { return d.cert.Load() }

// RenewalDue reports whether the device is enrolled and its certificate has less than a third
// of its lifetime left (or has expired), the point at which it re-enrolls.
func (d *Device) RenewalDue() bool {
	leaf := d.Certificate()
	if leaf == nil {
		return false
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Sub(d.s.Now()) < lifetime/3
}

// Close closes the device's idle HTTP connections and its MLLP connection; a later Send
// opens new ones.
func (d *Device) Close() {
	d.transport.CloseIdleConnections()
	d.closeHL7()
}

// Send posts one round of observations: one Observation per vital to /fhir/Observation, or,
// when BatchSize > 0, one Bundle of BatchSize observations to /fhir. The result counts every
// observation of the round. After a throttled answer the rest of the round is held back
// (counted as throttled); after a network failure the rest is counted as failed. The error
// is nil unless something failed: it is then the first failure, and Result.Failed > 0, or
// ErrNotEnrolled.
//
// In HL7 mode (Config.HL7Addr set) the round is one ORU^R01 message ([NewPCD01]) with one
// OBX per observation ([PCD01Count]), sent on the device's persistent MLLP over TLS
// connection (opened on first use, and again after an error); the result counts all its
// observations as accepted when the ACK is AA, rejected when it is AE or AR (Diagnostics is
// the ERR-8 text), and failed, with an error, when no valid ACK for the message arrives
// within Config.HL7Timeout.
func (d *Device) Send(ctx context.Context) (Result, error) {
	if d.cert.Load() == nil {
		return Result{}, ErrNotEnrolled
	}
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	if d.s.HL7Addr != "" {
		return d.sendHL7(ctx)
	}
	if d.s.BatchSize > 0 {
		return d.sendBundle(ctx)
	}
	var res Result
	docs, err := d.gen.Observations(d.conf.ID, d.conf.PatientID, d.s.Now())
	if err != nil {
		return res, err
	}
	var firstErr error
	for i, doc := range docs {
		o, resp, err := d.postFHIR(ctx, PathObservation, "Observation", doc)
		res.add(o, 1)
		rest := len(docs) - i - 1
		switch o {
		case rejected:
			if res.Diagnostics == "" {
				res.Diagnostics = resp.diagnostics
			}
		case throttled:
			res.RetryAfter = max(res.RetryAfter, resp.retryAfter)
			res.add(throttled, rest)
			return res, nil
		case failed:
			if firstErr == nil {
				firstErr = err
			}
			if resp.status == 0 { // no answer at all: do not pile up on a dead link
				res.add(failed, rest)
				return res, firstErr
			}
		}
	}
	return res, firstErr
}

// sendBundle posts BatchSize observations, from successive rounds stamped Interval apart
// (the newest now), as one Bundle.
func (d *Device) sendBundle(ctx context.Context) (Result, error) {
	var res Result
	n := d.s.BatchSize
	perRound := len(d.gen.vitals)
	rounds := (n + perRound - 1) / perRound
	now := d.s.Now()
	docs := make([][]byte, 0, rounds*perRound)
	for j := range rounds {
		at := now.Add(-time.Duration(rounds-1-j) * d.s.Interval)
		round, err := d.gen.Observations(d.conf.ID, d.conf.PatientID, at)
		if err != nil {
			return res, err
		}
		docs = append(docs, round...)
	}
	docs = docs[:n]
	body, err := NewBundle(d.s.BundleType, docs, d.s.Rand)
	if err != nil {
		return res, err
	}
	o, resp, err := d.postFHIR(ctx, PathFHIR, "Bundle", body)
	switch o {
	case rejected:
		res.add(rejected, n)
		res.Diagnostics = resp.diagnostics
		return res, nil
	case throttled:
		res.add(throttled, n)
		res.RetryAfter = resp.retryAfter
		return res, nil
	case failed:
		res.add(failed, n)
		return res, err
	}
	return d.classifyBundleResponse(resp.body, n)
}

// classifyBundleResponse counts the entries of a batch-response or transaction-response.
func (d *Device) classifyBundleResponse(body []byte, n int) (Result, error) {
	var res Result
	var br bundleResponse
	if err := json.Unmarshal(body, &br); err != nil || br.ResourceType != "Bundle" {
		res.add(failed, n)
		return res, fmt.Errorf("simulator: device %s: bundle answer is not a Bundle", d.conf.ID)
	}
	var firstErr error
	for i := range n {
		if i >= len(br.Entry) || br.Entry[i].Response == nil {
			res.add(failed, 1)
			if firstErr == nil {
				firstErr = fmt.Errorf("simulator: device %s: %s has no response for entry %d", d.conf.ID, br.Type, i)
			}
			continue
		}
		er := br.Entry[i].Response
		code, ok := entryStatus(er.Status)
		if !ok {
			res.add(failed, 1)
			if firstErr == nil {
				firstErr = fmt.Errorf("simulator: device %s: entry %d has status %q", d.conf.ID, i, er.Status)
			}
			continue
		}
		o := classifyStatus(code, false)
		res.add(o, 1)
		switch o {
		case rejected:
			if res.Diagnostics == "" {
				res.Diagnostics = diagnosticsOf(er.Outcome)
			}
		case failed:
			if firstErr == nil {
				firstErr = &StatusError{Op: "bundle entry", StatusCode: code, Diagnostics: diagnosticsOf(er.Outcome)}
			}
		}
	}
	return res, firstErr
}

// response is the part of an HTTP answer the simulator keeps.
type response struct {
	status      int
	header      http.Header
	body        []byte
	diagnostics string
	retryAfter  time.Duration
}

// postFHIR posts a FHIR resource over mutual TLS and classifies the answer.
func (d *Device) postFHIR(ctx context.Context, path, what string, body []byte) (outcome, response, error) {
	resp, err := d.do(ctx, http.MethodPost, path, ContentTypeFHIRJSON, body, false)
	if err != nil {
		return failed, resp, fmt.Errorf("simulator: device %s: POST %s: %w", d.conf.ID, what, err)
	}
	o := classifyStatus(resp.status, resp.header.Get("Retry-After") != "")
	switch o {
	case rejected, throttled:
		resp.diagnostics = diagnosticsOf(resp.body)
		if o == throttled {
			resp.retryAfter = d.retryAfter(resp.header)
		}
	case failed:
		return o, resp, &StatusError{Op: "POST " + what, StatusCode: resp.status, Diagnostics: diagnosticsOf(resp.body)}
	}
	return o, resp, nil
}

// classifyStatus maps an HTTP status to an outcome: 2xx accepted; 429, and 503 with
// Retry-After, throttled; other 4xx rejected; anything else failed.
func classifyStatus(code int, hasRetryAfter bool) outcome {
	switch {
	case code >= 200 && code < 300:
		return accepted
	case code == http.StatusTooManyRequests,
		code == http.StatusServiceUnavailable && hasRetryAfter:
		return throttled
	case code >= 400 && code < 500:
		return rejected
	}
	return failed
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func (d *Device) retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var wait time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		wait = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		wait = t.Sub(d.s.Now())
	}
	return min(max(wait, 0), maxRetryAfter)
}

// do sends one request and reads the whole answer, so the connection can be reused.
func (d *Device) do(ctx context.Context, method, path, contentType string, body []byte, basicAuth bool) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.s.endpoint(path), rd)
	if err != nil {
		return response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if contentType == ContentTypePKCS10 {
		req.Header.Set("Content-Transfer-Encoding", "base64") // RFC 7030 §4.2.1
	}
	if basicAuth {
		req.SetBasicAuth(d.conf.ID, d.conf.EnrollSecret)
	}
	req.Header.Set("Accept", "*/*")
	req.Header.Set("User-Agent", "vitalgate-simulator/1 ("+d.conf.Kind+")")
	hr, err := d.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hr.Body, maxResponseBody+1))
	resp := response{status: hr.StatusCode, header: hr.Header, body: b}
	if err != nil {
		return resp, fmt.Errorf("reading answer: %w", err)
	}
	if len(b) > maxResponseBody {
		return resp, fmt.Errorf("answer larger than %d bytes", maxResponseBody)
	}
	return resp, nil
}
