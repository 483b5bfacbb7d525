package migration_test

import (
	"testing"
	"testing/fstest"

	"github.com/vitalgate/vitalgate/migration"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int
		wantErr bool
	}{
		{"ordered by version, not by name", fstest.MapFS{
			"m/0010_ten.sql": {Data: []byte("X")}, "m/0002_two.sql": {Data: []byte("Y")}, "m/README": {Data: []byte("z")},
		}, []int{2, 10}, false},
		{"empty", fstest.MapFS{}, nil, false},
		{"bad name", fstest.MapFS{"m/init.sql": {}}, nil, true},
		{"version zero", fstest.MapFS{"m/0000_zero.sql": {}}, nil, true},
		{"duplicate version", fstest.MapFS{"m/0001_a.sql": {}, "m/01_b.sql": {}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := migration.Load(tt.files, "m")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if len(ms) != len(tt.want) {
				t.Fatalf("%d migrations, want %d", len(ms), len(tt.want))
			}
			for i, v := range tt.want {
				if ms[i].Version != v {
					t.Errorf("migration %d has version %d, want %d", i, ms[i].Version, v)
				}
			}
			if len(ms) > 0 && migration.Latest(ms) != tt.want[len(tt.want)-1] {
				t.Errorf("Latest = %d", migration.Latest(ms))
			}
		})
	}
	ms, _ := migration.Load(fstest.MapFS{"m/0002_two.sql": {Data: []byte("CREATE TABLE t (x int);")}}, "m")
	if ms[0].Name != "0002_two" || ms[0].SQL != "CREATE TABLE t (x int);" {
		t.Fatalf("migration = %+v", ms[0])
	}
}
