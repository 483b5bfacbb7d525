package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auditquery"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/bulk"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/erasure"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/metrics"
	"github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/posture"
	"github.com/vitalgate/vitalgate/registry"
	"github.com/vitalgate/vitalgate/rollout"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/subscription"
	"github.com/vitalgate/vitalgate/updates"
	"github.com/vitalgate/vitalgate/vault"
)

// clock is a settable clock shared by the server and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a real server on a loopback port with a real SQLite store, CA and keys.
type env struct {
	t     *testing.T
	url   string
	ca    *pki.CA
	pool  *x509.CertPool
	store *sqlite.DB
	vault *vault.Vault
	clock *clock
	srv   *httpapi.Server
	key   *ecdsa.PrivateKey // token signing key, for forging tests
	audit *audit.Log
	reg   *registry.Service
	db    string           // the SQLite database file
	met   *metrics.Metrics // the server's metrics, for tests that watch the guards
	upd   *updates.Service // the update repository
	ukeys string           // its key dir (threshold 1)
	// rollouts is the server's rollout capability; releases its release repository (the
	// test approves releases in it).
	rollouts *rollout.Service
	releases *testReleases
	detect   *detect.Service // the server's detection (tests raise alerts through it)
	bulk     *bulk.Service   // the server's bulk export (tests run its jobs with RunOne)
	subs     *subscription.Service
	cert     tls.Certificate // the server's certificate
}

// fastHash keeps enrollment secrets cheap to verify in tests.
var fastHash = auth.HashParams{Memory: 64, Time: 1, Threads: 1}

func MustEnv(t *testing.T) *env {
	t.Helper()
	return MustEnvWith(t, nil)
}

// MustEnvWith is MustEnv with configuration changes.
func MustEnvWith(t *testing.T, tweak func(*httpapi.Config)) *env {
	t.Helper()
	return mustEnv(t, tweak, nil)
}

// MustEnvRegistry is MustEnv with registry configuration changes (the test env's registry
// has no staleness: every decision reads the store, unless a test sets a bound).
func MustEnvRegistry(t *testing.T, tweak func(*registry.Config)) *env {
	t.Helper()
	return mustEnv(t, nil, tweak)
}

func mustEnv(t *testing.T, tweak func(*httpapi.Config), tweakReg func(*registry.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	clk := &clock{t: time.Now().UTC()}
	ctx, cancel := context.WithCancel(context.Background())
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := vault.CreateKeyring(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("Test CA", clk.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"127.0.0.1"}, clk.Now(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(store, keys, clk.Now, nil)
	v.FollowKeyDir(filepath.Join(dir, "keys"), 0) // an erasure replaces the KEK there
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.DefaultConfig()
	cfg.MaxBodyBytes = 64 << 10
	cfg.PublicURL = "https://" + ln.Addr().String()
	if tweak != nil {
		tweak(&cfg)
	}
	tokenKey, _ := pki.GenerateDeviceKey(nil)
	tokens, err := auth.NewTokens(tokenKey, cfg.PublicURL, cfg.PublicURL+"/fhir", auth.MaxTokenTTL, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	akey, _ := audit.GenerateKey(nil)
	signer, err := audit.NewSigner("test/audit", akey)
	if err != nil {
		t.Fatal(err)
	}
	alog := audit.NewLog(store, signer, "test/audit", "node-1", clk.Now)
	rcfg := registry.DefaultConfig()
	rcfg.Store, rcfg.CA, rcfg.Vault, rcfg.Audit, rcfg.Now = store, ca, v, alog, clk.Now
	rcfg.MaxStaleness, rcfg.HashParams = 0, fastHash
	if tweakReg != nil {
		tweakReg(&rcfg)
	}
	reg, err := registry.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	authn := mustTokenService(t, store, tokens, alog, cfg, clk.Now)
	met := metrics.New(nil)
	upd, ukeys := mustUpdates(t, store, alog, clk.Now, filepath.Join(dir, "update-keys"))
	releases := &testReleases{approved: map[string]string{}}
	rollouts := &rollout.Service{Store: store, Releases: releases, Audit: alog, Now: clk.Now}
	det, err := detect.New(detect.Config{Store: store, Audit: alog, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	acc := &access.Service{Store: store, Vault: v, Now: clk.Now, Audit: alog, Versions: rollouts}
	bulkSvc := &bulk.Service{Store: store, Vault: v, Access: acc, Audit: alog, Now: clk.Now, Node: "test"}
	subs := &subscription.Service{Store: store, Vault: v, Access: acc, Audit: alog, Now: clk.Now, Allow: []string{"notify.example:443"}}
	srv, err := httpapi.New(httpapi.Options{
		Updates: upd, Bulk: bulkSvc, Subscriptions: subs,
		Metrics: met, Config: cfg, CA: ca, Registry: reg, Ready: store.Ping, Now: clk.Now,
		Ingest: &ingest.Service{Registry: reg, Resources: store, Vault: v, Limits: fhir.DefaultLimits(), Now: clk.Now, Audit: alog, Finder: store,
			MaxBackdate: 100 * 365 * 24 * time.Hour}, // the official examples are years old
		Access: acc, Auth: authn,
		Audit: alog, Auditor: &auditquery.Service{Store: store, Log: alog, Patients: v}, Rollouts: rollouts,
		Erasure: erasure.New(store, v, alog, clk.Now), Alerts: det,
		Posture: &posture.Service{Store: store, Fleet: node.PostureFleet{Registry: store, RolloutStore: store, UpdateStore: store}, Audit: alog, Now: clk.Now},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, cert) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = store.Close()
	})
	return &env{t: t, url: "https://" + ln.Addr().String(), ca: ca, pool: ca.Pool(), store: store, vault: v, clock: clk, srv: srv, key: tokenKey, audit: alog, reg: reg, db: filepath.Join(dir, "db"), met: met,
		upd: upd, ukeys: ukeys, rollouts: rollouts, releases: releases, detect: det, bulk: bulkSvc, subs: subs, cert: cert}
}

// mustTokenService is the token service of a test server: the real one, with fast hashes.
func mustTokenService(t *testing.T, store *sqlite.DB, tokens *auth.Tokens, alog *audit.Log, cfg httpapi.Config, now func() time.Time) *auth.Service {
	t.Helper()
	secrets, err := auth.NewSecretChecker(2, 16, fastHash)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(auth.ServiceConfig{
		Store: store, Tokens: tokens, Secrets: secrets, Audit: alog, Now: now,
		Failures:  guard.NewFailures(cfg.AuthFailuresPerMinute, time.Minute, now),
		TokenURLs: auth.PublicTokenURLs(cfg.PublicURL, nil, ""), EmergencyTTL: cfg.EmergencyTTL,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// addDevice registers a device for patient and returns its enrollment secret.
func (e *env) addDevice(id, patient string) string {
	e.t.Helper()
	secret, _ := auth.NewSecret(nil)
	hash, _ := auth.HashSecret(secret, fastHash, nil)
	now := e.clock.Now()
	pidx := e.vault.PatientIndex(patient)
	if err := e.store.CreateDevice(context.Background(), vitalgate.Device{
		ID: id, Status: vitalgate.DeviceActive, PatientIndex: pidx, CreatedAt: now, UpdatedAt: now,
		EnrollSecretHash: hash, EnrollExpiresAt: now.Add(24 * time.Hour),
	}); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

func (e *env) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: e.pool, MinVersion: tls.VersionTLS13, Time: e.clock.Now}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// enrollReq sends a simpleenroll request with a CSR for cn and returns the response.
func (e *env) enrollReq(id, secret, cn string) (*http.Response, []byte, *tls.Certificate) {
	e.t.Helper()
	return e.enrollWith(e.client(nil), id, secret, cn)
}

// enrollWith is enrollReq over client c; without a secret it sends no Basic authentication.
func (e *env) enrollWith(c *http.Client, id, secret, cn string) (*http.Response, []byte, *tls.Certificate) {
	e.t.Helper()
	key, _ := pki.GenerateDeviceKey(nil)
	csr, err := pki.NewCSR(cn, key, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.url+"/.well-known/est/simpleenroll", bytes.NewReader(pki.EncodeBase64(csr)))
	if secret != "" {
		req.SetBasicAuth(id, secret)
	}
	req.Header.Set("Content-Type", "application/pkcs10")
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp, body, nil
	}
	der, err := pki.DecodeBase64(body)
	if err != nil {
		e.t.Fatal(err)
	}
	certs, err := pki.ParseCertsOnly(der)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, body, &tls.Certificate{Certificate: [][]byte{certs[0].Raw}, PrivateKey: key, Leaf: certs[0]}
}

func (e *env) enroll(id, secret string) *tls.Certificate {
	e.t.Helper()
	resp, body, cert := e.enrollReq(id, secret, id)
	if cert == nil {
		e.t.Fatalf("enroll %s: %d %s", id, resp.StatusCode, body)
	}
	return cert
}

type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (e *env) do(c *http.Client, method, path, contentType string, body []byte) result {
	req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

// example loads an official example and points it at patient and device.
func example(t *testing.T, name, patient, device string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	if err := json.Unmarshal(data, &o); err != nil {
		t.Fatal(err)
	}
	o["subject"] = map[string]any{"reference": "Patient/" + patient}
	// The examples were measured years ago; a device binds a reading to the patient it is
	// assigned to when the reading is measured, so date them now (the device was assigned
	// when the test registered it).
	now := time.Now().UTC().Format(time.RFC3339)
	if _, ok := o["effectiveDateTime"]; ok {
		o["effectiveDateTime"] = now
	}
	if _, ok := o["effectivePeriod"]; ok {
		o["effectivePeriod"] = map[string]any{"start": now}
	}
	if _, ok := o["device"]; ok {
		o["device"] = map[string]any{"reference": "Device/" + device}
	}
	return o
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type outcome struct {
	ResourceType string
	Issue        []struct {
		Severity, Code, Diagnostics string
		Expression                  []string
	}
}

func TestOfficialExamplesAreAccepted(t *testing.T) {
	e := MustEnv(t)
	cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
	c := e.client(cert)
	files, _ := filepath.Glob("testdata/Observation-*.json")
	if len(files) < 9 {
		t.Fatalf("only %d examples", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		if name == "Observation-vitals-panel.json" {
			continue // a panel goes in a transaction: see TestTransactionWithPanel
		}
		t.Run(name, func(t *testing.T) {
			r := e.do(c, "POST", "/fhir/Observation", "application/fhir+json", mustJSON(t, example(t, name, "pat-1", "dev-1")))
			if r.err != nil || r.status != 201 {
				t.Fatalf("status %d err %v: %s", r.status, r.err, r.body)
			}
			var got struct {
				ID   string
				Meta struct{ VersionID, LastUpdated string }
			}
			_ = json.Unmarshal(r.body, &got)
			if got.ID == "" || got.Meta.VersionID != "1" || got.Meta.LastUpdated == "" {
				t.Fatalf("stored resource lacks id/meta: %s", r.body)
			}
			if loc := r.header.Get("Location"); loc != "Observation/"+got.ID+"/_history/1" {
				t.Errorf("Location %q", loc)
			}
			for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
				if r.header.Get(h) != want {
					t.Errorf("%s = %q, want %q", h, r.header.Get(h), want)
				}
			}
			if !strings.HasPrefix(r.header.Get("Strict-Transport-Security"), "max-age=") {
				t.Error("no HSTS header")
			}
			// The stored copy decrypts to the same resource.
			sr, err := e.store.Resource(context.Background(), "Observation", got.ID)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := e.vault.Open(context.Background(), sr)
			if err != nil || !bytes.Equal(plain, r.body) {
				t.Fatalf("stored copy differs from the response (%v)", err)
			}
		})
	}
}

// TestResentObservationIsStoredOnce: an Observation with an identifier sent again (a retry
// after a lost answer) is answered 200 with the stored one, not stored twice.
func TestResentObservationIsStoredOnce(t *testing.T) {
	e := MustEnv(t)
	c := e.client(e.enroll("dev-1", e.addDevice("dev-1", "pat-1")))
	o := example(t, "Observation-heart-rate.json", "pat-1", "dev-1")
	o["identifier"] = []any{map[string]any{"system": "urn:example:monitor-1", "value": "reading-42"}}
	first := e.do(c, "POST", "/fhir/Observation", "application/fhir+json", mustJSON(t, o))
	again := e.do(c, "POST", "/fhir/Observation", "application/fhir+json", mustJSON(t, o))
	if first.status != 201 || again.status != 200 || first.header.Get("Location") != again.header.Get("Location") {
		t.Fatalf("first %d %s, again %d %s", first.status, first.header.Get("Location"), again.status, again.header.Get("Location"))
	}
	if n := count(t, e); n != 1 {
		t.Fatalf("%d observations stored, want 1", n)
	}
	// The same identifier for another patient's device is another observation.
	c2 := e.client(e.enroll("dev-2", e.addDevice("dev-2", "pat-2")))
	o2 := example(t, "Observation-heart-rate.json", "pat-2", "dev-2")
	o2["identifier"] = o["identifier"]
	if r := e.do(c2, "POST", "/fhir/Observation", "application/fhir+json", mustJSON(t, o2)); r.status != 201 {
		t.Fatalf("another patient: %d", r.status)
	}
}

func TestTransactionWithPanel(t *testing.T) {
	e := MustEnv(t)
	cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
	panel := example(t, "Observation-vitals-panel.json", "pat-1", "dev-1")
	var entries []any
	entries = append(entries, map[string]any{"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000000", "resource": panel,
		"request": map[string]any{"method": "POST", "url": "Observation"}})
	for _, m := range panel["hasMember"].([]any) {
		ref := m.(map[string]any)["reference"].(string) // e.g. Observation/respiratory-rate
		file := "Observation-" + strings.TrimPrefix(ref, "Observation/") + ".json"
		if strings.HasSuffix(ref, "/blood-pressure") {
			file = "Observation-blood-pressure.json"
		}
		entries = append(entries, map[string]any{"resource": example(t, file, "pat-1", "dev-1"),
			"request": map[string]any{"method": "POST", "url": "Observation"}})
	}
	bundle := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries}
	r := e.do(e.client(cert), "POST", "/fhir", "application/fhir+json", mustJSON(t, bundle))
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var resp fhir.Bundle
	if err := json.Unmarshal(r.body, &resp); err != nil || resp.Type != "transaction-response" || len(resp.Entry) != len(entries) {
		t.Fatalf("bad transaction-response (%v): %s", err, r.body)
	}
	ids := map[string]bool{}
	for _, en := range resp.Entry {
		if en.Response == nil || en.Response.Status != "201 Created" {
			t.Fatalf("entry not created: %s", r.body)
		}
		ids["Observation/"+strings.Split(en.Response.Location, "/")[1]] = true
	}
	// The stored panel's hasMember now names the server-assigned ids.
	panelID := strings.Split(resp.Entry[0].Response.Location, "/")[1]
	sr, err := e.store.Resource(context.Background(), "Observation", panelID)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := e.vault.Open(context.Background(), sr)
	var stored fhir.Observation
	_ = json.Unmarshal(plain, &stored)
	if len(stored.HasMember) != len(entries)-1 {
		t.Fatalf("stored panel has %d members", len(stored.HasMember))
	}
	for _, m := range stored.HasMember {
		if !ids[m.Reference] {
			t.Errorf("hasMember %q does not name a stored entry", m.Reference)
		}
	}
}

func TestTransactionIsAllOrNothing(t *testing.T) {
	e := MustEnv(t)
	cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
	good := example(t, "Observation-heart-rate.json", "pat-1", "dev-1")
	bad := example(t, "Observation-satO2.json", "pat-1", "dev-1")
	bad["valueQuantity"].(map[string]any)["value"] = 140 // SpO2 above 100 %
	for _, typ := range []string{"transaction", "batch"} {
		t.Run(typ, func(t *testing.T) {
			bundle := map[string]any{"resourceType": "Bundle", "type": typ, "entry": []any{
				map[string]any{"resource": good, "request": map[string]any{"method": "POST", "url": "Observation"}},
				map[string]any{"resource": bad, "request": map[string]any{"method": "POST", "url": "Observation"}},
			}}
			before := count(t, e)
			r := e.do(e.client(cert), "POST", "/fhir", "application/fhir+json", mustJSON(t, bundle))
			after := count(t, e)
			if typ == "transaction" {
				if r.status != 422 || after != before {
					t.Fatalf("transaction with a bad entry: status %d, stored %d: %s", r.status, after-before, r.body)
				}
				var oo outcome
				_ = json.Unmarshal(r.body, &oo)
				if len(oo.Issue) == 0 || len(oo.Issue[0].Expression) == 0 || !strings.HasPrefix(oo.Issue[0].Expression[0], "Bundle.entry[1]") {
					t.Fatalf("outcome does not name entry 1: %s", r.body)
				}
				return
			}
			var resp fhir.Bundle
			_ = json.Unmarshal(r.body, &resp)
			if r.status != 200 || len(resp.Entry) != 2 || resp.Entry[0].Response.Status != "201 Created" ||
				!strings.HasPrefix(resp.Entry[1].Response.Status, "422") || resp.Entry[1].Response.Outcome == nil || after != before+1 {
				t.Fatalf("batch: status %d, stored %d: %s", r.status, after-before, r.body)
			}
		})
	}
}

func count(t *testing.T, e *env) int {
	n := 0
	if err := e.store.Resources(context.Background(), vitalgate.ResourceFilter{}, func(vitalgate.SealedResource) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBadInputGetsOperationOutcome(t *testing.T) {
	e := MustEnv(t)
	cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
	e.addDevice("dev-2", "pat-2")
	c := e.client(cert)
	hr := func(mut func(o map[string]any)) []byte {
		o := example(t, "Observation-heart-rate.json", "pat-1", "dev-1")
		mut(o)
		return mustJSON(t, o)
	}
	tests := []struct {
		name        string
		client      *http.Client
		path, ctype string
		body        []byte
		status      int
		expression  string
	}{
		{"no client certificate", e.client(nil), "/fhir/Observation", "application/fhir+json", hr(func(map[string]any) {}), 401, ""},
		{"wrong media type", c, "/fhir/Observation", "text/plain", hr(func(map[string]any) {}), 415, ""},
		{"not JSON", c, "/fhir/Observation", "application/fhir+json", []byte("{not json"), 400, ""},
		{"binary garbage", c, "/fhir/Observation", "application/fhir+json", []byte{0xff, 0x00, 0x1b, 0x9c}, 400, ""},
		{"unknown element", c, "/fhir/Observation", "application/fhir+json", hr(func(o map[string]any) { o["colour"] = "red" }), 400, "Observation"},
		{"wrong type", c, "/fhir/Observation", "application/fhir+json", hr(func(o map[string]any) { o["status"] = 7 }), 400, "Observation.status"},
		{"missing subject", c, "/fhir/Observation", "application/fhir+json", hr(func(o map[string]any) { delete(o, "subject") }), 422, "Observation.subject"},
		{"out of range", c, "/fhir/Observation", "application/fhir+json", hr(func(o map[string]any) { o["valueQuantity"].(map[string]any)["value"] = 900 }), 422, "Observation.valueQuantity"},
		{"wrong unit", c, "/fhir/Observation", "application/fhir+json", hr(func(o map[string]any) { o["valueQuantity"].(map[string]any)["code"] = "mm[Hg]" }), 422, "Observation.valueQuantity"},
		{"future", c, "/fhir/Observation", "application/fhir+json", hr(func(o map[string]any) {
			o["effectiveDateTime"] = e.clock.Now().Add(time.Hour).Format(time.RFC3339)
		}), 422, "Observation.effective"},
		{"another patient", c, "/fhir/Observation", "application/fhir+json", hr(func(o map[string]any) { o["subject"] = map[string]any{"reference": "Patient/pat-2"} }), 403, "Observation.subject"},
		{"another device", c, "/fhir/Observation", "application/fhir+json", hr(func(o map[string]any) { o["device"] = map[string]any{"reference": "Device/dev-2"} }), 403, "Observation.device"},
		{"script in narrative", c, "/fhir/Observation", "application/fhir+json", hr(func(o map[string]any) {
			o["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></div>`}
		}), 422, "Observation.text"},
		{"too large", c, "/fhir/Observation", "application/fhir+json", bytes.Repeat([]byte(" "), 70<<10), 413, ""},
		{"deeply nested", c, "/fhir/Observation", "application/fhir+json", []byte(strings.Repeat(`{"a":`, 2000) + "1" + strings.Repeat("}", 2000)), 0, ""},
		{"truncated", c, "/fhir/Observation", "application/fhir+json", hr(func(map[string]any) {})[:100], 400, ""},
		{"unknown route", c, "/fhir/Nothing", "application/fhir+json", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.client, "POST", tt.path, tt.ctype, tt.body)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if tt.status == 0 { // any 4xx
				if r.status < 400 || r.status >= 500 {
					t.Fatalf("status %d, want 4xx: %s", r.status, r.body)
				}
			} else if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
				t.Fatalf("Content-Type %q", ct)
			}
			var oo outcome
			if err := json.Unmarshal(r.body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 || oo.Issue[0].Diagnostics == "" {
				t.Fatalf("not an OperationOutcome: %s", r.body)
			}
			if tt.expression != "" && (len(oo.Issue[0].Expression) == 0 || !strings.HasPrefix(oo.Issue[0].Expression[0], tt.expression)) {
				t.Fatalf("expression %v, want prefix %q", oo.Issue[0].Expression, tt.expression)
			}
			if bytes.Contains(r.body, []byte("<script")) || bytes.Contains(r.body, []byte("alert(")) {
				t.Fatal("the error reflects input markup")
			}
		})
	}
}

func TestEnrollment(t *testing.T) {
	e := MustEnv(t)
	secret := e.addDevice("dev-1", "pat-1")
	t.Run("wrong secret", func(t *testing.T) {
		if resp, _, _ := e.enrollReq("dev-1", secret+"x", "dev-1"); resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("unknown device", func(t *testing.T) {
		if resp, _, _ := e.enrollReq("nobody", secret, "nobody"); resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("CN is not the device id", func(t *testing.T) {
		if resp, body, _ := e.enrollReq("dev-1", secret, "dev-2"); resp.StatusCode != 422 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	cert := e.enroll("dev-1", secret)
	if cert.Leaf.Subject.CommonName != "dev-1" || cert.Leaf.NotAfter.Sub(e.clock.Now()) < 89*24*time.Hour {
		t.Fatalf("certificate CN %q valid until %s", cert.Leaf.Subject.CommonName, cert.Leaf.NotAfter)
	}
	t.Run("secret used twice", func(t *testing.T) {
		if resp, _, _ := e.enrollReq("dev-1", secret, "dev-1"); resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("expired secret", func(t *testing.T) {
		s2 := e.addDevice("dev-late", "pat-1")
		e.clock.Advance(25 * time.Hour)
		defer e.clock.Advance(-25 * time.Hour)
		if resp, _, _ := e.enrollReq("dev-late", s2, "dev-late"); resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("cacerts", func(t *testing.T) {
		r := e.do(e.client(nil), "GET", "/.well-known/est/cacerts", "", nil)
		der, err := pki.DecodeBase64(r.body)
		if r.status != 200 || err != nil {
			t.Fatalf("status %d %v", r.status, err)
		}
		certs, err := pki.ParseCertsOnly(der)
		if err != nil || len(certs) != 1 || !certs[0].Equal(e.ca.Certificate()) {
			t.Fatalf("cacerts does not hold the CA: %v", err)
		}
	})
	t.Run("reenroll", func(t *testing.T) {
		key, _ := pki.GenerateDeviceKey(nil)
		csr, _ := pki.NewCSR("dev-1", key, nil)
		r := e.do(e.client(cert), "POST", "/.well-known/est/simplereenroll", "application/pkcs10", pki.EncodeBase64(csr))
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		der, _ := pki.DecodeBase64(r.body)
		certs, err := pki.ParseCertsOnly(der)
		if err != nil {
			t.Fatal(err)
		}
		renewed := &tls.Certificate{Certificate: [][]byte{certs[0].Raw}, PrivateKey: key}
		body := mustJSON(t, example(t, "Observation-heart-rate.json", "pat-1", "dev-1"))
		if r := e.do(e.client(renewed), "POST", "/fhir/Observation", "application/fhir+json", body); r.status != 201 {
			t.Fatalf("renewed certificate: status %d %v", r.status, r.err)
		}
		if r := e.do(e.client(nil), "POST", "/.well-known/est/simplereenroll", "application/pkcs10", pki.EncodeBase64(csr)); r.status != 401 {
			t.Fatalf("reenroll without a certificate: status %d", r.status)
		}
	})
}

// TestDataTLSConfig: the TLS of a data-only listener (MLLP) decides at the handshake: a
// device of this server passes; no certificate fails; a quarantined device fails there,
// while the HTTPS listener's handshake lets it in for the update routes.
func TestDataTLSConfig(t *testing.T) {
	e := MustEnv(t)
	cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
	handshake := func(cfg *tls.Config, c *tls.Certificate) error {
		t.Helper()
		ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan error, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				got <- err
				return
			}
			defer conn.Close()
			got <- conn.(*tls.Conn).HandshakeContext(t.Context()) // the server's decision
		}()
		cc := &tls.Config{RootCAs: e.pool, MinVersion: tls.VersionTLS13, Time: e.clock.Now}
		if c != nil {
			cc.Certificates = []tls.Certificate{*c}
		}
		if conn, err := tls.Dial("tcp", ln.Addr().String(), cc); err == nil {
			defer conn.Close()
		}
		return <-got
	}
	if err := handshake(e.srv.DataTLSConfig(e.cert), cert); err != nil {
		t.Fatalf("a device's handshake: %v", err)
	}
	if err := handshake(e.srv.DataTLSConfig(e.cert), nil); err == nil {
		t.Error("a handshake without a certificate passed")
	}
	if err := e.reg.Quarantine(t.Context(), registry.Operator("tester"), "dev-1", "stolen"); err != nil {
		t.Fatal(err)
	}
	if err := handshake(e.srv.DataTLSConfig(e.cert), cert); err == nil {
		t.Error("a quarantined device's handshake passed on the data listener")
	}
	if err := handshake(e.srv.TLSConfig(e.cert), cert); err != nil {
		t.Errorf("a quarantined device's HTTPS handshake (for its updates): %v", err)
	}
}

func TestRevokedAndExpiredCertificatesFailHandshake(t *testing.T) {
	e := MustEnv(t)
	cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
	body := mustJSON(t, example(t, "Observation-heart-rate.json", "pat-1", "dev-1"))
	kept := e.client(cert) // a kept-alive connection from before the revocation
	if r := e.do(kept, "POST", "/fhir/Observation", "application/fhir+json", body); r.status != 201 {
		t.Fatalf("before: status %d %v", r.status, r.err)
	}

	t.Run("expired", func(t *testing.T) {
		e.clock.Advance(91 * 24 * time.Hour)
		defer e.clock.Advance(-91 * 24 * time.Hour)
		c := e.client(cert)
		c.Transport.(*http.Transport).TLSClientConfig.Time = nil // the client's real clock
		r := e.do(c, "POST", "/fhir/Observation", "application/fhir+json", body)
		if r.err == nil {
			t.Fatalf("an expired certificate was accepted: status %d", r.status)
		}
	})

	if err := e.store.RevokeDevice(context.Background(), "dev-1", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	t.Run("revoked, new connection", func(t *testing.T) {
		r := e.do(e.client(cert), "POST", "/fhir/Observation", "application/fhir+json", body)
		if r.err == nil {
			t.Fatalf("a revoked certificate completed the handshake: status %d", r.status)
		}
	})
	t.Run("revoked, existing connection", func(t *testing.T) {
		r := e.do(kept, "POST", "/fhir/Observation", "application/fhir+json", body)
		if r.err == nil && r.status != 401 {
			t.Fatalf("a revoked device's open connection was served: status %d", r.status)
		}
	})
}
