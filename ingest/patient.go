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
	site := who.Site
	defer func() { s.auditRefusedIn(ctx, site, "rest", audit.AgentClient, who.ID, string(who.Role), err) }()
	if !auth.ScopesAllow(who.Scopes, "Patient", 'c') {
		return Created{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "the access token's scopes do not allow create of Patient")
	}
	if !vitalgate.InSite(site, site) {
		return Created{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "a Patient is created by a client of its site; this client acts for no one site")
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
	p.Meta.Tag = SiteTag(p.Meta.Tag, site)
	out, err := p.Marshal()
	if err != nil {
		return Created{}, vitalgate.Internal(err, "marshal patient")
	}
	pidx := s.Vault.SitePatientIndex(site, id)
	sealed, err := s.Vault.SealIn(ctx, site, pidx, "Patient", id, 1, out)
	if err != nil {
		return Created{}, err
	}
	r := vitalgate.SealedResource{Type: "Patient", ID: id, Version: 1, Site: site, PatientIndex: pidx, IdentifierIndexes: idx,
		Effective: now, LastUpdated: now, Body: sealed}
	rs := []vitalgate.SealedResource{r}
	// The store keeps a Patient identifier to one Patient (a unique index, so that concurrent
	// creates cannot both succeed): its ECONFLICT is the answer to a taken identifier.
	if err := s.Resources.CreateResources(ctx, rs, s.auditCreate(ctx, "rest", audit.AgentClient, who.ID, string(who.Role), "", rs)...); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return Created{}, vitalgate.FieldErrorf(vitalgate.ECONFLICT, "Patient.identifier",
				"a Patient with this identifier exists already in this site")
		}
		return Created{}, err
	}
	return Created{Type: "Patient", ID: id, Version: 1, LastUpdated: now, Body: out}, nil
}

// SiteSystem is the system of the meta.tag that names a resource's site (the code is the
// site id): every stored resource carries exactly one, set by the server, so that a client
// sees which site (FHIR Organization/<id>) a resource belongs to.
const SiteSystem = "urn:vitalgate:site"

// SiteTag returns tags without any tag of SiteSystem a sender wrote, and with the site's: a
// sender cannot claim a site.
func SiteTag(tags []fhir.Coding, site string) []fhir.Coding {
	out := make([]fhir.Coding, 0, len(tags)+1)
	for _, t := range tags {
		if t.System != SiteSystem {
			out = append(out, t)
		}
	}
	return append(out, fhir.Coding{System: SiteSystem, Code: site})
}
