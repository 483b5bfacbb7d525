package migration_test

import (
	"fmt"
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

func TestPending(t *testing.T) {
	files := fstest.MapFS{"m/0001_a.sql": {}, "m/0002_b.sql": {}, "m/0005_c.sql": {}}
	ms, err := migration.Load(files, "m")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		current int
		want    []int
		ok      bool
	}{
		{"new database", 0, []int{1, 2, 5}, true},
		{"part applied", 2, []int{5}, true},
		{"between versions", 3, []int{5}, true},
		{"up to date", 5, nil, true},
		{"migrated by a newer build", 6, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pending, ok := migration.Pending(ms, tt.current)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			var got []int
			for _, m := range pending {
				got = append(got, m.Version)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("pending = %v, want %v", got, tt.want)
			}
		})
	}
	if v := migration.LatestIn(files, "m"); v != 5 {
		t.Errorf("LatestIn = %d, want 5", v)
	}
	if v := migration.LatestIn(fstest.MapFS{"m/bad.sql": {}}, "m"); v != 0 {
		t.Errorf("LatestIn over a misnamed file = %d, want 0", v)
	}
}
