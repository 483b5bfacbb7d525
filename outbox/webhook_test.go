package outbox_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/outbox"
	"github.com/vitalgate/vitalgate/sqlite"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-webhook")

// addAlert stores an alert with its audit entry, after an unrelated entry, as detect does.
func addAlert(t *testing.T, st *sqlite.DB, id string) {
	t.Helper()
	add(t, st, 1)
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := vitalgate.Alert{ID: id, Rule: "credential-stuffing-token", RulesVersion: 1, Severity: "high", Category: "authentication",
		Client: "ehr", Source: "203.0.113.9", From: now.Add(-time.Minute), To: now, Evidence: map[string]string{"count": "20"},
		Status: vitalgate.AlertOpen, CreatedAt: now, UpdatedAt: now}
	e := audit.Entry{Time: now, Action: audit.ActionCreate, Type: "detect", Subtype: "alert", AgentType: audit.AgentSystem,
		AgentID: "detect", Outcome: audit.OutcomeSuccess, Resources: []string{"DetectedIssue/" + id}}
	if err := st.CreateAlert(context.Background(), a, e.Marshal()); err != nil {
		t.Fatal(err)
	}
}

// receiver is an HTTPS webhook receiver that refuses the first fail requests with 503 and
// then accepts, checking each signature.
type receiver struct {
	mu       sync.Mutex
	fail     int
	failed   int
	got      map[string]int // delivery id → times accepted
	bad      []string       // what was wrong with a request
	payloads []outbox.AlertPayload
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.failed < rc.fail {
		rc.failed++
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	if err := outbox.VerifySignature(testSecret, r.Header.Get(outbox.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		rc.bad = append(rc.bad, err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p outbox.AlertPayload
	if err := json.Unmarshal(body, &p); err != nil || p.ID != r.Header.Get(outbox.DeliveryHeader) || p.Rule == "" || p.From.IsZero() {
		rc.bad = append(rc.bad, fmt.Sprintf("payload %s (%v)", body, err))
	}
	rc.got[r.Header.Get(outbox.DeliveryHeader)]++
	rc.payloads = append(rc.payloads, p)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// TestWebhookDeliversEveryAlertOnce: a receiver that fails three times, then accepts, gets
// every alert once, signed, from two nodes sharing one store (one holds the lease), and a
// restart delivers only the alerts raised since.
func TestWebhookDeliversEveryAlertOnce(t *testing.T) {
	st := openStore(t)
	rc := &receiver{fail: 3, got: map[string]int{}}
	srv := httptest.NewTLSServer(rc)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	ob, err := outbox.New(outbox.Config{Log: st, Cursors: st, Allow: []string{u.Host}, Batch: 3,
		Interval: 5 * time.Millisecond, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hook := func(holder string) *outbox.Webhook {
		w, err := ob.Webhook(outbox.WebhookConfig{URL: srv.URL + "/alerts", Secret: testSecret, Alerts: st,
			Leases: st, Holder: holder, Roots: roots})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	deliver := func(want int, hooks ...*outbox.Webhook) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, h := range hooks {
			wg.Add(1)
			go func() { defer wg.Done(); h.Run(ctx) }()
		}
		deadline := time.Now().Add(20 * time.Second) // a bound on a hang, not a timing assertion
		done := func() bool {
			size, _ := st.AuditSize(context.Background())
			next, _ := st.OutboxCursor(context.Background(), hooks[0].Name())
			return rc.count() >= want && next == size
		}
		for !done() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		wg.Wait()
	}

	for i := range 7 {
		addAlert(t, st, fmt.Sprintf("a%02d", i))
	}
	deliver(7, hook("node-1"), hook("node-2"))
	for i := range 3 {
		addAlert(t, st, fmt.Sprintf("b%02d", i))
	}
	add(t, st, 2)
	// Both nodes restart: whichever held the lease (30 s) goes on; a restart of only node-1
	// waited out node-2's lease when node-2 had won it, past the hang bound.
	deliver(10, hook("node-1"), hook("node-2"))

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.failed != 3 {
		t.Errorf("receiver refused %d requests, want 3", rc.failed)
	}
	if len(rc.bad) > 0 {
		t.Errorf("bad requests: %q", rc.bad)
	}
	if len(rc.got) != 10 {
		t.Errorf("receiver got %d distinct alerts, want 10: %v", len(rc.got), rc.got)
	}
	for id, n := range rc.got {
		if n != 1 {
			t.Errorf("alert %s delivered %d times, want once", id, n)
		}
	}
	if p := rc.payloads[0]; p.Client != "ehr" || p.Evidence["count"] != "20" || p.Severity != "high" {
		t.Errorf("payload = %+v, want the alert's client, severity and evidence", p)
	}
	size, _ := st.AuditSize(context.Background())
	if next, _ := st.OutboxCursor(context.Background(), hook("node-1").Name()); next != size {
		t.Errorf("cursor = %d, want the log's size %d", next, size)
	}
}

func TestWebhookRefusesBadConfig(t *testing.T) {
	st := openStore(t)
	ob, err := outbox.New(outbox.Config{Log: st, Cursors: st, Allow: []string{"hooks.example:443"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  outbox.WebhookConfig
		want string
	}{
		{"plain http", outbox.WebhookConfig{URL: "http://hooks.example/a", Secret: testSecret, Alerts: st}, "https"},
		{"user info", outbox.WebhookConfig{URL: "https://u:p@hooks.example/a", Secret: testSecret, Alerts: st}, "https"},
		{"not allowed", outbox.WebhookConfig{URL: "https://other.example/a", Secret: testSecret, Alerts: st}, "allow-list"},
		{"short secret", outbox.WebhookConfig{URL: "https://hooks.example/a", Secret: []byte("short"), Alerts: st}, "at least 32"},
		{"no alerts", outbox.WebhookConfig{URL: "https://hooks.example/a", Secret: testSecret}, "alert store"},
		{"lease without holder", outbox.WebhookConfig{URL: "https://hooks.example/a", Secret: testSecret, Alerts: st, Leases: st}, "node's name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ob.Webhook(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Webhook = %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(testSecret)) {
				t.Fatalf("error %q holds the secret", err)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"id":"a1"}`)
	now := time.Unix(1_800_000_000, 0)
	good := outbox.Sign(testSecret, now, body)
	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		at     time.Time
		ok     bool
	}{
		{"valid", testSecret, good, body, now.Add(time.Minute), true},
		{"wrong secret", []byte("another secret of thirty-two bytes!!"), good, body, now, false},
		{"tampered body", testSecret, good, []byte(`{"id":"a2"}`), now, false},
		{"replayed later", testSecret, good, body, now.Add(10 * time.Minute), false},
		{"from the future", testSecret, good, body, now.Add(-10 * time.Minute), false},
		{"time changed", testSecret, strings.Replace(good, "t=1800000000", "t=1800000001", 1), body, now, false},
		{"no signature", testSecret, "t=1800000000", body, now, false},
		{"malformed", testSecret, "garbage", body, now, false},
		{"empty", testSecret, "", body, now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := outbox.VerifySignature(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute)
			if (err == nil) != tc.ok {
				t.Fatalf("VerifySignature = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func FuzzVerifySignature(f *testing.F) {
	body := []byte(`{"id":"a1"}`)
	f.Add(outbox.Sign(testSecret, time.Unix(1_800_000_000, 0), body), body)
	f.Add("t=1,v1=00", []byte{})
	f.Add("t=,v1=,v1=zz,,=", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := outbox.VerifySignature(testSecret, header, body, time.Unix(1_800_000_000, 0), 5*time.Minute)
		// Accepted means the header holds the right MAC (hex in any case), which a fuzzer
		// cannot compute: only the seed's time and body have one.
		mac := outbox.Sign(testSecret, time.Unix(1_800_000_000, 0), body)[len("t=1800000000,v1="):]
		if err == nil && !strings.Contains(strings.ToLower(header), mac) {
			t.Fatalf("VerifySignature accepted %q for %q", header, body)
		}
	})
}
