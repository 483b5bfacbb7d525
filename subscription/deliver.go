package subscription

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
)

// Delivery bounds.
const (
	scanBatch     = 1000 // audit entries examined per step and subscription
	notifyBatch   = 20   // events per notification
	minBackoff    = time.Second
	maxBackoff    = time.Minute
	notifyTimeout = 10 * time.Second
	// deliveryLease is how long a node holds a subscription's delivery between rounds: a node
	// that dies leaves it to another after it.
	deliveryLease = 30 * time.Second
)

// retryState is when a failing subscription is tried again.
type retryState struct {
	next    time.Time
	backoff time.Duration
}

// Run numbers and delivers events until ctx ends.
func (s *Service) Run(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Step(ctx); err != nil && ctx.Err() == nil {
			s.logger().Warn("subscription delivery step failed; retrying", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step does one round: for each subscription that is not off, the handshake if it is still
// requested, then the events in the log since its cursor, then the delivery of those its
// endpoint has not acknowledged. A failing endpoint is retried with backoff (1 s doubling
// to a minute) without holding up the others.
func (s *Service) Step(ctx context.Context) error {
	subs, err := s.Store.Subscriptions(ctx)
	if err != nil {
		return err
	}
	if s.retry == nil {
		s.retry = map[string]retryState{}
	}
	for _, sub := range subs {
		if err := s.scan(ctx, &sub); err != nil {
			return err
		}
		if r, ok := s.retry[sub.ID]; ok && s.now().Before(r.next) {
			continue
		}
		if s.Node != "" {
			mine, err := s.Store.ClaimOutbox(ctx, "subscription:"+sub.ID, s.Node, deliveryLease)
			if err != nil {
				return err
			}
			if !mine {
				continue // another node delivers it
			}
		}
		if err := s.deliver(ctx, sub); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.failed(ctx, sub, err)
			continue
		}
		delete(s.retry, sub.ID)
	}
	return nil
}

// failed records a failed delivery and when to try again.
func (s *Service) failed(ctx context.Context, sub vitalgate.Subscription, err error) {
	r := s.retry[sub.ID]
	r.backoff = min(max(2*r.backoff, minBackoff), maxBackoff)
	r.next = s.now().Add(r.backoff)
	s.retry[sub.ID] = r
	msg := err.Error()
	if sub.Status != vitalgate.SubscriptionError || sub.Error != msg {
		status := vitalgate.SubscriptionError
		if sub.Status == vitalgate.SubscriptionRequested {
			status = vitalgate.SubscriptionRequested // the handshake failed: still requested
		}
		if serr := s.Store.SetSubscriptionStatus(ctx, sub.ID, status, msg); serr != nil {
			s.logger().Warn("could not record a subscription's failure", "subscription", sub.ID, "error", serr.Error())
		}
	}
	s.logger().Warn("subscription notification failed; retrying", "subscription", sub.ID, "retry_in", r.backoff.String(), "error", msg)
}

// scan numbers the events of the log entries after sub's cursor.
func (s *Service) scan(ctx context.Context, sub *vitalgate.Subscription) error {
	size, err := s.Store.AuditSize(ctx)
	if err != nil {
		return err
	}
	client, p, err := s.subscriber(ctx, *sub)
	if err != nil {
		return err
	}
	for sub.Cursor < size {
		to := min(size, sub.Cursor+scanBatch)
		var evs []vitalgate.SubscriptionEvent
		err := s.Store.AuditEntries(ctx, sub.Cursor, to, func(r vitalgate.AuditRecord) error {
			e, err := audit.UnmarshalEntry(r.Data)
			if err != nil {
				return nil // not an entry this topic reads
			}
			evs = append(evs, s.match(ctx, *sub, p, client, e)...)
			return nil
		})
		if err != nil {
			return err
		}
		numbered, err := s.Store.AddSubscriptionEvents(ctx, sub.ID, sub.Cursor, to, evs)
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			fresh, ferr := s.Store.Subscription(ctx, sub.ID) // another node moved it
			if ferr != nil {
				return ferr
			}
			*sub = fresh
			continue
		}
		if err != nil {
			return err
		}
		sub.Cursor, sub.Events = to, sub.Events+uint64(len(numbered))
	}
	return nil
}

// match returns the events entry e is for sub: each Observation it records created, of the
// subscription's site, for a patient the subscriber may see (and its patient, if it names
// one). A disabled or unregistered subscriber gets none.
func (s *Service) match(ctx context.Context, sub vitalgate.Subscription, p vitalgate.Principal, c vitalgate.Client, e audit.Entry) []vitalgate.SubscriptionEvent {
	if e.Action != audit.ActionCreate || e.Outcome != audit.OutcomeSuccess || c.ID == "" || c.Disabled ||
		vitalgate.StoredSite(e.Site) != vitalgate.StoredSite(sub.Site) {
		return nil
	}
	pidx, err := hex.DecodeString(e.PatientIndex)
	if err != nil || len(pidx) == 0 || len(sub.PatientIndex) > 0 && !bytes.Equal(pidx, sub.PatientIndex) {
		return nil
	}
	var out []vitalgate.SubscriptionEvent
	for _, r := range e.Resources {
		if !strings.HasPrefix(r, "Observation/") {
			continue
		}
		if len(out) == 0 && s.Access.CheckPatient(ctx, p, pidx) != nil {
			return nil
		}
		out = append(out, vitalgate.SubscriptionEvent{Resource: r, PatientIndex: pidx, At: e.Time})
	}
	return out
}

// subscriber returns the client of sub as it is registered now, and as a principal with
// the scopes its registration grants (a zero client when it is no longer registered).
func (s *Service) subscriber(ctx context.Context, sub vitalgate.Subscription) (vitalgate.Client, vitalgate.Principal, error) {
	c, err := s.Store.Client(ctx, sub.Client)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Client{}, vitalgate.Principal{}, nil
	} else if err != nil {
		return c, vitalgate.Principal{}, err
	}
	scopes, err := auth.GrantScopes(c.Role, c.Scopes, "")
	if err != nil {
		scopes = nil // a registration beyond the role grants nothing
	}
	return c, vitalgate.Principal{Kind: "client", ID: c.ID, Role: c.Role, Scopes: scopes, Site: sub.Site}, nil
}

// deliver sends the handshake of a requested subscription, then its events the endpoint
// has not acknowledged, in order.
func (s *Service) deliver(ctx context.Context, sub vitalgate.Subscription) error {
	if sub.Status == vitalgate.SubscriptionRequested {
		if err := s.post(ctx, sub, s.Notification(sub, "handshake", nil)); err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		if err := s.Store.SetSubscriptionStatus(ctx, sub.ID, vitalgate.SubscriptionActive, ""); err != nil {
			return err
		}
		sub.Status = vitalgate.SubscriptionActive
	}
	c, p, err := s.subscriber(ctx, sub)
	if err != nil {
		return err
	}
	for sub.Delivered < sub.Events {
		evs, err := s.Store.SubscriptionEvents(ctx, sub.ID, sub.Delivered+1, sub.Events, notifyBatch)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		withBodies, err := s.withBodies(ctx, p, evs, sub.Payload == PayloadFullResource && !c.Disabled && c.ID != "")
		if err != nil {
			return err
		}
		if err := s.post(ctx, sub, s.Notification(sub, "event-notification", withBodies)); err != nil {
			return fmt.Errorf("event %d: %w", evs[0].Number, err)
		}
		last := evs[len(evs)-1].Number
		if err := s.Store.MarkSubscriptionDelivered(ctx, sub.ID, last); err != nil {
			return err
		}
		sub.Delivered = last
	}
	if sub.Status == vitalgate.SubscriptionError {
		return s.Store.SetSubscriptionStatus(ctx, sub.ID, vitalgate.SubscriptionActive, "")
	}
	return nil
}

// post sends a notification to sub's endpoint; a 2xx answer acknowledges it.
func (s *Service) post(ctx context.Context, sub vitalgate.Subscription, body []byte) error {
	if err := s.checkEndpoint(sub.Endpoint); err != nil {
		return err // the operator took it off the allow-list
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: notifyTimeout,
			Transport:     &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: s.Roots, MinVersion: tls.VersionTLS12}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := s.client.Do(req)
	if err != nil {
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) {
			return fmt.Errorf("the endpoint could not be reached: %w", uerr.Unwrap())
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	return nil
}

// Notification returns the notification Bundle (R4 Subscriptions Backport IG: a history
// Bundle whose first entry is the SubscriptionStatus as Parameters) of kind typ
// ("handshake", "heartbeat", "event-notification", "query-event") with events.
func (s *Service) Notification(sub vitalgate.Subscription, typ string, events []Event) []byte {
	base := strings.TrimSuffix(s.Base, "/")
	subURL := base + "/Subscription/" + sub.ID
	params := []any{
		map[string]any{"name": "subscription", "valueReference": map[string]any{"reference": subURL}},
		map[string]any{"name": "topic", "valueCanonical": sub.Topic},
		map[string]any{"name": "status", "valueCode": string(sub.Status)},
		map[string]any{"name": "type", "valueCode": typ},
		map[string]any{"name": "events-since-subscription-start", "valueString": strconv.FormatUint(sub.Events, 10)},
	}
	entries := []any{}
	for _, ev := range events {
		ref := base + "/" + ev.Resource
		params = append(params, map[string]any{"name": "notification-event", "part": []any{
			map[string]any{"name": "event-number", "valueString": strconv.FormatUint(ev.Number, 10)},
			map[string]any{"name": "timestamp", "valueInstant": ev.At.UTC().Format(time.RFC3339Nano)},
			map[string]any{"name": "focus", "valueReference": map[string]any{"reference": ref}},
		}})
		en := map[string]any{"fullUrl": ref, "request": map[string]any{"method": "POST", "url": "Observation"},
			"response": map[string]any{"status": "201"}}
		if ev.Body != nil {
			en["resource"] = json.RawMessage(ev.Body)
		}
		entries = append(entries, en)
	}
	status := map[string]any{"fullUrl": "urn:uuid:" + uuidOf(sub.ID), "resource": map[string]any{"resourceType": "Parameters", "parameter": params},
		"request": map[string]any{"method": "GET", "url": subURL + "/$status"}, "response": map[string]any{"status": "200"}}
	b, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "history",
		"timestamp": s.now().UTC().Format(time.RFC3339Nano), "entry": append([]any{status}, entries...)})
	return b
}

// uuidOf writes a 32-hex-digit id as a UUID (8-4-4-4-12).
func uuidOf(id string) string {
	if len(id) != 32 {
		return id
	}
	return id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
}
