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
	ID         string
	Role       Role
	SecretHash string // argon2id PHC string; empty for clients that authenticate with keys
	Scopes     []string
	CreatedAt  time.Time
	Disabled   bool
}

// ClientStore persists API clients.
type ClientStore interface {
	// CreateClient registers a client. Returns ECONFLICT if the id exists.
	CreateClient(ctx context.Context, c Client) error
	// Client returns a client by id. Returns ENOTFOUND.
	Client(ctx context.Context, id string) (Client, error)
}

// Principal is an authenticated caller.
type Principal struct {
	Kind     string // "device" or "client"
	ID       string
	Role     Role
	Scopes   []string
	RemoteIP string
}
