package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/node"
)

// storeResource seals body for patient and stores it as typ/id.
func storeResource(t *testing.T, n *node.Node, patient, typ, id, body string) {
	t.Helper()
	ctx := context.Background()
	pi := n.Vault.PatientIndex(patient)
	sealed, err := n.Vault.Seal(ctx, pi, typ, id, 1, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	entry := audit.Entry{Time: time.Now().UTC(), Action: audit.ActionCreate, Type: "rest", AgentType: audit.AgentSystem, AgentID: "test", Outcome: audit.OutcomeSuccess}
	if err := n.Store.CreateResources(ctx, []vitalgate.SealedResource{{Type: typ, ID: id, Version: 1, PatientIndex: pi,
		LastUpdated: time.Now().UTC(), Body: sealed}}, entry.Marshal()); err != nil {
		t.Fatal(err)
	}
}

// TestExportDeidentified: the export holds no identifier of the stored resources; a
// sealed pseudonyms file makes a second export give the same codes; the file holds no
// identifier in the clear, opens only with this data dir's keys, and a tampered file is
// refused.
func TestExportDeidentified(t *testing.T) {
	n := mustInit(t)
	storeResource(t, n, "pat-1", "Patient", "pat-1", `{"resourceType":"Patient","id":"pat-1","identifier":[{"system":"urn:mrn","value":"MRN-778899"}],
		"name":[{"family":"Zylberstein","given":["Quentin"]}],"birthDate":"1961-04-05","telecom":[{"system":"phone","value":"+1 555 0100 200"}]}`)
	storeResource(t, n, "pat-1", "Observation", "obs-1", `{"resourceType":"Observation","id":"obs-1","status":"final",
		"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/pat-1","display":"Quentin Zylberstein"},
		"effectiveDateTime":"2026-03-04T05:06:07Z","valueQuantity":{"value":72,"unit":"/min"}}`)
	mapping := filepath.Join(t.TempDir(), "pseudonyms.sealed")
	export := func(opt node.DeidentifyOptions) string {
		t.Helper()
		var buf bytes.Buffer
		opt.Operator = "tester"
		count, err := n.ExportDeidentified(context.Background(), &buf, opt)
		if err != nil || count != 2 {
			t.Fatalf("ExportDeidentified = %d, %v; want 2 resources", count, err)
		}
		return buf.String()
	}
	first := export(node.DeidentifyOptions{Pseudonyms: mapping, ShiftDates: true})
	for _, secret := range []string{"pat-1", "obs-1", "MRN-778899", "Zylberstein", "Quentin", "0100 200", "1961-04-05", "2026-03-04"} {
		if strings.Contains(first, secret) {
			t.Fatalf("export holds %q:\n%s", secret, first)
		}
	}
	lines := strings.Split(strings.TrimSpace(first), "\n")
	var p, o map[string]any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &p) != nil || json.Unmarshal([]byte(lines[1]), &o) != nil {
		t.Fatalf("export is not two NDJSON lines:\n%s", first)
	}
	if p["resourceType"] != "Patient" {
		p, o = o, p
	}
	if o["subject"].(map[string]any)["reference"] != "Patient/"+p["id"].(string) {
		t.Fatalf("the observation's subject %v does not join the exported patient %v", o["subject"], p["id"])
	}
	st, err := os.Stat(mapping)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("pseudonyms file: %v, mode %v; want 0600", err, st)
	}
	raw, _ := os.ReadFile(mapping)
	for _, secret := range []string{"pat-1", "MRN-778899", "Patient/"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("pseudonyms file holds %q in the clear", secret)
		}
	}
	if second := export(node.DeidentifyOptions{Pseudonyms: mapping, ShiftDates: true}); second != first {
		t.Fatalf("a second export sharing the mapping differs:\n%s\n%s", first, second)
	}
	if other := export(node.DeidentifyOptions{ShiftDates: true}); other == first {
		t.Fatal("an export without the mapping gave the same codes")
	}
	if years := export(node.DeidentifyOptions{Pseudonyms: mapping}); !strings.Contains(years, `"birthDate":"1961"`) ||
		!strings.Contains(years, `"id":"`+p["id"].(string)+`"`) {
		t.Fatalf("year-only export with the mapping: %s", years)
	}

	// Each export is audited: who, how many and the mode, never an identifier.
	exports := 0
	if err := n.Store.AuditEntries(context.Background(), 0, math.MaxUint64, func(r vitalgate.AuditRecord) error {
		e, err := audit.UnmarshalEntry(r.Data)
		if err != nil {
			return err
		}
		if e.Subtype == "deidentified" {
			exports++
			if e.AgentID != "tester" || !strings.Contains(e.OutcomeDesc, "2 resources exported de-identified") || strings.Contains(string(r.Data), "pat-1") {
				t.Errorf("audit entry %+v", e)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if exports != 4 {
		t.Fatalf("%d export audit entries, want 4", exports)
	}

	// Another data dir's keys cannot open the file; a tampered file is refused.
	other := mustInit(t)
	if _, err := other.ExportDeidentified(context.Background(), &bytes.Buffer{}, node.DeidentifyOptions{Pseudonyms: mapping}); err == nil {
		t.Fatal("another data dir opened the pseudonyms file")
	}
	var f map[string]string
	_ = json.Unmarshal(raw, &f)
	sealed := []byte(f["sealed"])
	sealed[len(sealed)/2] ^= 'A' ^ 'B'
	f["sealed"] = string(sealed)
	bad, _ := json.Marshal(f)
	if err := os.WriteFile(mapping, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ExportDeidentified(context.Background(), &bytes.Buffer{}, node.DeidentifyOptions{Pseudonyms: mapping}); err == nil {
		t.Fatal("a tampered pseudonyms file was accepted")
	}
}
