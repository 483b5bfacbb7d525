package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/subscription"
)

// Subscriptions is the subscription capability as the Subscription routes use it
// (*subscription.Service).
type Subscriptions interface {
	Create(ctx context.Context, p vitalgate.Principal, req subscription.Request) (vitalgate.Subscription, error)
	Get(ctx context.Context, p vitalgate.Principal, id string) (vitalgate.Subscription, error)
	Delete(ctx context.Context, p vitalgate.Principal, id string) error
	Events(ctx context.Context, p vitalgate.Principal, id string, from, to uint64, content string) (vitalgate.Subscription, []subscription.Event, error)
	Notification(sub vitalgate.Subscription, typ string, events []subscription.Event) []byte
}

// The R4 Subscriptions Backport IG's extensions.
const (
	backportFilter  = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria"
	backportContent = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"
)

type extension struct {
	URL         string `json:"url"`
	ValueString string `json:"valueString,omitempty"`
	ValueCode   string `json:"valueCode,omitempty"`
}

type elementExt struct {
	Extension []extension `json:"extension,omitempty"`
}

// subscriptionResource is an R4 Subscription with the backport's extensions, as read and
// written.
type subscriptionResource struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id,omitempty"`
	Status       string      `json:"status"`
	Reason       string      `json:"reason,omitempty"`
	Criteria     string      `json:"criteria"`
	CriteriaExt  *elementExt `json:"_criteria,omitempty"`
	Error        string      `json:"error,omitempty"`
	Channel      struct {
		Type       string      `json:"type"`
		Endpoint   string      `json:"endpoint,omitempty"`
		Payload    string      `json:"payload,omitempty"`
		PayloadExt *elementExt `json:"_payload,omitempty"`
		Header     []string    `json:"header,omitempty"`
	} `json:"channel"`
}

func (e *elementExt) value(url string) string {
	if e == nil {
		return ""
	}
	for _, x := range e.Extension {
		if x.URL == url {
			return x.ValueString + x.ValueCode
		}
	}
	return ""
}

// handleCreateSubscription serves POST /fhir/Subscription.
func (s *Server) handleCreateSubscription(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if s.subscriptions == nil {
		s.writeError(w, r, errNoSubscriptions)
		return
	}
	if err := requireMediaType(r, "application/fhir+json", "application/json"); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(r, w)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in subscriptionResource
	if err := json.Unmarshal(body, &in); err != nil || in.ResourceType != "Subscription" {
		s.writeError(w, r, vitalgate.Errorf(vitalgate.EINVALID, "the body is not a FHIR Subscription (R4, Subscriptions Backport IG)"))
		return
	}
	if in.Channel.Type != "rest-hook" {
		s.writeError(w, r, vitalgate.FieldErrorf(vitalgate.EINVALID, "Subscription.channel.type", "only the rest-hook channel is supported"))
		return
	}
	if len(in.Channel.Header) > 0 {
		s.writeError(w, r, vitalgate.FieldErrorf(vitalgate.EINVALID, "Subscription.channel.header", "channel headers are not supported: the endpoint authenticates this server by its certificate"))
		return
	}
	req := subscription.Request{Topic: in.Criteria, Endpoint: in.Channel.Endpoint, Payload: in.Channel.PayloadExt.value(backportContent)}
	if f := in.CriteriaExt.value(backportFilter); f != "" {
		q := strings.TrimPrefix(f, "Observation?")
		name, val, ok := strings.Cut(q, "=")
		if !ok || name != "patient" || strings.Contains(val, "&") {
			s.writeError(w, r, vitalgate.FieldErrorf(vitalgate.EINVALID, "Subscription.criteria", "the only filter is patient=Patient/ID"))
			return
		}
		req.PatientID = strings.TrimPrefix(val, "Patient/")
	}
	sub, err := s.subscriptions.Create(r.Context(), p, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", s.fhirBase(r)+"/Subscription/"+sub.ID)
	s.writeSubscription(w, r, http.StatusCreated, sub)
}

var errNoSubscriptions = vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this server does not run subscriptions")

// writeSubscription answers with the Subscription resource of sub.
func (s *Server) writeSubscription(w http.ResponseWriter, r *http.Request, status int, sub vitalgate.Subscription) {
	out := subscriptionResource{ResourceType: "Subscription", ID: sub.ID, Status: string(sub.Status), Criteria: sub.Topic,
		Reason: "Vitalgate topic subscription", Error: sub.Error}
	out.Channel.Type, out.Channel.Endpoint, out.Channel.Payload = "rest-hook", sub.Endpoint, "application/fhir+json"
	out.Channel.PayloadExt = &elementExt{Extension: []extension{{URL: backportContent, ValueCode: sub.Payload}}}
	body, err := json.Marshal(out)
	if err != nil {
		s.writeError(w, r, vitalgate.Internal(err, "subscription resource"))
		return
	}
	writeResource(w, status, body, 0, time.Time{})
}

// subscriptionOf returns the subscription of the request's {id}, or answers the error.
func (s *Server) subscriptionOf(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) (vitalgate.Subscription, bool) {
	if s.subscriptions == nil {
		s.writeError(w, r, errNoSubscriptions)
		return vitalgate.Subscription{}, false
	}
	id, err := pathID(r)
	var sub vitalgate.Subscription
	if err == nil {
		sub, err = s.subscriptions.Get(r.Context(), p, id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return sub, false
	}
	return sub, true
}

// handleReadSubscription serves GET /fhir/Subscription/{id}.
func (s *Server) handleReadSubscription(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if sub, ok := s.subscriptionOf(w, r, p); ok {
		s.writeSubscription(w, r, http.StatusOK, sub)
	}
}

// handleDeleteSubscription serves DELETE /fhir/Subscription/{id}: the subscription is off.
func (s *Server) handleDeleteSubscription(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	sub, ok := s.subscriptionOf(w, r, p)
	if !ok {
		return
	}
	if err := s.subscriptions.Delete(r.Context(), p, sub.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleSubscriptionStatus serves GET /fhir/Subscription/{id}/$status: a searchset Bundle
// holding the subscription's status (Parameters, as the backport's notifications carry it).
func (s *Server) handleSubscriptionStatus(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	sub, ok := s.subscriptionOf(w, r, p)
	if !ok {
		return
	}
	var n struct {
		Entry []json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(s.subscriptions.Notification(sub, "query-status", nil), &n); err != nil || len(n.Entry) == 0 {
		s.writeError(w, r, vitalgate.Internal(err, "subscription status"))
		return
	}
	body, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": n.Entry[:1]})
	if err != nil {
		s.writeError(w, r, vitalgate.Internal(err, "subscription status"))
		return
	}
	writeResource(w, http.StatusOK, body, 0, time.Time{})
}

// handleSubscriptionEvents serves GET /fhir/Subscription/{id}/$events
// [?eventsSinceNumber=N][&eventsUntilNumber=M][&content=id-only|full-resource]: the events
// a subscriber missed, as a notification Bundle of type query-event.
func (s *Server) handleSubscriptionEvents(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	sub, ok := s.subscriptionOf(w, r, p)
	if !ok {
		return
	}
	q := r.URL.Query()
	num := func(name string) (uint64, error) {
		v := q.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return 0, vitalgate.Errorf(vitalgate.EINVALID, "%s is an event number (1, 2, ...)", name)
		}
		return n, nil
	}
	from, err := num("eventsSinceNumber")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	to, err := num("eventsUntilNumber")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	content := q.Get("content")
	if content != "" && content != subscription.PayloadIDOnly && content != subscription.PayloadFullResource {
		s.writeError(w, r, vitalgate.Errorf(vitalgate.EINVALID, "content is id-only or full-resource"))
		return
	}
	sub, evs, err := s.subscriptions.Events(r.Context(), p, sub.ID, from, to, content)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeResource(w, http.StatusOK, s.subscriptions.Notification(sub, "query-event", evs), 0, time.Time{})
}

// handleSubscriptionTopics serves GET /fhir/SubscriptionTopic: the topics this server
// offers (R5 SubscriptionTopic resources).
func (s *Server) handleSubscriptionTopics(w http.ResponseWriter, r *http.Request, _ vitalgate.Principal) {
	topic := map[string]any{"resourceType": "SubscriptionTopic", "id": "new-observation", "url": subscription.TopicObservation,
		"status": "active", "title": "New Observation for a patient in scope",
		"description":       "An Observation stored (by a device, over FHIR or HL7 v2) for a patient of the subscriber's site that it may see (a clinician: its care team).",
		"resourceTrigger":   []any{map[string]any{"resource": "Observation", "supportedInteraction": []string{"create"}}},
		"canFilterBy":       []any{map[string]any{"resource": "Observation", "filterParameter": "patient"}},
		"notificationShape": []any{map[string]any{"resource": "Observation"}}}
	body, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "searchset", "total": 1,
		"entry": []any{map[string]any{"fullUrl": s.fhirBase(r) + "/SubscriptionTopic/new-observation", "resource": topic}}})
	if err != nil {
		s.writeError(w, r, vitalgate.Internal(err, "subscription topics"))
		return
	}
	writeResource(w, http.StatusOK, body, 0, time.Time{})
}
