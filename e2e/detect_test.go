package e2e_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/mllp"
	"github.com/vitalgate/vitalgate/outbox"
)

// mllpConn is one open MLLP/TLS connection of a device.
type mllpConn struct {
	conn *tls.Conn
	r    *bufio.Reader
}

// send sends one message on the open connection and returns the ACK's MSA-1, or "closed"
// when the server has cut the connection.
func (c *mllpConn) send(msg []byte) string {
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	msg = bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\r")), []byte("\n"), []byte("\r"))
	if _, err := c.conn.Write(append(append([]byte{0x0b}, msg...), 0x1c, 0x0d)); err != nil {
		return "closed"
	}
	ack, err := c.r.ReadBytes(0x1c)
	if err != nil {
		return "closed"
	}
	_, _ = c.r.ReadByte() // the trailing CR
	for _, seg := range strings.Split(string(ack), "\r") {
		if f := strings.Split(strings.TrimLeft(seg, "\x0b"), "|"); len(f) > 1 && f[0] == "MSA" {
			return f[1]
		}
	}
	return "no MSA"
}

// TestQuarantineCutsOpenConnections: `vitalgate device quarantine`, run as another process
// while the server runs, stops the device on a kept-alive HTTP/2 connection and on an open
// MLLP connection (the next request and the next message are refused, within the
// registry's staleness bound); `device release` lets it in again. Then credential stuffing
// on /oauth2/token raises a credential-stuffing alert that `vitalgate alerts list` shows and
// that the alert webhook receives, signed, once, after refusing it the first time; the
// webhook secret is nowhere in the server's log.
func TestQuarantineCutsOpenConnections(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	hook := startWebhookReceiver(t)
	var init struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(run(t, "init", "--data", dir, "--json")), &init); err != nil {
		t.Fatal(err)
	}
	mllpAddr := freeAddr(t)
	srv := startServerAt(t, dir, freeAddr(t), append([]string{"--mllp-addr", mllpAddr}, hook.flags...)...)
	token := adminToken(t, srv, init.ClientSecret)
	pid := createPatient(t, srv, token, mllp.AuthoritySystem("Imaginary Hospital"), "789567")
	const gw = "ACDE48234567ABCD"
	cert := srv.enroll(t, gw, addDevice(t, dir, gw, pid))
	sample, err := os.ReadFile(samplePath(t, "04_ipf_continua_wan_pulse_oximeter.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	waitListening(t, mllpAddr)
	conn, err := tls.Dial("tcp", mllpAddr, &tls.Config{RootCAs: srv.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ml := &mllpConn{conn: conn, r: bufio.NewReader(conn)}
	if code := ml.send(recent(sample, time.Now().UTC().Add(-time.Minute))); code != "AA" {
		t.Fatalf("HL7 before the quarantine: %s, want AA", code)
	}

	h2 := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{RootCAs: srv.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}}
	conns := map[string]bool{}
	postObs := func(value string) (int, string) {
		var local string
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { local = i.Conn.LocalAddr().String() }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "POST", srv.url+"/fhir/Observation",
			bytes.NewReader(observation(pid, gw, value, time.Now().Add(-time.Minute))))
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := h2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("the connection is %s, not HTTP/2", resp.Proto)
		}
		conns[local] = true
		return resp.StatusCode, local
	}
	if st, _ := postObs("72"); st != 201 {
		t.Fatalf("FHIR before the quarantine: %d", st)
	}

	run(t, "device", "quarantine", "--data", dir, "--id", gw, "--reason", "certificate seen from an unknown network")
	waitFor(t, 5*time.Second, "the kept-alive HTTP/2 connection to refuse the quarantined device", func() bool {
		st, _ := postObs("73")
		return st == 401 || st == 403
	})
	if len(conns) != 1 {
		t.Errorf("the HTTP/2 requests used %d connections, want the one kept alive", len(conns))
	}
	waitFor(t, 5*time.Second, "the open MLLP connection to refuse the quarantined device", func() bool {
		return ml.send(recent(sample, time.Now().UTC().Add(-time.Minute))) != "AA"
	})
	// Remediation: the quarantined device may still ask for updates (its paused rollouts
	// offer it nothing: 204), on the kept-alive connection and on a new one, until the
	// operator blocks those too.
	offer := func(c *http.Client) int {
		resp, err := c.Get(srv.url + "/updates/offer")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fresh := func() *http.Client {
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: srv.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}}
	}
	if st, st2 := offer(h2), offer(fresh()); st != http.StatusNoContent || st2 != http.StatusNoContent {
		t.Errorf("update offer of a quarantined device: %d on the open connection, %d on a new one; want 204 (nothing offered)", st, st2)
	}
	run(t, "device", "quarantine", "--data", dir, "--id", gw, "--reason", "firmware tampered with", "--block-updates")
	if st := offer(h2); st != http.StatusUnauthorized {
		t.Errorf("update offer once the updates are blocked: %d, want 401", st)
	}
	run(t, "device", "release", "--data", dir, "--id", gw, "--reason", "the ward moved to a new subnet")
	waitFor(t, 5*time.Second, "the released device to be accepted again", func() bool {
		st, _ := postObs("74")
		return st == 201
	})

	// Credential stuffing: failed client authentications from one address.
	for i := range 25 {
		req, _ := http.NewRequest("POST", srv.url+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(fmt.Sprintf("guess-%d", i%7), "wrong-secret")
		resp, err := srv.client(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitFor(t, 10*time.Second, "a credential-stuffing alert", func() bool {
		return strings.Contains(run(t, "alerts", "list", "--data", dir, "--json"), `"rule":"credential-stuffing-token"`)
	})

	waitFor(t, 10*time.Second, "the alert webhook to receive the alert", func() bool { return hook.has("credential-stuffing-token") })
	hook.check(t, "credential-stuffing-token")
	if strings.Contains(srv.stderr.String(), string(webhookSecret)) {
		t.Error("the server's log holds the webhook secret")
	}

	// The evidence report reads the live rules and the alerts: an open high-severity alert
	// needs the operator's attention.
	status, facts := evidenceJSON(t, dir).control("detection")
	text := strings.Join(facts, "; ")
	if status != "attention" || !strings.Contains(text, "the shipped rules, version 2") || !strings.Contains(text, "of high severity") {
		t.Errorf("evidence row detection: %s %v", status, facts)
	}
}

// TestReadmeDetectionRecipe runs the README's "Detection" recipe verbatim on a fresh data
// dir: register a device, quarantine it, list the alerts, release it.
func TestReadmeDetectionRecipe(t *testing.T) {
	needTools(t, "bash")
	work := t.TempDir()
	data := filepath.Join(work, "vg-data")
	run(t, "init", "--data", data)
	cmd := exec.Command("bash", "-c", recipe(t, "detection"))
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "VG_DATA="+data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the detection recipe failed: %v\n%s", err, out)
	}
	for _, want := range []string{"Quarantined device ward-monitor-7", "Released device ward-monitor-7"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the recipe's output lacks %q:\n%s", want, out)
		}
	}
	audit := run(t, "audit", "export", "--data", data)
	for _, want := range []string{"device-quarantine", "device-release"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
}

var webhookSecret = []byte("e2e-webhook-secret-0123456789abcdef0123")

// webhookReceiver is an HTTPS alert receiver that refuses the first request (503) and
// accepts the next ones, checking each signature.
type webhookReceiver struct {
	flags []string // serve's flags that point at it
	mu    sync.Mutex
	calls int
	got   map[string]int // alert id → deliveries accepted
	rules []string
	bad   []string
}

func startWebhookReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	w := &webhookReceiver{got: map[string]int{}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.calls++; w.calls == 1 {
			http.Error(rw, "busy", http.StatusServiceUnavailable)
			return
		}
		if err := outbox.VerifySignature(webhookSecret, r.Header.Get(outbox.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			w.bad = append(w.bad, err.Error())
			http.Error(rw, "bad signature", http.StatusUnauthorized)
			return
		}
		var p outbox.AlertPayload
		if err := json.Unmarshal(body, &p); err != nil || p.ID == "" || p.ID != r.Header.Get(outbox.DeliveryHeader) {
			w.bad = append(w.bad, fmt.Sprintf("payload %s: %v", body, err))
		}
		w.got[p.ID]++
		w.rules = append(w.rules, p.Rule)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	secret, ca := filepath.Join(dir, "hook.secret"), filepath.Join(dir, "hook-ca.pem")
	if err := os.WriteFile(secret, append(webhookSecret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	w.flags = []string{"--alert-webhook", srv.URL + "/vitalgate/alerts", "--alert-webhook-secret-file", secret, "--alert-webhook-ca", ca}
	return w
}

func (w *webhookReceiver) has(rule string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.rules, rule)
}

// check: no bad request, each alert accepted once, and one of them of rule.
func (w *webhookReceiver) check(t *testing.T, rule string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) > 0 {
		t.Errorf("webhook: bad requests %q", w.bad)
	}
	for id, n := range w.got {
		if n != 1 {
			t.Errorf("webhook: alert %s delivered %d times", id, n)
		}
	}
	if !slices.Contains(w.rules, rule) {
		t.Errorf("webhook: got rules %v, want %s", w.rules, rule)
	}
}
