package storetest

import (
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// DefaultsFromNow checks that a store fills the times a caller leaves zero from its
// injected clock: open returns a new, empty store whose options' Now is now (it closes the
// store itself, or leaves it to t's cleanup).
func DefaultsFromNow(t *testing.T, open func(t *testing.T, now func() time.Time) vitalgate.Store) {
	t.Helper()
	now := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	db := open(t, func() time.Time { return now })
	ctx := t.Context()
	must(t, "CreateDevice", db.CreateDevice(ctx, vitalgate.Device{ID: "d1"}))
	d, err := db.Device(ctx, "d1")
	must(t, "Device", err)
	if d.Status != vitalgate.DeviceActive || !d.CreatedAt.Equal(now) || !d.UpdatedAt.Equal(now) {
		t.Errorf("device defaults: %+v", d)
	}
	must(t, "CreateResources", db.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: "o1", Body: []byte("x")}}))
	r, err := db.Resource(ctx, "Observation", "o1")
	must(t, "Resource", err)
	if !r.LastUpdated.Equal(now) || !r.Effective.IsZero() {
		t.Errorf("resource times: lastUpdated %v effective %v", r.LastUpdated, r.Effective)
	}
	// Nonces expire by the injected clock.
	must(t, "UseNonce", db.UseNonce(ctx, "n", now.Add(-time.Second)))
	if err := db.UseNonce(ctx, "n", now.Add(time.Minute)); err != nil {
		t.Errorf("UseNonce of a nonce expired by Options.Now: %v", err)
	}
}
