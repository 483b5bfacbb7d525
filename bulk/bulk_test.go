package bulk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/bulk"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

const site = vitalgate.DefaultSite

// clock is a test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a store with three patients of the default site (p1 and p2 in dr's care team), each
// with a week and a half of vital signs (heart rate twice a day) and one laboratory result,
// and a patient of another site.
type env struct {
	store *sqlite.DB
	vault *vault.Vault
	log   *audit.Log
	clock *clock
	svc   *bulk.Service
	// obs are the Observation ids per patient, oldest first.
	obs map[string][]string
}

var ehr = vitalgate.Principal{Kind: "client", ID: "ehr", Role: vitalgate.RoleEHRSystem, Site: site,
	Scopes: []string{"system/Patient.rs", "system/Observation.rs", "system/DiagnosticReport.rs"}}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	keys, err := vault.CreateKeyring(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(store, keys, nil, nil)
	v.FollowKeyDir(filepath.Join(dir, "keys"), 0)
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	alog := audit.NewLog(store, signer, "test", "node-a", c.now)
	alog.SetRefusalWindow(0) // every refusal its own entry, for counting
	e := &env{store: store, vault: v, log: alog, clock: c, obs: map[string][]string{}}
	e.svc = e.service("node-a")
	for _, s := range []string{"other"} {
		if err := store.CreateSite(ctx, vitalgate.Site{ID: s, Name: s}); err != nil {
			t.Fatal(err)
		}
	}
	e.patient(t, site, "p1", 20)
	e.patient(t, site, "p2", 20)
	e.patient(t, site, "p3", 20)
	e.patient(t, "other", "q1", 4)
	for _, cl := range []vitalgate.Client{
		{ID: "ehr", Site: site, Role: vitalgate.RoleEHRSystem},
		{ID: "ehr-2", Site: site, Role: vitalgate.RoleEHRSystem},
		{ID: "dr", Site: site, Role: vitalgate.RoleClinician, PatientIndexes: [][]byte{v.SitePatientIndex(site, "p1"), v.SitePatientIndex(site, "p2")}},
		{ID: "dr-other", Site: "other", Role: vitalgate.RoleClinician, PatientIndexes: [][]byte{v.SitePatientIndex("other", "q1")}},
	} {
		if err := store.CreateClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// service is a node's bulk service on the env's store.
func (e *env) service(node string) *bulk.Service {
	return &bulk.Service{Store: e.store, Vault: e.vault, Audit: e.log, Now: e.clock.now, Node: node,
		Access: &access.Service{Store: e.store, Vault: e.vault, Now: e.clock.now}}
}

const heartRate = "http://loinc.org|8867-4"

// patient stores a Patient and n vital-sign Observations, 12 hours apart up to now, and one
// laboratory Observation.
func (e *env) patient(t *testing.T, site, id string, n int) {
	t.Helper()
	ctx := context.Background()
	pidx := e.vault.SitePatientIndex(site, id)
	now := e.clock.now()
	seal := func(typ, rid string, body string, eff time.Time, codes ...string) vitalgate.SealedResource {
		sealed, err := e.vault.SealIn(ctx, site, pidx, typ, rid, 1, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		r := vitalgate.SealedResource{Type: typ, ID: rid, Version: 1, Site: site, PatientIndex: pidx, Effective: eff,
			LastUpdated: eff, Body: sealed}
		for _, c := range codes {
			r.CodeIndexes = append(r.CodeIndexes, e.vault.CodeIndex(c))
		}
		return r
	}
	rs := []vitalgate.SealedResource{seal("Patient", id, fmt.Sprintf(`{"resourceType":"Patient","id":%q}`, id), now.Add(-30*24*time.Hour))}
	for i := range n {
		oid := fmt.Sprintf("%s-hr-%02d", id, i)
		eff := now.Add(-time.Duration(n-1-i) * 12 * time.Hour)
		body := fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/%s"},"effectiveDateTime":%q,"valueQuantity":{"value":%d,"unit":"/min"}}`,
			oid, id, eff.Format(time.RFC3339), 60+i)
		rs = append(rs, seal("Observation", oid, body, eff, heartRate, "8867-4"))
		e.obs[id] = append(e.obs[id], oid)
	}
	lab := id + "-lab"
	rs = append(rs, seal("Observation", lab, fmt.Sprintf(`{"resourceType":"Observation","id":%q,"category":[{"coding":[{"code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]}}`, lab), now.Add(-time.Hour), "http://loinc.org|2345-7"))
	if err := e.store.CreateResources(ctx, rs); err != nil {
		t.Fatal(err)
	}
}

// ndjson returns the ids of the resources of file n of job id, read as p, checking that each
// line is one JSON resource of type typ.
func (e *env) ndjson(t *testing.T, p vitalgate.Principal, id string, n int, typ string) []string {
	t.Helper()
	var b bytes.Buffer
	if err := e.svc.WriteFile(context.Background(), p, id, n, &b); err != nil {
		t.Fatalf("WriteFile %d: %v", n, err)
	}
	var ids []string
	sc := bufio.NewScanner(&b)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct{ ResourceType, ID string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ResourceType != typ {
			t.Fatalf("file %d line %q: %v (want one %s per line)", n, sc.Text(), err, typ)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// auditLog returns the audit log's entries, one per line.
func (e *env) auditLog(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	if err := e.log.Flush(ctx, true); err != nil {
		t.Fatal(err)
	}
	n, err := e.store.AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := e.store.AuditEntries(ctx, 0, n, func(r vitalgate.AuditRecord) error {
		b.Write(r.Data)
		b.WriteByte('\n')
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// run runs the waiting jobs on svc and fails t unless one ran.
func run(t *testing.T, svc *bulk.Service) {
	t.Helper()
	ran, err := svc.RunOne(context.Background())
	if err != nil || !ran {
		t.Fatalf("RunOne = %v, %v; want a job run", ran, err)
	}
}

// TestCareTeamLastWeekOfVitalSigns: the done-when's export: a care team's last week of vital
// signs, as NDJSON, only the care team's patients, counted in the manifest and the audit log.
func TestCareTeamLastWeekOfVitalSigns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	weekAgo := e.clock.now().Add(-7 * 24 * time.Hour).Format(time.RFC3339)
	j, err := e.svc.KickOff(ctx, ehr, bulk.Request{URL: "https://vg/fhir/Group/careteam-dr/$export", Group: "careteam-dr",
		Types: []string{"Patient", "Observation"}, TypeFilters: []string{"Observation?category=vital-signs&date=ge" + weekAgo}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.Job(ctx, ehr, j.ID); got.Status != vitalgate.ExportQueued {
		t.Fatalf("status before a run = %s, want queued", got.Status)
	}
	run(t, e.svc)
	got, err := e.svc.Job(ctx, ehr, j.ID)
	if err != nil || got.Status != vitalgate.ExportDone {
		t.Fatalf("job = %+v, %v; want done", got, err)
	}
	// 20 readings 12 h apart up to now: the last week holds 15 (now-7d .. now).
	want := slices.Concat(e.obs["p1"][5:], e.obs["p2"][5:])
	if len(got.Files) != 2 || got.Files[0].Count != 2 || got.Files[1].Count != len(want) {
		t.Fatalf("files = %+v, want 2 Patients and %d Observations", got.Files, len(want))
	}
	ps := e.ndjson(t, ehr, j.ID, 0, "Patient")
	if slices.Sort(ps); !slices.Equal(ps, []string{"p1", "p2"}) {
		t.Errorf("Patient file = %v, want p1, p2", ps)
	}
	obs := e.ndjson(t, ehr, j.ID, 1, "Observation")
	slices.Sort(obs)
	slices.Sort(want)
	if !slices.Equal(obs, want) {
		t.Errorf("Observation file = %v\nwant %v", obs, want)
	}
	m := bulk.ManifestOf(got, func(n int) string { return fmt.Sprintf("https://vg/f/%d", n) })
	if !m.RequiresAccessToken || m.Request != j.Request || len(m.Output) != 2 || m.Output[1].Count != len(want) || m.Output[1].URL != "https://vg/f/1" {
		t.Errorf("manifest = %+v", m)
	}
	// The audit log: queued, complete with the count, each file read; no patient id, no value.
	log := e.auditLog(t)
	for _, s := range []string{`"subtype":"export","outcome":"0","outcomeDesc":"bulk export ` + j.ID + ` queued`,
		`"outcomeDesc":"bulk export ` + j.ID + ` complete","agentType":"client","agentId":"ehr"`,
		fmt.Sprintf(`"count":%d`, 2+len(want)), `"subtype":"export-file"`} {
		if !strings.Contains(log, s) {
			t.Errorf("audit log lacks %s:\n%s", s, log)
		}
	}
	for _, s := range []string{"p1-hr", `"p1"`, "/min"} {
		if strings.Contains(log, s) {
			t.Errorf("audit log holds %q", s)
		}
	}
}

// TestPatientExportIsTheClientsSite: Patient/$export holds every patient of the client's
// site and none of another; _type and _typeFilter by code narrow it.
func TestPatientExportIsTheClientsSite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	j, err := e.svc.KickOff(ctx, ehr, bulk.Request{Types: []string{"Observation"}, TypeFilters: []string{"Observation?code=http://loinc.org|2345-7"}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, e.svc)
	if obs := e.ndjson(t, ehr, j.ID, 0, "Observation"); !slices.Equal(obs, []string{"p1-lab", "p2-lab", "p3-lab"}) {
		t.Errorf("Observation file = %v, want the three laboratory results of the site", obs)
	}
	all, err := e.svc.KickOff(ctx, ehr, bulk.Request{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, e.svc)
	got, _ := e.svc.Job(ctx, ehr, all.ID)
	types := []string{}
	for _, f := range got.Files {
		types = append(types, fmt.Sprintf("%s:%d", f.Type, f.Count))
	}
	// The token's scopes allow Patient, Observation and DiagnosticReport (none stored).
	if want := []string{"Patient:3", "Observation:63", "DiagnosticReport:0"}; !slices.Equal(types, want) {
		t.Errorf("files = %v, want %v", types, want)
	}
}

// TestKickOffRefusals: what the scopes, the site and the groups do not allow is refused, in
// words, and audited.
func TestKickOffRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	narrow := ehr
	narrow.Scopes = []string{"system/Observation.rs"}
	deployment := ehr
	deployment.Site = vitalgate.AllSites
	for _, tc := range []struct {
		name string
		p    vitalgate.Principal
		req  bulk.Request
		code string
	}{
		{"type outside the scopes", narrow, bulk.Request{Types: []string{"Patient"}}, vitalgate.EFORBIDDEN},
		{"no site", deployment, bulk.Request{}, vitalgate.EFORBIDDEN},
		{"unknown type", ehr, bulk.Request{Types: []string{"Encounter"}}, vitalgate.EINVALID},
		{"filter on a type not exported", ehr, bulk.Request{Types: []string{"Patient"}, TypeFilters: []string{"Observation?code=1"}}, vitalgate.EINVALID},
		{"filter on another type", ehr, bulk.Request{TypeFilters: []string{"Patient?gender=female"}}, vitalgate.EINVALID},
		{"another site's care team", ehr, bulk.Request{Group: "careteam-dr-other"}, vitalgate.ENOTFOUND},
		{"an EHR is no care team", ehr, bulk.Request{Group: "careteam-ehr-2"}, vitalgate.ENOTFOUND},
		{"another site", ehr, bulk.Request{Group: "site-other"}, vitalgate.ENOTFOUND},
		{"unknown group", ehr, bulk.Request{Group: "model-none"}, vitalgate.ENOTFOUND},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.store.AuditSize(ctx)
			_, err := e.svc.KickOff(ctx, tc.p, tc.req)
			if vitalgate.ErrorCode(err) != tc.code {
				t.Fatalf("KickOff = %v, want %s", err, tc.code)
			}
			if after, _ := e.store.AuditSize(ctx); after != before+1 {
				t.Errorf("the refusal appended %d audit entries, want 1", after-before)
			}
		})
	}
}

// TestOnlyTheClientThatAsked: another client, even of the same site and role, sees no job,
// no file, and cannot cancel; the owner can, and then the files are gone.
func TestOnlyTheClientThatAsked(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	j, err := e.svc.KickOff(ctx, ehr, bulk.Request{Types: []string{"Patient"}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, e.svc)
	other := ehr
	other.ID = "ehr-2"
	if _, err := e.svc.Job(ctx, other, j.ID); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("Job by another client = %v, want ENOTFOUND", err)
	}
	if err := e.svc.WriteFile(ctx, other, j.ID, 0, &bytes.Buffer{}); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("WriteFile by another client = %v, want ENOTFOUND", err)
	}
	if err := e.svc.Cancel(ctx, other, j.ID); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("Cancel by another client = %v, want ENOTFOUND", err)
	}
	narrowed := ehr
	narrowed.Scopes = []string{"system/Observation.rs"}
	if err := e.svc.WriteFile(ctx, narrowed, j.ID, 0, &bytes.Buffer{}); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Errorf("WriteFile of Patients with a token without Patient scopes = %v, want EFORBIDDEN", err)
	}
	if err := e.svc.WriteFile(ctx, ehr, j.ID, 1, &bytes.Buffer{}); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("WriteFile of a file that does not exist = %v, want ENOTFOUND", err)
	}
	if err := e.svc.Cancel(ctx, ehr, j.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.WriteFile(ctx, ehr, j.ID, 0, &bytes.Buffer{}); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("WriteFile after cancel = %v, want ENOTFOUND", err)
	}
}

// TestJobSurvivesANodeThatDies: a run that claimed a job and died leaves it to another node
// once its lease runs out; the dead run can write no more, and the files are whole.
func TestJobSurvivesANodeThatDies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	j, err := e.svc.KickOff(ctx, ehr, bulk.Request{Types: []string{"Observation"}})
	if err != nil {
		t.Fatal(err)
	}
	// Node a claims the job and writes half a chunk, then dies.
	dead, err := e.store.ClaimExportJob(ctx, "node-a/dead", e.clock.now(), e.clock.now().Add(bulk.DefaultLease))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutExportChunk(ctx, j.ID, dead.Owner, 0, 0, []byte("half")); err != nil {
		t.Fatal(err)
	}
	b := e.service("node-b")
	if ran, err := b.RunOne(ctx); ran || err != nil {
		t.Fatalf("RunOne while the lease lasts = %v, %v; want nothing to run", ran, err)
	}
	e.clock.add(bulk.DefaultLease + time.Second)
	run(t, b)
	if err := e.store.PutExportChunk(ctx, j.ID, dead.Owner, 0, 1, []byte("late")); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		t.Errorf("the dead run's late write = %v, want ECONFLICT", err)
	}
	if obs := e.ndjson(t, ehr, j.ID, 0, "Observation"); len(obs) != 63 {
		t.Errorf("Observation file holds %d resources, want 63", len(obs))
	}
}

// TestConcurrentNodesRunEachJobOnce: four nodes running at once run each of six jobs once.
func TestConcurrentNodesRunEachJobOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var ids []string
	for range 6 {
		j, err := e.svc.KickOff(ctx, ehr, bulk.Request{Types: []string{"Patient"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	var wg sync.WaitGroup
	for n := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := e.service(fmt.Sprintf("node-%d", n))
			for {
				ran, err := svc.RunOne(ctx)
				if err != nil {
					t.Errorf("RunOne: %v", err)
				}
				if !ran {
					return
				}
			}
		}()
	}
	wg.Wait()
	log := e.auditLog(t)
	for _, id := range ids {
		if got, _ := e.svc.Job(ctx, ehr, id); got.Status != vitalgate.ExportDone {
			t.Errorf("job %s is %s", id, got.Status)
		}
		if n := strings.Count(log, "bulk export "+id+" complete"); n != 1 {
			t.Errorf("job %s completed %d times", id, n)
		}
	}
}

// TestLargeFileSpansChunks: a file larger than a chunk comes back whole and in order, and a
// job expires after its retention.
func TestLargeFileSpansChunks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.patient(t, site, "big", 3200) // about 1.3 MB of NDJSON
	j, err := e.svc.KickOff(ctx, ehr, bulk.Request{Group: "site-" + site, Types: []string{"Observation"},
		TypeFilters: []string{"Observation?code=8867-4"}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, e.svc)
	chunks := 0
	if err := e.store.ExportChunks(ctx, j.ID, 0, func(int, []byte) error { chunks++; return nil }); err != nil {
		t.Fatal(err)
	}
	obs := e.ndjson(t, ehr, j.ID, 0, "Observation")
	if chunks < 2 || len(obs) != 3260 {
		t.Errorf("%d chunks, %d resources; want 2 or more chunks and 3260 resources", chunks, len(obs))
	}
	if !slices.IsSorted(obs) {
		t.Error("resources out of order across chunks")
	}
	e.clock.add(bulk.DefaultRetention + time.Minute)
	if _, err := e.svc.Job(ctx, ehr, j.ID); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("Job after its retention = %v, want ENOTFOUND", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.svc.Run(rctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.store.ExportJob(ctx, j.ID); vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not delete the expired job")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestDisabledClientsJobFails: a client disabled after its kick-off gets a failed job, not
// data.
func TestDisabledClientsJobFails(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	j, err := e.svc.KickOff(ctx, ehr, bulk.Request{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.store.Client(ctx, "ehr")
	c.Disabled = true
	if err := e.store.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	run(t, e.svc)
	got, _ := e.store.ExportJob(ctx, j.ID)
	if got.Status != vitalgate.ExportFailed || !strings.Contains(got.Error, "disabled") || len(got.Files) != 0 {
		t.Errorf("job = %s %q %v, want failed for a disabled client", got.Status, got.Error, got.Files)
	}
}

// TestErasureDestroysEarlierExports: an erasure destroys the key-encryption key that wraps
// the exports made before it: their files are gone (in words), and a job still waiting
// fails instead of exporting.
func TestErasureDestroysEarlierExports(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	done, err := e.svc.KickOff(ctx, ehr, bulk.Request{Types: []string{"Patient"}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, e.svc)
	waiting, err := e.svc.KickOff(ctx, ehr, bulk.Request{Types: []string{"Patient"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.vault.ShredKEK(ctx, site); err != nil {
		t.Fatal(err)
	}
	err = e.svc.WriteFile(ctx, ehr, done.ID, 0, &bytes.Buffer{})
	if vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND || !strings.Contains(vitalgate.ErrorMessage(err), "erasure") {
		t.Errorf("WriteFile after an erasure = %v, want ENOTFOUND naming the erasure", err)
	}
	run(t, e.svc)
	if got, _ := e.store.ExportJob(ctx, waiting.ID); got.Status != vitalgate.ExportFailed || !strings.Contains(got.Error, "erasure") {
		t.Errorf("waiting job after an erasure = %s %q, want failed", got.Status, got.Error)
	}
}
