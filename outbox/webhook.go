package outbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Webhook headers. The signature header is "t=UNIX,v1=HEX": HEX is the HMAC-SHA-256, under
// the shared secret, of the decimal UNIX time, a '.', and the body. A receiver checks it with
// VerifySignature, which also refuses a time too far from its own (a replayed request).
// The delivery header is the alert's id, the same on every attempt, so that a receiver can
// drop the rare second delivery (a node that stopped between the receiver's answer and
// recording it).
const (
	SignatureHeader = "Vitalgate-Signature"
	DeliveryHeader  = "Vitalgate-Delivery"
	EventHeader     = "Vitalgate-Event"
)

// MinWebhookSecret is the shortest webhook secret accepted, in bytes (the HMAC-SHA-256
// key length NIST SP 800-107 recommends at least).
const MinWebhookSecret = 32

// DefaultLease is how long a node holds a webhook's lease between renewals.
const DefaultLease = 30 * time.Second

// Alerts reads a stored alert (vitalgate.AlertStore).
type Alerts interface {
	Alert(ctx context.Context, id string) (vitalgate.Alert, error)
}

// Leases lets one node of a cluster at a time deliver to a destination
// (vitalgate.OutboxStore).
type Leases interface {
	ClaimOutbox(ctx context.Context, destination, holder string, ttl time.Duration) (bool, error)
}

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	// URL is where alerts are POSTed: https only; its HOST:PORT must be on the outbox's
	// allow-list. Redirects are not followed.
	URL string
	// Secret is the HMAC key the receiver shares, at least MinWebhookSecret bytes. It is
	// never logged nor put in an error.
	Secret []byte
	Alerts Alerts // required: the alerts the audit entries name
	// Leases and Holder (this node's name) make one node of a cluster at a time deliver;
	// without Leases every process delivers (a single node).
	Leases Leases
	Holder string
	Lease  time.Duration     // DefaultLease when 0
	Roots  *x509.CertPool    // the receiver's CA (nil: the system roots)
	Client *http.Client      // nil: one built from Roots, 10 s timeout, no redirects, no proxy
	Now    func() time.Time  // the signature's clock (default time.Now)
	Header map[string]string // extra request headers (none by default)
}

// Webhook forwards alerts to an HTTPS receiver: it walks the audit log from its cursor
// ("webhook:"+URL), POSTs each alert an entry of type detect/alert names, signed, and moves
// the cursor past an entry only once the receiver answered 2xx. A failure is retried with the
// outbox's backoff, from the same alert, so nothing is lost across outages and restarts.
type Webhook struct {
	o      *Outbox
	cfg    WebhookConfig
	name   string
	addr   string
	client *http.Client
}

// Webhook returns the webhook destination cfg describes. It refuses a URL that is not
// https, has user information, or whose address is not on the allow-list, a short secret,
// and a missing alert store.
func (o *Outbox) Webhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("outbox: webhook URL must be https://HOST[:PORT]/PATH without user or fragment")
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	if !o.Allowed(addr) {
		return nil, fmt.Errorf("outbox: %s is not on the allow-list of destinations", addr)
	}
	if len(cfg.Secret) < MinWebhookSecret {
		return nil, fmt.Errorf("outbox: the webhook secret must be at least %d bytes (e.g. openssl rand -hex 32)", MinWebhookSecret)
	}
	if cfg.Alerts == nil {
		return nil, errors.New("outbox: a webhook needs the alert store")
	}
	if cfg.Leases != nil && cfg.Holder == "" {
		return nil, errors.New("outbox: a webhook lease needs the node's name")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Webhook{o: o, cfg: cfg, name: "webhook:" + addr + u.EscapedPath(), addr: addr, client: cfg.Client}
	if w.client == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		w.client = &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.Roots},
				DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
					if !o.Allowed(a) {
						return nil, fmt.Errorf("%s is not on the allow-list", a)
					}
					return d.DialContext(ctx, network, a)
				},
				ForceAttemptHTTP2: true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return w, nil
}

// Name returns the destination's cursor key.
func (w *Webhook) Name() string { return w.name }

// Run delivers until ctx is done, with the outbox's backoff after failures.
func (w *Webhook) Run(ctx context.Context) {
	w.o.run(ctx, w.name, w.Step, func() { w.client.CloseIdleConnections() })
}

// pending is an alert to deliver: the audit entry that names it and its id.
type pending struct {
	index uint64
	id    string
}

// Step delivers the alerts of the next batch of entries, if this node holds the lease, and
// returns how many entries it moved past.
func (w *Webhook) Step(ctx context.Context) (int, error) {
	if held, err := w.claim(ctx); err != nil || !held {
		return 0, err
	}
	next, err := w.o.cfg.Cursors.OutboxCursor(ctx, w.name)
	if err != nil {
		return 0, err
	}
	size, err := w.o.cfg.Log.AuditSize(ctx)
	if err != nil || next >= size {
		return 0, err
	}
	end := min(size, next+uint64(max(w.o.cfg.Batch, 1))) // #nosec G115 -- a positive batch size
	var todo []pending
	err = w.o.cfg.Log.AuditEntries(ctx, next, end, func(r vitalgate.AuditRecord) error {
		e, err := audit.UnmarshalEntry(r.Data)
		if err != nil {
			return fmt.Errorf("audit entry %d: %w", r.Index, err)
		}
		if id := AlertOf(e); id != "" {
			todo = append(todo, pending{r.Index, id})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for i, p := range todo {
		if i > 0 { // renew the lease before each further request; stop if it was lost
			if held, err := w.claim(ctx); err != nil || !held {
				return int(p.index - next), err // #nosec G115 -- within one batch
			}
		}
		if err := w.deliver(ctx, p); err != nil {
			return int(p.index - next), err // #nosec G115 -- within one batch
		}
		// Recorded even when ctx ends now: the receiver has the alert, and a shutdown
		// between its answer and the cursor would send it again.
		if err := w.o.cfg.Cursors.SetOutboxCursor(context.WithoutCancel(ctx), w.name, p.index+1); err != nil {
			return int(p.index - next), err // #nosec G115 -- within one batch
		}
	}
	if err := w.o.cfg.Cursors.SetOutboxCursor(ctx, w.name, end); err != nil {
		return 0, err
	}
	return int(end - next), nil // #nosec G115 -- at most one batch
}

func (w *Webhook) claim(ctx context.Context) (bool, error) {
	if w.cfg.Leases == nil {
		return true, nil
	}
	return w.cfg.Leases.ClaimOutbox(ctx, w.name, w.cfg.Holder, w.cfg.Lease)
}

// AlertOf returns the id of the alert an audit entry raises (type detect, subtype alert,
// resource DetectedIssue/ID), "" for any other entry.
func AlertOf(e audit.Entry) string {
	if e.Type != "detect" || e.Subtype != "alert" {
		return ""
	}
	for _, r := range e.Resources {
		if id, ok := strings.CutPrefix(r, "DetectedIssue/"); ok {
			return id
		}
	}
	return ""
}

// AlertPayload is the JSON body of a webhook request: what the alert names, never a
// clinical value or a patient identifier (an alert holds none).
type AlertPayload struct {
	Type         string            `json:"type"` // "vitalgate.alert"
	ID           string            `json:"id"`
	AuditIndex   uint64            `json:"audit_index"` // the audit entry that raised it
	Rule         string            `json:"rule"`
	RulesVersion int               `json:"rules_version"`
	Severity     string            `json:"severity"`
	Category     string            `json:"category"`
	Description  string            `json:"description"`
	Device       string            `json:"device,omitempty"`
	Client       string            `json:"client,omitempty"`
	Source       string            `json:"source,omitempty"`
	Site         string            `json:"site,omitempty"`
	From         time.Time         `json:"window_from"`
	To           time.Time         `json:"window_to"`
	Evidence     map[string]string `json:"evidence"`
	Quarantined  bool              `json:"quarantined"`
	CreatedAt    time.Time         `json:"created_at"`
}

// NewAlertPayload returns the webhook body for alert a raised by the audit entry at index.
func NewAlertPayload(index uint64, a vitalgate.Alert) AlertPayload {
	return AlertPayload{Type: "vitalgate.alert", ID: a.ID, AuditIndex: index, Rule: a.Rule, RulesVersion: a.RulesVersion,
		Severity: a.Severity, Category: a.Category, Description: a.Description, Device: a.Device, Client: a.Client,
		Source: a.Source, Site: a.Site, From: a.From.UTC(), To: a.To.UTC(), Evidence: a.Evidence,
		Quarantined: a.Quarantined, CreatedAt: a.CreatedAt.UTC()}
}

func (w *Webhook) deliver(ctx context.Context, p pending) error {
	a, err := w.cfg.Alerts.Alert(ctx, p.id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return nil // an alert erased since (a site's erasure): nothing to forward
	} else if err != nil {
		return fmt.Errorf("read alert %s: %w", p.id, err)
	}
	body, err := json.Marshal(NewAlertPayload(p.index, a))
	if err != nil {
		return fmt.Errorf("encode alert %s: %w", p.id, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(EventHeader, "alert")
	req.Header.Set(DeliveryHeader, a.ID)
	req.Header.Set(SignatureHeader, Sign(w.cfg.Secret, w.cfg.Now(), body))
	for k, v := range w.cfg.Header {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // without the URL, whose query may hold the receiver's token
	}
	if err != nil {
		return fmt.Errorf("post alert %s to the webhook: %w", p.id, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s to alert %s; will retry", resp.Status, p.id)
	}
	return nil
}

// Sign returns the signature header value of body sent at t: "t=UNIX,v1=HEX".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a signature header value (see Sign) for body at now: the HMAC must
// match (compared in constant time) and its time be within tolerance of now, so that a
// captured request cannot be replayed later. It is what a receiver runs.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errors.New("webhook signature: malformed header (want t=UNIX,v1=HEX)")
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("webhook signature: no time or no v1 signature")
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		ok = hmac.Equal(s, want) || ok
	}
	if !ok {
		return errors.New("webhook signature does not match")
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook signature time is %s away from now (more than %s): a replay or a wrong clock", d.Round(time.Second), tolerance)
	}
	return nil
}
