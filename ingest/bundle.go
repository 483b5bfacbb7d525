package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/fhir"
)

// EntryResult is the outcome of one Bundle entry: Created on success, Err otherwise.
type EntryResult struct {
	Created Created
	Err     error
}

// BundleResult is the outcome of a batch or transaction Bundle.
type BundleResult struct {
	Type    string // "batch" or "transaction"
	Entries []EntryResult
}

// entryPath re-roots an error's element path at the Bundle entry it came from.
func entryPath(err error, i int) error {
	var e *vitalgate.Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	prefix := fmt.Sprintf("Bundle.entry[%d].resource", i)
	switch {
	case strings.HasPrefix(c.Field, "Bundle."):
	case strings.HasPrefix(c.Field, "Observation"):
		c.Field = prefix + strings.TrimPrefix(c.Field, "Observation")
	case c.Field == "":
		c.Field = prefix
	}
	return &c
}

// CreateBundle ingests a Bundle of Observations sent by the device deviceID.
//
// A batch stores each valid entry and reports each invalid one; entries may not reference
// each other. A transaction is all or nothing: any invalid entry fails the whole Bundle with
// that entry's error, and references between entries (hasMember, derivedFrom, by fullUrl or
// by Observation/<id>) are rewritten to the server-assigned ids. On success every stored
// entry is durable.
func (s *Service) CreateBundle(ctx context.Context, deviceID string, body []byte) (res BundleResult, err error) {
	defer func() {
		s.auditRefused(ctx, "rest", audit.AgentDevice, deviceID, "device", err)
		for _, e := range res.Entries {
			s.auditRefused(ctx, "rest", audit.AgentDevice, deviceID, "device", e.Err)
		}
	}()
	b, err := fhir.DecodeBundle(body, s.Limits)
	if err != nil {
		return BundleResult{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	bd, err := s.newBinder(ctx, deviceID, now)
	if err != nil {
		return BundleResult{}, err
	}
	res = BundleResult{Type: b.Type, Entries: make([]EntryResult, len(b.Entry))}

	// References to other entries of a transaction: by fullUrl or Observation/<client id>.
	member := map[string]int{}
	if b.Type == "transaction" {
		for i, e := range b.Entry {
			if e.FullURL != "" {
				member[e.FullURL] = i // DecodeBundle has checked that fullUrls are unique
			}
			if e.Resource.ID != "" {
				member["Observation/"+e.Resource.ID] = i
			}
		}
	}
	isMember := func(ref string) bool { _, ok := member[ref]; return ok }

	// Validate and bind every entry and assign ids.
	ids := make([]string, len(b.Entry))
	bound := make([]vitalgate.Device, len(b.Entry))
	for i, e := range b.Entry {
		o := e.Resource
		err := fhir.ValidateEntry(b, i, now)
		if err == nil && b.Type == "batch" && (len(o.HasMember) > 0 || len(o.DerivedFrom) > 0) {
			err = vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, "Observation.hasMember",
				"entries of a batch may not reference each other; send panels in a transaction Bundle")
		}
		if err == nil {
			bound[i], err = bd.bind(ctx, o, "Observation", isMember)
		}
		if err == nil {
			var prev Created
			var ok bool
			if prev, ok, err = s.existing(ctx, o, bound[i]); err == nil && ok {
				res.Entries[i].Created = prev // sent before: answered with the stored one
				ids[i] = prev.ID
			} else if err == nil {
				ids[i], err = NewID(now, s.rand())
			}
		}
		if err != nil {
			err = entryPath(err, i)
			if b.Type == "transaction" {
				return BundleResult{}, err
			}
			res.Entries[i].Err = err
			continue
		}
	}

	// Resolve references between entries of a transaction: a member is the same patient's.
	if b.Type == "transaction" {
		for i, e := range b.Entry {
			for _, refs := range []struct {
				name   string
				list   []fhir.Reference
				stored bool // may name a stored Observation instead (checked by bind)
			}{{"hasMember", e.Resource.HasMember, false}, {"derivedFrom", e.Resource.DerivedFrom, true}} {
				for j := range refs.list {
					field := fmt.Sprintf("Bundle.entry[%d].resource.%s[%d]", i, refs.name, j)
					k, ok := member[refs.list[j].Reference]
					if !ok {
						if refs.stored {
							continue
						}
						return BundleResult{}, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, field,
							"the reference does not name an entry of this Bundle")
					}
					if !bytes.Equal(bound[k].PatientIndex, bound[i].PatientIndex) {
						return BundleResult{}, vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field,
							"the reference names an entry about another patient")
					}
					refs.list[j].Reference = "Observation/" + ids[k]
				}
			}
		}
	}

	// Seal and store every valid entry in one commit.
	var batch []vitalgate.SealedResource
	var stored []int
	for i, e := range b.Entry {
		if res.Entries[i].Err != nil || res.Entries[i].Created.Existing {
			continue
		}
		p, err := s.prepare(ctx, e.Resource, bound[i], ids[i], now)
		if err != nil {
			if b.Type == "transaction" {
				return BundleResult{}, err
			}
			res.Entries[i].Err = err
			continue
		}
		res.Entries[i].Created = p.created
		batch = append(batch, p.sealed)
		stored = append(stored, i)
	}
	if len(batch) > 0 {
		if err := s.Resources.CreateResources(ctx, batch, s.auditCreate(ctx, "rest", audit.AgentDevice, deviceID, "device", bd.resolved("subject reference"), batch)...); err != nil {
			if b.Type == "transaction" {
				return BundleResult{}, err
			}
			for _, i := range stored {
				res.Entries[i] = EntryResult{Err: err}
			}
		}
	}
	s.acceptedBundle(ctx, bd.dev, b, res)
	return res, nil
}
