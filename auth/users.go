package auth

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// UserStore is what the administration and the sign-in of console users need from storage.
type UserStore interface {
	vitalgate.UserStore
	// Site returns a site. ENOTFOUND.
	Site(ctx context.Context, id string) (vitalgate.Site, error)
}

// SetupCodeTTL is how long the one-time setup code of a new or reset user is good for.
const SetupCodeTTL = 72 * time.Hour

// UserRole reports whether r is a role a person may hold in the console: admin, clinician
// or auditor (an EHR system is not a person, a device never signs in).
func UserRole(r vitalgate.Role) bool {
	return r == vitalgate.RoleAdmin || r == vitalgate.RoleClinician || r == vitalgate.RoleAuditor
}

// UserAdmin is an operator's administration of console users (vitalgate user ...): add,
// list, disable, reset. Every change is written with its audit entry in one transaction;
// disabling or resetting a user ends every session of the user at once, on every node.
type UserAdmin struct {
	Store    UserStore
	Operator string           // who acts, for the audit entries
	Now      func() time.Time // nil: time.Now
	Hash     HashParams       // of setup codes; zero: DefaultHashParams
	Rand     io.Reader        // nil: crypto/rand
	// Index is the blind index of a patient id within a site (vault.SitePatientIndex), for
	// a clinician's care team.
	Index func(site, patientID string) []byte
}

func (a *UserAdmin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *UserAdmin) hash() HashParams {
	if a.Hash == (HashParams{}) {
		return DefaultHashParams
	}
	return a.Hash
}

// setupCode gives u a new one-time setup code, returned once (only its hash is stored),
// and clears its password and second factors (TOTP and passkeys).
func (a *UserAdmin) setupCode(u *vitalgate.User) (string, error) {
	code, err := NewSecret(a.Rand)
	if err != nil {
		return "", err
	}
	if u.SetupHash, err = HashSecret(code, a.hash(), a.Rand); err != nil {
		return "", err
	}
	u.SetupExpiresAt = a.now().UTC().Add(SetupCodeTTL)
	u.PasswordHash, u.TOTPSecret, u.Passkeys = "", nil, nil
	return code, nil
}

// Add registers user u (site: the default site when empty) with the care team patientIDs
// (clinicians only) and returns its one-time setup code, shown once. Returns EINVALID for a
// role a person may not hold, a care team of a non-clinician or a bad id or site, ENOTFOUND
// for a site that does not exist, ECONFLICT for a taken id.
func (a *UserAdmin) Add(ctx context.Context, u vitalgate.User, patientIDs []string) (string, error) {
	if a.Store == nil {
		return "", errors.New("auth: user administration needs a store")
	}
	if !UserRole(u.Role) {
		return "", vitalgate.FieldErrorf(vitalgate.EINVALID, "role", "%q is not a role of a person; use admin, clinician or auditor", u.Role)
	}
	if len(u.ID) == 0 || len(u.ID) > 64 {
		return "", vitalgate.FieldErrorf(vitalgate.EINVALID, "id", "a user id is 1 to 64 characters")
	}
	if u.Site == "" {
		u.Site = vitalgate.DefaultSite
	}
	if err := checkSites(ctx, a.Store, vitalgate.Client{ID: u.ID, Site: u.Site, Role: u.Role}); err != nil {
		return "", err
	}
	if len(patientIDs) > 0 {
		if u.Role != vitalgate.RoleClinician {
			return "", vitalgate.FieldErrorf(vitalgate.EINVALID, "patient", "a care team applies to clinicians only")
		}
		if a.Index == nil {
			return "", errors.New("auth: a care team needs the patient index (UserAdmin.Index)")
		}
		for _, p := range patientIDs {
			u.PatientIndexes = append(u.PatientIndexes, a.Index(u.Site, p))
		}
	}
	code, err := a.setupCode(&u)
	if err != nil {
		return "", err
	}
	u.CreatedAt, u.UpdatedAt = a.now().UTC(), a.now().UTC()
	entry := audit.Entry{Time: a.now().UTC(), Action: audit.ActionCreate, Type: "admin", Subtype: "user-add",
		AgentType: audit.AgentOperator, AgentID: a.Operator, Outcome: audit.OutcomeSuccess, Resources: []string{"User/" + u.ID},
		OutcomeDesc: "role " + string(u.Role) + "; care team of " + strconv.Itoa(len(u.PatientIndexes)) + " patients", Site: entrySite(u.Site)}
	if err := a.Store.CreateUser(ctx, u, entry.Marshal()); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return "", vitalgate.Errorf(vitalgate.ECONFLICT, "user %q exists already", u.ID)
		}
		return "", err
	}
	return code, nil
}

// List returns every user, ordered by id.
func (a *UserAdmin) List(ctx context.Context) ([]vitalgate.User, error) {
	return a.Store.Users(ctx)
}

// Disable disables a user and ends every session of the user. ENOTFOUND.
func (a *UserAdmin) Disable(ctx context.Context, id string) error {
	return a.update(ctx, id, "user-disable", func(u *vitalgate.User) (string, error) {
		u.Disabled = true
		return "disabled; sessions ended", nil
	})
}

// Reset clears a user's password and second factors (TOTP, passkeys), ends every session
// of the user, enables it again and returns a new one-time setup code, shown once: the user
// sets a new password and enrolls a new authenticator. ENOTFOUND.
func (a *UserAdmin) Reset(ctx context.Context, id string) (string, error) {
	var code string
	err := a.update(ctx, id, "user-reset", func(u *vitalgate.User) (string, error) {
		c, err := a.setupCode(u)
		code = c
		u.Disabled = false
		return "password, TOTP and passkeys cleared; new setup code; sessions ended", err
	})
	return code, err
}

// update reads a user, applies change, and writes it back with its audit entry, ending the
// user's sessions.
func (a *UserAdmin) update(ctx context.Context, id, subtype string, change func(*vitalgate.User) (string, error)) error {
	if a.Store == nil {
		return errors.New("auth: user administration needs a store")
	}
	u, err := a.Store.User(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "no user has the id %q", id)
	} else if err != nil {
		return err
	}
	desc, err := change(&u)
	if err != nil {
		return err
	}
	u.UpdatedAt = a.now().UTC()
	entry := audit.Entry{Time: a.now().UTC(), Action: audit.ActionUpdate, Type: "admin", Subtype: subtype,
		AgentType: audit.AgentOperator, AgentID: a.Operator, Outcome: audit.OutcomeSuccess,
		Resources: []string{"User/" + u.ID}, OutcomeDesc: desc, Site: entrySite(u.Site)}
	return a.Store.UpdateUser(ctx, u, true, entry.Marshal())
}
