package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auditquery"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/bulk"
	"github.com/vitalgate/vitalgate/console"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/metrics"
	"github.com/vitalgate/vitalgate/mllp"
	"github.com/vitalgate/vitalgate/outbox"
	"github.com/vitalgate/vitalgate/registry"
	"github.com/vitalgate/vitalgate/rollout"
	"github.com/vitalgate/vitalgate/subscription"
)

// The services of a node, one constructor each, in the order assemble calls them. Each
// reads what it needs from s (the node, the options and the services built before it).

// newTokens builds the access-token issuer: the data dir's signing key, the public URL as
// issuer and its /fhir as audience.
func (s *server) newTokens() (*auth.Tokens, error) {
	key, err := s.n.TokenKey()
	if err != nil {
		return nil, err
	}
	pub := s.opt.HTTP.PublicURL
	return auth.NewTokens(key, pub, strings.TrimSuffix(pub, "/")+"/fhir", auth.MaxTokenTTL, s.n.env.Now)
}

// newAuditLog builds the node's audit log, writing as HOST/ADDR.
func (s *server) newAuditLog() (*audit.Log, error) { return s.n.AuditLog(s.name) }

// newAuth builds the token capability: client authentication (secret and private_key_jwt),
// token issuing and emergency access. It also makes the process-wide bound on secret
// hashing and the failed-authentication limiter that the registry shares for EST.
func (s *server) newAuth() (*auth.Service, error) {
	var hosts []string
	if len(s.cert.Certificate) > 0 {
		leaf, err := x509.ParseCertificate(s.cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("server certificate: %w", err)
		}
		hosts = append(hosts, leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			hosts = append(hosts, ip.String())
		}
	}
	_, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", s.addr, err)
	}
	if s.secrets, err = auth.NewSecretChecker(runtime.GOMAXPROCS(0), 64, s.n.HashParams()); err != nil {
		return nil, err
	}
	s.failures = guard.NewFailures(s.opt.HTTP.AuthFailuresPerMinute, time.Minute, s.n.env.Now)
	return auth.NewService(auth.ServiceConfig{
		Store: s.n.Store, Tokens: s.tokens, Secrets: s.secrets, Failures: s.failures, Audit: s.audit,
		TokenURLs: auth.PublicTokenURLs(s.publicURL, hosts, port), EmergencyTTL: s.opt.HTTP.EmergencyTTL,
		Now: s.n.env.Now, Logger: s.log, Signals: s.signals(),
	})
}

// DetectOptions configure detection: the rules file (default: the shipped rules,
// detect/rules.json), whether a high-severity identity, authentication or protocol alert
// quarantines its device by itself (never a clinical-value alert), and the webhook alerts
// are forwarded to.
type DetectOptions struct {
	RulesFile      string
	AutoQuarantine bool
	// WebhookURL receives every alert as a signed HTTPS POST (package outbox); "" for none.
	// WebhookSecretFile holds the HMAC secret (at least 32 bytes; surrounding white space is
	// dropped); it is read once and never logged. WebhookCA is a PEM file of the receiver's
	// CA (default: the system roots).
	WebhookURL        string
	WebhookSecretFile string
	WebhookCA         string
	// Off runs no detection at all: no signals, no alerts (GET /fhir/DetectedIssue answers
	// 503). It is the same-run baseline of `vitalgate bench --scenario detect`, which
	// measures what detection adds to ingest; serve has no flag for it.
	Off bool
}

// signals is where the capabilities send their detection signals: nil (no interface value
// at all, so that they skip building them) when detection is off.
func (s *server) signals() detect.Sink {
	if s.detect == nil {
		return nil
	}
	return s.detect
}

// alerts is the detection capability as the DetectedIssue routes use it; nil when off.
func (s *server) alerts() httpapi.Alerts {
	if s.detect == nil {
		return nil
	}
	return s.detect
}

// newDetect builds the detection capability. It is built before the capabilities that
// emit its signals; it quarantines through the registry, built after it.
func (s *server) newDetect() (*detect.Service, error) {
	if s.opt.Detect.Off {
		return nil, nil
	}
	st, ok := s.n.Store.(vitalgate.AlertStore)
	if !ok {
		return nil, fmt.Errorf("the store (%T) keeps no alerts", s.n.Store)
	}
	rules := detect.DefaultRules()
	if f := s.opt.Detect.RulesFile; f != "" {
		b, err := os.ReadFile(f) // #nosec G304 -- the operator names the file
		if err != nil {
			return nil, fmt.Errorf("--detect-rules: %w", err)
		}
		if rules, err = detect.ParseRules(b); err != nil {
			return nil, fmt.Errorf("--detect-rules %s: %w", f, err)
		}
	}
	d, err := detect.New(detect.Config{Rules: rules, Store: st, Audit: s.audit, Quarantine: registryQuarantine{s},
		AutoQuarantine: s.opt.Detect.AutoQuarantine, Counters: metrics.NewDetection(), Now: s.n.env.Now, Logger: s.log})
	if err != nil {
		return nil, err
	}
	s.log.Info(d.Engine().String(), "auto_quarantine", s.opt.Detect.AutoQuarantine)
	return d, nil
}

// detectConfig is the detection configuration this run applies (for the evidence report).
func (s *server) detectConfig() *vitalgate.NodeDetection {
	if s.detect == nil {
		return nil
	}
	rs, n := s.detect.Engine().Rules(), 0
	for _, r := range rs.Rules {
		if !r.Disabled {
			n++
		}
	}
	return &vitalgate.NodeDetection{RulesVersion: rs.Version, Rules: n, RulesFile: s.opt.Detect.RulesFile,
		AutoQuarantine: s.opt.Detect.AutoQuarantine, Webhook: webhookHost(s.opt.Detect.WebhookURL)}
}

// webhookHost is the host of the alert webhook, as the node configuration records it (not
// its path or query, which may carry the receiver's token), "" for none.
func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil {
		return ""
	}
	return u.Host
}

// newAlertWebhook forwards alerts to --alert-webhook through the outbox: its cursor and its
// lease are in the store, so an outage or restart loses nothing and one node of a cluster at
// a time delivers. The URL's address is on the outbox allow-list by the operator's naming it.
func (s *server) newAlertWebhook() (*outbox.Webhook, error) {
	o := s.opt.Detect
	if o.WebhookSecretFile == "" {
		return nil, errors.New("--alert-webhook needs --alert-webhook-secret-file (a file of at least 32 random bytes, e.g. openssl rand -hex 32)")
	}
	raw, err := os.ReadFile(o.WebhookSecretFile) // #nosec G304 -- the operator names the file
	if err != nil {
		return nil, fmt.Errorf("--alert-webhook-secret-file: %w", err)
	}
	secret := bytes.TrimSpace(raw)
	var roots *x509.CertPool
	if o.WebhookCA != "" {
		pem, err := os.ReadFile(o.WebhookCA) // #nosec G304 -- the operator names the file
		if err != nil {
			return nil, fmt.Errorf("--alert-webhook-ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--alert-webhook-ca %s holds no PEM certificate", o.WebhookCA)
		}
	}
	u, err := url.Parse(o.WebhookURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("--alert-webhook must be an https:// URL")
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	st, ok := s.n.Store.(vitalgate.AlertStore)
	if !ok {
		return nil, fmt.Errorf("the store (%T) keeps no alerts", s.n.Store)
	}
	ob, err := outbox.New(outbox.Config{Log: s.n.Store, Cursors: s.n.Store, Allow: []string{addr}, Batch: 100,
		OnError: func(dest string, err error) {
			s.log.Warn("alert forwarding failed; will retry", "destination", dest, "error", err.Error())
		}})
	if err != nil {
		return nil, err
	}
	w, err := ob.Webhook(outbox.WebhookConfig{URL: o.WebhookURL, Secret: secret, Alerts: st, Leases: s.n.Store,
		Holder: s.name, Roots: roots, Now: s.n.env.Now})
	if err != nil {
		return nil, fmt.Errorf("--alert-webhook: %w", err)
	}
	return w, nil
}

// registryQuarantine quarantines through the server's registry, once it is built.
type registryQuarantine struct{ s *server }

func (q registryQuarantine) Quarantine(ctx context.Context, p vitalgate.Principal, id, reason string) error {
	if q.s.registry == nil {
		return vitalgate.Errorf(vitalgate.EUNAVAILABLE, "the registry is not running")
	}
	return q.s.registry.Quarantine(ctx, p, id, reason)
}

// newRegistry builds the device registry capability: enrollment, renewal, revocation,
// assignment and the "may this certificate act now" decision, for every transport.
func (s *server) newRegistry() (*registry.Service, error) {
	cfg := s.opt.Registry
	if cfg.HashParams.Memory == 0 { // not configured: the defaults
		cfg = registry.DefaultConfig()
	}
	cfg.Failures, cfg.Signals, cfg.ModelNetworks = s.failures, s.signals(), s.opt.ModelNetworks
	secrets := s.secrets
	cfg.VerifySecret = func(hash, secret string) (bool, error) {
		return secrets.Check(context.Background(), hash, secret) // within the process-wide bound
	}
	return s.n.NewRegistry(s.audit, cfg, s.log)
}

// newIngest builds the ingest capability that HTTPS and MLLP share.
func (s *server) newIngest() *ingest.Service {
	n := s.n
	return &ingest.Service{Registry: s.registry, Resources: n.Store, Vault: n.Vault, Limits: s.limits(), Now: n.env.Now,
		Audit: s.audit, Finder: n.Store, Units: n.Store, MaxBackdate: s.opt.MaxBackdate, Authorities: s.opt.Authorities,
		LabAcceptUnknownCodes: s.opt.LabAcceptUnknownCodes, Signals: s.signals()}
}

// newAccess builds the read and search capability (Device.version from the rollouts).
func (s *server) newAccess() *access.Service {
	return &access.Service{Store: s.n.Store, Vault: s.n.Vault, Now: s.n.env.Now, Audit: s.audit, Versions: s.rollout, Signals: s.signals()}
}

// newBulk builds the bulk export capability: its jobs run on every node (a lease in the
// store gives each to one), its files sealed under the deployment's keys.
func (s *server) newBulk() (*bulk.Service, error) {
	st, ok := s.n.Store.(bulk.Store)
	if !ok {
		return nil, fmt.Errorf("the store (%T) keeps no bulk exports", s.n.Store)
	}
	return &bulk.Service{Store: st, Vault: s.n.Vault, Access: s.access, Audit: s.audit, Now: s.n.env.Now, Node: s.name,
		Retention: s.opt.ExportRetention, Logger: s.log}, nil
}

// newSubscriptions builds the subscription capability: events numbered from the audit log
// and delivered to the endpoints the operator allowed, every node stepping (a cursor in
// the store numbers each event once).
func (s *server) newSubscriptions() (*subscription.Service, error) {
	st, ok := s.n.Store.(subscription.Store)
	if !ok {
		return nil, fmt.Errorf("the store (%T) keeps no subscriptions", s.n.Store)
	}
	var roots *x509.CertPool
	if f := s.opt.SubscriptionCA; f != "" {
		pem, err := os.ReadFile(f) // #nosec G304 -- the operator names the file
		if err != nil {
			return nil, fmt.Errorf("--subscription-ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--subscription-ca %s holds no PEM certificate", f)
		}
	}
	return &subscription.Service{Store: st, Vault: s.n.Vault, Access: s.access, Audit: s.audit, Now: s.n.env.Now,
		Allow: s.opt.SubscriptionAllow, Roots: roots, Base: s.linkBase() + "/fhir", Node: s.name, Logger: s.log}, nil
}

// linkBase is the base URL of links this node sends outside a request (notifications): the
// public URL, or for a server listening on all addresses without one, the first host name
// of its certificate at its port.
func (s *server) linkBase() string {
	pub := strings.TrimSuffix(s.opt.HTTP.PublicURL, "/")
	if s.publicURL != "" || len(s.cert.Certificate) == 0 {
		return pub
	}
	host, port, err := net.SplitHostPort(s.addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsUnspecified() {
		return pub
	}
	if leaf, err := x509.ParseCertificate(s.cert.Certificate[0]); err == nil && len(leaf.DNSNames) > 0 {
		return "https://" + net.JoinHostPort(leaf.DNSNames[0], port)
	}
	return pub
}

// newRollout builds the rollout capability: offers from opt.Releases, device reports,
// health gates.
func (s *server) newRollout() (*rollout.Service, error) {
	st, ok := s.n.Store.(rollout.Store)
	if !ok {
		return nil, fmt.Errorf("the store (%T) keeps no rollouts", s.n.Store)
	}
	rel := s.opt.Releases
	if rel == nil { // the data dir's own repository
		rel = s.updates
	}
	return &rollout.Service{Store: st, Releases: rel, Audit: s.audit, Now: s.n.env.Now}, nil
}

// newMetrics builds the Prometheus metrics, with the number of enrolled devices and the
// rollouts' patch-latency figures read from the store at every scrape.
func (s *server) newMetrics() *metrics.Metrics {
	store := s.n.Store
	m := s.deviceMetrics(store)
	if c, ok := s.detect.Counters().(prometheus.Collector); ok {
		m.Registry.MustRegister(c)
	}
	if ro := s.rollout; ro != nil {
		m.RegisterPatchLatency(func(ctx context.Context) ([]metrics.PatchLatency, error) {
			ls, err := ro.Latencies(ctx)
			out := make([]metrics.PatchLatency, len(ls))
			for i, l := range ls {
				out[i] = metrics.PatchLatency{Model: l.Model, Version: l.Version, Targeted: l.Targeted, Installed: l.Installed,
					Failed: l.Failed, Behind: l.Behind, To50: l.To50, To90: l.To90, To100: l.To100, FailureRate: l.FailureRate}
			}
			return out, err
		})
	}
	return m
}

// deviceMetrics builds the metrics with the number of enrolled devices read at every scrape.
func (s *server) deviceMetrics(store vitalgate.Store) *metrics.Metrics {
	return metrics.New(func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ds, err := store.Devices(ctx)
		if err != nil {
			return -1
		}
		enrolled := 0
		for _, d := range ds {
			if d.Status == vitalgate.DeviceActive && d.EnrollSecretHash == "" {
				enrolled++
			}
		}
		return float64(enrolled)
	})
}

// newConsole builds the people's web console on the services built before it: sign-in
// (auth.People, sharing the process's secret-hashing bound and failure throttle) and the
// pages over access, registry and auditquery.
func (s *server) newConsole(auditor *auditquery.Service) (http.Handler, error) {
	people, err := auth.NewPeople(auth.PeopleConfig{Store: s.n.Store, Secrets: s.secrets, Failures: s.failures, Audit: s.audit,
		Hash: s.n.HashParams(), IdleTimeout: s.opt.ConsoleIdle, Now: s.n.env.Now, Logger: s.log})
	if err != nil {
		return nil, err
	}
	if rpID, origins := passkeyOrigins(s.opt.HTTP.PublicURL, s.addr); rpID != "" {
		if err := people.EnablePasskeys(rpID, origins); err != nil {
			return nil, fmt.Errorf("passkeys: %w", err)
		}
	}
	c, err := console.New(console.Options{People: people, Access: s.access, Fleet: s.registry, Versions: s.rollout,
		Auditor: auditor, Logger: s.log, Now: s.n.env.Now})
	if err != nil {
		return nil, err
	}
	return c.Handler(), nil
}

// passkeyOrigins returns the WebAuthn relying-party id and origins of the console: the host
// name of the public URL; when that is an IP address (a WebAuthn RP id cannot be one),
// localhost at the listening port, for a console opened on the machine itself.
func passkeyOrigins(publicURL, addr string) (string, []string) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" {
		return "", nil
	}
	if net.ParseIP(u.Hostname()) == nil {
		return u.Hostname(), []string{strings.TrimSuffix(publicURL, "/")}
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil
	}
	return "localhost", []string{"https://localhost:" + port}
}

// newHTTP builds the HTTPS server on the services built before it.
func (s *server) newHTTP() (*httpapi.Server, error) {
	n := s.n
	auditor := &auditquery.Service{Store: n.Store, Log: s.audit, Patients: n.Vault, Sites: n.Store, Key: s.audit.Verifier()}
	web, err := s.newConsole(auditor)
	if err != nil {
		return nil, err
	}
	return httpapi.New(httpapi.Options{
		Config: s.opt.HTTP, CA: n.CA, Registry: s.registry, Ingest: s.ingest, Ready: n.Store.Ping, Logger: s.log, Now: n.env.Now,
		Access: s.access, Auth: s.auth, Metrics: s.metrics, Audit: s.audit,
		Auditor: auditor, Updates: s.updates, Rollouts: s.rollout, Console: web,
		Erasure:       n.ErasureService(s.audit), // needs n.Vault to follow keys/ (Open does)
		Posture:       s.newPosture(),
		Alerts:        s.alerts(),
		Bulk:          s.bulk,
		Subscriptions: s.subs,
	})
}

// newPosture builds the vulnerability posture capability on the node's store; nil (GET
// /posture answers 503) when the store keeps none.
func (s *server) newPosture() httpapi.Posture {
	p, err := s.n.Posture(s.audit)
	if err != nil {
		s.log.Warn("no vulnerability posture", "error", err.Error())
		return nil
	}
	return p
}

// newIntake builds the HL7 v2 (PCD-01) intake of the MLLP listener: the same ingest
// capability as HTTPS, patients resolved from PID-3 identifiers, the per-caller rate limit
// of HTTPS per device.
func (s *server) newIntake() *mllp.Intake {
	return &mllp.Intake{
		Ingest: s.ingest, Log: s.log, Now: s.n.env.Now, Limits: hl7v2.Limits{}, Writes: s.http.WriteShedder(),
		Result: func(ack string) { s.metrics.MLLPMessages.WithLabelValues(ack).Inc() },
		Limit:  guard.NewLimiter(s.opt.HTTP.RatePerCaller, s.opt.HTTP.BurstPerCaller, nil),
	}
}

// serveMLLP starts the MLLP/TLS listener: device certificates required and checked against
// the registry at the handshake, exactly as for HTTPS (base is the HTTPS TLS
// configuration). The returned function stops it gracefully.
func (s *server) serveMLLP(base *tls.Config) (func(), error) {
	tc := base.Clone() // httpapi's DataTLSConfig: a device certificate, decided at the handshake
	ln, err := net.Listen("tcp", s.opt.MLLPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (MLLP): %w", s.opt.MLLPAddr, err)
	}
	h := s.opt.HTTP
	srv, err := mllp.NewServer(mllp.Config{Logger: s.log, Now: s.n.env.Now, Authorizer: s.registry,
		HandshakeTimeout: h.HandshakeTimeout, MaxHandshakes: min(h.MaxHandshakes, mllp.DefaultMaxHandshakes),
		MaxHandshakesPerIP: min(h.MaxHandshakesPerIP, h.MaxHandshakes, mllp.DefaultMaxHandshakes)}, s.newIntake())
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(tls.NewListener(s.allowed(ln, "mllp"), tc)); err != nil && !errors.Is(err, mllp.ErrServerClosed) {
			s.log.Error("MLLP listener failed", "error", err.Error())
		}
	}()
	s.log.Info("vitalgate MLLP/TLS serving", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}

// allowed wraps a listener with the global network allow-list (--allow-networks): a
// connection from elsewhere is closed at accept, before TLS, counted
// (vitalgate_rejected_total{reason="network_not_allowed"}) and logged at debug level (a
// scan must not flood the log).
func (s *server) allowed(ln net.Listener, name string) net.Listener {
	return guard.NewNetworkListener(ln, s.opt.AllowNetworks, func(ip string) {
		s.metrics.Reject("network_not_allowed")
		s.log.Debug("connection from a network not allowed", "listener", name, "source", ip)
	})
}

// newSyslogForwarder forwards the audit log to a collector over TLS through the outbox: its
// position is kept in the store (an old DIR/syslog.cursor is taken over once), so a
// collector outage loses nothing. The address the operator names with --syslog-addr is on
// the outbox allow-list by that act.
func (s *server) newSyslogForwarder(ctx context.Context) (*outbox.Destination, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.opt.SyslogCA != "" {
		pem, err := os.ReadFile(s.opt.SyslogCA) // #nosec G304 -- the operator names the file
		if err != nil {
			return nil, fmt.Errorf("--syslog-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--syslog-ca %s holds no PEM certificate", s.opt.SyslogCA)
		}
	}
	ob, err := outbox.New(outbox.Config{Log: s.n.Store, Cursors: s.n.Store, Allow: []string{s.opt.SyslogAddr},
		OnError: func(dest string, err error) {
			s.log.Warn("audit forwarding failed; will retry", "destination", dest, "error", err.Error())
		}})
	if err != nil {
		return nil, err
	}
	d, err := ob.Syslog(s.opt.SyslogAddr, tc, s.host, "vitalgate")
	if err != nil {
		return nil, err
	}
	if err := d.ImportCursorFile(ctx, filepath.Join(s.n.Dir, SyslogCursorFile)); err != nil {
		return nil, err
	}
	return d, nil
}
