package ingest

import (
	"context"
	"regexp"
	"strings"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
)

// PatientAuthority is the HL7 assigning authority (CX.4 namespace) whose identifiers are
// Vitalgate Patient ids themselves; any other authority names a Patient identifier.
const PatientAuthority = "VITALGATE"

var patientIDRE = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// ResolvePatient returns the id of the Patient that an HL7 patient identifier names (PID-3:
// CX.1 value, CX.4 assigning authority), for the lab, imaging and device paths alike: with
// the authority PatientAuthority the value is the Patient id; otherwise the identifier
// system is hl7v2.IdentifierSystem(authority, Authorities) and the Patient is found through
// the blind index of system|value.
//
// An identifier that names no Patient gets exactly the answer of one that names a patient
// the device is not assigned to (EFORBIDDEN, the same text), so that a device cannot learn
// which identifiers exist; ingest then checks the patient against the device's assignment.
// Other errors: EUNAVAILABLE, EINTERNAL.
//
// The look-up is within the site of the device deviceID that sent the message: a Patient of
// another site is never found (the same answer as an unknown identifier).
func (s *Service) ResolvePatient(ctx context.Context, deviceID, value string, authority hl7v2.HD) (string, error) {
	value = strings.TrimSpace(value)
	if strings.TrimSpace(authority.Namespace) == PatientAuthority && authority.UniversalID == "" {
		if !patientIDRE.MatchString(value) {
			return "", errNotAssigned("Observation.subject")
		}
		return value, nil
	}
	system := hl7v2.IdentifierSystem(authority, s.Authorities)
	if system == "" || value == "" || s.Finder == nil {
		return "", errNotAssigned("Observation.subject")
	}
	if s.Registry == nil {
		return "", errNotAssigned("Observation.subject")
	}
	d, err := s.Registry.Sender(ctx, deviceID)
	if err != nil {
		return "", err
	}
	var id string
	err = s.Finder.Resources(ctx, vitalgate.ResourceFilter{Site: d.Site, Type: "Patient",
		IdentifierIndex: s.Vault.IdentifierIndex(fhir.IdentifierKey(system, value)), Limit: 1},
		func(r vitalgate.SealedResource) error { id = r.ID; return errFound })
	if err != nil && err != errFound {
		return "", err
	}
	if id == "" {
		s.unknownPatient(ctx, d, s.Vault.IdentifierIndex(fhir.IdentifierKey(system, value)))
		return "", errNotAssigned("Observation.subject")
	}
	return id, nil
}

// RefuseHL7 records an HL7 message that a transport refused before it reached ingest (no
// device certificate, unparseable, throttled, shed, naming another sending device):
// deviceID is the certificate's device, or "" when there is none. Like every refusal the
// entry carries the error code and element only, and the source address and request id of
// ctx (vitalgate.RequestInfo). Best effort: the sender gets its ACK anyway.
func (s *Service) RefuseHL7(ctx context.Context, deviceID string, err error) {
	s.auditRefused(ctx, "hl7", audit.AgentDevice, deviceID, "device", err)
}
