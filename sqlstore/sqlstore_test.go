package sqlstore

import (
	"testing"
	"time"
)

// The statements and methods of this package run against both stores in their conformance
// tests (storetest, from sqlite and postgres); this tests what has no store behind it.
func TestTimeScansBothStoresColumns(t *testing.T) {
	at := time.Date(2026, 12, 4, 9, 30, 0, 123456000, time.UTC)
	cases := []struct {
		name string
		in   any
		want time.Time
		bad  bool
	}{
		{"NULL", nil, time.Time{}, false},
		{"SQLite microseconds", at.UnixMicro(), at, false},
		{"PostgreSQL timestamptz in another zone", at.In(time.FixedZone("CET", 3600)), at, false},
		{"text", "2026-12-04", time.Time{}, true},
	}
	for _, c := range cases {
		tm := Time{T: time.Unix(1, 0)}
		err := tm.Scan(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%s: error %v", c.name, err)
			continue
		}
		if !c.bad && (!tm.T.Equal(c.want) || tm.T.Location() != time.UTC) {
			t.Errorf("%s: %v, want %v in UTC", c.name, tm.T, c.want)
		}
	}
}
