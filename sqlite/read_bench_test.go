package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/sqlite"
)

// BenchmarkDevice measures the per-request device lookup of the ingest path.
func BenchmarkDevice(b *testing.B) {
	db := MustOpen(b, filepath.Join(b.TempDir(), "db"), sqlite.Options{})
	ctx := context.Background()
	if err := db.CreateDevice(ctx, vitalgate.Device{ID: "dev-1", Status: vitalgate.DeviceActive, PatientIndex: []byte("p"),
		CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.Device(ctx, "dev-1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
