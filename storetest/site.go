package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/pki"
)

// siteTests are the conformance tests of sites (migration sqlite 0009, postgres 0006): the
// site and model records, the site every record keeps, the site filter of Resources and
// AuditSearch, and Patient identifiers unique per site.
func (s *suite) siteTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Site/CreateGetList", s.testSites},
		{"Site/Models", s.testModels},
		{"Site/RecordsKeepTheirSite", s.testRecordSites},
		{"Site/ResourceFilter", s.testSiteFilter},
		{"Site/PatientIdentifierPerSite", s.testIdentifierPerSite},
		{"Site/AuditSearch", s.testSiteAuditSearch},
		{"Site/CareUnits", s.testCareUnits},
	}
}

// testCareUnits (migration sqlite 0026, postgres 0023): units per site, a device placed in
// a unit of its own site only, admissions replaced and ended, and UnitCheck's answers; each
// write with its audit entry.
func (s *suite) testCareUnits(t *testing.T) {
	st := s.store(t)
	ctx := ctxT(t)
	for _, id := range []string{"north", "south"} {
		must(t, "CreateSite", st.CreateSite(ctx, vitalgate.Site{ID: id, Name: id, CreatedAt: at(0)}))
	}
	before := auditSize(t, st)
	must(t, "CreateUnit", st.CreateUnit(ctx, vitalgate.CareUnit{Site: "north", ID: "icu", Name: "ICU", CreatedAt: at(1)}, updateEntry("unit-add")))
	must(t, "CreateUnit", st.CreateUnit(ctx, vitalgate.CareUnit{Site: "north", ID: "ward-3", Name: "Ward 3", CreatedAt: at(1)}))
	must(t, "CreateUnit", st.CreateUnit(ctx, vitalgate.CareUnit{Site: "south", ID: "icu", Name: "South ICU", CreatedAt: at(1)}))
	if got := auditSize(t, st); got != before+1 {
		t.Errorf("audit size %d after CreateUnit with one entry, want %d", got, before+1)
	}
	wantCode(t, "CreateUnit twice", st.CreateUnit(ctx, vitalgate.CareUnit{Site: "north", ID: "icu", Name: "x"}), vitalgate.ECONFLICT)
	wantCode(t, "CreateUnit of no site", st.CreateUnit(ctx, vitalgate.CareUnit{Site: "west", ID: "icu", Name: "x"}), vitalgate.ENOTFOUND)
	wantCode(t, "CreateUnit with a bad id", st.CreateUnit(ctx, vitalgate.CareUnit{Site: "north", ID: "ICU 1", Name: "x"}), vitalgate.EINVALID)
	units, err := st.Units(ctx, "north")
	must(t, "Units", err)
	if len(units) != 2 || units[0].ID != "icu" || units[0].Name != "ICU" || !units[0].CreatedAt.Equal(at(1).Truncate(time.Microsecond)) || units[1].ID != "ward-3" {
		t.Errorf("Units(north) = %+v", units)
	}

	dev := testDevice("gluco-1")
	dev.Site = "north"
	must(t, "CreateDevice", st.CreateDevice(ctx, dev))
	p1, p2 := []byte("pidx-1"), []byte("pidx-2")
	if unit, _, err := st.UnitCheck(ctx, "gluco-1", "north", p1); err != nil || unit != "" {
		t.Errorf("UnitCheck of a device in no unit = %q, %v", unit, err)
	}
	wantCode(t, "SetDeviceUnit to another site's unit", st.SetDeviceUnit(ctx, "gluco-1", "nowhere"), vitalgate.ENOTFOUND)
	wantCode(t, "SetDeviceUnit of no device", st.SetDeviceUnit(ctx, "nobody", "icu"), vitalgate.ENOTFOUND)
	must(t, "SetDeviceUnit", st.SetDeviceUnit(ctx, "gluco-1", "icu", updateEntry("device-unit")))
	must(t, "AdmitPatient", st.AdmitPatient(ctx, "north", p1, "icu", at(2), updateEntry("patient-admit")))
	must(t, "AdmitPatient", st.AdmitPatient(ctx, "north", p2, "ward-3", at(2)))
	must(t, "AdmitPatient of south", st.AdmitPatient(ctx, "south", p2, "icu", at(2)))
	wantCode(t, "AdmitPatient to no unit", st.AdmitPatient(ctx, "north", p1, "er", at(2)), vitalgate.ENOTFOUND)
	for _, tt := range []struct {
		name     string
		idx      []byte
		admitted bool
	}{{"admitted to its unit", p1, true}, {"admitted to another unit", p2, false}, {"admitted nowhere", []byte("pidx-3"), false}} {
		unit, admitted, err := st.UnitCheck(ctx, "gluco-1", "north", tt.idx)
		if err != nil || unit != "icu" || admitted != tt.admitted {
			t.Errorf("UnitCheck, %s = %q, %v, %v; want icu, %v", tt.name, unit, admitted, err, tt.admitted)
		}
	}
	// The same unit id in another site is another unit: a south admission is not north's.
	if _, admitted, _ := st.UnitCheck(ctx, "gluco-1", "south", p2); admitted {
		t.Error("UnitCheck admits a patient of another site's unit of the same id")
	}
	must(t, "AdmitPatient (transfer)", st.AdmitPatient(ctx, "north", p2, "icu", at(3)))
	if _, admitted, _ := st.UnitCheck(ctx, "gluco-1", "north", p2); !admitted {
		t.Error("UnitCheck after a transfer to the device's unit: not admitted")
	}
	must(t, "DischargePatient", st.DischargePatient(ctx, "north", p2, updateEntry("patient-discharge")))
	wantCode(t, "DischargePatient twice", st.DischargePatient(ctx, "north", p2), vitalgate.ENOTFOUND)
	if _, admitted, _ := st.UnitCheck(ctx, "gluco-1", "north", p2); admitted {
		t.Error("UnitCheck after discharge: admitted")
	}
	must(t, "SetDeviceUnit (none)", st.SetDeviceUnit(ctx, "gluco-1", ""))
	if unit, _, err := st.UnitCheck(ctx, "gluco-1", "north", p1); err != nil || unit != "" {
		t.Errorf("UnitCheck after the device left its unit = %q, %v", unit, err)
	}
}

func (s *suite) testSites(t *testing.T) {
	st := s.store(t)
	// Every store has the default site from its first migration on.
	def, err := st.Site(ctxT(t), vitalgate.DefaultSite)
	must(t, "Site(default)", err)
	if def.ID != vitalgate.DefaultSite || def.OwnKeys {
		t.Errorf("default site = %+v", def)
	}
	a := vitalgate.Site{ID: "st-marys", Name: "St Mary's Hospital", OwnKeys: true, CreatedAt: at(1)}
	entry := audit.Entry{Time: at(1), Action: "C", Type: "admin", Outcome: "0", AgentType: audit.AgentOperator, AgentID: "op", Site: a.ID}.Marshal()
	must(t, "CreateSite", st.CreateSite(ctxT(t), a, entry))
	wantCode(t, "second CreateSite", st.CreateSite(ctxT(t), a), vitalgate.ECONFLICT)
	wantCode(t, "CreateSite with a bad id", st.CreateSite(ctxT(t), vitalgate.Site{ID: "Bad Id", Name: "x"}), vitalgate.EINVALID)
	wantCode(t, "CreateSite *", st.CreateSite(ctxT(t), vitalgate.Site{ID: vitalgate.AllSites, Name: "x"}), vitalgate.EINVALID)
	got, err := st.Site(ctxT(t), a.ID)
	must(t, "Site", err)
	if got.ID != a.ID || got.Name != a.Name || !got.OwnKeys {
		t.Errorf("Site = %+v, want %+v", got, a)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, a.CreatedAt)
	_, err = st.Site(ctxT(t), "nowhere")
	wantCode(t, "Site(unknown)", err, vitalgate.ENOTFOUND)
	must(t, "CreateSite", st.CreateSite(ctxT(t), vitalgate.Site{ID: "city", Name: "City Clinic", CreatedAt: at(2)}))
	all, err := st.Sites(ctxT(t))
	must(t, "Sites", err)
	var ids []string
	for _, x := range all {
		ids = append(ids, x.ID)
	}
	if want := []string{"city", "default", "st-marys"}; !slices.Equal(ids, want) {
		t.Errorf("Sites = %q, want %q", ids, want)
	}
	// The site's creation was audited in the same transaction.
	n, err := st.AuditSize(ctxT(t))
	must(t, "AuditSize", err)
	if n != 1 {
		t.Errorf("audit size %d after one audited CreateSite, want 1", n)
	}
}

func (s *suite) testModels(t *testing.T) {
	st := s.store(t)
	m := vitalgate.DeviceModel{ID: "glucometer-x", Binding: vitalgate.BindingIdentified, CreatedAt: at(0)}
	must(t, "CreateModel", st.CreateModel(ctxT(t), m))
	wantCode(t, "second CreateModel", st.CreateModel(ctxT(t), m), vitalgate.ECONFLICT)
	wantCode(t, "CreateModel with an unknown binding", st.CreateModel(ctxT(t), vitalgate.DeviceModel{ID: "y", Binding: "anyone"}), vitalgate.EINVALID)
	got, err := st.Model(ctxT(t), m.ID)
	must(t, "Model", err)
	if got.Binding != vitalgate.BindingIdentified {
		t.Errorf("Model = %+v", got)
	}
	checkTime(t, "UpdatedAt", got.UpdatedAt, at(0))
	m.Binding, m.UpdatedAt = vitalgate.BindingAssigned, at(5)
	must(t, "UpdateModel", st.UpdateModel(ctxT(t), m))
	got, err = st.Model(ctxT(t), m.ID)
	must(t, "Model", err)
	if got.Binding != vitalgate.BindingAssigned {
		t.Errorf("after UpdateModel, binding %q", got.Binding)
	}
	checkTime(t, "UpdatedAt", got.UpdatedAt, at(5))
	checkTime(t, "CreatedAt", got.CreatedAt, at(0))
	wantCode(t, "UpdateModel(unknown)", st.UpdateModel(ctxT(t), vitalgate.DeviceModel{ID: "nope", Binding: vitalgate.BindingAssigned}), vitalgate.ENOTFOUND)
	_, err = st.Model(ctxT(t), "nope")
	wantCode(t, "Model(unknown)", err, vitalgate.ENOTFOUND)
	// A model's IDevID CAs are kept byte for byte, replaced and removed by UpdateModel.
	maker, err := pki.NewCA("Maker IDevID CA", at(0), nil)
	must(t, "NewCA", err)
	caPEM, _, err := maker.MarshalPEM()
	must(t, "MarshalPEM", err)
	must(t, "CreateModel", st.CreateModel(ctxT(t), vitalgate.DeviceModel{ID: "bp-cuff", Binding: vitalgate.BindingAssigned, IDevIDCA: caPEM}))
	wantCode(t, "CreateModel with a key as IDevID CA", st.CreateModel(ctxT(t), vitalgate.DeviceModel{ID: "z", Binding: vitalgate.BindingAssigned,
		IDevIDCA: []byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n")}), vitalgate.EINVALID)
	cuff, err := st.Model(ctxT(t), "bp-cuff")
	must(t, "Model", err)
	if !bytes.Equal(cuff.IDevIDCA, caPEM) {
		t.Errorf("IDevID CAs read back as %q", cuff.IDevIDCA)
	}
	must(t, "CreateSite", st.CreateSite(ctxT(t), vitalgate.Site{ID: "north", Name: "North"}))
	cuff.SiteBindings = map[string]vitalgate.Binding{"north": vitalgate.BindingIdentified}
	must(t, "UpdateModel", st.UpdateModel(ctxT(t), cuff))
	if got, err := st.Model(ctxT(t), "bp-cuff"); err != nil || got.BindingAt("north") != vitalgate.BindingIdentified || got.BindingAt("south") != vitalgate.BindingAssigned {
		t.Errorf("site bindings read back as %v (%v)", got.SiteBindings, err)
	}
	bad := cuff
	bad.SiteBindings = map[string]vitalgate.Binding{"north": "sometimes"}
	wantCode(t, "UpdateModel with an unknown site binding", st.UpdateModel(ctxT(t), bad), vitalgate.EINVALID)
	cuff.IDevIDCA, cuff.SiteBindings = nil, nil
	must(t, "UpdateModel", st.UpdateModel(ctxT(t), cuff))
	if cuff, err = st.Model(ctxT(t), "bp-cuff"); err != nil || cuff.IDevIDCA != nil || cuff.SiteBindings != nil {
		t.Errorf("after removing the IDevID CAs and site bindings: %q %v %v", cuff.IDevIDCA, cuff.SiteBindings, err)
	}
	all, err := st.Models(ctxT(t))
	must(t, "Models", err)
	if len(all) != 2 || all[0].ID != "bp-cuff" || all[1].ID != "glucometer-x" {
		t.Errorf("Models = %+v", all)
	}
}

func (s *suite) testRecordSites(t *testing.T) {
	st := s.store(t)
	must(t, "CreateSite", st.CreateSite(ctxT(t), vitalgate.Site{ID: "a", Name: "A"}))
	// A device, a client, a data key of site a, and of no site (the default's).
	d := testDevice("dev-a")
	d.Site = "a"
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), d))
	must(t, "CreateDevice", st.CreateDevice(ctxT(t), testDevice("dev-default")))
	for id, want := range map[string]string{"dev-a": "a", "dev-default": vitalgate.DefaultSite} {
		got, err := st.Device(ctxT(t), id)
		must(t, "Device", err)
		if got.Site != want {
			t.Errorf("device %s of site %q, want %q", id, got.Site, want)
		}
	}
	bad := testDevice("dev-all")
	bad.Site = vitalgate.AllSites
	wantCode(t, "CreateDevice of every site", st.CreateDevice(ctxT(t), bad), vitalgate.EINVALID)

	for _, c := range []vitalgate.Client{
		{ID: "ehr-a", Site: "a", Role: vitalgate.RoleEHRSystem},
		{ID: "auditor", Site: vitalgate.AllSites, Role: vitalgate.RoleAuditor},
		{ID: "ehr-default", Role: vitalgate.RoleEHRSystem},
		{ID: "ehr-ab", Site: "a", OtherSites: []string{"b", "c"}, Role: vitalgate.RoleEHRSystem},
	} {
		must(t, "CreateClient", st.CreateClient(ctxT(t), c))
		got, err := st.Client(ctxT(t), c.ID)
		must(t, "Client", err)
		if got.Site != vitalgate.StoredSite(c.Site) || !slices.Equal(got.OtherSites, c.OtherSites) {
			t.Errorf("client %s of sites %q %q, want %q %q", c.ID, got.Site, got.OtherSites, vitalgate.StoredSite(c.Site), c.OtherSites)
		}
		// An update never moves a client to another site.
		got.Site, got.OtherSites = "elsewhere", []string{"d"}
		must(t, "UpdateClient", st.UpdateClient(ctxT(t), got))
		again, err := st.Client(ctxT(t), c.ID)
		must(t, "Client", err)
		if again.Site != vitalgate.StoredSite(c.Site) || !slices.Equal(again.OtherSites, c.OtherSites) {
			t.Errorf("client %s moved to sites %q %q by UpdateClient", c.ID, again.Site, again.OtherSites)
		}
	}
	all, err := st.Clients(ctxT(t))
	must(t, "Clients", err)
	for _, c := range all {
		if c.ID == "ehr-ab" && !slices.Equal(c.OtherSites, []string{"b", "c"}) {
			t.Errorf("Clients lists ehr-ab with other sites %q", c.OtherSites)
		}
	}
	wantCode(t, "CreateClient with a bad site", st.CreateClient(ctxT(t), vitalgate.Client{ID: "x", Site: "Bad", Role: vitalgate.RoleAdmin}), vitalgate.EINVALID)
	for name, c := range map[string]vitalgate.Client{
		"a bad other site":              {ID: "y", Site: "a", OtherSites: []string{"Bad"}, Role: vitalgate.RoleEHRSystem},
		"its own site again":            {ID: "y", Site: "a", OtherSites: []string{"a"}, Role: vitalgate.RoleEHRSystem},
		"a site twice":                  {ID: "y", Site: "a", OtherSites: []string{"b", "b"}, Role: vitalgate.RoleEHRSystem},
		"other sites of the deployment": {ID: "y", Site: vitalgate.AllSites, OtherSites: []string{"b"}, Role: vitalgate.RoleAuditor},
	} {
		wantCode(t, "CreateClient with "+name, st.CreateClient(ctxT(t), c), vitalgate.EINVALID)
	}

	k, err := st.PutDataKey(ctxT(t), vitalgate.DataKey{Site: "a", PatientIndex: []byte("pa"), Wrapped: []byte("w"), CreatedAt: at(0)})
	must(t, "PutDataKey", err)
	if k.Site != "a" {
		t.Errorf("PutDataKey returned site %q", k.Site)
	}
	k, err = st.DataKey(ctxT(t), []byte("pa"))
	must(t, "DataKey", err)
	if k.Site != "a" {
		t.Errorf("DataKey of site %q, want a", k.Site)
	}
	_, err = st.PutDataKey(ctxT(t), vitalgate.DataKey{Site: vitalgate.AllSites, PatientIndex: []byte("pb"), Wrapped: []byte("w")})
	wantCode(t, "PutDataKey of every site", err, vitalgate.EINVALID)
	// RewrapDataKeys hands each key with its site, so that a rotation can keep to one site.
	must(t, "PutDataKey", func() error {
		_, err := st.PutDataKey(ctxT(t), vitalgate.DataKey{PatientIndex: []byte("pd"), Wrapped: []byte("w")})
		return err
	}())
	sites := map[string]string{}
	_, err = st.RewrapDataKeys(ctxT(t), func(k vitalgate.DataKey) ([]byte, bool, error) {
		sites[string(k.PatientIndex)] = k.Site
		return nil, false, nil
	})
	must(t, "RewrapDataKeys", err)
	if sites["pa"] != "a" || sites["pd"] != vitalgate.DefaultSite {
		t.Errorf("RewrapDataKeys saw sites %v", sites)
	}
	r := resource("Observation", "o-a", "pa", at(1), at(1))
	r.Site = "a"
	must(t, "CreateResources", st.CreateResources(ctxT(t), []vitalgate.SealedResource{r, resource("Observation", "o-d", "pd", at(1), at(1))}))
	got, err := st.Resource(ctxT(t), "Observation", "o-a")
	must(t, "Resource", err)
	checkResource(t, got, r)
	r.ID, r.Site = "o-all", vitalgate.AllSites
	wantCode(t, "CreateResources of every site", st.CreateResources(ctxT(t), []vitalgate.SealedResource{r}), vitalgate.EINVALID)
}

// siteData is filterData split between two sites, and the default site.
func siteData() []vitalgate.SealedResource {
	rs := filterData()
	for i := range rs {
		rs[i].Site = []string{"a", "b", vitalgate.DefaultSite}[i%3]
	}
	return rs
}

func (s *suite) testSiteFilter(t *testing.T) {
	st := s.store(t)
	for _, id := range []string{"a", "b"} {
		must(t, "CreateSite", st.CreateSite(ctxT(t), vitalgate.Site{ID: id, Name: id}))
	}
	rs := siteData()
	load(t, st, rs)
	byKey := make(map[string]vitalgate.SealedResource)
	for _, r := range rs {
		byKey[key(r)] = r
	}
	for _, site := range []string{"a", "b", vitalgate.DefaultSite, "nowhere"} {
		for _, tt := range filters {
			t.Run(site+"/"+tt.name, func(t *testing.T) {
				f := tt.f
				f.Site = site
				got := collect(t, st, f, byKey)
				var in []vitalgate.SealedResource
				for _, r := range rs {
					if r.Site == site {
						in = append(in, r)
					}
				}
				if want := expected(in, f); !slices.Equal(got, want) {
					t.Errorf("Resources(%+v)\n got %q\nwant %q", f, got, want)
				}
			})
		}
	}
	// By date, newest first, within a site: only that site's resources of the patient.
	f := vitalgate.ResourceFilter{Site: "a", Type: "Observation", PatientIndex: []byte("p1"), ByEffective: true, Desc: true}
	err := st.Resources(ctxT(t), f, func(r vitalgate.SealedResource) error {
		if r.Site != "a" {
			return fmt.Errorf("search by date in site a yields %s/%s of site %q", r.Type, r.ID, r.Site)
		}
		return nil
	})
	must(t, "Resources by date", err)
}

func (s *suite) testIdentifierPerSite(t *testing.T) {
	st := s.store(t)
	for _, id := range []string{"a", "b"} {
		must(t, "CreateSite", st.CreateSite(ctxT(t), vitalgate.Site{ID: id, Name: id}))
	}
	mrn := []byte("mrn-12345")
	patient := func(site, id string) vitalgate.SealedResource {
		r := resource("Patient", id, "pi-"+site+id, at(0), at(0))
		r.Site, r.IdentifierIndexes = site, [][]byte{mrn}
		return r
	}
	// Two hospitals may both have MRN 12345; one hospital may not have it twice.
	must(t, "Patient of a", st.CreateResources(ctxT(t), []vitalgate.SealedResource{patient("a", "pat-a")}))
	must(t, "Patient of b, same identifier", st.CreateResources(ctxT(t), []vitalgate.SealedResource{patient("b", "pat-b")}))
	wantCode(t, "second Patient of a with the identifier",
		st.CreateResources(ctxT(t), []vitalgate.SealedResource{patient("a", "pat-a2")}), vitalgate.ECONFLICT)
	must(t, "Patient of the default site, same identifier", st.CreateResources(ctxT(t), []vitalgate.SealedResource{patient("", "pat-d")}))
	for site, want := range map[string]string{"a": "pat-a", "b": "pat-b", "": "pat-d", vitalgate.DefaultSite: "pat-d", "nowhere": ""} {
		var got []string
		err := st.Resources(ctxT(t), vitalgate.ResourceFilter{Site: site, Type: "Patient", IdentifierIndex: mrn},
			func(r vitalgate.SealedResource) error { got = append(got, r.ID); return nil })
		must(t, "Resources by identifier", err)
		var wantIDs []string
		if want != "" {
			wantIDs = []string{want}
		}
		if !slices.Equal(got, wantIDs) {
			t.Errorf("site %q: Patients by identifier = %q, want %q", site, got, wantIDs)
		}
	}
}

func (s *suite) testSiteAuditSearch(t *testing.T) {
	st := s.store(t)
	entry := func(m int, site, agent string) []byte {
		return audit.Entry{Time: at(m), Action: "R", Type: "rest", Outcome: "0", AgentType: audit.AgentClient,
			AgentID: agent, PatientIndex: "aa01", Site: site}.Marshal()
	}
	log := [][]byte{
		entry(0, "a", "ehr-a"),   // 0
		entry(1, "b", "ehr-b"),   // 1
		entry(2, "", "op"),       // 2: the whole deployment's
		entry(3, "a", "ehr-a"),   // 3
		entry(4, "b", "ehr-a"),   // 4: a client of a, refused in b, audited for b
		entry(5, "ab", "ehr-ab"), // 5: a site whose id begins like another's
	}
	_, err := st.AppendAudit(ctxT(t), log...)
	must(t, "AppendAudit", err)
	tests := []struct {
		name string
		q    vitalgate.AuditQuery
		want []uint64
	}{
		{"every site", vitalgate.AuditQuery{Limit: 100}, []uint64{5, 4, 3, 2, 1, 0}},
		{"site a", vitalgate.AuditQuery{Site: "a", Limit: 100}, []uint64{3, 0}},
		{"site b", vitalgate.AuditQuery{Site: "b", Limit: 100}, []uint64{4, 1}},
		{"site a, limit", vitalgate.AuditQuery{Site: "a", Limit: 1}, []uint64{3}},
		{"site a, agent", vitalgate.AuditQuery{Site: "b", AgentID: "ehr-a", Limit: 100}, []uint64{4}},
		{"site a, patient", vitalgate.AuditQuery{Site: "a", PatientIndex: "aa01", Limit: 100}, []uint64{3, 0}},
		{"site a, action and time", vitalgate.AuditQuery{Site: "a", Action: "R", From: at(1), Limit: 100}, []uint64{3}},
		{"site a, time", vitalgate.AuditQuery{Site: "a", From: at(0), To: at(3), Limit: 100}, []uint64{0}},
		{"unknown site", vitalgate.AuditQuery{Site: "zz", Limit: 100}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := searchIndexes(t, st, tt.q, log)
			if !slices.Equal(got, tt.want) {
				t.Errorf("AuditSearch(%+v) = %v, want %v", tt.q, got, tt.want)
			}
			for _, i := range got {
				if e, err := audit.UnmarshalEntry(log[i]); err == nil && tt.q.Site != "" && e.Site != tt.q.Site {
					t.Errorf("entry %d of site %q in a search of site %q", i, e.Site, tt.q.Site)
				}
			}
		})
	}
}
