package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// ProvisioningStore is what the registry's reissue and device list need beyond
// vitalgate.Store; both stores implement it.
type ProvisioningStore interface {
	vitalgate.Store
	ReissueEnrollSecret(ctx context.Context, was vitalgate.Device, secretHash string, expiresAt time.Time, audit ...[]byte) error
	LatestCertificate(ctx context.Context, deviceID string) (vitalgate.Certificate, error)
}

// Provisioning checks ReissueEnrollSecret (a compare-and-set on the device's status and
// secret hash, with its audit entry in the same transaction) and LatestCertificate on
// stores returned by open.
func Provisioning(t *testing.T, open func(t *testing.T) ProvisioningStore) {
	t.Run("Reissue", func(t *testing.T) {
		st := open(t)
		ctx := ctxT(t)
		d := testDevice("dev-1")
		must(t, "CreateDevice", st.CreateDevice(ctx, d))
		size := func() uint64 {
			n, err := st.AuditSize(ctx)
			must(t, "AuditSize", err)
			return n
		}
		before := size()
		must(t, "ReissueEnrollSecret", st.ReissueEnrollSecret(ctx, d, "new-hash", at(120), []byte(`{"e":1}`)))
		got, err := st.Device(ctx, "dev-1")
		must(t, "Device", err)
		if got.EnrollSecretHash != "new-hash" || got.Status != vitalgate.DeviceActive {
			t.Errorf("after reissue: %+v", got)
		}
		checkTime(t, "EnrollExpiresAt", got.EnrollExpiresAt, at(120))
		if size() != before+1 {
			t.Errorf("the audit entry was not appended")
		}
		// d is stale now (its hash was replaced): nothing changes, no entry.
		err = st.ReissueEnrollSecret(ctx, d, "lost-race", at(130), []byte(`{"e":2}`))
		wantCode(t, "ReissueEnrollSecret of a stale device", err, vitalgate.ECONFLICT)
		if got, _ := st.Device(ctx, "dev-1"); got.EnrollSecretHash != "new-hash" || size() != before+1 {
			t.Errorf("a refused reissue changed the device or the log: %+v", got)
		}
		// A revoked device becomes active again; its certificates stay revoked.
		must(t, "ConsumeEnrollSecret", st.ConsumeEnrollSecret(ctx, "dev-1", "new-hash", testCert("0f01", "dev-1")))
		must(t, "RevokeDevice", st.RevokeDevice(ctx, "dev-1", at(140)))
		revoked, err := st.Device(ctx, "dev-1")
		must(t, "Device", err)
		must(t, "ReissueEnrollSecret of a revoked device", st.ReissueEnrollSecret(ctx, revoked, "third-hash", at(200), []byte(`{"e":3}`)))
		if got, _ := st.Device(ctx, "dev-1"); got.Status != vitalgate.DeviceActive || got.EnrollSecretHash != "third-hash" {
			t.Errorf("after re-provisioning: %+v", got)
		}
		c, err := st.Certificate(ctx, "0f01")
		must(t, "Certificate", err)
		if !c.Revoked() {
			t.Error("re-provisioning lifted the revocation of the old certificate")
		}
		err = st.ReissueEnrollSecret(ctx, vitalgate.Device{ID: "nope", Status: vitalgate.DeviceActive}, "h", at(1), []byte(`{"e":4}`))
		wantCode(t, "ReissueEnrollSecret of an unknown device", err, vitalgate.ENOTFOUND)
	})
	t.Run("LatestCertificate", func(t *testing.T) {
		st := open(t)
		ctx := ctxT(t)
		must(t, "CreateDevice", st.CreateDevice(ctx, testDevice("dev-1")))
		_, err := st.LatestCertificate(ctx, "dev-1")
		wantCode(t, "LatestCertificate before any", err, vitalgate.ENOTFOUND)
		first := testCert("0a01", "dev-1")
		must(t, "ConsumeEnrollSecret", st.ConsumeEnrollSecret(ctx, "dev-1", testDevice("dev-1").EnrollSecretHash, first))
		second := testCert("0a02", "dev-1")
		second.IssuedAt, second.NotAfter = first.IssuedAt.Add(time.Hour), first.NotAfter.Add(time.Hour)
		must(t, "AddCertificate", st.AddCertificate(ctx, second))
		got, err := st.LatestCertificate(ctx, "dev-1")
		must(t, "LatestCertificate", err)
		if got.Serial != "0a02" {
			t.Errorf("LatestCertificate = %s, want the one issued last (0a02)", got.Serial)
		}
		checkTime(t, "NotAfter", got.NotAfter, second.NotAfter)
	})
}
