package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/vitalgate/vitalgate"
)

// subscriptionTests are the conformance tests of vitalgate.SubscriptionStore (migrations
// sqlite 0033, postgres 0030).
func (s *suite) subscriptionTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Subscription/Lifecycle", s.testSubscriptionLifecycle},
		{"Subscription/EventsNumberedOnce", s.testSubscriptionEventsOnce},
	}
}

func (s *suite) subscriptionStore(t *testing.T) (vitalgate.Store, vitalgate.SubscriptionStore) {
	t.Helper()
	st := s.store(t)
	ss, ok := st.(vitalgate.SubscriptionStore)
	if !ok {
		t.Fatalf("%T does not implement vitalgate.SubscriptionStore", st)
	}
	return st, ss
}

func testSubscription(id string) vitalgate.Subscription {
	return vitalgate.Subscription{ID: id, Client: "ehr-1", Site: "default", Topic: "https://vitalgate.dev/SubscriptionTopic/new-observation",
		PatientIndex: []byte("pidx-1"), Endpoint: "https://ehr.example/notify", Payload: "id-only", Cursor: 7, CreatedAt: at(0)}
}

// testSubscriptionLifecycle: a subscription round-trips; events are numbered from 1 as the
// cursor moves; delivery only moves forward and makes it active; off leaves the list.
func (s *suite) testSubscriptionLifecycle(t *testing.T) {
	st, ss := s.subscriptionStore(t)
	ctx := ctxT(t)
	wantCode(t, "CreateSubscription without an endpoint", ss.CreateSubscription(ctx, vitalgate.Subscription{ID: "x", Client: "c", Topic: "t", Payload: "id-only"}), vitalgate.EINVALID)
	before := auditSize(t, st)
	must(t, "CreateSubscription", ss.CreateSubscription(ctx, testSubscription("s-1"), []byte("created")))
	if auditSize(t, st) != before+1 {
		t.Error("CreateSubscription did not append its audit entry")
	}
	wantCode(t, "CreateSubscription again", ss.CreateSubscription(ctx, testSubscription("s-1")), vitalgate.ECONFLICT)
	got, err := ss.Subscription(ctx, "s-1")
	must(t, "Subscription", err)
	w := testSubscription("s-1")
	if got.Client != w.Client || got.Site != w.Site || got.Topic != w.Topic || string(got.PatientIndex) != "pidx-1" ||
		got.Endpoint != w.Endpoint || got.Payload != w.Payload || got.Status != vitalgate.SubscriptionRequested || got.Cursor != 7 || got.Events != 0 {
		t.Errorf("Subscription = %+v", got)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, at(0))
	_, err = ss.Subscription(ctx, "nope")
	wantCode(t, "Subscription of an unknown id", err, vitalgate.ENOTFOUND)

	evs, err := ss.AddSubscriptionEvents(ctx, "s-1", 7, 10, []vitalgate.SubscriptionEvent{
		{Resource: "Observation/a", PatientIndex: []byte("pidx-1"), At: at(1)}, {Resource: "Observation/b", At: at(2)}})
	must(t, "AddSubscriptionEvents", err)
	if len(evs) != 2 || evs[0].Number != 1 || evs[1].Number != 2 {
		t.Errorf("numbered %+v, want 1 and 2", evs)
	}
	_, err = ss.AddSubscriptionEvents(ctx, "s-1", 7, 11, []vitalgate.SubscriptionEvent{{Resource: "Observation/c"}})
	wantCode(t, "AddSubscriptionEvents from an old cursor", err, vitalgate.ECONFLICT)
	evs, err = ss.AddSubscriptionEvents(ctx, "s-1", 10, 12, []vitalgate.SubscriptionEvent{{Resource: "Observation/c", At: at(3)}})
	must(t, "AddSubscriptionEvents", err)
	if len(evs) != 1 || evs[0].Number != 3 {
		t.Errorf("numbered %+v, want 3", evs)
	}
	_, err = ss.AddSubscriptionEvents(ctx, "s-1", 12, 20, nil)
	must(t, "AddSubscriptionEvents of none", err)
	got, _ = ss.Subscription(ctx, "s-1")
	if got.Cursor != 20 || got.Events != 3 {
		t.Errorf("cursor %d events %d, want 20 and 3", got.Cursor, got.Events)
	}
	list, err := ss.SubscriptionEvents(ctx, "s-1", 2, 3, 10)
	must(t, "SubscriptionEvents", err)
	if len(list) != 2 || list[0].Resource != "Observation/b" || list[1].Resource != "Observation/c" || list[0].Number != 2 {
		t.Errorf("events 2..3 = %+v", list)
	} else {
		checkTime(t, "At", list[0].At, at(2))
	}
	if list, _ := ss.SubscriptionEvents(ctx, "s-1", 1, 3, 1); len(list) != 1 || string(list[0].PatientIndex) != "pidx-1" {
		t.Errorf("events 1..3 limit 1 = %+v", list)
	}

	must(t, "SetSubscriptionStatus", ss.SetSubscriptionStatus(ctx, "s-1", vitalgate.SubscriptionError, "the endpoint answered 503"))
	must(t, "MarkSubscriptionDelivered", ss.MarkSubscriptionDelivered(ctx, "s-1", 2))
	must(t, "MarkSubscriptionDelivered backwards", ss.MarkSubscriptionDelivered(ctx, "s-1", 1))
	got, _ = ss.Subscription(ctx, "s-1")
	if got.Delivered != 2 || got.Status != vitalgate.SubscriptionActive || got.Error != "" {
		t.Errorf("after delivery: delivered %d status %s error %q, want 2 active", got.Delivered, got.Status, got.Error)
	}
	wantCode(t, "SetSubscriptionStatus of an unknown id", ss.SetSubscriptionStatus(ctx, "nope", vitalgate.SubscriptionOff, ""), vitalgate.ENOTFOUND)
	must(t, "SetSubscriptionStatus off", ss.SetSubscriptionStatus(ctx, "s-1", vitalgate.SubscriptionOff, ""))
	must(t, "MarkSubscriptionDelivered when off", ss.MarkSubscriptionDelivered(ctx, "s-1", 3))
	if got, _ := ss.Subscription(ctx, "s-1"); got.Status != vitalgate.SubscriptionOff {
		t.Errorf("delivery turned an off subscription %s", got.Status)
	}
	if l, _ := ss.Subscriptions(ctx); len(l) != 0 {
		t.Errorf("Subscriptions lists %d off ones", len(l))
	}
}

// testSubscriptionEventsOnce: of nodes moving one cursor at once, one numbers each range.
func (s *suite) testSubscriptionEventsOnce(t *testing.T) {
	_, ss := s.subscriptionStore(t)
	ctx := ctxT(t)
	sub := testSubscription("s-2")
	sub.Cursor = 0
	must(t, "CreateSubscription", ss.CreateSubscription(ctx, sub))
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for n := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ss.AddSubscriptionEvents(ctx, "s-2", 0, 5, []vitalgate.SubscriptionEvent{{Resource: fmt.Sprintf("Observation/n%d", n)}})
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
				t.Errorf("AddSubscriptionEvents: %v", err)
			}
		}()
	}
	wg.Wait()
	got, _ := ss.Subscription(ctx, "s-2")
	if won != 1 || got.Events != 1 || got.Cursor != 5 {
		t.Errorf("%d nodes numbered the range; events %d cursor %d", won, got.Events, got.Cursor)
	}
}
