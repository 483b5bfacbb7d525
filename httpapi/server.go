// Package httpapi is Vitalgate's HTTPS transport: the FHIR, EST and health routes, their
// authentication and permissions, request limits, TLS settings, and the one place where
// Vitalgate's errors become HTTP statuses and FHIR OperationOutcomes.
//
// Every route is declared in one table with the authentication it needs and the permission
// it checks; a request reaches a handler only after both succeed (deny by default).
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/metrics"
	"github.com/vitalgate/vitalgate/pki"
)

const fhirJSON = "application/fhir+json; charset=utf-8"

// Registry is what the HTTP layer needs from the device registry (registry.Service): the
// decision whether a certificate's device may act now, enrollment, renewal and assignment.
// Each method owns its rule and its audit entry.
type Registry interface {
	// AuthorizeHandshake decides at the TLS handshake, reading the registry afresh.
	// EUNAUTHORIZED, EUNAVAILABLE.
	AuthorizeHandshake(ctx context.Context, cert *x509.Certificate) (string, error)
	// Authorize decides per request, from registry facts at most the registry's staleness
	// bound old, and returns the device id. EUNAUTHORIZED, EUNAVAILABLE.
	Authorize(ctx context.Context, cert *x509.Certificate) (string, error)
	// AuthorizeUpdates is Authorize that also lets in a quarantined device whose updates
	// are not blocked, for the routes access.Remediation names. EUNAUTHORIZED, EUNAVAILABLE.
	AuthorizeUpdates(ctx context.Context, cert *x509.Certificate) (string, error)
	// EnrollDevice exchanges the one-time secret, or else the IDevID chain the device
	// presented at the handshake, and a base64 PKCS#10 body for a certificate.
	// EUNAUTHORIZED, ETHROTTLED, EINVALID, EUNPROCESSABLE, ETOOLARGE.
	EnrollDevice(ctx context.Context, p vitalgate.Principal, secret string, idevid []*x509.Certificate, csr []byte) (*x509.Certificate, error)
	// IssuedHere tells an operational certificate of the built-in CA from an IDevID.
	IssuedHere(cert *x509.Certificate) bool
	// AuthorizeIDevID decides an IDevID chain at the handshake. EUNAUTHORIZED, EUNAVAILABLE.
	AuthorizeIDevID(ctx context.Context, p vitalgate.Principal, chain []*x509.Certificate) (string, error)
	// Reenroll renews the presented certificate. EUNAUTHORIZED, EINVALID, EUNPROCESSABLE.
	Reenroll(ctx context.Context, current *x509.Certificate, csr []byte) (*x509.Certificate, error)
	// Assign reassigns a device to a patient and returns it. EFORBIDDEN, EINVALID,
	// ENOTFOUND, ECONFLICT.
	Assign(ctx context.Context, p vitalgate.Principal, deviceID, patientID string) (vitalgate.Device, error)
}

// ReadyFunc reports whether the node can serve requests (readiness): nil when it can, an
// error saying what is missing when it cannot.
type ReadyFunc func(ctx context.Context) error

// Server serves Vitalgate's HTTPS API.
type Server struct {
	cfg      Config
	ca       *pki.CA
	registry Registry
	ingest   *ingest.Service
	ready    ReadyFunc
	log      *slog.Logger
	now      func() time.Time
	access   *access.Service
	auth     TokenIssuer
	started  time.Time
	protect  *protection
	audit    *audit.Log
	auditor  Auditor
	updates  Updates
	rollouts Rollouts
	erasure  Erasure
	posture  Posture
	alerts   Alerts
	bulk     Bulk

	subscriptions Subscriptions
	console       http.Handler

	routes []Route
	mux    *http.ServeMux
}

// Options are the collaborators of a Server.
type Options struct {
	Config   Config
	CA       *pki.CA
	Registry Registry // the device registry service
	Ingest   *ingest.Service
	Ready    ReadyFunc // readiness of the node
	Logger   *slog.Logger
	Now      func() time.Time
	Access   *access.Service  // authorized reads
	Auth     TokenIssuer      // client authentication and token issuing (auth.Service)
	Metrics  *metrics.Metrics // optional
	Audit    *audit.Log       // the audit log (entries and checkpoints)
	Auditor  Auditor          // AuditEvent search, checkpoints and proofs (*auditquery.Service)
	Updates  Updates          // the update repository (*updates.Service); nil: no updates served
	Rollouts Rollouts         // update offers and device reports (*rollout.Service); nil: 503
	Erasure  Erasure          // patient erasure and legal holds (*erasure.Service)
	Posture  Posture          // the vulnerability posture report (*posture.Service); nil: 503
	Alerts   Alerts           // security alerts as DetectedIssue (*detect.Service); nil: 503
	Bulk     Bulk             // FHIR Bulk Data export (*bulk.Service); nil: 503
	// Subscriptions are topic-based subscriptions (*subscription.Service); nil: 503.
	Subscriptions Subscriptions
	// Console serves the people's web pages under /console/ (console.Server.Handler), with
	// their own authentication (session cookie), route table and headers; nil: no console.
	Console http.Handler
}

// New returns a Server with its routes registered.
func New(o Options) (*Server, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid HTTP configuration: %w", err)
	}
	if o.CA == nil || o.Registry == nil || o.Ingest == nil || o.Ready == nil ||
		o.Access == nil || o.Auth == nil || o.Audit == nil || o.Auditor == nil || o.Erasure == nil {
		return nil, errors.New("httpapi: CA, registry, ingest, readiness, access, auth, audit and erasure are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		cfg: o.Config, ca: o.CA, registry: o.Registry, ingest: o.Ingest, ready: o.Ready,
		log: o.Logger, now: o.Now,
		access: o.Access, auth: o.Auth,
		started: o.Now().UTC(),
		protect: newProtection(o.Config, o.Metrics, nil), // rate limits run on the real clock
		audit:   o.Audit, auditor: o.Auditor, updates: o.Updates, rollouts: o.Rollouts, erasure: o.Erasure, posture: o.Posture, alerts: o.Alerts, bulk: o.Bulk, subscriptions: o.Subscriptions,
		console: o.Console, mux: http.NewServeMux(),
	}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		if (rt.Permission == access.PermPublic) != (rt.Auth == AuthPublic) {
			return nil, fmt.Errorf("httpapi: route %s %s: only public routes may carry the public permission", rt.Method, rt.Pattern)
		}
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.guard(rt))
	}
	return s, nil
}

// Routes returns the registered routes (for documentation and the deny-by-default test).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Handler returns the HTTP handler: security headers, request ids and routing. Requests that
// match no route get a 404 OperationOutcome; a known path with another method gets 405.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		id := errorID()
		h.Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		r = r.WithContext(vitalgate.WithRequestInfo(ctx, vitalgate.RequestInfo{ID: id, RemoteIP: remoteIP(r)}))
		if s.console != nil && (strings.HasPrefix(r.URL.Path, "/console/") || r.URL.Path == "/console") {
			if r.URL.Path == "/console" {
				http.Redirect(w, r, "/console/", http.StatusSeeOther)
				return
			}
			if err := s.beforeAuth(w, r, Route{Pattern: r.URL.Path}); err != nil { // the per-address rate limit
				s.writeError(w, r, err)
				return
			}
			s.console.ServeHTTP(w, r) // browser routes: a table of their own, never an API route
			return
		}
		if _, pattern := s.mux.Handler(r); pattern == "" {
			s.writeError(w, r, vitalgate.Errorf(vitalgate.ENOTFOUND, "no such endpoint"))
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

type requestIDKey struct{}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// TLSConfig returns the listener's TLS settings: TLS 1.3 (1.2 only when configured, with
// ECDHE+AEAD suites), client certificates optional at the TLS layer but, when presented,
// verified and decided afresh: an operational certificate must chain to the built-in CA and
// be accepted by the registry (expired, unknown or revoked ones fail the handshake); any
// other certificate must be the manufacturer identity (IDevID) of a registered device whose
// model names its maker's CA, and is good for zero-touch enrollment only. Routes that need a
// device insist on an operational certificate and ask the registry again on every request.
// A quarantined device passes the handshake, for the update routes it may still use.
func (s *Server) TLSConfig(cert tls.Certificate) *tls.Config { return s.tlsConfig(cert, false) }

// DataTLSConfig is TLSConfig for a listener that carries device data only (MLLP): a device
// certificate of the built-in CA is required at the handshake, no protocol is negotiated,
// and a device that may not send data now — quarantined as well — fails the handshake.
func (s *Server) DataTLSConfig(cert tls.Certificate) *tls.Config { return s.tlsConfig(cert, true) }

func (s *Server) tlsConfig(cert tls.Certificate, data bool) *tls.Config {
	base := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// Verified in VerifyConnection: against the built-in CA, or by the registry as an
		// IDevID. The certificate request names no CA, so that a client sends its IDevID
		// as readily as an operational certificate.
		ClientAuth:       tls.RequestClientCert,
		NextProtos:       []string{"h2", "http/1.1"},
		Time:             s.now,
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384},
		VerifyConnection: s.verifyClient(vitalgate.RequestInfo{}, data),
	}
	if data {
		base.ClientAuth, base.NextProtos = tls.RequireAnyClientCert, nil // verified in VerifyConnection
	}
	if s.cfg.AllowTLS12 {
		base.MinVersion = tls.VersionTLS12
		base.CipherSuites = tls12Suites
	}
	c := base.Clone()
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if hello.Conn == nil {
			return nil, nil
		}
		conn := base.Clone() // for the refusal log's remote address and the hello's fingerprint
		conn.VerifyConnection = s.verifyClient(vitalgate.RequestInfo{RemoteIP: hostOnly(hello.Conn.RemoteAddr().String()),
			TLSFingerprint: helloFingerprint(hello)}, data)
		return conn, nil
	}
	return c
}

// verifyClient decides a presented client certificate at the handshake (ri, when known,
// has the address, for the registry's per-model network allow-lists and its refusal log,
// and the hello's fingerprint, a detection signal). With data set, only an operational
// certificate of a device that may send data now passes.
func (s *Server) verifyClient(ri vitalgate.RequestInfo, data bool) func(tls.ConnectionState) error {
	roots := s.ca.Pool()
	remoteIP := ri.RemoteIP
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			if data {
				return errors.New("this listener needs a device client certificate")
			}
			return nil
		}
		leaf := cs.PeerCertificates[0]
		if data && !s.registry.IssuedHere(leaf) {
			return errors.New("this listener needs an operational device certificate of this server, not a manufacturer certificate")
		}
		if !s.registry.IssuedHere(leaf) {
			p := vitalgate.Principal{Kind: access.KindEnrollee, ID: pki.IDevIDDeviceID(leaf), RemoteIP: remoteIP}
			_, err := s.registry.AuthorizeIDevID(context.Background(), p, cs.PeerCertificates)
			return err
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: s.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return fmt.Errorf("client certificate: %w", err)
		}
		// The address, for the model's network allow-list and the refusal's signal.
		ctx := vitalgate.WithRequestInfo(context.Background(), ri)
		if _, err := s.registry.AuthorizeHandshake(ctx, leaf); err != nil || !data {
			return err
		}
		_, err := s.registry.Authorize(ctx, leaf) // as fresh as the handshake's read: a quarantined device sends no data
		return err
	}
}

// helloFingerprint is a digest of what a client's TLS hello says about its TLS stack: the
// versions, cipher suites, extensions in the order sent, groups, point formats, signature
// schemes and protocols it offers, without GREASE values (RFC 8701), which a client draws
// anew for each connection. The first 16 bytes of SHA-256, in hex.
func helloFingerprint(h *tls.ClientHelloInfo) string {
	var b []byte
	list := func(vs []uint16) {
		for _, v := range vs {
			if v&0x0f0f != 0x0a0a { // GREASE: 0x0a0a, 0x1a1a, ... 0xfafa
				b = binary.BigEndian.AppendUint16(b, v)
			}
		}
		b = append(b, '|')
	}
	list(h.SupportedVersions)
	list(h.CipherSuites)
	list(h.Extensions)
	groups := make([]uint16, len(h.SupportedCurves))
	for i, c := range h.SupportedCurves {
		groups[i] = uint16(c)
	}
	list(groups)
	b = append(append(b, h.SupportedPoints...), '|')
	schemes := make([]uint16, len(h.SignatureSchemes))
	for i, sc := range h.SignatureSchemes {
		schemes[i] = uint16(sc)
	}
	list(schemes)
	for _, p := range h.SupportedProtos {
		b = append(append(b, p...), ',')
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// hostOnly is the host part of a host:port address.
func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// HTTPServer returns an *http.Server with every timeout and size limit of the configuration.
func (s *Server) HTTPServer(cert tls.Certificate) *http.Server {
	return &http.Server{
		Addr:              s.cfg.Addr,
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(cert),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState:         s.connState,
	}
}

// Serve accepts connections on ln (a plain TCP listener: TLS is added here) until ctx is
// cancelled, then shuts down gracefully: it stops accepting, lets in-flight requests finish
// within the configured grace, and returns. Connections first get their TLS handshake within
// the handshake budget (HandshakeTimeout, MaxHandshakes, MaxHandshakesPerIP), and only then
// one of the MaxConns and MaxConnsPerIP slots.
func (s *Server) Serve(ctx context.Context, ln net.Listener, cert tls.Certificate) error {
	srv := s.HTTPServer(cert)
	errc := make(chan error, 1)
	reject := func(reason string) { s.protect.metrics.Reject("conn_" + reason) }
	hs := guard.NewHandshakes(guard.HandshakeLimits{Total: s.cfg.MaxHandshakes, PerIP: s.cfg.MaxHandshakesPerIP, Timeout: s.cfg.HandshakeTimeout}, reject)
	tl := guard.NewTLSListener(ln, srv.TLSConfig, hs, guard.ConnLimits{Total: s.cfg.MaxConns, PerIP: s.cfg.MaxConnsPerIP}, reject)
	go func() { errc <- srv.Serve(tl) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

// readBody reads the request body within the configured limit.
func (s *Server) readBody(r *http.Request, w http.ResponseWriter) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, vitalgate.Errorf(vitalgate.ETOOLARGE, "request body is larger than the limit of %d bytes", s.cfg.MaxBodyBytes)
	} else if err != nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "request body could not be read completely")
	}
	return body, nil
}

// requireMediaType checks the Content-Type against the accepted types (parameters ignored).
func requireMediaType(r *http.Request, accepted ...string) error {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.ToLower(strings.TrimSpace(ct))
	for _, a := range accepted {
		if ct == a {
			return nil
		}
	}
	return vitalgate.Errorf(vitalgate.EUNSUPPORTED, "Content-Type must be %s", strings.Join(accepted, " or "))
}
