package detect_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/sqlite"
)

// quarantiner records the quarantines asked of it, as the registry would do them.
type quarantiner struct {
	mu  sync.Mutex
	got map[string]string
}

func (q *quarantiner) Quarantine(_ context.Context, p vitalgate.Principal, id, reason string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p.Kind != detect.PrincipalKind {
		return fmt.Errorf("quarantine by %q", p.Kind)
	}
	q.got[id] = reason
	return nil
}

type counters struct {
	mu                      sync.Mutex
	signals, alerts, quarts int
}

func (c *counters) Signal(string)        { c.mu.Lock(); c.signals++; c.mu.Unlock() }
func (c *counters) Dropped()             {}
func (c *counters) Alert(string, string) { c.mu.Lock(); c.alerts++; c.mu.Unlock() }
func (c *counters) Quarantined()         { c.mu.Lock(); c.quarts++; c.mu.Unlock() }

type svcEnv struct {
	store *sqlite.DB
	svc   *detect.Service
	q     *quarantiner
	c     *counters
}

func mustService(t *testing.T, auto bool) *svcEnv {
	t.Helper()
	now := func() time.Time { return t0 }
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	key, _ := audit.GenerateKey(nil)
	signer, err := audit.NewSigner("test/audit", key)
	if err != nil {
		t.Fatal(err)
	}
	e := &svcEnv{store: store, q: &quarantiner{got: map[string]string{}}, c: &counters{}}
	e.svc, err = detect.New(detect.Config{Store: store, Audit: audit.NewLog(store, signer, "test/audit", "node-1", now),
		Quarantine: e.q, AutoQuarantine: auto, Counters: e.c, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *svcEnv) replay(t *testing.T, sigs []detect.Signal) []vitalgate.Alert {
	t.Helper()
	var out []vitalgate.Alert
	for _, s := range sigs {
		as, err := e.svc.Observe(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, as...)
	}
	return out
}

// attacks returns a revoked certificate presented again and again (an identity rule) and a
// flood of implausible heart rates (a clinical-value rule), on device dev-a.
func attacks() []detect.Signal {
	var sigs []detect.Signal
	for i := range 5 {
		sigs = append(sigs, detect.Signal{Kind: detect.KindCertRefused, At: t0.Add(time.Duration(i) * time.Second), Device: "dev-a",
			Source: "198.51.100.7", Reason: "client certificate has been revoked"})
	}
	for i := range 6 {
		sigs = append(sigs, detect.Signal{Kind: detect.KindValue, At: t0.Add(time.Minute + time.Duration(i)*time.Second), Device: "dev-b",
			Code: "8867-4", Value: 40 + 170.25*float64(i%2)})
	}
	return sigs
}

func TestServiceStoresAuditsAndQuarantinesOnlyOnSecurityRules(t *testing.T) {
	for _, auto := range []bool{false, true} {
		t.Run(fmt.Sprintf("auto-quarantine=%v", auto), func(t *testing.T) {
			e := mustService(t, auto)
			ctx := t.Context()
			alerts := e.replay(t, attacks())
			if len(alerts) != 2 {
				t.Fatalf("got %d alerts, want 2: %+v", len(alerts), alerts)
			}
			byRule := map[string]vitalgate.Alert{}
			for _, a := range alerts {
				byRule[a.Rule] = a
			}
			cert, value := byRule["revoked-certificate-retry"], byRule["heart-rate-implausible-jumps"]
			if cert.ID == "" || value.ID == "" {
				t.Fatalf("alerts %+v", byRule)
			}
			if _, ok := e.q.got["dev-b"]; ok {
				t.Fatal("a clinical-value alert quarantined its device")
			}
			if _, ok := e.q.got["dev-a"]; ok != auto || cert.Quarantined != auto {
				t.Fatalf("auto %v: quarantined %v (alert says %v)", auto, ok, cert.Quarantined)
			}
			stored, err := e.svc.Alerts(ctx, vitalgate.Principal{Kind: "operator"}, vitalgate.AlertFilter{Status: vitalgate.AlertOpen})
			if err != nil || len(stored) != 2 {
				t.Fatalf("stored open alerts: %d, %v", len(stored), err)
			}
			got, err := e.svc.Alert(ctx, vitalgate.Principal{Kind: "operator"}, cert.ID)
			if err != nil || got.Rule != cert.Rule || got.Device != "dev-a" || got.Evidence["count"] != "5" || !got.From.Equal(t0) {
				t.Fatalf("stored alert %+v, %v", got, err)
			}
			op := vitalgate.Principal{Kind: "operator", ID: "tester"}
			steps := []struct {
				name string
				do   func() error
				code string
			}{
				{"resolve a value alert", func() error { return e.svc.Resolve(ctx, op, value.ID, "sensor replaced") }, ""},
				{"ack", func() error { return e.svc.Acknowledge(ctx, op, cert.ID, "looking") }, ""},
				{"ack twice", func() error { return e.svc.Acknowledge(ctx, op, cert.ID, "") }, vitalgate.ECONFLICT},
				{"resolve", func() error { return e.svc.Resolve(ctx, op, cert.ID, "device decommissioned") }, ""},
				{"resolve twice", func() error { return e.svc.Resolve(ctx, op, cert.ID, "") }, vitalgate.ECONFLICT},
				{"unknown", func() error { return e.svc.Resolve(ctx, op, "nope", "") }, vitalgate.ENOTFOUND},
				{"note on two lines", func() error { return e.svc.Resolve(ctx, op, value.ID, "a\nb") }, vitalgate.EINVALID},
			}
			for _, s := range steps {
				if code := vitalgate.ErrorCode(s.do()); code != s.code {
					t.Errorf("%s: code %q, want %q", s.name, code, s.code)
				}
			}
			if got, _ := e.svc.Alert(ctx, op, cert.ID); got.Status != vitalgate.AlertResolved || got.UpdatedBy != "tester" || got.Note != "device decommissioned" {
				t.Fatalf("after resolve: %+v", got)
			}
			var log strings.Builder
			size, _ := e.store.AuditSize(ctx)
			_ = e.store.AuditEntries(ctx, 0, size, func(r vitalgate.AuditRecord) error { log.Write(r.Data); return nil })
			// What the syslog forwarder sends of an alert: its rule, device, window, evidence.
			for _, want := range []string{"revoked-certificate-retry", "alert-ack", "alert-resolve", "DetectedIssue/" + cert.ID,
				"device dev-a from " + t0.Format(time.RFC3339), "evidence count=5"} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("the audit log lacks %q", want)
				}
			}
			// 210.25 (not 210, which a random id or hash may hold): no RFC 3339 time has
			// three digits before a dot, and ids and hashes have no dots.
			for _, v := range []string{"210.25", "8867-4"} {
				if strings.Contains(log.String(), v) {
					t.Errorf("the audit log carries a reading (%s)", v)
				}
			}
			if e.c.alerts != 2 || e.c.signals != len(attacks()) {
				t.Errorf("counters: %d alerts, %d signals", e.c.alerts, e.c.signals)
			}
		})
	}
}

func TestSiteScopedReads(t *testing.T) {
	e := mustService(t, false)
	sigs := attacks()[:5]
	for i := range sigs {
		sigs[i].Site = "north"
	}
	alerts := e.replay(t, sigs)
	if len(alerts) != 1 {
		t.Fatalf("alerts %+v", alerts)
	}
	south := vitalgate.Principal{Kind: "client", ID: "aud-s", Role: vitalgate.RoleAuditor, Site: "south"}
	if as, _ := e.svc.Alerts(t.Context(), south, vitalgate.AlertFilter{}); len(as) != 0 {
		t.Fatalf("another site's auditor sees %d alerts", len(as))
	}
	if _, err := e.svc.Alert(t.Context(), south, alerts[0].ID); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Fatalf("another site's alert: %v", err)
	}
	all := vitalgate.Principal{Kind: "client", ID: "aud", Role: vitalgate.RoleAuditor, Site: vitalgate.AllSites}
	if as, _ := e.svc.Alerts(t.Context(), all, vitalgate.AlertFilter{}); len(as) != 1 {
		t.Fatalf("a deployment-wide auditor sees %d alerts", len(as))
	}
	// An alert of no site (attempts by unknown clients) is the deployment's, as audit
	// entries of no site are: a site auditor does not see it.
	nosite := mustService(t, false)
	if got := nosite.replay(t, attacks()[:5]); len(got) != 1 || got[0].Site != "" {
		t.Fatalf("alerts of no site: %+v", got)
	}
	north := vitalgate.Principal{Kind: "client", ID: "aud-n", Role: vitalgate.RoleAuditor, Site: "north"}
	if as, _ := nosite.svc.Alerts(t.Context(), north, vitalgate.AlertFilter{}); len(as) != 0 {
		t.Fatalf("a site auditor sees %d alerts of no site", len(as))
	}
	if as, _ := nosite.svc.Alerts(t.Context(), all, vitalgate.AlertFilter{}); len(as) != 1 {
		t.Fatalf("a deployment-wide auditor sees %d alerts of no site", len(as))
	}
}

func TestEmitNeverBlocks(t *testing.T) {
	e := mustService(t, false)
	for range detect.DefaultBuffer + 10 {
		e.svc.Emit(detect.Signal{Kind: detect.KindAccepted, Device: "d"})
	}
	if e.svc.Dropped() != 10 {
		t.Fatalf("dropped %d, want 10", e.svc.Dropped())
	}
	var nilSvc *detect.Service
	nilSvc.Emit(detect.Signal{}) // detection off: nothing happens
}
