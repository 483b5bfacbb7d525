package registry_test

import (
	"crypto/x509"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/registry"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

var fastHash = auth.HashParams{Memory: 64, Time: 1, Threads: 1}

// clock is a settable clock shared by the registry and the test.
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

// env is a registry over a real SQLite store, CA, vault and audit log.
type env struct {
	t     *testing.T
	store *sqlite.DB
	ca    *pki.CA
	vault *vault.Vault
	audit *audit.Log
	clock *clock
	reg   *registry.Service
}

func mustEnv(t *testing.T, tweak func(*registry.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "db"), sqlite.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	keys, err := vault.CreateKeyring(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("Test CA", clk.Now().Add(-time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	akey, _ := audit.GenerateKey(nil)
	signer, err := audit.NewSigner("test/audit", akey)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, ca: ca, vault: vault.New(store, keys, clk.Now, nil),
		audit: audit.NewLog(store, signer, "test/audit", "node-1", clk.Now), clock: clk}
	e.reg = e.node(tweak)
	return e
}

// node returns another registry over the same store: another node of the deployment.
func (e *env) node(tweak func(*registry.Config)) *registry.Service {
	e.t.Helper()
	cfg := registry.DefaultConfig()
	cfg.Store, cfg.CA, cfg.Vault, cfg.Audit, cfg.Now, cfg.HashParams = e.store, e.ca, e.vault, e.audit, e.clock.Now, fastHash
	if tweak != nil {
		tweak(&cfg)
	}
	r, err := registry.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

var op = registry.Operator("tester")

func enrollee(id, ip string) vitalgate.Principal {
	return vitalgate.Principal{Kind: "enrollee", ID: id, RemoteIP: ip}
}

func (e *env) add(id, patient string) string {
	e.t.Helper()
	_, secret, err := e.reg.Add(e.t.Context(), op, id, patient, "m", time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

func csr(t *testing.T, cn string) []byte {
	t.Helper()
	key, _ := pki.GenerateDeviceKey(nil)
	der, err := pki.NewCSR(cn, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pki.EncodeBase64(der)
}

func (e *env) enroll(id string) *x509.Certificate {
	e.t.Helper()
	secret := e.add(id, "pat-"+id)
	cert, err := e.reg.Enroll(e.t.Context(), enrollee(id, "192.0.2.1"), secret, csr(e.t, id))
	if err != nil {
		e.t.Fatal(err)
	}
	return cert
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := vitalgate.ErrorCode(err); got != code {
		t.Errorf("%s: error code %q (%v), want %q", what, got, err, code)
	}
}

func TestEnroll(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	secret := e.add("dev-1", "pat-1")
	late := e.add("dev-late", "pat-1")
	gone := e.add("dev-gone", "pat-1")
	if err := e.reg.Revoke(ctx, op, "dev-gone"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, secret, cn string
		advance              time.Duration
		code                 string
	}{
		{"wrong secret", "dev-1", secret + "x", "dev-1", 0, vitalgate.EUNAUTHORIZED},
		{"unknown device", "nobody", secret, "nobody", 0, vitalgate.EUNAUTHORIZED},
		{"revoked device", "dev-gone", gone, "dev-gone", 0, vitalgate.EUNAUTHORIZED},
		{"expired secret", "dev-late", late, "dev-late", 2 * time.Hour, vitalgate.EUNAUTHORIZED},
		{"CN is not the device id", "dev-1", secret, "dev-2", 0, vitalgate.EUNPROCESSABLE},
		{"not a CSR", "dev-1", secret, "", 0, vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			defer e.clock.Advance(-tt.advance)
			body := []byte("bm90IGEgQ1NS")
			if tt.cn != "" {
				body = csr(t, tt.cn)
			}
			_, err := e.reg.Enroll(ctx, enrollee(tt.id, "192.0.2.1"), tt.secret, body)
			wantCode(t, "Enroll", err, tt.code)
		})
	}
	cert, err := e.reg.Enroll(ctx, enrollee("dev-1", "192.0.2.1"), secret, csr(t, "dev-1"))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := e.reg.Authorize(ctx, cert); err != nil || id != "dev-1" {
		t.Fatalf("Authorize enrolled certificate = %q, %v", id, err)
	}
	_, err = e.reg.Enroll(ctx, enrollee("dev-1", "192.0.2.1"), secret, csr(t, "dev-1"))
	wantCode(t, "Enroll with a used secret", err, vitalgate.EUNAUTHORIZED)
}

// countingVerify records the hashes secrets are checked against.
type countingVerify struct {
	mu     sync.Mutex
	hashes []string
}

func (c *countingVerify) verify(hash, secret string) (bool, error) {
	c.mu.Lock()
	c.hashes = append(c.hashes, hash)
	c.mu.Unlock()
	return auth.VerifySecret(hash, secret)
}

// TestEnrollSameWorkForUnknownIDs: an unknown device id, a used secret and a revoked device
// cost one argon2id verification with the same parameters as a known device's secret.
func TestEnrollSameWorkForUnknownIDs(t *testing.T) {
	cv := &countingVerify{}
	e := mustEnv(t, func(c *registry.Config) { c.VerifySecret = cv.verify })
	ctx := t.Context()
	secret := e.add("dev-1", "pat-1")
	d, err := e.store.Device(ctx, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	params := func(h string) string { return strings.Join(strings.Split(h, "$")[:4], "$") }
	for _, id := range []string{"dev-1", "nobody"} {
		cv.hashes = nil
		_, err := e.reg.Enroll(ctx, enrollee(id, "192.0.2.1"), secret+"x", csr(t, id))
		wantCode(t, "Enroll "+id, err, vitalgate.EUNAUTHORIZED)
		if len(cv.hashes) != 1 || params(cv.hashes[0]) != params(d.EnrollSecretHash) {
			t.Errorf("Enroll %s verified against %q, want one hash with the parameters of %q", id, cv.hashes, params(d.EnrollSecretHash))
		}
	}
}

// limiter is a tiny FailureLimiter: three failures per (principal, source) block that pair.
type limiter struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *limiter) key(p, s string) string { return p + "\x00" + s }
func (l *limiter) Allow(p, s string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[l.key(p, s)] < 3, time.Minute
}
func (l *limiter) Fail(p, s string) { l.mu.Lock(); l.n[l.key(p, s)]++; l.mu.Unlock() }
func (l *limiter) Succeed(p, s string) {
	l.mu.Lock()
	delete(l.n, l.key(p, s))
	l.mu.Unlock()
}

// TestEnrollThrottledPerSource: failures from one address throttle that address for that
// device only; the right secret from another address still enrolls.
func TestEnrollThrottledPerSource(t *testing.T) {
	lim := &limiter{n: map[string]int{}}
	e := mustEnv(t, func(c *registry.Config) { c.Failures = lim })
	ctx := t.Context()
	secret := e.add("dev-1", "pat-1")
	for range 5 {
		_, _ = e.reg.Enroll(ctx, enrollee("dev-1", "203.0.113.9"), "wrong", csr(t, "dev-1"))
	}
	_, err := e.reg.Enroll(ctx, enrollee("dev-1", "203.0.113.9"), secret, csr(t, "dev-1"))
	wantCode(t, "Enroll from the failing address", err, vitalgate.ETHROTTLED)
	if _, err := e.reg.Enroll(ctx, enrollee("dev-1", "192.0.2.1"), secret, csr(t, "dev-1")); err != nil {
		t.Fatalf("the right secret from another address was refused: %v", err)
	}
}

// TestAuthorize: the one decision whether a certificate's device may act now.
func TestAuthorize(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	cert := e.enroll("dev-1")
	other := e.enroll("dev-2")
	if err := e.reg.Revoke(ctx, op, "dev-2"); err != nil {
		t.Fatal(err)
	}
	foreignCA, _ := pki.NewCA("Other CA", e.clock.Now().Add(-time.Hour), nil)
	key, _ := pki.GenerateDeviceKey(nil)
	der, _ := pki.NewCSR("dev-1", key, nil)
	req, _ := x509.ParseCertificateRequest(der)
	unknown, err := foreignCA.IssueDevice(req, "dev-1", e.clock.Now(), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cert    *x509.Certificate
		advance time.Duration
		code    string
	}{
		{"valid", cert, 0, ""},
		{"revoked device", other, 0, vitalgate.EUNAUTHORIZED},
		{"unknown serial", unknown, 0, vitalgate.EUNAUTHORIZED},
		{"expired", cert, registry.DefaultCertValidity + time.Hour, vitalgate.EUNAUTHORIZED},
		{"not yet valid", cert, -time.Hour, vitalgate.EUNAUTHORIZED},
		{"CA certificate", e.ca.Certificate(), 0, vitalgate.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			defer e.clock.Advance(-tt.advance)
			_, err := e.reg.Authorize(ctx, tt.cert)
			wantCode(t, "Authorize", err, tt.code)
		})
	}
}

// TestRevocationReachesOtherNodesWithinBound: a revocation on one node is refused on another
// node by the staleness bound at the latest, and at once on the node that made it.
func TestRevocationReachesOtherNodesWithinBound(t *testing.T) {
	bound := 2 * time.Second
	e := mustEnv(t, func(c *registry.Config) { c.MaxStaleness = bound })
	ctx := t.Context()
	cert := e.enroll("dev-1")
	other := e.node(func(c *registry.Config) { c.MaxStaleness = bound })
	if _, err := other.Authorize(ctx, cert); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Sender(ctx, "dev-1"); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Revoke(ctx, op, "dev-1"); err != nil {
		t.Fatal(err)
	}
	_, err := e.reg.Authorize(ctx, cert)
	wantCode(t, "Authorize on the revoking node", err, vitalgate.EUNAUTHORIZED)
	e.clock.Advance(bound)
	_, err = other.Authorize(ctx, cert)
	wantCode(t, "Authorize on another node after the bound", err, vitalgate.EUNAUTHORIZED)
	_, err = other.Sender(ctx, "dev-1")
	wantCode(t, "Sender on another node after the bound", err, vitalgate.EFORBIDDEN)
}

// TestReenrollOverlap: the replaced certificate stays usable for the overlap, then is
// refused; the new one works.
func TestReenrollOverlap(t *testing.T) {
	tests := []struct {
		name    string
		overlap time.Duration
	}{
		{"default overlap", registry.DefaultReenrollOverlap},
		{"revoked at once", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEnv(t, func(c *registry.Config) { c.ReenrollOverlap = tt.overlap })
			ctx := t.Context()
			old := e.enroll("dev-1")
			renewed, err := e.reg.Reenroll(ctx, old, csr(t, "dev-1"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.overlap > 0 {
				if _, err := e.reg.Authorize(ctx, old); err != nil {
					t.Errorf("old certificate within the overlap: %v", err)
				}
			}
			e.clock.Advance(tt.overlap)
			_, err = e.reg.Authorize(ctx, old)
			wantCode(t, "old certificate after the overlap", err, vitalgate.EUNAUTHORIZED)
			_, err = e.reg.Reenroll(ctx, old, csr(t, "dev-1"))
			wantCode(t, "Reenroll with the replaced certificate", err, vitalgate.EUNAUTHORIZED)
			if _, err := e.reg.Authorize(ctx, renewed); err != nil {
				t.Errorf("renewed certificate: %v", err)
			}
		})
	}
}

// TestAssignmentHistory: readings are bound to the patient assigned when they were measured,
// and refused once that assignment ended longer ago than the grace.
func TestAssignmentHistory(t *testing.T) {
	e := mustEnv(t, func(c *registry.Config) { c.AssignmentGrace = time.Hour })
	ctx := t.Context()
	e.add("dev-1", "pat-a")
	t0 := e.clock.Now()
	e.clock.Advance(10 * time.Minute)
	d, err := e.reg.Assign(ctx, op, "dev-1", "Patient/pat-b")
	if err != nil {
		t.Fatal(err)
	}
	if string(d.PatientIndex) != string(e.vault.PatientIndex("pat-b")) {
		t.Fatal("Assign did not return the device with its new patient")
	}
	t1 := e.clock.Now()
	tests := []struct {
		name     string
		advance  time.Duration
		measured time.Time
		patient  string
	}{
		{"buffered reading of the previous patient", 0, t0.Add(5 * time.Minute), "pat-a"},
		{"reading after the reassignment", 0, t1.Add(time.Second), "pat-b"},
		{"previous patient within the grace", 59 * time.Minute, t0.Add(5 * time.Minute), "pat-a"},
		{"previous patient after the grace", 61 * time.Minute, t0.Add(5 * time.Minute), ""},
		{"just before the first assignment (clock skew)", 0, t0.Add(-time.Minute), "pat-a"},
		{"before the first assignment, beyond the skew", 0, t0.Add(-registry.DefaultClockSkew - time.Second), ""},
		{"just before the reassignment: never the new patient", 0, t1.Add(-30 * time.Second), "pat-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			defer e.clock.Advance(-tt.advance)
			a, err := e.reg.PatientAt(ctx, "dev-1", tt.measured)
			if tt.patient == "" {
				wantCode(t, "PatientAt", err, vitalgate.EFORBIDDEN)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(a.PatientIndex) != string(e.vault.PatientIndex(tt.patient)) {
				t.Errorf("PatientAt bound the reading to another patient than %s", tt.patient)
			}
		})
	}
	as, err := e.reg.Assignments(ctx, "dev-1", 10)
	if err != nil || len(as) != 2 || !as[0].Current() || !as[1].To.Equal(t1) {
		t.Errorf("Assignments = %+v, %v; want the current and the previous ending at %v", as, err, t1)
	}
}

// TestAssignAndRevokeRules: who may reassign, and the errors.
func TestAssignAndRevokeRules(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	e.add("dev-1", "pat-a")
	scoped := vitalgate.Principal{Kind: "client", Site: vitalgate.DefaultSite, ID: "admin", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Device.rus"}}
	unscoped := vitalgate.Principal{Kind: "client", ID: "reader", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Device.rs"}}
	device := vitalgate.Principal{Kind: "device", ID: "dev-1", Role: vitalgate.RoleDevice}
	tests := []struct {
		name      string
		p         vitalgate.Principal
		id, pat   string
		code      string
		advanceUs int
	}{
		{"client with the update scope", scoped, "dev-1", "pat-b", "", 1},
		{"client without it", unscoped, "dev-1", "pat-c", vitalgate.EFORBIDDEN, 1},
		{"a device", device, "dev-1", "pat-c", vitalgate.EFORBIDDEN, 1},
		{"unknown device", op, "nobody", "pat-c", vitalgate.ENOTFOUND, 1},
		{"bad patient id", op, "dev-1", "pat c", vitalgate.EINVALID, 1},
		{"operator", op, "dev-1", "pat-d", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(time.Duration(tt.advanceUs) * time.Microsecond)
			_, err := e.reg.Assign(ctx, tt.p, tt.id, tt.pat)
			wantCode(t, "Assign", err, tt.code)
		})
	}
	wantCode(t, "Revoke unknown", e.reg.Revoke(ctx, op, "nobody"), vitalgate.ENOTFOUND)
	wantCode(t, "Revoke by a device", e.reg.Revoke(ctx, device, "dev-1"), vitalgate.EFORBIDDEN)
	_, err := e.reg.Sender(ctx, "nobody")
	wantCode(t, "Sender unknown", err, vitalgate.EFORBIDDEN)
	if _, err := e.reg.Sender(ctx, "dev-1"); err != nil {
		t.Errorf("Sender active: %v", err)
	}
	if err := e.reg.Revoke(ctx, op, "dev-1"); err != nil {
		t.Fatal(err)
	}
	_, err = e.reg.Sender(ctx, "dev-1")
	wantCode(t, "Sender revoked", err, vitalgate.EFORBIDDEN)
}

// TestEachActionAudited: every registry action leaves exactly one audit entry.
func TestEachActionAudited(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	count := func() uint64 {
		t.Helper()
		n, err := e.store.AuditSize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"add", func() error { _, _, err := e.reg.Add(ctx, op, "dev-9", "pat-a", "", 0); return err }},
		{"assign", func() error {
			e.clock.Advance(time.Second)
			_, err := e.reg.Assign(ctx, op, "dev-9", "pat-b")
			return err
		}},
		{"failed enrollment", func() error {
			_, err := e.reg.Enroll(ctx, enrollee("dev-9", "192.0.2.1"), "wrong", csr(t, "dev-9"))
			if vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
				return err
			}
			return nil
		}},
		{"revoke", func() error { return e.reg.Revoke(ctx, op, "dev-9") }},
	}
	for _, st := range steps {
		before := count()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := count() - before; got != 1 {
			t.Errorf("%s added %d audit entries, want 1", st.name, got)
		}
	}
}
