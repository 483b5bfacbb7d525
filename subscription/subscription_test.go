package subscription_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/subscription"
	"github.com/vitalgate/vitalgate/vault"
)

const site = vitalgate.DefaultSite

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// receiver is a subscriber's HTTPS endpoint: it refuses while down, and records the
// notifications it accepted.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	down bool
	got  []notification
}

type notification struct {
	Type    string
	Since   string
	Numbers []int
	Focus   []string
	Bodies  int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		r.got = append(r.got, parse(t, body))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setDown(d bool) { r.mu.Lock(); r.down = d; r.mu.Unlock() }

// events returns the event numbers received, in order.
func (r *receiver) events() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, n := range r.got {
		out = append(out, n.Numbers...)
	}
	return out
}

// parse reads a notification Bundle of the R4 backport.
func parse(t *testing.T, body []byte) notification {
	var b struct {
		ResourceType, Type string
		Entry              []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		}
	}
	if err := json.Unmarshal(body, &b); err != nil || b.ResourceType != "Bundle" || b.Type != "history" || len(b.Entry) == 0 {
		t.Errorf("not a notification Bundle: %s", body)
		return notification{}
	}
	var status struct {
		ResourceType string
		Parameter    []struct {
			Name        string
			ValueCode   string
			ValueString string
			Part        []struct {
				Name           string
				ValueString    string
				ValueReference struct{ Reference string }
			}
		}
	}
	_ = json.Unmarshal(b.Entry[0].Resource, &status)
	var n notification
	for _, p := range status.Parameter {
		switch p.Name {
		case "type":
			n.Type = p.ValueCode
		case "events-since-subscription-start":
			n.Since = p.ValueString
		case "notification-event":
			for _, part := range p.Part {
				switch part.Name {
				case "event-number":
					k, _ := strconv.Atoi(part.ValueString)
					n.Numbers = append(n.Numbers, k)
				case "focus":
					n.Focus = append(n.Focus, part.ValueReference.Reference)
				}
			}
		}
	}
	for _, e := range b.Entry[1:] {
		if len(e.Resource) > 0 {
			n.Bodies++
		}
	}
	return n
}

type env struct {
	store *sqlite.DB
	vault *vault.Vault
	log   *audit.Log
	clock *clock
	rcv   *receiver
	svc   *subscription.Service
	seq   int
}

var ehr = vitalgate.Principal{Kind: "client", ID: "ehr", Role: vitalgate.RoleEHRSystem, Site: site, Scopes: []string{"system/Observation.rs"}}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	keys, err := vault.CreateKeyring(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(store, keys, nil, nil)
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	e := &env{store: store, vault: v, log: audit.NewLog(store, signer, "test", "node-a", c.now), clock: c, rcv: newReceiver(t)}
	if err := store.CreateSite(ctx, vitalgate.Site{ID: "other", Name: "Other"}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []vitalgate.Client{
		{ID: "ehr", Site: site, Role: vitalgate.RoleEHRSystem},
		{ID: "dr", Site: site, Role: vitalgate.RoleClinician, PatientIndexes: [][]byte{v.SitePatientIndex(site, "p1")}},
	} {
		if err := store.CreateClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	e.svc = e.service()
	return e
}

// service is a node's subscription service (a new one stands for a restarted node).
func (e *env) service() *subscription.Service {
	pool := e.rcv.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	return &subscription.Service{Store: e.store, Vault: e.vault, Audit: e.log, Now: e.clock.now, Base: "https://vg.example/fhir",
		Access: &access.Service{Store: e.store, Vault: e.vault}, Allow: []string{e.rcv.srv.Listener.Addr().String()}, Roots: pool}
}

// write stores an Observation of patient (of site) as ingest does: with its audit entry.
func (e *env) write(t *testing.T, site, patient string) string {
	t.Helper()
	ctx := context.Background()
	e.seq++
	id := fmt.Sprintf("obs-%03d", e.seq)
	pidx := e.vault.SitePatientIndex(site, patient)
	body := fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final"}`, id)
	sealed, err := e.vault.SealIn(ctx, site, pidx, "Observation", id, 1, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	entry := e.log.Encode(ctx, audit.Entry{Action: audit.ActionCreate, Type: "rest", Subtype: "create", AgentType: audit.AgentDevice,
		AgentID: "dev", PatientIndex: audit.PatientIndex(pidx), Site: site, Resources: []string{"Observation/" + id}})
	if err := e.store.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: id, Version: 1, Site: site,
		PatientIndex: pidx, Effective: e.clock.now(), LastUpdated: e.clock.now(), Body: sealed}}, entry); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) endpoint() string { return e.rcv.srv.URL + "/notify" }

// step runs a delivery round after the backoff has passed.
func (e *env) step(t *testing.T, svc *subscription.Service) {
	t.Helper()
	e.clock.add(2 * time.Minute)
	if err := svc.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestEveryEventInOrderAcrossOutagesAndRestarts: the done-when's subscriber: it receives
// each new observation for its patients in order, none twice, none lost, although its
// endpoint goes down and the server restarts; $events gives back what it missed.
func TestEveryEventInOrderAcrossOutagesAndRestarts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub, err := e.svc.Create(ctx, ehr, subscription.Request{Topic: subscription.TopicObservation, Endpoint: e.endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	e.step(t, e.svc)
	if len(e.rcv.got) != 1 || e.rcv.got[0].Type != "handshake" {
		t.Fatalf("first notification %+v, want the handshake", e.rcv.got)
	}
	if got, _ := e.svc.Get(ctx, ehr, sub.ID); got.Status != vitalgate.SubscriptionActive {
		t.Fatalf("status after the handshake = %s, want active", got.Status)
	}
	var want []string
	for i := range 3 {
		want = append(want, e.write(t, site, fmt.Sprint("p", i%2+1)))
	}
	e.write(t, "other", "p1") // another site: never an event
	e.step(t, e.svc)
	e.rcv.setDown(true)
	for range 4 {
		want = append(want, e.write(t, site, "p2"))
	}
	e.step(t, e.svc)
	if got, _ := e.svc.Get(ctx, ehr, sub.ID); got.Status != vitalgate.SubscriptionError || got.Events != 7 || got.Delivered != 3 {
		t.Errorf("while the endpoint is down: %s, %d events, %d delivered; want error, 7, 3", got.Status, got.Events, got.Delivered)
	}
	// The server restarts (a new service on the same store) and the endpoint comes back.
	restarted := e.service()
	want = append(want, e.write(t, site, "p1"))
	e.rcv.setDown(false)
	e.step(t, restarted)
	e.step(t, restarted)
	if got := e.rcv.events(); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("events received %v, want 1..8 once each in order", got)
	}
	var focus []string
	for _, n := range e.rcv.got {
		focus = append(focus, n.Focus...)
	}
	for i, id := range want {
		if i >= len(focus) || focus[i] != "https://vg.example/fhir/Observation/"+id {
			t.Errorf("event %d is %v, want Observation/%s", i+1, focus, id)
			break
		}
	}
	if got, _ := e.svc.Get(ctx, ehr, sub.ID); got.Status != vitalgate.SubscriptionActive || got.Delivered != 8 {
		t.Errorf("after recovery: %s, %d delivered; want active, 8", got.Status, got.Delivered)
	}
	// $events: what a subscriber missed, by number.
	_, evs, err := e.svc.Events(ctx, ehr, sub.ID, 4, 7, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 || evs[0].Number != 4 || evs[3].Resource != "Observation/"+want[6] || evs[0].Body != nil {
		t.Errorf("$events 4..7 = %+v", evs)
	}
}

// TestScopeAndRules: a clinician's subscription has the events of its care team only; a
// full-resource payload carries the resources; endpoints off the allow-list, unknown
// topics, other clients and patients outside the care team are refused.
func TestScopeAndRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dr := vitalgate.Principal{Kind: "client", ID: "dr", Role: vitalgate.RoleClinician, Site: site, Scopes: []string{"user/Observation.rs"}}
	sub, err := e.svc.Create(ctx, dr, subscription.Request{Topic: subscription.TopicObservation, Endpoint: e.endpoint(), Payload: subscription.PayloadFullResource})
	if err != nil {
		t.Fatal(err)
	}
	mine := e.write(t, site, "p1")
	e.write(t, site, "p2") // not in dr's care team
	e.step(t, e.svc)
	e.step(t, e.svc)
	got := e.rcv.got
	if len(got) != 2 || len(got[1].Focus) != 1 || got[1].Focus[0] != "https://vg.example/fhir/Observation/"+mine || got[1].Bodies != 1 {
		t.Errorf("clinician's notifications %+v, want the handshake and one full-resource event for p1", got)
	}
	if _, _, err := e.svc.Events(ctx, ehr, sub.ID, 1, 1, ""); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("another client's $events = %v, want ENOTFOUND", err)
	}
	for _, tc := range []struct {
		name string
		p    vitalgate.Principal
		req  subscription.Request
		code string
	}{
		{"endpoint off the allow-list", ehr, subscription.Request{Topic: subscription.TopicObservation, Endpoint: "https://elsewhere.example/n"}, vitalgate.EFORBIDDEN},
		{"plain http", ehr, subscription.Request{Topic: subscription.TopicObservation, Endpoint: strings.Replace(e.endpoint(), "https", "http", 1)}, vitalgate.EINVALID},
		{"unknown topic", ehr, subscription.Request{Topic: "http://x/topic", Endpoint: e.endpoint()}, vitalgate.EINVALID},
		{"patient outside the care team", dr, subscription.Request{Topic: subscription.TopicObservation, Endpoint: e.endpoint(), PatientID: "p2"}, vitalgate.EFORBIDDEN},
		{"no Observation scope", vitalgate.Principal{Kind: "client", ID: "ehr", Role: vitalgate.RoleEHRSystem, Site: site, Scopes: []string{"system/Patient.rs"}},
			subscription.Request{Topic: subscription.TopicObservation, Endpoint: e.endpoint()}, vitalgate.EFORBIDDEN},
		{"bad payload", ehr, subscription.Request{Topic: subscription.TopicObservation, Endpoint: e.endpoint(), Payload: "empty"}, vitalgate.EINVALID},
	} {
		if _, err := e.svc.Create(ctx, tc.p, tc.req); vitalgate.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if err := e.svc.Delete(ctx, dr, sub.ID); err != nil {
		t.Fatal(err)
	}
	before := len(e.rcv.got)
	e.write(t, site, "p1")
	e.step(t, e.svc)
	if len(e.rcv.got) != before {
		t.Error("a deleted subscription was notified")
	}
}

// TestOneNodeDelivers: two nodes on one store step in turn; each event reaches the endpoint
// once (a lease in the store gives the delivery to one node at a time).
func TestOneNodeDelivers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.service(), e.service()
	a.Node, b.Node = "node-a", "node-b"
	if _, err := a.Create(ctx, ehr, subscription.Request{Topic: subscription.TopicObservation, Endpoint: e.endpoint()}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e.write(t, site, fmt.Sprint("p", i%2+1))
		e.step(t, b)
		e.step(t, a)
	}
	if got := e.rcv.events(); !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("events received %v, want 1..5 once each", got)
	}
	handshakes := 0
	for _, n := range e.rcv.got {
		if n.Type == "handshake" {
			handshakes++
		}
	}
	if handshakes != 1 {
		t.Errorf("%d handshakes, want 1", handshakes)
	}
}
