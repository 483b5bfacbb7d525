package ingest

import (
	"context"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

// Seal prepares an Observation of the patient of device d exactly as the service stores
// it: meta set (id, version 1, now), marshalled, sealed under the patient's key, with its
// blind indexes. It checks nothing, stores nothing and writes no audit entry: bench loads
// data and builds its baselines with it, so that they store what ingest stores and the
// index scheme exists once. A device without a site is of the default site.
func (s *Service) Seal(ctx context.Context, o *fhir.Observation, d vitalgate.Device, id string, now time.Time) (vitalgate.SealedResource, error) {
	if d.Site == "" {
		d.Site = vitalgate.DefaultSite
	}
	p, err := s.prepare(ctx, o, d, id, now)
	return p.sealed, err
}
