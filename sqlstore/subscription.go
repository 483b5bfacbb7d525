package sqlstore

import (
	"context"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	insertSubscriptionSQL = `INSERT INTO subscriptions (id, client_id, site, topic, patient_index, endpoint, payload, status,
		error, audit_cursor, events, delivered, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', $9, 0, 0, $10, $10)`
	subscriptionColumns = `SELECT id, client_id, site, topic, patient_index, endpoint, payload, status, error, audit_cursor,
		events, delivered, created_at, updated_at FROM subscriptions`
	selectSubscriptionSQL  = subscriptionColumns + ` WHERE id = $1`
	selectSubscriptionsSQL = subscriptionColumns + ` WHERE status <> $1 ORDER BY id`
	subscriptionStatusSQL  = `UPDATE subscriptions SET status = $1, error = $2, updated_at = $3 WHERE id = $4`
	subscriptionExistsSQL  = `SELECT EXISTS (SELECT 1 FROM subscriptions WHERE id = $1)`
	// Moving the cursor is the claim on a range of the log: it changes a row only from the
	// cursor the caller read.
	moveSubscriptionSQL = `UPDATE subscriptions SET audit_cursor = $1, events = events + $2, updated_at = $3
		WHERE id = $4 AND audit_cursor = $5`
	subscriptionEventsCount = `SELECT events FROM subscriptions WHERE id = $1`
	insertSubEventSQL       = `INSERT INTO subscription_events (subscription_id, number, resource, patient_index, at) VALUES ($1, $2, $3, $4, $5)`
	deliveredSQL            = `UPDATE subscriptions SET delivered = $1, updated_at = $2,
		status = CASE WHEN status = $3 THEN status ELSE $4 END, error = CASE WHEN status = $3 THEN error ELSE '' END
		WHERE id = $5 AND delivered < $1`
	selectSubEventsSQL = `SELECT number, resource, patient_index, at FROM subscription_events
		WHERE subscription_id = $1 AND number >= $2 AND number <= $3 ORDER BY number LIMIT $4`
)

func scanSubscription(r rowiter.Scanner) (vitalgate.Subscription, error) {
	var (
		s                     vitalgate.Subscription
		status                string
		cursor, events, deliv int64
		created, updated      Time
	)
	if err := r.Scan(&s.ID, &s.Client, &s.Site, &s.Topic, &s.PatientIndex, &s.Endpoint, &s.Payload, &status, &s.Error,
		&cursor, &events, &deliv, &created, &updated); err != nil {
		return s, err
	}
	s.Status, s.CreatedAt, s.UpdatedAt = vitalgate.SubscriptionStatus(status), created.T, updated.T
	s.Cursor, s.Events, s.Delivered = uint64(cursor), uint64(events), uint64(deliv) // #nosec G115 -- the columns' CHECKs keep them non-negative
	return s, nil
}

// CreateSubscription stores a new subscription and appends the audit entries, in one
// transaction. ECONFLICT if its id exists.
func (s Shared) CreateSubscription(ctx context.Context, sub vitalgate.Subscription, audit ...[]byte) error {
	if err := vitalgate.CheckSubscription(sub); err != nil {
		return err
	}
	status := sub.Status
	if status == "" {
		status = vitalgate.SubscriptionRequested
	}
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		_, err := tx.Exec(ctx, insertSubscriptionSQL, sub.ID, sub.Client, sub.Site, sub.Topic, blob(sub.PatientIndex), sub.Endpoint,
			sub.Payload, string(status), int64(sub.Cursor), s.b.Time(s.orNow(sub.CreatedAt))) // #nosec G115 -- an audit index fits int64
		return s.b.MapError(err, "subscription")
	})
}

// blob stores an empty value as NULL.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Subscription returns a subscription. ENOTFOUND.
func (s Shared) Subscription(ctx context.Context, id string) (vitalgate.Subscription, error) {
	return get(ctx, s, "subscription", scanSubscription, selectSubscriptionSQL, id)
}

// Subscriptions returns the subscriptions that are not off, ordered by id.
func (s Shared) Subscriptions(ctx context.Context) ([]vitalgate.Subscription, error) {
	return collect(ctx, s, "subscriptions", scanSubscription, selectSubscriptionsSQL, string(vitalgate.SubscriptionOff))
}

// SetSubscriptionStatus sets a subscription's status and error, with the audit entries.
// ENOTFOUND.
func (s Shared) SetSubscriptionStatus(ctx context.Context, id string, status vitalgate.SubscriptionStatus, errMsg string, audit ...[]byte) error {
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		n, err := tx.Exec(ctx, subscriptionStatusSQL, string(status), errMsg, s.b.Time(s.b.Now()), id)
		if err != nil {
			return s.b.MapError(err, "subscription")
		}
		if n == 0 {
			return vitalgate.NotFound("subscription", nil)
		}
		return nil
	})
}

// AddSubscriptionEvents numbers and stores events and moves the cursor from from to to, in
// one transaction, only if the cursor is still from (ECONFLICT otherwise).
func (s Shared) AddSubscriptionEvents(ctx context.Context, id string, from, to uint64, events []vitalgate.SubscriptionEvent) ([]vitalgate.SubscriptionEvent, error) {
	var out []vitalgate.SubscriptionEvent
	err := s.b.InTx(ctx, nil, func(tx Conn) error {
		now := s.b.Now()
		n, err := tx.Exec(ctx, moveSubscriptionSQL, int64(to), len(events), s.b.Time(now), id, int64(from)) // #nosec G115 -- audit indexes fit int64
		if err != nil {
			return s.b.MapError(err, "subscription")
		}
		if n == 0 {
			return vitalgate.Errorf(vitalgate.ECONFLICT, "the subscription's cursor moved meanwhile")
		}
		var total int64
		if err := tx.QueryRow(ctx, subscriptionEventsCount, id).Scan(&total); err != nil {
			return s.b.MapError(err, "subscription")
		}
		first := uint64(total) - uint64(len(events)) + 1 // #nosec G115 -- events >= 0 by CHECK
		out = make([]vitalgate.SubscriptionEvent, len(events))
		for i, e := range events {
			e.Number = first + uint64(i) // #nosec G115 -- i >= 0
			if e.At.IsZero() {
				e.At = now
			}
			if _, err := tx.Exec(ctx, insertSubEventSQL, id, int64(e.Number), e.Resource, blob(e.PatientIndex), s.b.Time(e.At)); err != nil { // #nosec G115 -- event numbers fit int64
				return s.b.MapError(err, "subscription event")
			}
			out[i] = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MarkSubscriptionDelivered records that the events up to through were delivered (only
// forward) and makes the subscription active unless it is off.
func (s Shared) MarkSubscriptionDelivered(ctx context.Context, id string, through uint64) error {
	_, err := s.b.Writer().Exec(ctx, deliveredSQL, int64(through), s.b.Time(s.b.Now()), string(vitalgate.SubscriptionOff), // #nosec G115 -- event numbers fit int64
		string(vitalgate.SubscriptionActive), id)
	return s.b.MapError(err, "subscription")
}

// SubscriptionEvents returns the events numbered from through to, in order, at most limit.
func (s Shared) SubscriptionEvents(ctx context.Context, id string, from, to uint64, limit int) ([]vitalgate.SubscriptionEvent, error) {
	return collect(ctx, s, "subscription events", func(r rowiter.Scanner) (vitalgate.SubscriptionEvent, error) {
		var (
			e  vitalgate.SubscriptionEvent
			n  int64
			at Time
		)
		err := r.Scan(&n, &e.Resource, &e.PatientIndex, &at)
		e.Number, e.At = uint64(n), at.T // #nosec G115 -- number > 0 by CHECK
		return e, err
	}, selectSubEventsSQL, id, int64(from), int64(min(to, 1<<62)), limit) // #nosec G115 -- bounded above
}

var _ vitalgate.SubscriptionStore = Shared{}
