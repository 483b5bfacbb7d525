package access

import (
	"context"
	"slices"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/detect"
)

// Permission is what an endpoint checks after authentication: one kind of act, granted to
// roles by the grant table below. A token's SMART scopes narrow it further, per resource.
type Permission string

// Permissions.
const (
	PermPublic            Permission = "public"
	PermEnroll            Permission = "device:enroll"
	PermReenroll          Permission = "device:reenroll"
	PermObservationCreate Permission = "observation:create"
	PermToken             Permission = "oauth:token" // #nosec G101 -- a permission name, not a credential
	PermObservationRead   Permission = "observation:read"
	PermObservationSearch Permission = "observation:search"
	PermPatientCreate     Permission = "patient:create"
	PermPatientRead       Permission = "patient:read"
	PermPatientSearch     Permission = "patient:search"
	PermDeviceRead        Permission = "device:read"
	PermDeviceAssign      Permission = "device:assign"
	PermAuditRead         Permission = "audit:read"
	PermOrganizationRead  Permission = "organization:read"
	PermUpdateRead        Permission = "update:read"   // TUF metadata and target files (devices)
	PermUpdateOffer       Permission = "update:offer"  // a device asks which release its rollout offers it
	PermUpdateReport      Permission = "update:report" // a device reports its update's progress
	// Laboratory reports and specimens (HL7 v2 lab results, stored by ingest).
	PermDiagnosticReportRead   Permission = "diagnosticreport:read"
	PermDiagnosticReportSearch Permission = "diagnosticreport:search"
	PermSpecimenRead           Permission = "specimen:read"
	PermPatientErase           Permission = "patient:erase" // request, approve, hold, release (admin)
	PermPostureRead            Permission = "posture:read"  // the fleet's vulnerability posture (admin, auditor)
	// PermDetectedIssueRead reads security alerts (GET /fhir/DetectedIssue): auditors.
	PermDetectedIssueRead Permission = "detectedissue:read"
	// PermBulkExport kicks off, polls, reads and cancels FHIR Bulk Data exports and lists the
	// groups a client may export (GET /fhir/Group): EHR systems (backend services).
	PermBulkExport Permission = "bulk:export"
	// PermSubscribe creates, reads, deletes and replays ($status, $events) a client's own
	// topic-based subscriptions and lists the topics: EHR systems and clinicians.
	PermSubscribe Permission = "subscription:manage"
	// PermConsole is held by every person who may sign in to the web console (its home
	// page, sign-out); each page asks for the permission of what it shows as well.
	PermConsole Permission = "console:session"
	// PermFleetRead lists the devices of a site with their patients, certificates and
	// software (the console's fleet page): admins.
	PermFleetRead Permission = "fleet:read"
	// PermDeviceRevoke revokes a device from the console (after re-authentication): admins.
	PermDeviceRevoke Permission = "device:revoke"
)

// Principal kinds that hold no role yet: a device presenting its one-time enrollment secret,
// and a caller presenting client credentials to the token endpoint (checked by package
// auth).
const (
	KindEnrollee        = "enrollee"
	KindClientCandidate = "client-candidate"
	KindAnonymous       = "anonymous"
)

// rolePermissions is the whole grant table: a role may do exactly what is listed here.
var rolePermissions = map[vitalgate.Role][]Permission{
	vitalgate.RoleDevice: {PermReenroll, PermObservationCreate, PermUpdateRead, PermUpdateOffer, PermUpdateReport},
	vitalgate.RoleAdmin: {PermPatientCreate, PermPatientRead, PermPatientSearch, PermDeviceRead, PermDeviceAssign, PermOrganizationRead, PermPatientErase, PermPostureRead,
		PermConsole, PermFleetRead, PermDeviceRevoke},
	vitalgate.RoleEHRSystem: {PermPatientCreate, PermPatientRead, PermPatientSearch, PermObservationRead, PermObservationSearch, PermDeviceRead, PermOrganizationRead,
		PermDiagnosticReportRead, PermDiagnosticReportSearch, PermSpecimenRead, PermBulkExport, PermSubscribe},
	vitalgate.RoleClinician: {PermPatientRead, PermPatientSearch, PermObservationRead, PermObservationSearch, PermDeviceRead, PermOrganizationRead,
		PermDiagnosticReportRead, PermDiagnosticReportSearch, PermSpecimenRead, PermSubscribe, PermConsole},
	vitalgate.RoleAuditor: {PermAuditRead, PermPostureRead, PermDetectedIssueRead, PermConsole},
}

// kindPermissions are granted by the kind of credential alone, before any role is known.
var kindPermissions = map[string][]Permission{
	KindEnrollee:        {PermEnroll},
	KindClientCandidate: {PermToken},
}

// Permits reports whether p holds perm. PermPublic is held by everyone; the other
// permissions come from the principal's role, or, for the credential kinds that have no role
// yet, from the kind.
func Permits(p vitalgate.Principal, perm Permission) bool {
	if perm == PermPublic {
		return true
	}
	grants, ok := kindPermissions[p.Kind]
	if !ok {
		grants = rolePermissions[p.Role]
	}
	return slices.Contains(grants, perm)
}

// Authorize decides whether p may perform perm on what (a short description of the
// endpoint, such as "GET /fhir/Observation", for the audit trail). A refusal is audited and
// returned as EFORBIDDEN; if the refusal cannot be audited the error is EUNAVAILABLE.
func (s *Service) Authorize(ctx context.Context, p vitalgate.Principal, perm Permission, what string) error {
	if Permits(p, perm) {
		return nil
	}
	err := vitalgate.Errorf(vitalgate.EFORBIDDEN, "not permitted")
	s.refusedSignal(p, perm)
	if s.Audit == nil {
		return err
	}
	if aerr := s.Audit.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "authz", Subtype: string(perm),
		AgentType: p.Kind, AgentID: p.ID, AgentRole: string(p.Role), Outcome: audit.OutcomeMinorFailure,
		OutcomeDesc: what + ": not permitted", Site: entrySite(p.Site)}); aerr != nil {
		return vitalgate.Unavailable(aerr, "the refusal could not be audited; try again")
	}
	return err
}

// AuthenticationFailed records that a caller could not be authenticated the way an
// endpoint demands (kind: how it authenticates; what: the endpoint) and returns err
// unchanged, so that the caller answers it. Recording is part of the refusal but never
// turns it into a success: if the entry cannot be written, err is still returned.
func (s *Service) AuthenticationFailed(ctx context.Context, kind, what string, err error) error {
	if s.Audit == nil || err == nil {
		return err
	}
	_ = s.Audit.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "authn", Subtype: kind,
		AgentType: audit.AgentClient, Outcome: audit.OutcomeMinorFailure,
		OutcomeDesc: what + ": " + vitalgate.ErrorMessage(err)})
	return err
}

// refusedSignal reports an act refused to a client to detection: a scope-escalation
// attempt (Reason: the permission). Only clients: devices and anonymous callers are watched
// through their own signals.
func (s *Service) refusedSignal(p vitalgate.Principal, perm Permission) {
	if s.Signals == nil || p.Kind != "client" {
		return
	}
	at := time.Now()
	if s.Now != nil {
		at = s.Now()
	}
	s.Signals.Emit(detect.Signal{Kind: detect.KindScopeEscalation, At: at, Source: p.RemoteIP, Client: p.ID, Site: p.Site,
		Reason: "not permitted: " + string(perm)})
}

// Remediation reports whether a quarantined device may still act with perm, unless an
// operator blocked its updates too: it may read the update repository (TUF metadata and
// targets) and ask for its offer, which its paused rollouts leave empty; it sends no data
// and reports nothing (its reports would move a rollout).
func Remediation(perm Permission) bool {
	return perm == PermUpdateRead || perm == PermUpdateOffer
}
