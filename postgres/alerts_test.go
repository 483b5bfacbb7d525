package postgres_test

import (
	"testing"

	"github.com/vitalgate/vitalgate/detect/detecttest"
	"github.com/vitalgate/vitalgate/postgres"
)

func TestAlertsAndQuarantines(t *testing.T) {
	db := MustOpen(t, NewSchema(t), postgres.Options{})
	detecttest.TestStore(t, db)
}
