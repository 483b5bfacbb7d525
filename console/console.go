// Package console is Vitalgate's web console for people: server-rendered pages (html/template,
// embedded assets, no inline script; one script file, for passkeys) on the same HTTPS server
// as the API but on routes of their own (/console/...), authenticated by a session cookie
// instead of a token.
//
// It is a transport: every page decodes its request, calls the same capabilities the API
// calls (auth.People for sign-in and sessions, access for patient data, registry for the
// fleet, auditquery for the audit log) and renders the answer. The rules and their audit
// entries are those capabilities'; the console holds none of its own beyond the route table,
// where each route names how its caller authenticates and the permission it checks (deny by
// default, as in httpapi).
//
// Browser protections: the session cookie is __Host-, Secure, HttpOnly, SameSite=Strict;
// state-changing requests pass http.CrossOriginProtection and carry a form token bound to
// the session (or, before sign-in, to a pre-session cookie); every answer carries a strict
// Content-Security-Policy without inline code, frame-ancestors 'none', HSTS, a
// Referrer-Policy, a Permissions-Policy and Cache-Control: no-store.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/auditquery"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/registry"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Cookie names. __Host- makes the browser refuse the cookie unless it is Secure, has Path=/
// and names no domain.
const (
	SessionCookie = "__Host-vg-session"
	preCookie     = "__Host-vg-pre"
)

// People is the sign-in capability (auth.People).
type People interface {
	BeginSetup(ctx context.Context, in auth.SignIn) (auth.Enrollment, error)
	CompleteSetup(ctx context.Context, in auth.SignIn) (string, vitalgate.User, error)
	Login(ctx context.Context, in auth.SignIn) (string, vitalgate.User, error)
	Session(ctx context.Context, token, source string) (vitalgate.Principal, error)
	Logout(ctx context.Context, token, source string) error
	Reauthenticate(ctx context.Context, who vitalgate.Principal, in auth.SignIn) (vitalgate.Principal, error)
	PasskeysEnabled() bool
	BeginPasskeyRegistration(ctx context.Context, who vitalgate.Principal, token string) ([]byte, error)
	FinishPasskeyRegistration(ctx context.Context, who vitalgate.Principal, token string, body io.Reader) error
	BeginPasskeyLogin(ctx context.Context, token string) ([]byte, error)
	FinishPasskeyLogin(ctx context.Context, token string, body io.Reader, source string) (string, vitalgate.User, error)
	BeginPasskeyReauth(ctx context.Context, who vitalgate.Principal, token string) ([]byte, error)
	ReauthenticatePasskey(ctx context.Context, who vitalgate.Principal, token string, body io.Reader) (vitalgate.Principal, error)
}

// Access is the authorization and the reads of patient data (access.Service).
type Access interface {
	Authorize(ctx context.Context, p vitalgate.Principal, perm access.Permission, what string) error
	Search(ctx context.Context, p vitalgate.Principal, q access.Query) (access.Page, error)
	Read(ctx context.Context, p vitalgate.Principal, typ, id string) ([]byte, vitalgate.SealedResource, error)
}

// Fleet lists and revokes devices (registry.Service).
type Fleet interface {
	Overview(ctx context.Context, p vitalgate.Principal) ([]registry.DeviceRow, error)
	Revoke(ctx context.Context, p vitalgate.Principal, deviceID string) error
}

// Versions gives the software version a device reported installed (rollout.Service).
type Versions interface {
	InstalledVersion(ctx context.Context, deviceID string) (string, error)
}

// Auditor searches and reads the audit log and reports its integrity (auditquery.Service).
type Auditor interface {
	Search(ctx context.Context, p vitalgate.Principal, q auditquery.Query) ([][]byte, error)
	Entry(ctx context.Context, p vitalgate.Principal, index uint64) ([]byte, error)
	Status(ctx context.Context, p vitalgate.Principal) (auditquery.Status, error)
}

// Options are the collaborators of a Server.
type Options struct {
	People   People
	Access   Access
	Fleet    Fleet
	Versions Versions // optional: the fleet shows no software version without it
	Auditor  Auditor
	Logger   *slog.Logger
	Now      func() time.Time
}

// Auth is how a console route authenticates its caller.
type Auth string

// Authentication kinds of console routes.
const (
	// AuthPublic routes (sign-in, setup, the style sheet) need no session; each is listed
	// with access.PermPublic.
	AuthPublic Auth = "public"
	// AuthSession routes need a live session; the permission is checked on its principal.
	AuthSession Auth = "session"
)

// Route is one console route: method, path pattern (ServeMux syntax), authentication and
// permission.
type Route struct {
	Method     string
	Pattern    string
	Auth       Auth
	Permission access.Permission
	handler    func(w http.ResponseWriter, r *http.Request, p vitalgate.Principal)
}

// Server serves the console.
type Server struct {
	o      Options
	pages  map[string]*template.Template
	routes []Route
	mux    *http.ServeMux
	cop    *http.CrossOriginProtection
}

// New returns a console Server with its routes registered.
func New(o Options) (*Server, error) {
	if o.People == nil || o.Access == nil || o.Fleet == nil || o.Auditor == nil {
		return nil, errors.New("console: people, access, fleet and auditor are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, mux: http.NewServeMux(), cop: http.NewCrossOriginProtection()}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		if (rt.Permission == access.PermPublic) != (rt.Auth == AuthPublic) {
			return nil, fmt.Errorf("console: route %s %s: only public routes may carry the public permission", rt.Method, rt.Pattern)
		}
		if !strings.HasPrefix(rt.Pattern, Prefix) {
			return nil, fmt.Errorf("console: route %s %s is outside %s", rt.Method, rt.Pattern, Prefix)
		}
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.guard(rt))
	}
	return s, nil
}

// Prefix is the path every console route starts with; API routes never do.
const Prefix = "/console/"

func (s *Server) routeTable() []Route {
	return []Route{
		{"GET", "/console/static/{file}", AuthPublic, access.PermPublic, s.handleStatic},
		{"GET", "/console/login", AuthPublic, access.PermPublic, s.handleLoginForm},
		{"POST", "/console/login", AuthPublic, access.PermPublic, s.handleLogin},
		{"GET", "/console/setup", AuthPublic, access.PermPublic, s.handleSetupForm},
		{"POST", "/console/setup", AuthPublic, access.PermPublic, s.handleSetup},
		{"POST", "/console/setup/complete", AuthPublic, access.PermPublic, s.handleSetupComplete},
		{"POST", "/console/login/passkey/begin", AuthPublic, access.PermPublic, s.handlePasskeyLoginBegin},
		{"POST", "/console/login/passkey/finish", AuthPublic, access.PermPublic, s.handlePasskeyLoginFinish},
		{"GET", "/console/passkeys", AuthSession, access.PermConsole, s.handlePasskeys},
		{"POST", "/console/passkeys/begin", AuthSession, access.PermConsole, s.handlePasskeyBegin},
		{"POST", "/console/passkeys/finish", AuthSession, access.PermConsole, s.handlePasskeyFinish},
		{"POST", "/console/reauth/passkey/begin", AuthSession, access.PermConsole, s.handlePasskeyReauthBegin},
		{"GET", "/console/{$}", AuthSession, access.PermConsole, s.handleHome},
		{"POST", "/console/logout", AuthSession, access.PermConsole, s.handleLogout},
		{"GET", "/console/fleet", AuthSession, access.PermFleetRead, s.handleFleet},
		{"GET", "/console/devices/{id}", AuthSession, access.PermFleetRead, s.handleDevice},
		{"POST", "/console/devices/{id}/revoke", AuthSession, access.PermDeviceRevoke, s.handleRevoke},
		{"GET", "/console/patients", AuthSession, access.PermPatientSearch, s.handlePatients},
		{"GET", "/console/patients/{id}", AuthSession, access.PermObservationSearch, s.handlePatient},
		{"GET", "/console/audit", AuthSession, access.PermAuditRead, s.handleAudit},
		{"GET", "/console/audit/{index}", AuthSession, access.PermAuditRead, s.handleAuditEntry},
	}
}

// Routes returns the registered routes (for the deny-by-default route walk).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// RouteTable returns the console's route table without a server (for the route walk of a
// running deployment and for documentation).
func RouteTable() []Route { return (&Server{}).routeTable() }

type tokenKey struct{}

// guard authenticates the caller the way the route demands, checks the route's permission
// and, for a state-changing request, its form token; nothing reaches a handler otherwise.
func (s *Server) guard(rt Route) http.Handler {
	name := rt.Method + " " + rt.Pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := vitalgate.Principal{Kind: access.KindAnonymous, RemoteIP: remoteIP(r)}
		ctx := r.Context()
		if rt.Auth == AuthSession {
			c, err := r.Cookie(SessionCookie)
			token := ""
			if err == nil {
				token = c.Value
			}
			if p, err = s.o.People.Session(ctx, token, remoteIP(r)); err != nil {
				clearCookie(w, SessionCookie)
				if r.Method == http.MethodGet && vitalgate.ErrorCode(err) == vitalgate.EUNAUTHORIZED {
					http.Redirect(w, r, "/console/login?ended=1", http.StatusSeeOther)
					return
				}
				s.fail(w, r, p, err)
				return
			}
			ctx = context.WithValue(ctx, tokenKey{}, token)
			if err := s.o.Access.Authorize(ctx, p, rt.Permission, name); err != nil {
				s.fail(w, r, p, err)
				return
			}
		}
		if r.Method == http.MethodPost {
			if err := s.checkForm(w, r, ctx); err != nil {
				s.fail(w, r, p, err)
				return
			}
		}
		rt.handler(w, r.WithContext(ctx), p)
	})
}

var errForm = vitalgate.Errorf(vitalgate.EFORBIDDEN, "this form is out of date or was not sent from this console; reload the page and try again")

// checkForm checks a form's anti-forgery token: bound to the session, or before sign-in to
// the pre-session cookie. A form sends it as csrf_token (the name frameworks and scanners
// know); a JSON request of the console's own script (passkeys) as the X-Form-Token header.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request, ctx context.Context) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	sent := r.Header.Get("X-Form-Token")
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := r.ParseForm(); err != nil {
			return vitalgate.Errorf(vitalgate.EINVALID, "the form could not be read")
		}
		sent = r.PostForm.Get("csrf_token")
	}
	if !auth.CheckFormToken(boundToken(r, ctx), sent) {
		return errForm
	}
	return nil
}

// boundToken is what the request's form token is bound to: its session token, or before
// sign-in its pre-session cookie.
func boundToken(r *http.Request, ctx context.Context) string {
	if t, _ := ctx.Value(tokenKey{}).(string); t != "" {
		return t
	}
	if c, err := r.Cookie(preCookie); err == nil {
		return c.Value
	}
	return ""
}

// formToken returns the form token of the request's session, or of its pre-session cookie
// (set here when missing).
func (s *Server) formToken(w http.ResponseWriter, r *http.Request) string {
	if t, _ := r.Context().Value(tokenKey{}).(string); t != "" {
		return auth.FormToken(t)
	}
	if c, err := r.Cookie(preCookie); err == nil && c.Value != "" && len(c.Value) <= 64 {
		return auth.FormToken(c.Value)
	}
	v, err := auth.NewSecret(nil)
	if err != nil {
		return ""
	}
	setCookie(w, preCookie, v)
	return auth.FormToken(v)
}

func setCookie(w http.ResponseWriter, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ContentSecurityPolicy is the policy of every console answer: nothing but this origin's
// style sheet, images and one script file (passkeys; no inline script, no eval), requests
// and forms only to this origin, never in a frame.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Handler returns the console's HTTP handler: security headers, cross-origin protection of
// state-changing requests, routing. A path outside the route table gets a 404 page.
func (s *Server) Handler() http.Handler {
	routed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.mux.Handler(r); pattern == "" {
			s.fail(w, r, vitalgate.Principal{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "there is no such page"))
			return
		}
		s.mux.ServeHTTP(w, r)
	})
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, vitalgate.Principal{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "cross-origin request refused: use the console's own pages"))
	}))
	protected := s.cop.Handler(routed)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=(), payment=(), interest-cohort=(), publickey-credentials-create=(self), publickey-credentials-get=(self)")
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		protected.ServeHTTP(w, r)
	})
}

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request, _ vitalgate.Principal) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(staticFiles, "static/"+name)
	if err != nil || strings.Contains(name, "/") {
		s.fail(w, r, vitalgate.Principal{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "there is no such file"))
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	_, _ = w.Write(b) // #nosec G705 -- an embedded asset of this package (style sheet, script), served with its own Content-Type and nosniff
}
