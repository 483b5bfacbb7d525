package auth

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// ClientStore is what the administration of API clients needs from storage.
type ClientStore interface {
	// Client returns a client by id. Returns ENOTFOUND.
	Client(ctx context.Context, id string) (vitalgate.Client, error)
	// UpdateClient replaces an existing client and appends the audit entries atomically.
	// Returns ENOTFOUND.
	UpdateClient(ctx context.Context, c vitalgate.Client, audit ...[]byte) error
	// Clients returns every client, ordered by id.
	Clients(ctx context.Context) ([]vitalgate.Client, error)
	// CreateClient registers a client and appends the audit entries atomically. Returns
	// ECONFLICT if the id exists.
	CreateClient(ctx context.Context, c vitalgate.Client, audit ...[]byte) error
	// Site returns a site. ENOTFOUND.
	Site(ctx context.Context, id string) (vitalgate.Site, error)
}

// ClientAdmin is an operator's administration of API clients: disable, rotate the secret,
// change the care team or the scopes. Every change is written with its audit entry in one
// transaction and holds from the client's next token request; tokens issued before it stay
// valid until they expire (at most MaxTokenTTL).
type ClientAdmin struct {
	Store    ClientStore
	Operator string           // who acts, for the audit entries
	Now      func() time.Time // nil: time.Now
	Hash     HashParams       // of new secrets; zero: DefaultHashParams
	Rand     io.Reader        // nil: crypto/rand
	// Index is the blind index of a patient id within a site (vault.SitePatientIndex), for
	// SetCareTeam.
	Index func(site, patientID string) []byte
}

// SetCareTeam replaces a clinician's care team with the patients patientIDs of the
// clinician's own site (SetPatients with their blind indexes in that site). Returns
// ENOTFOUND, EINVALID for a client that is not a clinician.
func (a *ClientAdmin) SetCareTeam(ctx context.Context, id string, patientIDs []string) error {
	if a.Index == nil {
		return errors.New("auth: a care team needs the patient index (ClientAdmin.Index)")
	}
	return a.update(ctx, id, "client-set-patients", func(c *vitalgate.Client) (string, error) {
		if c.Role != vitalgate.RoleClinician {
			return "", vitalgate.Errorf(vitalgate.EINVALID, "a care team applies to clinicians only; client %q is %s", id, c.Role)
		}
		c.PatientIndexes = nil
		for _, p := range patientIDs {
			c.PatientIndexes = append(c.PatientIndexes, a.Index(c.Site, p))
		}
		return "care team of " + strconv.Itoa(len(patientIDs)) + " patients", nil
	})
}

// Add registers client c of site c.Site (the default site when empty), audited. Unless c
// carries a key set (private_key_jwt), it gets a new secret, returned here once (only its
// argon2id hash is stored). Only an auditor may be deployment-wide (vitalgate.AllSites).
// Returns EINVALID for a role that does not exist, scopes beyond it or a bad site id,
// ENOTFOUND for a site that does not exist, ECONFLICT for a taken id.
func (a *ClientAdmin) Add(ctx context.Context, c vitalgate.Client) (secret string, err error) {
	if a.Store == nil {
		return "", errors.New("auth: client administration needs a store")
	}
	if !ValidRole(c.Role) {
		return "", vitalgate.Errorf(vitalgate.EINVALID, "%q is not a role", c.Role)
	}
	if c.Site == "" {
		c.Site = vitalgate.DefaultSite
	}
	if err := a.checkSite(ctx, c); err != nil {
		return "", err
	}
	if _, err := GrantScopes(c.Role, c.Scopes, ""); err != nil {
		return "", err
	}
	if len(c.JWKS) == 0 {
		if secret, err = NewSecret(a.Rand); err != nil {
			return "", err
		}
		if c.SecretHash, err = HashSecret(secret, a.hash(), a.Rand); err != nil {
			return "", err
		}
	}
	desc := "role " + string(c.Role)
	if len(c.OtherSites) > 0 {
		desc += "; also sites " + strings.Join(c.OtherSites, ",")
	}
	entry := audit.Entry{Time: a.now().UTC(), Action: audit.ActionCreate, Type: "admin", Subtype: "client-add",
		AgentType: audit.AgentOperator, AgentID: a.Operator, Outcome: audit.OutcomeSuccess,
		Resources: []string{"Client/" + c.ID}, OutcomeDesc: desc, Site: entrySite(c.Site)}
	if err := a.Store.CreateClient(ctx, c, entry.Marshal()); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return "", vitalgate.Errorf(vitalgate.ECONFLICT, "client %q exists already", c.ID)
		}
		return "", err
	}
	return secret, nil
}

// checkSite checks the sites of a new client: existing sites, or the whole deployment for
// an auditor. Only an EHR system or an auditor may act within several sites (one per
// token): a care team and an admin's authority belong to one site.
func (a *ClientAdmin) checkSite(ctx context.Context, c vitalgate.Client) error {
	return checkSites(ctx, a.Store, c)
}

// checkSites is the rule of checkSite, for clients and console users alike.
func checkSites(ctx context.Context, st interface {
	Site(ctx context.Context, id string) (vitalgate.Site, error)
}, c vitalgate.Client) error {
	if c.Site == vitalgate.AllSites && c.Role != vitalgate.RoleAuditor {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "site", "only an auditor may act for every site (--site '*')")
	}
	if len(c.OtherSites) > 0 && c.Role != vitalgate.RoleEHRSystem && c.Role != vitalgate.RoleAuditor {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "site",
			"only an ehr-system or auditor client may act within several sites; register one %s client per site", c.Role)
	}
	if err := vitalgate.CheckClientSites(c); err != nil {
		return err
	}
	if c.Site == vitalgate.AllSites {
		return nil
	}
	for _, site := range append([]string{c.Site}, c.OtherSites...) {
		rec, err := st.Site(ctx, site)
		if err != nil {
			if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
				return vitalgate.FieldErrorf(vitalgate.ENOTFOUND, "site", "no site %q exists; add it first (vitalgate site add)", site)
			}
			return err
		}
		if err := vitalgate.CheckSiteOpen(rec); err != nil {
			return err
		}
	}
	return nil
}

// hash returns the parameters of new secrets' hashes.
func (a *ClientAdmin) hash() HashParams {
	if a.Hash == (HashParams{}) {
		return DefaultHashParams
	}
	return a.Hash
}

func (a *ClientAdmin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// List returns every client, ordered by id.
func (a *ClientAdmin) List(ctx context.Context) ([]vitalgate.Client, error) {
	return a.Store.Clients(ctx)
}

// Disable disables a client: its next token request is refused like a wrong secret.
// Returns ENOTFOUND.
func (a *ClientAdmin) Disable(ctx context.Context, id string) error {
	return a.update(ctx, id, "client-disable", func(c *vitalgate.Client) (string, error) {
		c.Disabled = true
		return "disabled", nil
	})
}

// RotateSecret gives a client a new secret and returns it; the old one stops working.
// Returns ENOTFOUND, and EINVALID for a client that authenticates with keys.
func (a *ClientAdmin) RotateSecret(ctx context.Context, id string) (string, error) {
	var secret string
	err := a.update(ctx, id, "client-rotate-secret", func(c *vitalgate.Client) (string, error) {
		if c.SecretHash == "" && len(c.JWKS) > 0 {
			return "", vitalgate.Errorf(vitalgate.EINVALID, "client %q authenticates with its keys (private_key_jwt); it has no secret to rotate", id)
		}
		s, err := NewSecret(a.Rand)
		if err != nil {
			return "", err
		}
		if c.SecretHash, err = HashSecret(s, a.hash(), a.Rand); err != nil {
			return "", err
		}
		secret = s
		return "secret rotated", nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// SetPatients replaces a clinician's care team with the patients of the given blind
// indexes (none: no patient outside emergency access). Returns ENOTFOUND, and EINVALID for
// a client that is not a clinician.
func (a *ClientAdmin) SetPatients(ctx context.Context, id string, patientIndexes [][]byte) error {
	return a.update(ctx, id, "client-set-patients", func(c *vitalgate.Client) (string, error) {
		if c.Role != vitalgate.RoleClinician {
			return "", vitalgate.Errorf(vitalgate.EINVALID, "a care team applies to clinicians only; client %q is %s", id, c.Role)
		}
		c.PatientIndexes = patientIndexes
		return "care team of " + strconv.Itoa(len(patientIndexes)) + " patients", nil
	})
}

// SetScopes replaces a client's registered scopes (none: everything its role allows).
// Returns ENOTFOUND, and EFORBIDDEN for a scope beyond the client's role.
func (a *ClientAdmin) SetScopes(ctx context.Context, id string, scopes []string) error {
	return a.update(ctx, id, "client-set-scopes", func(c *vitalgate.Client) (string, error) {
		granted, err := GrantScopes(c.Role, scopes, "")
		if err != nil {
			return "", err
		}
		c.Scopes = scopes
		if len(scopes) == 0 {
			c.Scopes = nil
		}
		return "scopes " + strings.Join(granted, " "), nil
	})
}

// update reads a client, applies change and writes it back with its audit entry.
func (a *ClientAdmin) update(ctx context.Context, id, subtype string, change func(*vitalgate.Client) (string, error)) error {
	if a.Store == nil {
		return errors.New("auth: client administration needs a store")
	}
	c, err := a.Store.Client(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "no client has the id %q", id)
	} else if err != nil {
		return err
	}
	desc, err := change(&c)
	if err != nil {
		return err
	}
	entry := audit.Entry{Time: a.now().UTC(), Action: audit.ActionUpdate, Type: "admin", Subtype: subtype,
		AgentType: audit.AgentOperator, AgentID: a.Operator, Outcome: audit.OutcomeSuccess,
		Resources: []string{"Client/" + c.ID}, OutcomeDesc: desc, Site: entrySite(c.Site)}
	return a.Store.UpdateClient(ctx, c, entry.Marshal())
}
