package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/postgres"
)

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	NodeType       string     `json:"Node Type"`
	Relation       string     `json:"Relation Name"`
	Index          string     `json:"Index Name"`
	ActualRows     float64    `json:"Actual Rows"`
	ActualLoops    float64    `json:"Actual Loops"`
	RemovedFilter  float64    `json:"Rows Removed by Filter"`
	RemovedRecheck float64    `json:"Rows Removed by Index Recheck"`
	Plans          []planNode `json:"Plans"`
}

// walk calls fn for n and every node below it.
func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

// historyTables are the tables that grow with stored history: a plan must never scan them.
var historyTables = map[string]bool{"resources": true, "resource_codes": true, "resource_identifiers": true, "audit_log": true}

// planWork is what a plan did: the rows its scans of history tables visited (returned and
// removed by a filter, over all loops), the index scans of each, and any sequential scan.
type planWork struct {
	visited float64
	indexes []string
	seqScan []string
	text    string
}

// explain runs the prepared statement q with args under plan_cache_mode mode and returns its
// work. Writes run in a transaction that is rolled back.
func explain(t *testing.T, conn *pgx.Conn, mode, q string, args []any) planWork {
	t.Helper()
	ctx := t.Context()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = "+mode); err != nil { // #nosec G202 -- a test constant
		t.Fatal(err)
	}
	var raw []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE "+q+"("+literals(t, args)+")").Scan(&raw); err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	var out []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
		t.Fatalf("plan %s: %v", raw, err)
	}
	var w planWork
	var buf bytes.Buffer
	_ = json.Indent(&buf, raw, "", " ")
	w.text = buf.String()
	out[0].Plan.walk(func(n planNode) {
		if n.NodeType == "Bitmap Index Scan" { // its Bitmap Heap Scan above names the table and counts the rows
			w.indexes = append(w.indexes, n.Index)
			return
		}
		if !historyTables[n.Relation] {
			return
		}
		loops := max(n.ActualLoops, 1)
		w.visited += (n.ActualRows + n.RemovedFilter + n.RemovedRecheck) * loops
		switch n.NodeType {
		case "Seq Scan":
			if n.ActualLoops > 0 { // not an alternative the executor never ran
				w.seqScan = append(w.seqScan, n.Relation)
			}
		case "Index Scan", "Index Only Scan":
			w.indexes = append(w.indexes, n.Index)
		}
	})
	return w
}

// planHistory returns n Observations of a patient, one a minute back from at, each with two
// code indexes and an identifier index of its own, as ingest stores them. Ids sort by
// creation time, as ingest's do: older readings first, the patients' interleaved.
func planHistory(patient []byte, n, from int, at time.Time) []vitalgate.SealedResource {
	rs := make([]vitalgate.SealedResource, n)
	for i := range rs {
		k := from + i
		rs[i] = vitalgate.SealedResource{Type: "Observation", ID: fmt.Sprintf("%012d-%s", 100_000_000_000-k, patient), Version: 1, PatientIndex: patient,
			CodeIndexes:       [][]byte{[]byte("code-8867-4-system"), []byte("code-8867-4")},
			IdentifierIndexes: [][]byte{fmt.Appendf(nil, "ident-%s-%d", patient, k)},
			Effective:         at.Add(-time.Duration(k) * time.Minute), LastUpdated: at, Body: bytes.Repeat([]byte{0xa5}, 300)}
	}
	return rs
}

// TestQueryPlansFlat checks, on PostgreSQL, that the resend check and every hot query use an
// index and do the same work whatever the stored history: each runs (EXPLAIN ANALYZE of the
// prepared statement, with the custom plan and with the generic plan a long-lived
// connection ends up using) on a patient with 2 000 stored Observations and again with
// 12 000, after ANALYZE; the rows its scans visit must not grow, and no history table may
// be scanned sequentially.
func TestQueryPlansFlat(t *testing.T) {
	schema := NewSchema(t)
	db := MustOpen(t, schema, postgres.Options{})
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	patient, other := []byte("plan-patient-1"), []byte("plan-other")
	cfg, err := pgx.ParseConfig(SchemaDSN(t, schema))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for name, q := range postgres.HotQueries {
		if _, err := conn.Exec(ctx, "PREPARE "+prepName(name)+" AS "+q); err != nil { // #nosec G202 -- the package's SQL constants
			t.Fatalf("prepare %s: %v", name, err)
		}
	}
	day := at.Add(-24 * time.Hour)
	cases := []struct {
		name  string
		query string
		args  []any
		index string // the index the plan must use
	}{
		{"resend check", "identifier", []any{"Observation", patient, nil, nil, "", 1, "", []byte("ident-plan-patient-1-7")}, "resource_identifiers_patient"},
		{"resend check, unknown identifier", "identifier", []any{"Observation", patient, nil, nil, "", 1, "", []byte("never-stored")}, "resource_identifiers_patient"},
		{"patient by identifier", "patient identifier", []any{"Patient", nil, nil, nil, "", 1, vitalgate.DefaultSite, []byte("mrn-patient-00000007")}, "resource_identifiers_patient_unique"},
		{"last 24 h, newest first", "effective desc bounded", []any{"Observation", patient, nil, nil, "", 101, "", day, nil, nil}, "resources_patient_type_effective"},
		{"last 24 h, oldest first", "effective asc bounded", []any{"Observation", patient, nil, nil, "", 101, "", day, nil, nil}, "resources_patient_type_effective"},
		{"one hour a day ago, oldest first", "effective asc bounded", []any{"Observation", patient, nil, nil, "", 101, "", day.Add(-time.Hour), day, nil}, "resources_patient_type_effective"},
		{"one hour a day ago, newest first", "effective desc bounded", []any{"Observation", patient, nil, nil, "", 101, "", day.Add(-time.Hour), day, nil}, "resources_patient_type_effective"},
		{"last 24 h of a code, newest first", "effective desc bounded", []any{"Observation", patient, []byte("code-8867-4"), nil, "", 101, "", day, nil, nil}, "resources_patient_type_effective"},
		// A page of a patient's resources in id order: on the (patient, id) index, or on
		// the primary key when the statistics say the patient holds much of the table.
		{"patient page", "patient", []any{"Observation", patient, nil, nil, "", 100, ""}, ""},
		{"patient page of a code", "patient", []any{"Observation", patient, []byte("code-8867-4"), nil, "", 100, ""}, ""},
		{"newest first", "effective desc", []any{"Observation", patient, nil, nil, "", 101, "", nil, nil, nil}, "resources_patient_type_effective"},
		{"resource by id", "resource", []any{"Observation", fmt.Sprintf("%012d-%s", 100_000_000_000-7, patient)}, "resources_pkey"},
		{"audit append", "audit append", []any{[][]byte{[]byte("entry")}, [][]byte{bytes.Repeat([]byte{1}, 32)}}, ""},
		{"audit entries", "audit entries", []any{int64(10), int64(20)}, "audit_log_pkey"},
	}
	work := map[string][2]planWork{}
	for phase, n := range []int{2000, 12000} {
		have := 0
		if phase == 1 {
			have = 2000
		}
		for k := have; k < n; k += 1000 {
			if err := db.CreateResources(ctx, planHistory(patient, 1000, k, at)); err != nil {
				t.Fatal(err)
			}
			var others []vitalgate.SealedResource // as much again, for 50 other patients
			for j := range 50 {
				others = append(others, planHistory(fmt.Appendf(nil, "%s-%02d", other, j), 20, k, at)...)
			}
			if err := db.CreateResources(ctx, others); err != nil {
				t.Fatal(err)
			}
			patients := make([]vitalgate.SealedResource, 200)
			for i := range patients {
				id := fmt.Sprintf("patient-%08d", k+i)
				patients[i] = vitalgate.SealedResource{Type: "Patient", ID: id, Version: 1, PatientIndex: []byte(id),
					IdentifierIndexes: [][]byte{[]byte("mrn-" + id)}, LastUpdated: at, Body: bytes.Repeat([]byte{0x5a}, 200)}
			}
			if err := db.CreateResources(ctx, patients); err != nil {
				t.Fatal(err)
			}
			entries := make([][]byte, 1000)
			for i := range entries {
				entries[i] = fmt.Appendf(nil, `{"entry":%d}`, k+i)
			}
			if _, err := db.AppendAudit(ctx, entries...); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			for m, mode := range []string{"force_custom_plan", "force_generic_plan"} {
				w := explain(t, conn, mode, prepName(c.query), c.args)
				key := c.name + "/" + mode
				ws := work[key]
				ws[phase] = w
				work[key] = ws
				_ = m
			}
		}
	}
	for _, c := range cases {
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				ws := work[c.name+"/"+mode]
				for phase, w := range ws {
					if len(w.seqScan) > 0 {
						t.Errorf("with %d stored: sequential scan of %v\n%s", []int{2000, 12000}[phase], w.seqScan, w.text)
					}
					if c.index != "" && !containsString(w.indexes, c.index) {
						t.Errorf("with %d stored: indexes %v, want %s\n%s", []int{2000, 12000}[phase], w.indexes, c.index, w.text)
					}
				}
				// With little history the planner may rightly read it all (a sort of 2 000
				// rows is cheap); what must not happen is more work with more history.
				if ws[1].visited > ws[0].visited {
					t.Errorf("rows visited grew with history: %v with 2 000 stored, %v with 12 000\n%s", ws[0].visited, ws[1].visited, ws[1].text)
				}
				t.Logf("rows visited: %v (indexes %v)", ws[1].visited, ws[1].indexes)
			})
		}
	}
}

// TestQueryPlansUseIndexes checks that the reads of every ingest and search that do not
// touch history (device, assignment, data key, client) have an index to seek: with
// sequential scans disabled, each plan is an index scan (on tables this small the planner
// may rightly prefer a scan).
func TestQueryPlansUseIndexes(t *testing.T) {
	schema := NewSchema(t)
	MustOpen(t, schema, postgres.Options{})
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(SchemaDSN(t, schema))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	cfg.RuntimeParams["enable_seqscan"] = "off"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	cases := []struct {
		query string
		args  []any
		table string
	}{
		{"device", []any{"d"}, "devices"},
		{"assignment at", []any{"d", time.Now()}, "device_assignments"},
		{"data key", []any{[]byte("p")}, "data_keys"},
		{"client", []any{"c"}, "clients"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			if _, err := conn.Exec(ctx, "PREPARE "+prepName(c.query)+" AS "+postgres.HotQueries[c.query]); err != nil { // #nosec G202 -- the package's SQL constants
				t.Fatal(err)
			}
			var raw []byte
			if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) EXECUTE "+prepName(c.query)+"("+literals(t, c.args)+")").Scan(&raw); err != nil {
				t.Fatal(err)
			}
			var out []struct {
				Plan planNode `json:"Plan"`
			}
			if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
				t.Fatalf("plan %s: %v", raw, err)
			}
			found := false
			out[0].Plan.walk(func(n planNode) {
				if n.Relation == c.table {
					if strings.Contains(n.NodeType, "Index") {
						found = true
					} else {
						t.Errorf("%s of %s", n.NodeType, c.table)
					}
				}
			})
			if !found {
				t.Errorf("no index scan of %s:\n%s", c.table, raw)
			}
		})
	}
}

// literals writes test arguments as SQL literals for EXECUTE, which takes no parameters
// under EXPLAIN (the values are the tests' own constants).
func literals(t *testing.T, args []any) string {
	t.Helper()
	out := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case nil:
			out[i] = "NULL"
		case string:
			out[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		case int:
			out[i] = fmt.Sprint(v)
		case int64:
			out[i] = fmt.Sprint(v)
		case []byte:
			out[i] = fmt.Sprintf(`'\x%x'`, v)
		case [][]byte:
			var items []string
			for _, b := range v {
				items = append(items, fmt.Sprintf(`'\x%x'::bytea`, b))
			}
			out[i] = "ARRAY[" + strings.Join(items, ", ") + "]"
		case time.Time:
			out[i] = "'" + v.UTC().Format(time.RFC3339Nano) + "'"
		default:
			t.Fatalf("no literal for %T", a)
		}
	}
	return strings.Join(out, ", ")
}

// prepName is the prepared statement name of a HotQueries key.
func prepName(key string) string { return "plan_" + strings.ReplaceAll(key, " ", "_") }

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
