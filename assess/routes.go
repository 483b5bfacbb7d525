package assess

// Access is how a route of the public contract expects its caller to authenticate.
type Access string

// Access kinds, mirroring httpapi.AuthKind (the assessor keeps its own copy on purpose: it
// checks the contract from the outside and must not trust the server's own table).
const (
	// Public routes are meant to answer anyone: discovery and health.
	Public Access = "public"
	// EnrollSecret routes need HTTP Basic device-id:one-time-secret (EST simpleenroll).
	EnrollSecret Access = "enroll-secret"
	// Device routes need a device client certificate (mutual TLS).
	Device Access = "device"
	// ClientCredentials is the token endpoint: client_secret_basic or private_key_jwt.
	ClientCredentials Access = "client-credentials"
	// Token routes need an OAuth2 bearer access token.
	Token Access = "token"
)

// Route is one endpoint of the public contract as the assessor probes it: a concrete path
// (placeholders filled with harmless values), the authentication it should demand, and the
// body sent with a probe.
type Route struct {
	Method string
	// Path is a concrete request path, query included.
	Path   string
	Access Access
	// ContentType and Body are sent with probes of routes that take a body.
	ContentType string
	Body        string
}

// String returns "METHOD PATH".
func (r Route) String() string { return r.Method + " " + r.Path }

// Content types of probe bodies.
const (
	ctFHIR   = "application/fhir+json"
	ctForm   = "application/x-www-form-urlencoded"
	ctPKCS10 = "application/pkcs10"
)

// KnownRoutes is the public contract of DESIGN.md §3 (and httpapi's route table) as probed
// from outside. Keep it in step with httpapi.Server.routeTable: a route missing here is a
// route nobody checks.
var KnownRoutes = []Route{
	{Method: "GET", Path: "/healthz", Access: Public},
	{Method: "GET", Path: "/readyz", Access: Public},
	{Method: "GET", Path: "/fhir/metadata", Access: Public},
	{Method: "GET", Path: "/.well-known/smart-configuration", Access: Public},
	{Method: "GET", Path: "/.well-known/est/cacerts", Access: Public},
	{Method: "POST", Path: "/.well-known/est/simpleenroll", Access: EnrollSecret, ContentType: ctPKCS10, Body: "not-a-csr"},
	{Method: "POST", Path: "/.well-known/est/simplereenroll", Access: Device, ContentType: ctPKCS10, Body: "not-a-csr"},
	{Method: "POST", Path: "/fhir/Observation", Access: Device, ContentType: ctFHIR, Body: `{"resourceType":"Observation"}`},
	{Method: "POST", Path: "/fhir", Access: Device, ContentType: ctFHIR, Body: `{"resourceType":"Bundle","type":"batch","entry":[]}`},
	{Method: "POST", Path: "/oauth2/token", Access: ClientCredentials, ContentType: ctForm, Body: "grant_type=client_credentials"},
	{Method: "GET", Path: "/fhir/Observation?patient=x", Access: Token},
	{Method: "GET", Path: "/fhir/Observation/x", Access: Token},
	{Method: "POST", Path: "/fhir/Patient", Access: Token, ContentType: ctFHIR, Body: `{"resourceType":"Patient"}`},
	{Method: "GET", Path: "/fhir/Patient?identifier=a%7Cb", Access: Token},
	{Method: "GET", Path: "/fhir/Patient/x", Access: Token},
	{Method: "GET", Path: "/fhir/Device/x", Access: Token},
	{Method: "PUT", Path: "/admin/devices/x", Access: Token, ContentType: "application/json", Body: `{"patient":"x"}`},
	{Method: "GET", Path: "/fhir/AuditEvent", Access: Token},
	{Method: "GET", Path: "/audit/checkpoint", Access: Token},
	{Method: "GET", Path: "/audit/proof/inclusion", Access: Token},
	{Method: "GET", Path: "/audit/proof/consistency", Access: Token},
}
