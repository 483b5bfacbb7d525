package sqlite_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/sqlite"
)

// TestQueryPlans checks that each filtered Resources query walks an index in id order,
// neither scanning the resources table nor sorting.
func TestQueryPlans(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	db := MustOpen(t, path, sqlite.Options{})
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tests := []struct {
		name    string
		args    []any
		want    string // must appear in the plan
		notWant string // must not
	}{
		// Parameters ?1..?9 and ?10, the site (migration 0009).
		{"patient", []any{"Observation", []byte("p"), nil, nil, "", 10, nil, nil, nil, "s"}, "USING INDEX resources_patient_id", "TEMP B-TREE"},
		{"code", []any{"", nil, []byte("c"), nil, "", 10, nil, nil, nil, "s"}, "USING COVERING INDEX resource_codes_code", "TEMP B-TREE"},
		{"type", []any{"Observation", nil, nil, nil, "", 10, nil, nil, nil, "s"}, "USING INDEX sqlite_autoindex_resources_1", "TEMP B-TREE"},
		// Finding a patient's observation by identifier seeks (type, patient, identifier):
		// its cost must not grow with the patient's history (security review finding 1).
		{"identifier", []any{"Observation", []byte("p"), nil, nil, "", 1, []byte("i"), nil, nil, "s"},
			"SEARCH i USING COVERING INDEX resource_identifiers_patient (type=? AND patient_index=? AND identifier_index=? AND id>?)", "resources_patient"},
		{"patient identifier", []any{"Patient", nil, nil, nil, "", 1, []byte("i"), nil, nil, "s"},
			"SEARCH i USING INDEX resource_identifiers_patient_unique (site=? AND identifier_index=?", "resources_patient"},
		// Export of everything: a scan and a sort, accepted.
		{"all", []any{"", nil, nil, nil, "", -1, nil, nil, nil, ""}, "SCAN r", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := queryPlan(t, raw, sqlite.ExplainResourceQueries[tt.name], tt.args...)
			if !strings.Contains(text, tt.want) || (tt.notWant != "" && strings.Contains(text, tt.notWant)) {
				t.Errorf("plan:\n%s\nwant %q, not %q", text, tt.want, tt.notWant)
			}
			t.Logf("plan:\n%s", text)
		})
	}
}

// TestAuditQueryPlans checks that assigning an audit index (max(idx) + 1), the log's size and
// a range of entries are each a seek on the rowid b-tree, never a scan of the log: their cost
// must not grow with the log, which gains an entry for every read of patient data.
func TestAuditQueryPlans(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	db := MustOpen(t, path, sqlite.Options{})
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tests := []struct {
		name string
		args []any
		want string
	}{
		{"insert", []any{[]byte("entry"), []byte("hash")}, "SEARCH audit_log"},
		{"size", nil, "SEARCH audit_log"},
		{"entries", []any{int64(10), int64(20)}, "SEARCH audit_log USING INTEGER PRIMARY KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := queryPlan(t, raw, sqlite.ExplainAuditQueries[tt.name], tt.args...)
			if !strings.Contains(text, tt.want) || strings.Contains(text, "SCAN") || strings.Contains(text, "TEMP B-TREE") {
				t.Errorf("plan:\n%s\nwant %q and no scan or sort", text, tt.want)
			}
		})
	}
}

// queryPlan returns the lines of EXPLAIN QUERY PLAN explain (a query of the package's
// Explain maps) with args.
func queryPlan(t *testing.T, raw *sql.DB, explain string, args ...any) string {
	t.Helper()
	if explain == "" {
		t.Fatal("no such query")
	}
	rows, err := raw.QueryContext(t.Context(), explain, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

// historyRows returns n sealed-looking Observations of one patient, one a minute back from
// at, each with two code indexes and an identifier index of its own, as ingest stores them.
func historyRows(patient []byte, n int, at time.Time, tag string) []vitalgate.SealedResource {
	rs := make([]vitalgate.SealedResource, n)
	for i := range rs {
		id := fmt.Sprintf("%016x%s%08x", at.UnixMilli()-int64(i), tag, i)
		rs[i] = vitalgate.SealedResource{Type: "Observation", ID: id, Version: 1, PatientIndex: patient,
			CodeIndexes:       [][]byte{[]byte("code-8867-4-system"), []byte("code-8867-4")},
			IdentifierIndexes: [][]byte{fmt.Appendf(nil, "ident-%s-%d", tag, i)},
			Effective:         at.Add(-time.Duration(i) * time.Minute), LastUpdated: at, Body: bytes.Repeat([]byte{0xa5}, 300)}
	}
	return rs
}

// TestQueryPlansWithHistory checks the plans that matter for flat cost on a database that
// holds a patient's history, after ANALYZE (statistics can change SQLite's choice of index):
// the resend check, the search of a patient's last day, the reads of every ingest (device,
// assignment, data key) and every search (client), each a seek on an index with equality on
// its leading columns, never a scan of a table whose size grows with history and never a
// sort of a patient's history.
func TestQueryPlansWithHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	db := MustOpen(t, path, sqlite.Options{})
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	patient, other := []byte("patient-index-with-history-0001"), []byte("patient-index-other-000000001")
	for i := range 10 {
		if err := db.CreateResources(t.Context(), historyRows(patient, 1000, at.Add(-time.Duration(i)*1000*time.Minute), fmt.Sprint("p", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateResources(t.Context(), historyRows(other, 500, at, "o")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	rw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.ExecContext(t.Context(), "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	day := at.Add(-24 * time.Hour).UnixMicro()
	tests := []struct {
		name, explain string
		args          []any
		want          string // must appear in the plan
	}{
		{"resend check", sqlite.ExplainResourceQueries["identifier"], []any{"Observation", patient, nil, nil, "", 1, []byte("ident-p3-7"), nil, nil, ""},
			"SEARCH i USING COVERING INDEX resource_identifiers_patient (type=? AND patient_index=? AND identifier_index=? AND id>?)"},
		{"patient identifier", sqlite.ExplainResourceQueries["patient identifier"], []any{"Patient", nil, nil, nil, "", 1, []byte("i"), nil, nil, vitalgate.DefaultSite},
			"SEARCH i USING INDEX resource_identifiers_patient_unique (site=? AND identifier_index=?"},
		// A date range is a range of the index: the walk starts and ends in it, whatever
		// the patient's history before or after it, in either order.
		{"last 24 h, newest first", sqlite.ExplainHotQueries["effective desc bounded"], []any{"Observation", patient, nil, nil, "", 101, day, int64(math.MaxInt64), nil, ""},
			"SEARCH r USING INDEX resources_patient_type_effective (patient_index=? AND type=? AND effective>? AND effective<?)"},
		{"last 24 h, oldest first", sqlite.ExplainHotQueries["effective asc bounded"], []any{"Observation", patient, nil, nil, "", 101, day, int64(math.MaxInt64), nil, ""},
			"SEARCH r USING INDEX resources_patient_type_effective (patient_index=? AND type=? AND effective>? AND effective<?)"},
		{"before a date, newest first", sqlite.ExplainHotQueries["effective desc bounded"], []any{"Observation", patient, nil, nil, "", 101, int64(math.MinInt64), day, nil, ""},
			"SEARCH r USING INDEX resources_patient_type_effective (patient_index=? AND type=? AND effective>? AND effective<?)"},
		// Without a bound, newest first: the walk is in index order and stops at the limit.
		{"newest first", sqlite.ExplainHotQueries["effective desc"], []any{"Observation", patient, nil, nil, "", 101, nil, nil, nil, ""},
			"SEARCH r USING INDEX resources_patient_type_effective (patient_index=? AND type=?)"},
		{"patient page", sqlite.ExplainResourceQueries["patient"], []any{"Observation", patient, nil, nil, "", 100, nil, nil, nil, ""},
			"SEARCH r USING INDEX resources_patient_id (patient_index=? AND id>?)"},
		{"resource by id", sqlite.ExplainHotQueries["resource"], []any{"Observation", "x"},
			"SEARCH r USING INDEX sqlite_autoindex_resources_1 (type=? AND id=?)"},
		{"data key", sqlite.ExplainHotQueries["data key"], []any{patient}, "SEARCH data_keys USING INDEX sqlite_autoindex_data_keys_1 (patient_index=?)"},
		{"device", sqlite.ExplainHotQueries["device"], []any{"d"}, "SEARCH devices USING INDEX sqlite_autoindex_devices_1 (id=?)"},
		{"assignment at", sqlite.ExplainHotQueries["assignment at"], []any{"d", int64(1)}, "SEARCH device_assignments USING INDEX sqlite_autoindex_device_assignments_1 (device_id=? AND valid_from<?)"},
		{"client", sqlite.ExplainHotQueries["client"], []any{"c"}, "SEARCH clients USING INDEX sqlite_autoindex_clients_1 (id=?)"},
		{"audit append", sqlite.ExplainAuditQueries["insert"], []any{[]byte("entry"), []byte("hash")}, "SEARCH audit_log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := queryPlan(t, raw, tt.explain, tt.args...)
			t.Logf("plan:\n%s", text)
			if !strings.Contains(text, tt.want) {
				t.Errorf("plan does not contain %q", tt.want)
			}
			for _, line := range strings.Split(text, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "SCAN") {
					t.Errorf("plan scans: %q", line)
				}
				if strings.Contains(line, "TEMP B-TREE") {
					t.Errorf("plan sorts: %q", line)
				}
			}
		})
	}
}
