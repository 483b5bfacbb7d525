package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

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
