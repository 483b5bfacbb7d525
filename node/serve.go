package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/bulk"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/metrics"
	"github.com/vitalgate/vitalgate/outbox"
	"github.com/vitalgate/vitalgate/registry"
	"github.com/vitalgate/vitalgate/rollout"
	"github.com/vitalgate/vitalgate/subscription"
	"github.com/vitalgate/vitalgate/updates"
)

// refreshUpdates re-signs the update timestamp and snapshot before they expire, on every
// node: the first node to store a new version wins and the others find it (updates.Refresh).
func (s *server) refreshUpdates(ctx context.Context) {
	every := s.opt.UpdateRefresh
	if every <= 0 {
		every = DefaultUpdateRefresh
	}
	s.updates.Run(ctx, every, func(err error) {
		s.log.Error("update metadata refresh failed", "error", err.Error())
	})
}

// Options are the settings of serve: the HTTPS server's configuration and the optional
// listeners and forwarders.
type Options struct {
	HTTP        httpapi.Config // HTTPS listener, limits and timeouts (start from httpapi.DefaultConfig())
	MLLPAddr    string         // also accept HL7 v2 over MLLP/TLS here ("" for none)
	MetricsAddr string         // serve Prometheus metrics on this loopback address ("" for none)
	SyslogAddr  string         // forward the audit log to this syslog collector over TLS ("" for none)
	SyslogCA    string         // PEM file of the collector's CA (default: the system roots)
	// Registry configures the device registry (start from registry.DefaultConfig(); its
	// collaborators are filled in by the node). A zero value means the defaults.
	Registry registry.Config
	// MaxBackdate bounds how long ago a device may date a reading (0: ingest's default).
	MaxBackdate time.Duration
	// MaxStringBytes bounds each string element of device-sent resources (0: the default).
	MaxStringBytes int
	// Authorities maps HL7 v2 assigning-authority namespaces to FHIR identifier systems.
	Authorities hl7v2.AuthorityTable
	// LabAcceptUnknownCodes accepts lab results whose LOINC code is not in the analyte
	// table (stored without range checks); off by default.
	LabAcceptUnknownCodes bool
	Logger                *slog.Logger // default: discard
	// UpdateMaxTarget bounds a published update file (0: updates.DefaultMaxTargetSize);
	// UpdateRefresh is how often the update timestamp and snapshot are checked for
	// re-signing (0: DefaultUpdateRefresh).
	UpdateMaxTarget int64
	UpdateRefresh   time.Duration
	// Ready, if set, is called with the HTTPS address once it listens.
	Ready func(addr string)
	// Releases is the release repository (package updates) rollouts offer from; nil: the
	// data dir's own (the usual case; tests may give another).
	Releases rollout.Releases
	// RolloutTick is how often health gates and rollouts are evaluated (0: 30 s).
	RolloutTick time.Duration
	// Detect configures intrusion and anomaly detection (services.go).
	Detect DetectOptions
	// ExportRetention is how long bulk export files are kept (0: bulk.DefaultRetention, 24 h).
	ExportRetention time.Duration
	// SubscriptionAllow is the allow-list of subscription endpoints (HOST:PORT); none: no
	// subscription can be created. SubscriptionCA is a PEM file of the CA that signed the
	// endpoints' certificates (default: the system roots).
	SubscriptionAllow []string
	SubscriptionCA    string
	// AllowNetworks, when not empty, are the only networks the HTTPS and MLLP listeners
	// accept connections from: any other is closed at accept, before TLS.
	AllowNetworks guard.Networks
	// ModelNetworks are, per device model, the networks its devices may connect from,
	// checked at the TLS handshake once the certificate names the device
	// (registry.Config.ModelNetworks).
	ModelNetworks guard.ModelNetworks
	// ConsoleIdle is the idle timeout of web console sessions (0: auth.DefaultIdleTimeout,
	// 15 min).
	ConsoleIdle time.Duration
}

// server is one run of serve: the services assembled on a node, and what runs them.
type server struct {
	n    *Node
	opt  Options
	log  *slog.Logger
	ln   net.Listener
	addr string // the HTTPS address listened on
	// publicURL is --public-url as the operator gave it ("" when not given).
	publicURL string
	host      string // this machine's host name
	name      string // this node's name in the audit log and the heartbeat table: HOST/ADDR
	cert      tls.Certificate

	// The services, each built by its own function in services.go.
	audit     *audit.Log
	registry  *registry.Service
	secrets   *auth.SecretChecker // the one bound on secret hashing in this process
	failures  *guard.Failures     // failed authentications per (principal, source)
	auth      *auth.Service
	tokens    *auth.Tokens
	ingest    *ingest.Service
	access    *access.Service
	metrics   *metrics.Metrics
	rollout   *rollout.Service
	http      *httpapi.Server
	forwarder *outbox.Destination // nil without --syslog-addr
	webhook   *outbox.Webhook     // nil without --alert-webhook
	updates   *updates.Service
	detect    *detect.Service
	bulk      *bulk.Service
	subs      *subscription.Service
}

// Serve runs the node's servers until ctx is cancelled: HTTPS (EST, FHIR, OAuth2, admin,
// audit API), and as opt says MLLP/TLS, metrics and syslog forwarding; the audit
// checkpointer and the heartbeat that shares deployment-wide limits between the nodes on
// the store. It records a start and a stop entry in the audit log and signs a last
// checkpoint after the listeners have stopped.
func (n *Node) Serve(ctx context.Context, opt Options) error {
	s, err := n.assemble(ctx, opt)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// assemble listens on the HTTPS address and builds every service. On error nothing is left
// listening.
func (n *Node) assemble(ctx context.Context, opt Options) (s *server, err error) {
	s = &server{n: n, opt: opt, log: opt.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// Open checked the data dir's record against this process's FIPS 140-3 mode; check
	// again for a Node built another way, and state the mode in /readyz.
	mode := ProcessFIPSMode()
	if err := n.Crypto.Check(n.Dir, mode); err != nil {
		return nil, err
	}
	if w := n.Crypto.Warning(mode); w != "" {
		s.log.Warn(w)
	}
	s.opt.HTTP.CryptoMode = n.Crypto.Mode(mode)
	if s.cert, err = n.ServerCertificate(); err != nil {
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", opt.HTTP.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opt.HTTP.Addr, err)
	}
	defer func() {
		if err != nil {
			_ = s.ln.Close()
		}
	}()
	s.addr = s.ln.Addr().String()
	s.publicURL = s.opt.HTTP.PublicURL // as given: client assertions must name it (or the init host names)
	if s.opt.HTTP.PublicURL == "" {
		s.opt.HTTP.PublicURL = "https://" + s.addr
	}
	s.host, _ = os.Hostname()
	s.name = s.host + "/" + s.addr
	if s.tokens, err = s.newTokens(); err != nil {
		return nil, err
	}
	if s.audit, err = s.newAuditLog(); err != nil {
		return nil, err
	}
	if s.detect, err = s.newDetect(); err != nil {
		return nil, err
	}
	if s.auth, err = s.newAuth(); err != nil {
		return nil, err
	}
	if s.registry, err = s.newRegistry(); err != nil {
		return nil, err
	}
	s.ingest = s.newIngest()
	if s.updates, err = s.n.Updates(s.audit, s.opt.UpdateMaxTarget); err != nil {
		return nil, err
	}
	if s.rollout, err = s.newRollout(); err != nil {
		return nil, err
	}
	s.access = s.newAccess()
	if s.bulk, err = s.newBulk(); err != nil {
		return nil, err
	}
	if s.subs, err = s.newSubscriptions(); err != nil {
		return nil, err
	}
	s.metrics = s.newMetrics()
	if s.http, err = s.newHTTP(); err != nil {
		return nil, err
	}
	if s.opt.SyslogAddr != "" {
		if s.forwarder, err = s.newSyslogForwarder(ctx); err != nil {
			return nil, err
		}
	}
	if s.opt.Detect.WebhookURL != "" && s.detect != nil {
		if s.webhook, err = s.newAlertWebhook(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// run serves until ctx is cancelled and stops everything it started.
func (s *server) run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = s.ln.Close() // no-op once Serve has taken it over
		}
	}()
	if err := s.audit.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "system", Subtype: "start",
		AgentType: audit.AgentSystem, AgentID: "vitalgate", OutcomeDesc: "server started on " + s.addr}); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	// The checkpointer signs while the server runs and once more after it has stopped (the
	// deferred calls run in reverse: stop entry, then final checkpoint).
	defer s.runCheckpointer()()
	defer func() {
		_ = s.audit.Append(context.Background(), audit.Entry{Action: audit.ActionExecute, Type: "system", Subtype: "stop",
			AgentType: audit.AgentSystem, AgentID: "vitalgate", OutcomeDesc: "server stopped"})
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx) // stops the background work when run returns early
	defer cancel()
	background := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	background(func() { s.heartbeat(ctx) })
	background(func() { s.refreshUpdates(ctx) })
	background(func() { s.rolloutTicker(ctx) })
	if s.detect != nil {
		background(func() { s.detect.Run(ctx) })
	}
	background(func() { s.bulk.Run(ctx) })
	background(func() { s.subs.Run(ctx) })
	if s.opt.MetricsAddr != "" {
		background(func() {
			if err := s.metrics.Serve(ctx, s.opt.MetricsAddr); err != nil {
				s.log.Error("metrics listener failed", "error", err.Error())
			}
		})
	}
	if s.forwarder != nil {
		background(func() { s.forwarder.Run(ctx) })
	}
	if s.webhook != nil {
		background(func() { s.webhook.Run(ctx) })
	}
	if s.opt.MLLPAddr != "" {
		stop, err := s.serveMLLP(s.http.DataTLSConfig(s.cert))
		if err != nil {
			return err
		}
		defer stop()
	}
	s.reportIdentifierConflicts(ctx)
	s.recordConfig(ctx) // the effective configuration, for the evidence report (node/config.go)
	s.log.Info("vitalgate serving", "addr", "https://"+s.addr, "data", s.n.Dir, "crypto", s.opt.HTTP.CryptoMode)
	if s.opt.Ready != nil {
		s.opt.Ready(s.addr)
	}
	start := time.Now()
	err = s.http.Serve(ctx, s.allowed(s.ln, "https"), s.cert)
	s.log.Info("vitalgate stopped", "uptime", time.Since(start).Round(time.Second).String())
	return err
}

// reportIdentifierConflicts warns about Patients that shared an identifier with another
// before the upgrade that made identifiers unique (README: "Upgrading a database with
// duplicate Patient identifiers"). Only Patient ids are logged, never identifiers.
func (s *server) reportIdentifierConflicts(ctx context.Context) {
	store, ok := s.n.Store.(interface {
		PatientIdentifierConflicts(context.Context) ([]vitalgate.IdentifierConflict, error)
	})
	if !ok {
		return
	}
	cs, err := store.PatientIdentifierConflicts(ctx)
	if err != nil {
		s.log.Warn("could not read the Patient identifier conflicts of the upgrade", "error", err.Error())
		return
	}
	for _, c := range cs {
		s.log.Warn("Patient lost an identifier to an older Patient with the same identifier when identifiers became unique; "+
			"see the README, Upgrading a database with duplicate Patient identifiers", "patient", c.ID, "kept_by", c.KeptID)
	}
}

// runCheckpointer starts signing audit checkpoints every 2 s; the returned function stops
// it after a last checkpoint.
func (s *server) runCheckpointer() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.audit.Run(ctx, 2*time.Second, func(err error) { s.log.Error("audit checkpoint failed", "error", err.Error()) })
	}()
	return func() { cancel(); <-done }
}

// heartbeat records this node in the store every 2 s and shares the limits out between the
// nodes seen in the last 10 s.
func (s *server) heartbeat(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	last := 1
	for {
		nodes, err := s.n.Store.Heartbeat(ctx, s.name, s.n.env.Now(), 10*time.Second)
		if err == nil && nodes != last {
			s.http.SetClusterSize(nodes) // before the log line, which tests wait for
			s.failures.SetMax(max(1, (s.opt.HTTP.AuthFailuresPerMinute+nodes-1)/nodes))
			s.log.Info("nodes on this store changed; limits shared out", "nodes", nodes)
			last = nodes
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rolloutTicker evaluates the health gates and the rollouts every RolloutTick (every node
// does; a rollout's revision keeps concurrent evaluations from losing each other's changes).
func (s *server) rolloutTicker(ctx context.Context) {
	every := s.opt.RolloutTick
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.rollout.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("rollout evaluation failed; retrying at the next tick", "error", err.Error())
		}
	}
}

// limits returns the FHIR decoding limits of the configuration.
func (s *server) limits() fhir.Limits {
	lim := fhir.DefaultLimits()
	lim.MaxEntries = s.opt.HTTP.MaxBundleEntries
	lim.MaxDepth = s.opt.HTTP.MaxJSONDepth
	if s.opt.MaxStringBytes > 0 {
		lim.MaxStringBytes = s.opt.MaxStringBytes
	}
	return lim
}
