package assess_test

import (
	"bytes"
	"context"
	"crypto/fips140"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/assess"
)

// publicGET are the routes meant to answer anyone.
var publicGET = map[string]bool{
	"/healthz": true, "/readyz": true, "/fhir/metadata": true,
	"/.well-known/smart-configuration": true, "/.well-known/est/cacerts": true,
}

// weakHandler is a deliberately careless server: version banners, no security headers, a
// patient read left open, observations accepted without a client certificate, no rate
// limiting, everything else 401.
func weakHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "Apache/2.4.49 (Unix)")
	w.Header().Set("X-Powered-By", "PHP/5.6.40")
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 4<<20))
	switch {
	case r.Method == "GET" && publicGET[r.URL.Path]:
		_, _ = w.Write([]byte("{}"))
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/fhir/Patient/"):
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write([]byte(`{"resourceType":"Patient","id":"x"}`))
	case r.Method == "POST" && r.URL.Path == "/fhir/Observation":
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusUnauthorized)
	}
}

// strictHandler is a correctly configured stub: security headers everywhere, a body limit,
// device routes only with a client certificate, nothing else without credentials (no
// credential it could accept exists), and 429 after five failed authentications from an
// address.
type strictHandler struct {
	mu       sync.Mutex
	failures map[string]int
}

func (h *strictHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if _, err := io.ReadAll(r.Body); err != nil {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	fail := func() {
		h.mu.Lock()
		h.failures[ip]++
		n := h.failures[ip]
		h.mu.Unlock()
		if n > 5 {
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}
	switch p := r.URL.Path; {
	case r.Method == "GET" && p == "/readyz":
		_, _ = w.Write([]byte("ready\ncrypto: fips140=only; secrets pbkdf2-sha256 (FIPS data dir)\n"))
	case r.Method == "GET" && publicGET[p]:
		_, _ = w.Write([]byte("{}"))
	case p == "/fhir/Observation" && r.Method == "POST", p == "/fhir", p == "/.well-known/est/simplereenroll":
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "client certificate required", http.StatusUnauthorized)
			return
		}
		http.Error(w, "bad request", http.StatusBadRequest)
	case p == "/oauth2/token", p == "/.well-known/est/simpleenroll":
		if _, _, ok := r.BasicAuth(); ok {
			fail()
			return
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	default:
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}
}

// startTLS starts h on loopback with cfg and returns its https:// URL.
func startTLS(t *testing.T, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.TLS = cfg
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // probing handshakes fail by design
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.URL
}

// wantFinding fails unless the report holds finding id with severity want.
func wantFinding(t *testing.T, rep *assess.Report, id string, want assess.Severity) {
	t.Helper()
	f, ok := rep.Find(id)
	if !ok {
		t.Errorf("no finding %q", id)
		return
	}
	if f.Severity != want {
		t.Errorf("finding %q: severity %s, want %s (%s)", id, f.Severity, want, f.Title)
	}
}

func TestRunWeakServer(t *testing.T) {
	now := time.Now()
	ca := MustCA(t, now)
	cert, _ := ca.MustLeaf(t, leafOptions{key: MustRSAKey(t, 1024), notBefore: now.Add(-time.Hour), notAfter: now.Add(90 * 24 * time.Hour)})
	url := startTLS(t, http.HandlerFunc(weakHandler), &tls.Config{
		MinVersion:   tls.VersionTLS10, // #nosec G402 -- the weak server under test
		Certificates: []tls.Certificate{cert},
		CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
	})
	rep, err := assess.Run(context.Background(), assess.Options{Target: url, RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		id  string
		sev assess.Severity
	}
	// In FIPS 140-3 mode (GODEBUG=fips140=on) neither this test's server nor the assessor
	// can speak TLS below 1.2 or non-approved suites: the assessor says what it left unprobed.
	tlsWants := []want{
		{"tls-version-tls1.0", assess.High},
		{"tls-version-tls1.1", assess.High},
		{"tls-suites-weak", assess.High},
		{"tls-suites-cbc", assess.Medium},
	}
	if fips140.Enabled() {
		tlsWants = []want{
			{"tls-version-tls1.0-unprobed", assess.Info},
			{"tls-version-tls1.1-unprobed", assess.Info},
			{"tls-suites-unprobed", assess.Info},
		}
	}
	for _, w := range append(tlsWants, []want{
		{"cert-weak-key:leaf", assess.High},
		{"route-open:GET /fhir/Patient/x", assess.Critical},
		{"route-open:POST /fhir/Observation", assess.Critical},
		{"header-hsts", assess.Medium},
		{"header-cache", assess.Medium},
		{"header-nosniff", assess.Low},
		{"header-csp", assess.Low},
		{"banner-version", assess.Low},
		{"rate-limit-none", assess.Medium},
	}...) {
		wantFinding(t, rep, w.id, w.sev)
	}
	if got := rep.MaxSeverity(); got != assess.Critical {
		t.Errorf("MaxSeverity = %s, want critical", got)
	}
	if f, ok := rep.Find("crypto-mode"); !ok || !strings.Contains(f.Title, "does not state") {
		t.Errorf("crypto-mode of a server that does not state it: %+v", f)
	}
	// Routes that refuse must not be reported as open.
	if f, ok := rep.Find("route-open:GET /fhir/AuditEvent"); ok {
		t.Errorf("unexpected %+v", f)
	}
	if t.Failed() {
		var b bytes.Buffer
		_ = rep.WriteText(&b)
		t.Log(b.String())
	}
}

func TestRunStrictServer(t *testing.T) {
	now := time.Now()
	ca := MustCA(t, now)
	cert, _ := ca.MustLeaf(t, leafOptions{notBefore: now.Add(-time.Hour), notAfter: now.Add(90 * 24 * time.Hour)})
	url := startTLS(t, &strictHandler{failures: map[string]int{}}, &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
	})
	rep, err := assess.Run(context.Background(), assess.Options{Target: url, RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := rep.Find("crypto-mode"); !ok || f.Title != "FIPS 140-3 mode: fips140=only; secrets pbkdf2-sha256 (FIPS data dir)" {
		t.Errorf("crypto-mode stated in /readyz: %+v", f)
	}
	for _, f := range rep.Findings {
		if f.Severity > assess.Low {
			t.Errorf("unexpected %s finding %s: %s\n%s", f.Severity, f.ID, f.Title, f.Evidence)
		}
	}
	wantFinding(t, rep, "rate-limit", assess.Info)
	wantFinding(t, rep, "routes-refused", assess.Info)
	wantFinding(t, rep, "tokens-forged-refused", assess.Info)
	if _, ok := rep.Find("tls-version-tls1.0"); ok {
		t.Error("TLS 1.0 reported on a TLS 1.3 only server")
	}
	if t.Failed() {
		var b bytes.Buffer
		_ = rep.WriteText(&b)
		t.Log(b.String())
	}
}

// TestRunUntrustedWithoutCA checks that a private CA not given to the assessor is reported
// and that the assessment still runs (pinned to the certificate it saw).
func TestRunUntrustedWithoutCA(t *testing.T) {
	now := time.Now()
	ca := MustCA(t, now)
	cert, _ := ca.MustLeaf(t, leafOptions{notBefore: now.Add(-time.Hour), notAfter: now.Add(90 * 24 * time.Hour)})
	url := startTLS(t, &strictHandler{failures: map[string]int{}}, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})
	rep, err := assess.Run(context.Background(), assess.Options{Target: url, RootCAs: MustCA(t, now).Pool(), BurstSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	wantFinding(t, rep, "cert-untrusted", assess.High)
	wantFinding(t, rep, "routes-refused", assess.Info)
}

// TestRunBurstFindsRateLimit checks the burst: a server that throttles only after many
// requests (not after a few failed logins) is seen to rate-limit.
func TestRunBurstFindsRateLimit(t *testing.T) {
	now := time.Now()
	ca := MustCA(t, now)
	cert, _ := ca.MustLeaf(t, leafOptions{notBefore: now.Add(-time.Hour), notAfter: now.Add(90 * 24 * time.Hour)})
	var mu sync.Mutex
	n := 0
	url := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		over := r.URL.Path == "/oauth2/token" && n > 120
		mu.Unlock()
		if over {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}), &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})
	rep, err := assess.Run(context.Background(), assess.Options{Target: url, RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := rep.Find("rate-limit")
	if !ok || !strings.Contains(f.Title, "burst") {
		t.Errorf("rate-limit finding = %+v, %v; want one from the burst", f, ok)
	}
}

func TestRunHangIsBoundedAndReported(t *testing.T) {
	now := time.Now()
	ca := MustCA(t, now)
	cert, _ := ca.MustLeaf(t, leafOptions{notBefore: now.Add(-time.Hour), notAfter: now.Add(90 * 24 * time.Hour)})
	release := make(chan struct{})
	url := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fhir/Patient" && r.Method == "POST" {
			select { // hang on this route
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}), &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})
	defer close(release)
	start := time.Now()
	rep, err := assess.Run(context.Background(), assess.Options{Target: url, RootCAs: ca.Pool(),
		RequestTimeout: 300 * time.Millisecond, BurstSize: 20})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("assessment took %s", d)
	}
	wantFinding(t, rep, "route-hang:POST /fhir/Patient", assess.Medium)
	wantFinding(t, rep, "malformed:POST /fhir/Patient:broken JSON", assess.Medium)
}

func TestRunTimeoutGivesPartialReport(t *testing.T) {
	now := time.Now()
	ca := MustCA(t, now)
	cert, _ := ca.MustLeaf(t, leafOptions{notBefore: now.Add(-time.Hour), notAfter: now.Add(90 * 24 * time.Hour)})
	url := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusUnauthorized)
	}), &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})
	rep, err := assess.Run(context.Background(), assess.Options{Target: url, RootCAs: ca.Pool(), Timeout: 500 * time.Millisecond})
	if !errors.Is(err, assess.ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	if rep == nil {
		t.Fatal("no partial report")
	}
	wantFinding(t, rep, "assess-incomplete", assess.Medium)
	wantFinding(t, rep, "tls-versions", assess.Info)
}

func TestRunUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = assess.Run(context.Background(), assess.Options{Target: "https://" + addr, Timeout: 10 * time.Second})
	if err == nil {
		t.Fatal("no error for a closed port")
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		name, in, base, host string
		ok                   bool
	}{
		{"host and port", "https://127.0.0.1:8443", "https://127.0.0.1:8443", "127.0.0.1", true},
		{"default port", "https://vitalgate.example.org", "https://vitalgate.example.org:443", "vitalgate.example.org", true},
		{"trailing slash", "https://localhost:8443/", "https://localhost:8443", "localhost", true},
		{"IPv6", "https://[::1]:8443", "https://[::1]:8443", "::1", true},
		{"plain http", "http://127.0.0.1:8443", "", "", false},
		{"path", "https://127.0.0.1:8443/fhir", "", "", false},
		{"credentials", "https://u:p@127.0.0.1:8443", "", "", false},
		{"no scheme", "127.0.0.1:8443", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, host, _, err := assess.ParseTarget(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (base != tc.base || host != tc.host) {
				t.Errorf("got %q %q, want %q %q", base, host, tc.base, tc.host)
			}
		})
	}
}

func TestReportRendering(t *testing.T) {
	rep := &assess.Report{Target: "https://127.0.0.1:8443", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Duration: 1500 * time.Millisecond,
		Findings: []assess.Finding{
			{ID: "a", Title: "fine", Severity: assess.Info},
			{ID: "b", Title: "bad", Severity: assess.Critical, Detail: "why\nmore", Evidence: "GET / → 200 OK"},
			{ID: "c", Title: "meh", Severity: assess.Medium},
		}}
	if rep.MaxSeverity() != assess.Critical || rep.Count(assess.High) != 1 || rep.Count(assess.Info) != 3 {
		t.Errorf("MaxSeverity %s, Count(high) %d", rep.MaxSeverity(), rep.Count(assess.High))
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{"https://127.0.0.1:8443", "3 findings (1 critical, 0 high, 1 medium, 0 low, 1 info); worst: critical", "[CRITICAL] bad", "  more", "evidence: GET / → 200 OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "[CRITICAL]") > strings.Index(out, "[MEDIUM]") || strings.Index(out, "[MEDIUM]") > strings.Index(out, "[INFO]") {
		t.Errorf("findings not worst first:\n%s", out)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(js.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["max_severity"] != "critical" || raw["duration_ms"] != 1500.0 || raw["findings"].([]any)[1].(map[string]any)["severity"] != "critical" {
		t.Errorf("JSON: %s", js.String())
	}
	var back assess.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Target != rep.Target || len(back.Findings) != 3 || back.Findings[1].Severity != assess.Critical || back.Duration != rep.Duration {
		t.Errorf("round trip: %+v", back)
	}
}

func TestSeverityNames(t *testing.T) {
	for s := assess.Info; s <= assess.Critical; s++ {
		got, err := assess.ParseSeverity(strings.ToUpper(s.String()))
		if err != nil || got != s {
			t.Errorf("ParseSeverity(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := assess.ParseSeverity("severe"); err == nil {
		t.Error("ParseSeverity accepted an unknown name")
	}
}
