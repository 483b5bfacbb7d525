package postgres_test

import (
	"testing"

	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/storetest"
)

func TestProvisioning(t *testing.T) {
	MustServer(t)
	storetest.Provisioning(t, func(t *testing.T) storetest.ProvisioningStore {
		schema := NewSchema(t)
		db, err := postgres.Open(t.Context(), SchemaDSN(t, schema), postgres.Options{Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
