// Package subscription runs topic-based FHIR Subscriptions (R5, and the R4 Subscriptions
// Backport IG) once for every transport: a client subscribes to a topic ("a new Observation
// for a patient in scope"), and each matching resource becomes an event, numbered per
// subscription (eventsSinceSubscriptionStart) and POSTed to its rest-hook endpoint in order.
//
// Events are derived from the audit log, the deployment's one ordered record of every write
// (the outbox pattern): a subscription keeps a cursor into the log in the store, and moving
// it numbers the events it passed, in one transaction, once. Nothing acknowledged is lost
// across restarts or node failures: an event is stored before it is sent, delivery is
// retried with backoff from the first one the endpoint has not acknowledged, and $events
// returns any range again.
//
// The rules of search hold: the client's site only, a clinician's care team, the
// client's scopes (a full-resource payload only when the client may read the resource),
// and endpoints only from the operator's allow-list.
package subscription

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/vault"
)

// TopicObservation is the canonical URL of the topic "a new Observation for a patient in
// scope": an Observation stored (by a device, over FHIR or HL7 v2) for a patient of the
// subscriber's site it may see.
const TopicObservation = "http://vitalgate.dev/fhir/SubscriptionTopic/new-observation"

// Payloads.
const (
	PayloadIDOnly       = "id-only"
	PayloadFullResource = "full-resource"
)

// Store is what subscriptions need from storage.
type Store interface {
	vitalgate.SubscriptionStore
	AuditSize(ctx context.Context) (uint64, error)
	AuditEntries(ctx context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error
	Resource(ctx context.Context, typ, id string) (vitalgate.SealedResource, error)
	Client(ctx context.Context, id string) (vitalgate.Client, error)
	// ClaimOutbox gives one node of a cluster at a time a subscription's delivery.
	ClaimOutbox(ctx context.Context, destination, holder string, ttl time.Duration) (bool, error)
}

// Service runs subscriptions.
type Service struct {
	Store  Store
	Vault  *vault.Vault
	Access *access.Service // the care-team rule (CheckPatient)
	Audit  *audit.Log
	Now    func() time.Time
	// Allow is the operator's allow-list of endpoint addresses (HOST:PORT); an endpoint
	// elsewhere is refused.
	Allow []string
	// Roots verifies endpoints' certificates (nil: the system roots).
	Roots *x509.CertPool
	// Base is the FHIR base URL references in notifications are made with.
	Base string
	// Node names this node in the lease that gives one node of a cluster at a time a
	// subscription's delivery; empty: this process delivers every subscription (one node).
	Node string
	// Interval is how often Run looks for new events (default 1 s).
	Interval time.Duration
	Logger   *slog.Logger
	client   *http.Client
	retry    map[string]retryState
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Request is a subscription request as a transport decoded it.
type Request struct {
	Topic    string
	Endpoint string
	Payload  string // PayloadIDOnly (default) or PayloadFullResource
	// PatientID, when set, narrows the topic to one patient of the client's site.
	PatientID string
}

// Create checks and stores a subscription, requested until its endpoint answers the
// handshake. Errors: EINVALID (topic, endpoint or payload), EFORBIDDEN (scopes, site, an
// endpoint not on the allow-list, a patient outside the care team).
func (s *Service) Create(ctx context.Context, p vitalgate.Principal, req Request) (vitalgate.Subscription, error) {
	sub, err := s.prepare(ctx, p, req)
	if err != nil {
		return vitalgate.Subscription{}, s.refused(ctx, p, "subscribe", "", err)
	}
	e := s.entry(p, audit.ActionCreate, "subscribe", sub.ID)
	e.OutcomeDesc = "subscribed to " + sub.Topic + " (" + sub.Payload + ")"
	if len(sub.PatientIndex) > 0 {
		e.PatientIndex = audit.PatientIndex(sub.PatientIndex)
	}
	if err := s.Store.CreateSubscription(ctx, sub, s.Audit.Encode(ctx, e)); err != nil {
		return vitalgate.Subscription{}, err
	}
	return sub, nil
}

func (s *Service) prepare(ctx context.Context, p vitalgate.Principal, req Request) (vitalgate.Subscription, error) {
	if !vitalgate.InSite(p.Site, p.Site) {
		return vitalgate.Subscription{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "this client acts within no site: subscriptions are to the patients of a site")
	}
	if req.Topic != TopicObservation {
		return vitalgate.Subscription{}, vitalgate.Errorf(vitalgate.EINVALID, "topic %q is not known; GET /fhir/SubscriptionTopic lists the topics (%s)", req.Topic, TopicObservation)
	}
	if err := access.RequireScope(p, "Observation", access.OpRead); err != nil {
		return vitalgate.Subscription{}, err
	}
	payload := req.Payload
	if payload == "" {
		payload = PayloadIDOnly
	}
	if payload != PayloadIDOnly && payload != PayloadFullResource {
		return vitalgate.Subscription{}, vitalgate.Errorf(vitalgate.EINVALID, "payload content %q is not supported; use id-only or full-resource", payload)
	}
	if err := s.checkEndpoint(req.Endpoint); err != nil {
		return vitalgate.Subscription{}, err
	}
	var pidx []byte
	if req.PatientID != "" {
		pidx = s.Vault.SitePatientIndex(p.Site, req.PatientID)
		if err := s.Access.CheckPatient(ctx, p, pidx); err != nil {
			return vitalgate.Subscription{}, err
		}
	}
	size, err := s.Store.AuditSize(ctx)
	if err != nil {
		return vitalgate.Subscription{}, err
	}
	now := s.now()
	id, err := ingest.NewID(now, rand.Reader)
	if err != nil {
		return vitalgate.Subscription{}, err
	}
	return vitalgate.Subscription{ID: id, Client: p.ID, Site: p.Site, Topic: req.Topic, PatientIndex: pidx, Endpoint: req.Endpoint,
		Payload: payload, Status: vitalgate.SubscriptionRequested, Cursor: size, CreatedAt: now}, nil
}

// checkEndpoint refuses an endpoint that is not an https URL on the allow-list.
func (s *Service) checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return vitalgate.Errorf(vitalgate.EINVALID, "a rest-hook endpoint is an https URL without credentials, such as https://ehr.example.org/fhir-notify")
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	addr := net.JoinHostPort(strings.ToLower(u.Hostname()), port)
	if !slices.ContainsFunc(s.Allow, func(a string) bool { return strings.EqualFold(a, addr) }) {
		return vitalgate.Errorf(vitalgate.EFORBIDDEN, "the endpoint %s is not on this server's allow-list; the operator adds it with serve --subscription-allow %s", addr, addr)
	}
	return nil
}

// Get returns a subscription of p's. ENOTFOUND for another client's, alike.
func (s *Service) Get(ctx context.Context, p vitalgate.Principal, id string) (vitalgate.Subscription, error) {
	sub, err := s.Store.Subscription(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND || err == nil && (sub.Client != p.ID || sub.Site != p.Site) {
		return vitalgate.Subscription{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "Subscription/%s is not known", id)
	}
	return sub, err
}

// Delete turns a subscription of p's off, audited.
func (s *Service) Delete(ctx context.Context, p vitalgate.Principal, id string) error {
	if _, err := s.Get(ctx, p, id); err != nil {
		return err
	}
	e := s.entry(p, audit.ActionDelete, "unsubscribe", id)
	return s.Store.SetSubscriptionStatus(ctx, id, vitalgate.SubscriptionOff, "", s.Audit.Encode(ctx, e))
}

// Event is a numbered event with, for a full-resource payload the client may read, the
// resource.
type Event struct {
	vitalgate.SubscriptionEvent
	Body []byte // nil for id-only
}

// MaxEvents bounds the events of one $events answer.
const MaxEvents = 100

// Events returns the events of a subscription of p's numbered from through to (at most
// MaxEvents), with their resources when the payload is full-resource and p may read them
// (content "id-only" asks for none), audited as a read.
func (s *Service) Events(ctx context.Context, p vitalgate.Principal, id string, from, to uint64, content string) (vitalgate.Subscription, []Event, error) {
	sub, err := s.Get(ctx, p, id)
	if err != nil {
		return sub, nil, err
	}
	if from == 0 {
		from = 1
	}
	if to == 0 || to > sub.Events {
		to = sub.Events
	}
	var evs []vitalgate.SubscriptionEvent
	if from <= to {
		if evs, err = s.Store.SubscriptionEvents(ctx, id, from, to, MaxEvents); err != nil {
			return sub, nil, err
		}
	}
	full := sub.Payload == PayloadFullResource && content != PayloadIDOnly
	out, err := s.withBodies(ctx, p, evs, full)
	if err != nil {
		return sub, nil, err
	}
	e := s.entry(p, audit.ActionRead, "subscription-events", id)
	e.Count = len(out)
	if err := s.Audit.Append(ctx, e); err != nil {
		return sub, nil, vitalgate.Unavailable(err, "the read could not be audited; try again")
	}
	return sub, out, nil
}

// withBodies adds to events the resources p may read, when full.
func (s *Service) withBodies(ctx context.Context, p vitalgate.Principal, evs []vitalgate.SubscriptionEvent, full bool) ([]Event, error) {
	out := make([]Event, len(evs))
	for i, ev := range evs {
		out[i].SubscriptionEvent = ev
		if !full {
			continue
		}
		typ, rid, _ := strings.Cut(ev.Resource, "/")
		if access.RequireScope(p, typ, access.OpRead) != nil || s.Access.CheckPatient(ctx, p, ev.PatientIndex) != nil {
			continue
		}
		r, err := s.Store.Resource(ctx, typ, rid)
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			continue // erased since: the event stays, without its resource
		} else if err != nil {
			return nil, err
		}
		if out[i].Body, err = s.Vault.Open(ctx, r); err != nil {
			if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
				continue
			}
			return nil, err
		}
	}
	return out, nil
}

// entry is an audit entry about a subscription of p's.
func (s *Service) entry(p vitalgate.Principal, action, subtype, id string) audit.Entry {
	e := audit.Entry{Action: action, Type: "rest", Subtype: subtype, AgentType: audit.AgentClient, AgentID: p.ID,
		AgentRole: string(p.Role), Site: p.Site}
	if id != "" {
		e.Resources = []string{"Subscription/" + id}
	}
	if p.Site == vitalgate.AllSites {
		e.Site = ""
	}
	return e
}

// refused audits a refused request and returns err.
func (s *Service) refused(ctx context.Context, p vitalgate.Principal, subtype, id string, err error) error {
	e := s.entry(p, audit.ActionExecute, subtype, id)
	e.Outcome = audit.OutcomeMinorFailure
	e.OutcomeDesc = vitalgate.ErrorCode(err) + ": " + vitalgate.ErrorMessage(err)
	if aerr := s.Audit.Append(ctx, e); aerr != nil {
		return vitalgate.Unavailable(aerr, "the refusal could not be audited; try again")
	}
	return err
}
