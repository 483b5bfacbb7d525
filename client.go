package vitalgate

import (
	"context"
	"time"
)

// Role bounds what a principal may ever be allowed to do.
type Role string

// Roles. Devices get RoleDevice through enrollment, never through client registration.
const (
	RoleAdmin     Role = "admin"
	RoleClinician Role = "clinician"
	RoleEHRSystem Role = "ehr-system"
	RoleAuditor   Role = "auditor"
	RoleDevice    Role = "device"
)

// Client is a registered API client (an EHR, an app, an operator).
type Client struct {
	ID string
	// Site is the site the client acts within (its tokens carry it), or AllSites for a
	// deployment-wide auditor.
	Site string
	// OtherSites are further sites an EHR system or auditor serving several hospitals acts
	// within. A token still carries one site: the token request names which (its site
	// parameter); without one it is Site. Set at registration only.
	OtherSites []string
	Role       Role
	SecretHash string   // argon2id PHC string; empty for clients that authenticate with keys
	Scopes     []string // registered scopes; empty means everything the role allows
	// JWKS is the client's public JSON Web Key Set for private_key_jwt authentication.
	JWKS []byte
	// PatientIndexes are the blind indexes of the patients a clinician cares for (the care
	// team). A clinician reads only these patients, except through emergency access.
	PatientIndexes [][]byte
	CreatedAt      time.Time
	Disabled       bool
}

// ClientStore persists API clients. Trailing audit entries are appended in the same
// transaction as the write.
type ClientStore interface {
	// CreateClient registers a client. Returns ECONFLICT if the id exists.
	CreateClient(ctx context.Context, c Client, audit ...[]byte) error
	// Client returns a client by id. Returns ENOTFOUND.
	Client(ctx context.Context, id string) (Client, error)
	// UpdateClient replaces an existing client's role, secret hash, scopes, keys, care team
	// and disabled flag (its id and creation time stay) and appends the audit entries, in
	// one transaction. Returns ENOTFOUND if no client has the id.
	UpdateClient(ctx context.Context, c Client, audit ...[]byte) error
	// Clients returns every client, ordered by id.
	Clients(ctx context.Context) ([]Client, error)
}

// NonceStore remembers one-time values (client assertion jti) until they expire, across
// every node sharing the store.
type NonceStore interface {
	// UseNonce records key until expires. Returns ECONFLICT if key was recorded before and
	// has not expired.
	UseNonce(ctx context.Context, key string, expires time.Time) error
}

// Principal is an authenticated caller.
type Principal struct {
	Kind     string // "device", "client", "enrollee" or "anonymous"
	ID       string
	Role     Role
	Scopes   []string
	RemoteIP string
	// Site is the site the principal acts within: a client's registered site (carried by
	// its token), a device's site. AllSites for a deployment-wide auditor; empty for an
	// operator at the command line (who holds every authority) and an unauthenticated caller.
	Site string
	// Emergency marks break-glass access, with the reason the clinician gave.
	Emergency       bool
	EmergencyReason string
	// Reauthenticated marks a person of the web console who has just given their password
	// and second factor again (auth.People.Reauthenticate): dangerous acts ask for it.
	Reauthenticated bool
}

// NodeStore tracks the nodes serving one store, so that limits meant for the whole
// deployment can be shared out between them.
type NodeStore interface {
	// Heartbeat records that node is alive at the given time and returns how many nodes
	// (this one included) were seen within the last `within`.
	Heartbeat(ctx context.Context, node string, at time.Time, within time.Duration) (int, error)
}
