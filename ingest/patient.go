package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/fhir"
)

// PatientFinder finds resources by blind index (stored resends of an observation).
type PatientFinder interface {
	Resources(ctx context.Context, f vitalgate.ResourceFilter, fn func(vitalgate.SealedResource) error) error
}

var errFound = errors.New("found")

// CreatePatient validates and stores a FHIR Patient created by an administrator or an EHR.
// The Patient is sealed under its own data key and findable only through the blind indexes
// of its identifiers. Errors: EINVALID, EUNPROCESSABLE, ECONFLICT (an identifier is taken),
// EUNAVAILABLE.
func (s *Service) CreatePatient(ctx context.Context, who vitalgate.Principal, body []byte) (c Created, err error) {
	defer func() { s.auditRefused(ctx, "rest", audit.AgentClient, who.ID, string(who.Role), err) }()
	if !auth.ScopesAllow(who.Scopes, "Patient", 'c') {
		return Created{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "the access token's scopes do not allow create of Patient")
	}
	p, err := fhir.DecodePatient(body)
	if err != nil {
		return Created{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if err := fhir.ValidatePatient(p, now); err != nil {
		return Created{}, err
	}
	var idx [][]byte
	for _, ident := range p.Identifiers() {
		if ident.System == "" || ident.Value == "" {
			continue
		}
		idx = append(idx, s.Vault.IdentifierIndex(fhir.IdentifierKey(ident.System, ident.Value)))
	}
	id, err := NewID(now, s.rand())
	if err != nil {
		return Created{}, err
	}
	p.SetMeta(id, "1", now)
	out, err := p.Marshal()
	if err != nil {
		return Created{}, vitalgate.Internal(err, "marshal patient")
	}
	pidx := s.Vault.PatientIndex(id)
	sealed, err := s.Vault.Seal(ctx, pidx, "Patient", id, 1, out)
	if err != nil {
		return Created{}, err
	}
	r := vitalgate.SealedResource{Type: "Patient", ID: id, Version: 1, PatientIndex: pidx, IdentifierIndexes: idx,
		Effective: now, LastUpdated: now, Body: sealed}
	rs := []vitalgate.SealedResource{r}
	// The store keeps a Patient identifier to one Patient (a unique index, so that concurrent
	// creates cannot both succeed): its ECONFLICT is the answer to a taken identifier.
	if err := s.Resources.CreateResources(ctx, rs, s.auditCreate(ctx, "rest", audit.AgentClient, who.ID, string(who.Role), rs)...); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return Created{}, vitalgate.FieldErrorf(vitalgate.ECONFLICT, "Patient.identifier",
				"a Patient with this identifier exists already")
		}
		return Created{}, err
	}
	return Created{Type: "Patient", ID: id, Version: 1, LastUpdated: now, Body: out}, nil
}
