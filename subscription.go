package vitalgate

import (
	"context"
	"time"
)

// SubscriptionStatus is where a topic-based subscription stands (FHIR R5 / the R4
// Subscriptions Backport IG): requested until its endpoint answered the handshake, then
// active; error while notifications fail (delivery is retried); off once deleted.
type SubscriptionStatus string

// Subscription states.
const (
	SubscriptionRequested SubscriptionStatus = "requested"
	SubscriptionActive    SubscriptionStatus = "active"
	SubscriptionError     SubscriptionStatus = "error"
	SubscriptionOff       SubscriptionStatus = "off"
)

// Subscription is a client's subscription to a topic: its events are numbered from 1 in
// the order of the audit log, which they are derived from, and delivered in that order.
type Subscription struct {
	ID     string
	Client string // the client that created it: the only one that reads it or its events
	Site   string // the site the client acted within
	Topic  string // the SubscriptionTopic's canonical URL
	// PatientIndex, when set, narrows the topic to one patient (the filter
	// "patient=Patient/ID"), by blind index.
	PatientIndex []byte
	Endpoint     string // the rest-hook endpoint (https)
	Payload      string // "id-only" or "full-resource"
	Status       SubscriptionStatus
	Error        string // why notifications fail, while Status is error
	// Cursor is the index of the next audit entry to examine; Events is how many events
	// were found so far (eventsSinceSubscriptionStart); Delivered how many of them the
	// endpoint acknowledged, in order.
	Cursor    uint64
	Events    uint64
	Delivered uint64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SubscriptionEvent is one numbered event of a subscription: a resource that the topic
// matched, and when.
type SubscriptionEvent struct {
	Number       uint64
	Resource     string // "Observation/ID"
	PatientIndex []byte
	At           time.Time
}

// CheckSubscription reports whether a new subscription can be stored.
func CheckSubscription(s Subscription) error {
	switch {
	case s.ID == "" || s.Client == "" || s.Topic == "" || s.Endpoint == "":
		return Errorf(EINVALID, "a subscription needs an id, a client, a topic and an endpoint")
	case s.Payload != "id-only" && s.Payload != "full-resource":
		return Errorf(EINVALID, "a subscription's payload is id-only or full-resource")
	}
	return nil
}

// SubscriptionStore keeps subscriptions and their numbered events, so that any node finds
// them, no event is lost across restarts and a subscriber can ask again for those it
// missed.
type SubscriptionStore interface {
	// CreateSubscription stores a new subscription and appends the audit entries, in one
	// transaction. ECONFLICT if its id exists.
	CreateSubscription(ctx context.Context, s Subscription, audit ...[]byte) error
	// Subscription returns a subscription. ENOTFOUND.
	Subscription(ctx context.Context, id string) (Subscription, error)
	// Subscriptions returns the subscriptions that are not off, ordered by id.
	Subscriptions(ctx context.Context) ([]Subscription, error)
	// SetSubscriptionStatus sets a subscription's status and error, with the audit entries,
	// in one transaction. ENOTFOUND.
	SetSubscriptionStatus(ctx context.Context, id string, status SubscriptionStatus, errMsg string, audit ...[]byte) error
	// AddSubscriptionEvents numbers events (from Events+1, in order), stores them and moves
	// the cursor from from to to, in one transaction, only if the cursor is still from:
	// ECONFLICT otherwise (another node did it), so each event is numbered once. It
	// returns the events as numbered.
	AddSubscriptionEvents(ctx context.Context, id string, from, to uint64, events []SubscriptionEvent) ([]SubscriptionEvent, error)
	// MarkSubscriptionDelivered records that the events up to number through were
	// delivered (it only moves forward) and, when the subscription is not off, makes it
	// active.
	MarkSubscriptionDelivered(ctx context.Context, id string, through uint64) error
	// SubscriptionEvents returns the events numbered from through to (inclusive), in
	// order, at most limit.
	SubscriptionEvents(ctx context.Context, id string, from, to uint64, limit int) ([]SubscriptionEvent, error)
}
