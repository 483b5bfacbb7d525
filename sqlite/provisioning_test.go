package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/storetest"
)

func TestProvisioning(t *testing.T) {
	storetest.Provisioning(t, func(t *testing.T) storetest.ProvisioningStore {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	})
}
