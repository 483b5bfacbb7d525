package assess

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Options configure an assessment. Only Target is required.
type Options struct {
	// Target is the deployment's base URL: https://HOST[:PORT] (port 443 if omitted), no path.
	Target string
	// RootCAs verifies the server certificate; nil means the system roots. For a Vitalgate
	// deployment pass the data dir's ca.crt.
	RootCAs *x509.CertPool
	// Timeout bounds the whole assessment (default 60 s). When it runs out, Run returns the
	// partial report and an error wrapping ErrIncomplete.
	Timeout time.Duration
	// RequestTimeout bounds each HTTP request, body included (default 10 s); an answer that
	// takes longer counts as a hang.
	RequestTimeout time.Duration
	// HandshakeTimeout bounds each probing TLS handshake (default 5 s).
	HandshakeTimeout time.Duration
	// BurstSize is the most requests the rate-limit probe sends (default 300); it stops at
	// the first 429.
	BurstSize int
	// BurstDuration bounds the rate-limit probe in time (default 15 s).
	BurstDuration time.Duration
	// BurstConcurrency is how many burst requests are in flight at once (default 8).
	BurstConcurrency int
	// Now is the clock for certificate validity and forged token times (default time.Now).
	Now func() time.Time
}

// withDefaults fills in the defaults.
func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 5 * time.Second
	}
	if o.BurstSize <= 0 {
		o.BurstSize = 300
	}
	if o.BurstDuration <= 0 {
		o.BurstDuration = 15 * time.Second
	}
	if o.BurstConcurrency <= 0 {
		o.BurstConcurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ErrIncomplete means the assessment ran out of time (Options.Timeout or the context)
// before every check finished; the report holds what was found until then.
var ErrIncomplete = errors.New("assessment incomplete")

// ParseTarget checks an assessment target and returns its normalized base URL
// (https://host:port), its host (for SNI and name checks) and its dial address.
func ParseTarget(target string) (base, host, addr string, err error) {
	u, err := url.Parse(strings.TrimSpace(target))
	if err != nil {
		return "", "", "", fmt.Errorf("target %q: %v", target, err)
	}
	if u.Scheme != "https" {
		return "", "", "", fmt.Errorf("target %q: want an https:// URL", target)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", "", "", fmt.Errorf("target %q: want https://HOST[:PORT] with no path, query or credentials", target)
	}
	host = u.Hostname()
	if host == "" {
		return "", "", "", fmt.Errorf("target %q: no host", target)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	addr = net.JoinHostPort(host, port)
	return "https://" + addr, host, addr, nil
}

// assessor carries one assessment's state.
type assessor struct {
	opts     Options
	base     string // https://host:port
	host     string
	addr     string
	report   *Report
	versions map[uint16]bool // TLS versions: true accepted, false refused
	client   *http.Client
	samples  []sample // responses kept for the header checks
	saw429   []string // requests answered 429 before the burst (rate limiting evidence)
	limiter  limiterLedger
}

// sample is a response kept for the header checks.
type sample struct {
	label  string
	status int
	header http.Header
}

// Run assesses the deployment at opts.Target and returns the report. It returns an error
// (with no or a partial report) if the target is malformed or unreachable over TLS, and
// the partial report with an error wrapping ErrIncomplete if time ran out. A report whose
// MaxSeverity is High or Critical is a failed assessment; Run does not treat it as an
// error.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	base, host, addr, err := ParseTarget(opts.Target)
	if err != nil {
		return nil, err
	}
	a := &assessor{opts: opts, base: base, host: host, addr: addr, versions: map[uint16]bool{},
		report: &Report{Target: base, Started: opts.Now().UTC()}}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	start := time.Now()
	finish := func(err error) (*Report, error) {
		a.report.Duration = time.Since(start)
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err != nil && ctx.Err() != nil {
			a.report.add(Finding{ID: "assess-incomplete", Severity: Medium, Title: "The assessment did not finish",
				Detail:   "Time ran out before every check completed; findings are missing. Raise --timeout or check why the target answers slowly.",
				Evidence: err.Error()})
			err = fmt.Errorf("%w: %v", ErrIncomplete, err)
		}
		a.report.Sort()
		return a.report, err
	}

	chain, err := a.checkTLS(ctx)
	if err != nil {
		return finish(err)
	}
	for _, f := range CheckCertificates(chain, host, opts.RootCAs, opts.Now()) {
		a.report.add(f)
	}
	a.client = a.newClient(chain[0])
	defer a.client.CloseIdleConnections()

	steps := []func(context.Context){
		a.checkRoutes,
		a.checkHeaders,
		a.checkWeakCredentials,
		a.checkMalformed,
		a.checkRateLimit,
	}
	for _, step := range steps {
		if ctx.Err() != nil {
			break
		}
		step(ctx)
	}
	a.report.add(a.limiter.finding())
	return finish(nil)
}

// newClient returns the HTTP client of the probes: it talks only to the target, follows
// no redirects, and accepts only the certificate seen during the TLS probes (so requests
// carrying guessed credentials cannot go to anyone else, whether or not the chain verifies).
func (a *assessor) newClient(leaf *x509.Certificate) *http.Client {
	minVersion := uint16(tls.VersionTLS13)
	for v, ok := range a.versions {
		if ok && v < minVersion {
			minVersion = v
		}
	}
	pinned := leaf.Raw
	tr := &http.Transport{
		Proxy:       nil, // never route probes through an environment proxy
		DialContext: (&net.Dialer{Timeout: a.opts.HandshakeTimeout}).DialContext,
		TLSClientConfig: &tls.Config{
			ServerName:         a.host,
			InsecureSkipVerify: true,       // #nosec G402 -- replaced by pinning the leaf seen in the TLS probes (VerifyConnection); trust is reported by CheckCertificates
			MinVersion:         minVersion, // #nosec G402 -- the lowest version the target accepted, so the probes can talk to it
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, pinned) {
					return errors.New("assess: the server certificate changed during the assessment")
				}
				return nil
			},
		},
		TLSHandshakeTimeout:   a.opts.HandshakeTimeout,
		ResponseHeaderTimeout: a.opts.RequestTimeout,
		MaxIdleConnsPerHost:   a.opts.BurstConcurrency,
		MaxConnsPerHost:       a.opts.BurstConcurrency * 2,
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// result is the outcome of one probe request.
type result struct {
	status  int // 0 if no answer
	header  http.Header
	body    []byte // the first 8 KiB
	err     error
	timeout bool // no answer within RequestTimeout
	aborted bool // the assessment ran out of time during the request
}

// statusText is "401 Unauthorized", "timeout" or "error: ...".
func (r result) statusText() string {
	switch {
	case r.status != 0:
		return fmt.Sprintf("%d %s", r.status, http.StatusText(r.status))
	case r.timeout:
		return "no answer (timeout)"
	case r.err != nil:
		return "no answer (" + r.err.Error() + ")"
	}
	return "no answer"
}

// send makes one request to the target and reads at most 8 KiB of the answer.
func (a *assessor) send(parent context.Context, method, path string, hdr http.Header, body []byte) result {
	ctx, cancel := context.WithTimeout(parent, a.opts.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return result{err: err}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "vitalgate-assess")
	resp, err := a.client.Do(req)
	if err != nil {
		var ne net.Error
		to := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
		return result{err: err, timeout: to && parent.Err() == nil, aborted: parent.Err() != nil}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}
