package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate/detect/detecttest"
	"github.com/vitalgate/vitalgate/sqlite"
)

func TestAlertsAndQuarantines(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	detecttest.TestStore(t, db)
}
