package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/rollout"
)

// testReleases is the test server's release repository: the approved releases by
// MODEL/VERSION.
type testReleases struct {
	mu       sync.Mutex
	approved map[string]string
}

func (r *testReleases) Approved(_ context.Context, model, version string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.approved[model+"/"+version]; ok {
		return t, nil
	}
	return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no approved release")
}

func (r *testReleases) approve(model, version string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.approved[model+"/"+version] = model + "/" + version + "/firmware.bin"
}

// addModelDevice registers a device of model for patient and enrolls it.
func (e *env) enrollModelDevice(id, model, patient string) *tls.Certificate {
	e.t.Helper()
	secret, _ := auth.NewSecret(nil)
	hash, _ := auth.HashSecret(secret, fastHash, nil)
	now := e.clock.Now()
	if err := e.store.CreateDevice(context.Background(), vitalgate.Device{
		ID: id, Model: model, Status: vitalgate.DeviceActive, PatientIndex: e.vault.PatientIndex(patient), CreatedAt: now, UpdatedAt: now,
		EnrollSecretHash: hash, EnrollExpiresAt: now.Add(24 * time.Hour),
	}); err != nil {
		e.t.Fatal(err)
	}
	return e.enroll(id, secret)
}

func (e *env) deviceDo(cert *tls.Certificate, method, path string, body []byte) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client(cert).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestUpdateOfferAndReport: a device in a started group is offered the approved release
// (200, the contract's JSON); one outside it gets 204; a report is recorded (204), its
// installed version shows as Device.version; bad reports are OperationOutcomes with the
// right status.
func TestUpdateOfferAndReport(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	canary := e.enrollModelDevice("vm-1", "VM-100", "pat-1")
	other := e.enrollModelDevice("vm-2", "VM-100", "pat-1")
	e.releases.approve("VM-100", "2.0.0")
	if _, err := e.rollouts.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0",
		Groups: []vitalgate.RolloutGroup{{Devices: []string{"vm-1"}}, {Percent: 100}}}); err != nil {
		t.Fatal(err)
	}
	status, body := e.deviceDo(canary, "GET", "/updates/offer", nil)
	if status != 200 || string(body) != `{"model":"VM-100","version":"2.0.0","target":"VM-100/2.0.0/firmware.bin","critical":false}` {
		t.Fatalf("offer to the canary: %d %s", status, body)
	}
	if status, body := e.deviceDo(other, "GET", "/updates/offer", nil); status != 204 || len(body) != 0 {
		t.Fatalf("offer to a device of a later group: %d %s, want 204", status, body)
	}
	cases := []struct {
		name   string
		body   string
		status int
		says   string
	}{
		{"installed", `{"version":"2.0.0","state":"installed"}`, 204, ""},
		{"naming itself", `{"version":"2.0.0","state":"healthy","device":"vm-1"}`, 204, ""},
		{"for another device", `{"version":"2.0.0","state":"failed","reason":"x","device":"vm-2"}`, 403, "reports only its own updates"},
		{"unknown state", `{"version":"2.0.0","state":"done"}`, 400, "state is one of"},
		{"not JSON", `state=installed`, 400, "the body must be"},
		{"unknown field", `{"version":"2.0.0","state":"installed","patient":"pat-1"}`, 400, "the body must be"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.deviceDo(canary, "POST", "/updates/report", []byte(c.body))
			if status != c.status || !strings.Contains(string(body), c.says) {
				t.Fatalf("%d %s, want %d saying %q", status, body, c.status, c.says)
			}
			if status >= 400 {
				var oo outcome
				if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
					t.Fatalf("error is not an OperationOutcome: %s", body)
				}
			}
		})
	}
	if status, _ := e.deviceDo(canary, "GET", "/updates/offer", nil); status != 204 {
		t.Fatalf("offer after installing: %d, want 204", status)
	}
	admin := e.token("admin", e.addClient("admin", vitalgate.RoleAdmin), "")
	res := e.bearer("GET", "/fhir/Device/vm-1", admin, nil, "")
	if res.status != 200 || !strings.Contains(string(res.body), `"version":[{"value":"2.0.0"}]`) {
		t.Fatalf("Device: %d %s, want version 2.0.0", res.status, res.body)
	}
	res = e.bearer("GET", "/fhir/Device/vm-2", admin, nil, "")
	if res.status != 200 || strings.Contains(string(res.body), `"version"`) {
		t.Fatalf("Device that reported nothing: %d %s, want no version", res.status, res.body)
	}
}

// TestHealthGateReadsIngest: the health gate's signal is what ingest records. A device that
// keeps sending valid observations after its healthy report passes; one that sends an
// observation ingest refuses (another patient's) fails, and its failure pauses the rollout.
func TestHealthGateReadsIngest(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	good := e.enrollModelDevice("vm-1", "VM-100", "pat-1")
	bad := e.enrollModelDevice("vm-2", "VM-100", "pat-1")
	e.releases.approve("VM-100", "2.0.0")
	if _, err := e.rollouts.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0", HealthWindow: 30 * time.Minute, Silence: 10 * time.Minute,
		Groups: []vitalgate.RolloutGroup{{Percent: 100, ErrorPercent: 40, SuccessPercent: 50}}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*tls.Certificate{good, bad} {
		for _, state := range []string{"installed", "healthy"} {
			if status, body := e.deviceDo(c, "POST", "/updates/report", []byte(`{"version":"2.0.0","state":"`+state+`"}`)); status != 204 {
				t.Fatalf("report %s: %d %s", state, status, body)
			}
		}
	}
	post := func(c *tls.Certificate, device, patient string, value int) int {
		o := example(t, "Observation-heart-rate.json", patient, device)
		o["valueQuantity"].(map[string]any)["value"] = value
		req, _ := http.NewRequest("POST", e.url+"/fhir/Observation", bytes.NewReader(mustJSON(t, o)))
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := e.client(c).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 7 {
		e.clock.Advance(5 * time.Minute)
		if status := post(good, "vm-1", "pat-1", 60+i); status != 201 {
			t.Fatalf("valid observation: %d", status)
		}
		if i == 1 {
			if status := post(bad, "vm-2", "pat-9", 70); status < 400 {
				t.Fatalf("another patient's observation: %d, want a refusal", status)
			}
		} else if status := post(bad, "vm-2", "pat-1", 70+i); status != 201 {
			t.Fatalf("valid observation: %d", status)
		}
		if err := e.rollouts.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.rollouts.Status(ctx, "VM-100")
	if err != nil || len(st) != 1 {
		t.Fatal(st, err)
	}
	states := map[string]string{}
	for _, u := range st[0].Devices {
		states[u.DeviceID] = string(u.State) + " " + u.Reason
	}
	if states["vm-1"] != "passed " || states["vm-2"] != "failed sent data that was refused after the update" {
		t.Fatalf("devices %q", states)
	}
	if r := st[0].Rollout; r.State != vitalgate.RolloutPaused {
		t.Fatalf("rollout %s %q, want paused by the failure (1 of 2 above 40%%)", r.State, r.Reason)
	}
}
