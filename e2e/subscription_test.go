package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// subscriber is an EHR's notification endpoint over HTTPS: it answers 503 while down and
// records, in order, the event numbers and focus references of what it accepted.
type subscriber struct {
	srv    *httptest.Server
	mu     sync.Mutex
	down   bool
	events []int
	focus  []string
	kinds  []string
}

func newSubscriber(t *testing.T) *subscriber {
	s := &subscriber{}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var b struct {
			Entry []struct {
				Resource struct {
					Parameter []struct {
						Name, ValueCode string
						Part            []struct {
							Name, ValueString string
							ValueReference    struct{ Reference string }
						}
					}
				}
			}
		}
		if err := json.Unmarshal(body, &b); err != nil || len(b.Entry) == 0 {
			http.Error(w, "not a notification", http.StatusBadRequest)
			return
		}
		for _, p := range b.Entry[0].Resource.Parameter {
			switch p.Name {
			case "type":
				s.kinds = append(s.kinds, p.ValueCode)
			case "notification-event":
				for _, part := range p.Part {
					if part.Name == "event-number" {
						n, _ := strconv.Atoi(part.ValueString)
						s.events = append(s.events, n)
					} else if part.Name == "focus" {
						s.focus = append(s.focus, part.ValueReference.Reference)
					}
				}
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *subscriber) setDown(d bool) { s.mu.Lock(); s.down = d; s.mu.Unlock() }

func (s *subscriber) received() ([]int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events), slices.Clone(s.focus)
}

// waitEvents waits until the subscriber has n events.
func (s *subscriber) waitEvents(t *testing.T, n int, srv *server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, _ := s.received(); len(got) >= n {
			return
		}
		if time.Now().After(deadline) {
			got, _ := s.received()
			t.Fatalf("the subscriber has events %v, want %d\n%s", got, n, srv.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSubscriptionEndToEnd: an EHR subscribes over FHIR to new observations; a device
// writes; the subscriber receives each in order. It goes down, the server restarts, the
// device writes on; when the subscriber is back it receives every event once, in order, and
// $events gives back any range.
func TestSubscriptionEndToEnd(t *testing.T) {
	sub := newSubscriber(t)
	caFile := filepath.Join(t.TempDir(), "subscriber-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sub.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := initDir(t)
	secret := addDevice(t, dir, "sub-dev", "sub-patient")
	clientSecret := strings.TrimSpace(run(t, "client", "add", "--data", dir, "--id", "ehr-sub", "--role", "ehr-system"))
	addr := freeAddr(t)
	flags := []string{"--subscription-allow", sub.srv.Listener.Addr().String(), "--subscription-ca", caFile}
	srv := startServerAt(t, dir, addr, flags...)
	cert := srv.enroll(t, "sub-dev", secret)
	token := clientToken(t, srv, "ehr-sub", clientSecret)

	body := `{"resourceType":"Subscription","status":"requested","reason":"vitals","criteria":"http://vitalgate.dev/fhir/SubscriptionTopic/new-observation",
		"channel":{"type":"rest-hook","endpoint":"` + sub.srv.URL + `/notify","payload":"application/fhir+json",
		"_payload":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content","valueCode":"id-only"}]}}}`
	req, _ := http.NewRequest("POST", srv.url+"/fhir/Subscription", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := srv.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	created, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var s struct{ ID, Status string }
	if resp.StatusCode != 201 || json.Unmarshal(created, &s) != nil || s.ID == "" {
		t.Fatalf("create subscription: %d %s", resp.StatusCode, created)
	}

	var want []string
	write := func(c *server, i int) {
		status, b, _, err := post(context.Background(), c.client(&cert), c.url+"/fhir/Observation",
			observation("sub-patient", "sub-dev", fmt.Sprint(60+i), time.Now().Add(-time.Second)))
		if err != nil || status != 201 {
			t.Fatalf("post: %d %v %s", status, err, b)
		}
		var r struct{ ID string }
		_ = json.Unmarshal(b, &r)
		want = append(want, r.ID)
	}
	for i := range 3 {
		write(srv, i)
	}
	sub.waitEvents(t, 3, srv)

	// The subscriber goes down; two more, then the server restarts; two more.
	sub.setDown(true)
	write(srv, 3)
	write(srv, 4)
	srv.stop(t)
	srv = startServerAt(t, dir, addr, flags...)
	write(srv, 5)
	write(srv, 6)
	sub.setDown(false)
	sub.waitEvents(t, 7, srv)

	events, focus := sub.received()
	if !slices.Equal(events, []int{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("events received %v, want 1..7 once each, in order", events)
	}
	for i, id := range want {
		if !strings.HasSuffix(focus[i], "/fhir/Observation/"+id) {
			t.Errorf("event %d is about %s, want Observation/%s", i+1, focus[i], id)
		}
	}
	// $events: a subscriber that lost events 4..5 asks for them again.
	req, _ = http.NewRequest("GET", srv.url+"/fhir/Subscription/"+s.ID+"/$events?eventsSinceNumber=4&eventsUntilNumber=5", nil)
	req.Header.Set("Authorization", "Bearer "+clientToken(t, srv, "ehr-sub", clientSecret))
	resp, err = srv.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	replay, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(replay, []byte(`"query-event"`)) || !bytes.Contains(replay, []byte("/Observation/"+want[3])) ||
		!bytes.Contains(replay, []byte("/Observation/"+want[4])) || bytes.Contains(replay, []byte("/Observation/"+want[5])) {
		t.Fatalf("$events 4..5: %d %s", resp.StatusCode, replay)
	}
}
