package posture

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/google/osv-scalibr/semantic"

	"github.com/vitalgate/vitalgate"
)

// Query selects the part of the fleet a report covers.
type Query struct {
	Model  string // "": every model
	Device string // "": every device (else only that device and its model)
	// Site limits the devices to one site's: "" (an operator at the command line) or
	// vitalgate.AllSites (a deployment-wide auditor) see every device.
	Site string
}

// Report is the vulnerability posture of the fleet (and of this server).
type Report struct {
	GeneratedAt time.Time      `json:"generated_at"`
	Summary     Summary        `json:"summary"`
	Models      []ModelPosture `json:"models"`
	// Server is the posture of this Vitalgate binary (its own SBOM, `vitalgate sbom`).
	Server *VersionPosture `json:"server,omitempty"`
}

// Summary are the report's headline figures.
type Summary struct {
	Advisories      int `json:"advisories"`       // OSV records imported (withdrawn excluded)
	KEVEntries      int `json:"kev_entries"`      // KEV catalog entries imported
	Models          int `json:"models"`           // models with devices, releases or SBOMs
	ModelsWithSBOM  int `json:"models_with_sbom"` // models whose every version in the field has an SBOM
	Devices         int `json:"devices"`          // devices (of a model) in the report
	DevicesWithSBOM int `json:"devices_with_sbom"`
	DevicesAffected int `json:"devices_affected"` // devices with at least one open vulnerability
	OpenFindings    int `json:"open_findings"`    // open (component, vulnerability) pairs on devices
	OpenKEV         int `json:"open_kev"`         // distinct known-exploited vulnerabilities open on a device
}

// ModelPosture is one model's versions and devices.
type ModelPosture struct {
	Model    string           `json:"model"`
	Versions []VersionPosture `json:"versions"`
	Devices  []DevicePosture  `json:"devices,omitempty"`
}

// SBOMInfo describes the SBOM of a version.
type SBOMInfo struct {
	Format     string       `json:"format"`
	Subject    string       `json:"subject,omitempty"`
	Components int          `json:"components"`
	SHA256     string       `json:"sha256"`
	Source     string       `json:"source"` // "posture sbom add" or "update publish --sbom"
	AttachedBy string       `json:"attached_by,omitempty"`
	AttachedAt time.Time    `json:"attached_at,omitzero"`
	Missing    []FieldCount `json:"missing,omitempty"` // how many components lack each field
}

// VersionPosture is one version of a model: its SBOM, what it lacks, and its findings.
type VersionPosture struct {
	Model   string    `json:"model"`
	Version string    `json:"version"`
	SBOM    *SBOMInfo `json:"sbom,omitempty"` // nil: no SBOM (nothing can be matched)
	Release string    `json:"release"`        // "live", "pending" (awaiting signatures) or "none"
	Devices int       `json:"devices"`        // devices reporting it
	// Gaps are the components lacking a field; Unmatched those that cannot be matched, and
	// why (no version, no purl or CPE, an unknown CPE): reported, never dropped.
	Gaps      []Gap     `json:"gaps,omitempty"`
	Unmatched []Gap     `json:"unmatched,omitempty"`
	Findings  []Finding `json:"findings,omitempty"`
}

// Finding is one vulnerability affecting one component of a version.
type Finding struct {
	ID        string     `json:"id"`
	Aliases   []string   `json:"aliases,omitempty"`
	Summary   string     `json:"summary,omitempty"`
	Component string     `json:"component"`
	Version   string     `json:"component_version"`
	PURL      string     `json:"purl,omitempty"`
	Matched   string     `json:"matched"` // how: SEMVER, ECOSYSTEM, GIT, versions; by purl, cpe, alias or name
	Severity  []Severity `json:"severity,omitempty"`
	Rating    string     `json:"rating,omitempty"` // the database's label (e.g. HIGH) when given
	KEV       *KEVMark   `json:"kev,omitempty"`
	VEX       *VEXMark   `json:"vex,omitempty"`
	FixedIn   string     `json:"fixed_in,omitempty"` // the component version that fixes it
	Fix       *Fix       `json:"fix,omitempty"`      // the model's first version whose SBOM clears it
	Open      bool       `json:"open"`               // not stated not_affected or fixed by VEX
	OpenSince time.Time  `json:"open_since"`
	OpenDays  int        `json:"open_days"`
}

// KEVMark is a finding's entry in the KEV catalog. Via is "alias" when the advisory is
// known by the KEV's CVE id, "related" when it names it as related (the same flaw under
// another id, such as a protocol's CVE).
type KEVMark struct {
	CVE        string `json:"cve"`
	Via        string `json:"via"`
	DateAdded  string `json:"date_added"`
	DueDate    string `json:"due_date,omitempty"`
	Ransomware string `json:"ransomware,omitempty"` // "Known" or "Unknown"
}

// VEXMark is the maker's VEX statement on a finding.
type VEXMark struct {
	Status        string `json:"status"`
	Justification string `json:"justification,omitempty"`
	Detail        string `json:"detail,omitempty"`
}

// Fix is the version of the model that clears a finding, whether it is published (a live
// release) and how far its rollout has gone.
type Fix struct {
	Version   string           `json:"version"`
	Published bool             `json:"published"`
	Rollout   *RolloutProgress `json:"rollout,omitempty"`
}

// RolloutProgress is how far the rollout of a fixing version has gone.
type RolloutProgress struct {
	State     string `json:"state"`
	Targeted  int    `json:"targeted"`
	Installed int    `json:"installed"`
	Percent   int    `json:"percent"` // Installed of Targeted
}

// DevicePosture is one device: the version it runs and that version's open findings.
type DevicePosture struct {
	ID         string          `json:"id"`
	Model      string          `json:"model"`
	Site       string          `json:"site,omitempty"`
	Version    string          `json:"version"` // "" when it never reported one
	ReportedAt time.Time       `json:"reported_at,omitzero"`
	NoSBOM     bool            `json:"no_sbom,omitempty"` // its version has no SBOM: its posture is unknown
	Findings   []DeviceFinding `json:"findings,omitempty"`
}

// DeviceFinding is an open finding of a device's version, timed from when the device
// began running it (or the vulnerability became known, if later).
type DeviceFinding struct {
	ID         string    `json:"id"`
	Component  string    `json:"component"`
	KEV        string    `json:"kev,omitempty"` // the KEV CVE id
	FixedIn    string    `json:"fixed_in,omitempty"`
	FixVersion string    `json:"fix_version,omitempty"`
	FixLive    bool      `json:"fix_published,omitempty"`
	OpenSince  time.Time `json:"open_since"`
	OpenDays   int       `json:"open_days"`
}

// knowledge is everything imported, parsed once per report.
type knowledge struct {
	advisories []Advisory
	imported   map[string]time.Time // advisory id → when imported
	kev        map[string]KEV
	vex        []storedVEX
	// index lists, by indexKey of a package, purl or repository, the advisories that name
	// it, so that a component is matched against its candidates only (nil: against all).
	index map[string][]int
}

// indexKey keys the index: an ecosystem (without its release suffix) and a package name,
// folded so that every spelling sameName accepts lands on the same key.
func indexKey(ecosystem, name string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	return "pkg\x00" + base + "\x00" + strings.ToLower(pypiName(name))
}

// buildIndex indexes the advisories by the packages, purls and repositories they name.
func (k *knowledge) buildIndex() {
	k.index = map[string][]int{}
	add := func(key string, i int) {
		if l := k.index[key]; len(l) == 0 || l[len(l)-1] != i {
			k.index[key] = append(l, i)
		}
	}
	for i, a := range k.advisories {
		for _, af := range a.Affected {
			if af.Package.Name != "" {
				add(indexKey(af.Package.Ecosystem, af.Package.Name), i)
			}
			if b := purlBase(af.Package.PURL); b != "" {
				add("purl\x00"+b, i)
			}
			for _, r := range af.Ranges {
				if r.Type == "GIT" && r.Repo != "" {
					add("repo\x00"+normRepo(r.Repo), i)
				}
			}
		}
	}
}

// candidates returns the advisories that may affect a component of identity id.
func (k *knowledge) candidates(id identity) []Advisory {
	if k.index == nil {
		return k.advisories
	}
	var idx []int
	if id.Ecosystem != "" && id.Name != "" {
		idx = append(idx, k.index[indexKey(id.Ecosystem, id.Name)]...)
	}
	if id.PURL != "" {
		idx = append(idx, k.index["purl\x00"+id.PURL]...)
	}
	if id.Repo != "" {
		idx = append(idx, k.index["repo\x00"+id.Repo]...)
	}
	sort.Ints(idx)
	out := make([]Advisory, 0, len(idx))
	for i, n := range idx {
		if i == 0 || idx[i-1] != n {
			out = append(out, k.advisories[n])
		}
	}
	return out
}

func (s *Service) load(ctx context.Context) (knowledge, error) {
	k := knowledge{imported: map[string]time.Time{}, kev: map[string]KEV{}}
	docs, err := s.Store.PostureDocs(ctx, KindAdvisory)
	if err != nil {
		return k, err
	}
	for _, d := range docs {
		a, err := ParseAdvisory(d.Data)
		if err != nil || !a.Withdrawn.IsZero() {
			continue // imported records parsed once; a withdrawn one no longer applies
		}
		k.advisories = append(k.advisories, a)
		k.imported[a.ID] = d.UpdatedAt
	}
	k.buildIndex()
	if docs, err = s.Store.PostureDocs(ctx, KindKEV); err != nil {
		return k, err
	}
	for _, d := range docs {
		var e KEV
		if json.Unmarshal(d.Data, &e) == nil {
			k.kev[e.CVE] = e
		}
	}
	if docs, err = s.Store.PostureDocs(ctx, KindVEX); err != nil {
		return k, err
	}
	for _, d := range docs {
		var v storedVEX
		if json.Unmarshal(d.Data, &v) == nil {
			k.vex = append(k.vex, v)
		}
	}
	return k, nil
}

// sbomOf is a version's SBOM and where it came from.
type sbomOf struct {
	sbom SBOM
	info SBOMInfo
}

// Report builds the posture report of q. ENOTFOUND when q names a device that does not
// exist or is not of q.Site, or a model nothing is known of.
func (s *Service) Report(ctx context.Context, q Query) (Report, error) {
	now := s.now()
	k, err := s.load(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{GeneratedAt: now, Summary: Summary{Advisories: len(k.advisories), KEVEntries: len(k.kev)}}
	// The SBOMs: attached ones, and those published with releases.
	sboms := map[string]map[string]*sbomOf{}
	put := func(model, version string, so *sbomOf) {
		if sboms[model] == nil {
			sboms[model] = map[string]*sbomOf{}
		}
		sboms[model][version] = so
	}
	docs, err := s.Store.PostureDocs(ctx, KindSBOM)
	if err != nil {
		return Report{}, err
	}
	for _, d := range docs {
		var st storedSBOM
		if json.Unmarshal(d.Data, &st) != nil {
			continue
		}
		sb, err := ParseSBOM(st.Document)
		if err != nil {
			continue
		}
		put(st.Model, st.Version, &sbomOf{sbom: sb, info: SBOMInfo{Format: sb.Format, Subject: sb.Subject, Components: len(sb.Components),
			SHA256: sb.SHA256, Source: "posture sbom add", AttachedBy: st.AttachedBy, AttachedAt: st.AttachedAt, Missing: sb.GapCounts()}})
	}
	devices, err := s.Fleet.Devices(ctx)
	if err != nil {
		return Report{}, err
	}
	var visible []Device
	for _, d := range devices {
		if d.Model == "" || !seesSite(q.Site, d.Site) || (q.Device != "" && d.ID != q.Device) {
			continue
		}
		visible = append(visible, d)
	}
	if q.Device != "" {
		if len(visible) == 0 {
			return Report{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "device %s not found (or not a device of a model)", q.Device)
		}
		q.Model = visible[0].Model
	}
	releases, err := s.Fleet.Releases(ctx, q.Model)
	if err != nil {
		return Report{}, err
	}
	rels := map[string]map[string]Release{}
	for _, r := range releases {
		if rels[r.Model] == nil {
			rels[r.Model] = map[string]Release{}
		}
		rels[r.Model][r.Version] = r
		if _, ok := sboms[r.Model][r.Version]; !ok && len(r.SBOM) > 0 {
			if sb, err := ParseSBOM(r.SBOM); err == nil {
				put(r.Model, r.Version, &sbomOf{sbom: sb, info: SBOMInfo{Format: sb.Format, Subject: sb.Subject, Components: len(sb.Components),
					SHA256: sb.SHA256, Source: "update publish --sbom", AttachedBy: "", AttachedAt: r.Created, Missing: sb.GapCounts()}})
			}
		}
	}
	rollouts, err := s.Fleet.Rollouts(ctx, q.Model)
	if err != nil {
		return Report{}, err
	}
	progress := map[string]*RolloutProgress{} // model/version → newest rollout of it
	for _, r := range rollouts {
		key := sbomKey(r.Model, r.Version)
		if _, ok := progress[key]; ok {
			continue // rollouts come newest first
		}
		p := &RolloutProgress{State: r.State, Targeted: r.Targeted, Installed: r.Installed}
		if r.Targeted > 0 {
			p.Percent = r.Installed * 100 / r.Targeted
		}
		progress[key] = p
	}
	// The models of the report and their versions.
	models := map[string]map[string]bool{}
	addV := func(m, v string) {
		if q.Model != "" && m != q.Model {
			return
		}
		if models[m] == nil {
			models[m] = map[string]bool{}
		}
		if v != "" {
			models[m][v] = true
		}
	}
	for m, vs := range sboms {
		for v := range vs {
			addV(m, v)
		}
	}
	for m, vs := range rels {
		for v := range vs {
			addV(m, v)
		}
	}
	byModel := map[string][]Device{}
	for _, d := range visible {
		addV(d.Model, d.Version)
		if q.Model == "" || d.Model == q.Model {
			byModel[d.Model] = append(byModel[d.Model], d)
		}
	}
	if q.Model != "" && models[q.Model] == nil {
		return Report{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "nothing is known of model %s: no device, release or SBOM", q.Model)
	}
	names := make([]string, 0, len(models))
	for m := range models {
		names = append(names, m)
	}
	sort.Strings(names)
	openKEV := map[string]bool{}
	for _, m := range names {
		mp := ModelPosture{Model: m}
		versions := sortedVersions(models[m])
		// The findings of every version with an SBOM, for the fix search.
		found := map[string]map[string]bool{}
		vps := map[string]*VersionPosture{}
		for _, v := range versions {
			vp := VersionPosture{Model: m, Version: v, Release: "none"}
			if r, ok := rels[m][v]; ok {
				vp.Release = "pending"
				if r.Live {
					vp.Release = "live"
				}
			}
			if so := sboms[m][v]; so != nil {
				info := so.info
				vp.SBOM = &info
				vp.Gaps = so.sbom.Gaps()
				vp.Findings, vp.Unmatched = s.findings(k, m, v, so, now)
				found[v] = map[string]bool{}
				for _, f := range vp.Findings {
					if f.Open {
						found[v][f.Component+"\x00"+f.ID] = true
					}
				}
			}
			vps[v] = &vp
		}
		for _, v := range versions {
			vp := vps[v]
			for i := range vp.Findings {
				f := &vp.Findings[i]
				if !f.Open {
					continue
				}
				f.Fix = fixFor(m, v, f, versions, found, rels, progress)
			}
		}
		covered := true
		for _, d := range byModel[m] {
			dp := DevicePosture{ID: d.ID, Model: d.Model, Site: d.Site, Version: d.Version, ReportedAt: d.ReportedAt}
			rep.Summary.Devices++
			vp := vps[d.Version]
			if d.Version != "" && vp != nil {
				vp.Devices++
			}
			if d.Version == "" || vp == nil || vp.SBOM == nil {
				dp.NoSBOM = true
				covered = false
				mp.Devices = append(mp.Devices, dp)
				continue
			}
			rep.Summary.DevicesWithSBOM++
			for _, f := range vp.Findings {
				if !f.Open {
					continue
				}
				since := later(f.OpenSince, d.ReportedAt)
				df := DeviceFinding{ID: f.ID, Component: label(Component{Name: f.Component, Version: f.Version}), FixedIn: f.FixedIn,
					OpenSince: since, OpenDays: days(now, since)}
				if f.KEV != nil {
					df.KEV = f.KEV.CVE
					openKEV[f.ID] = true
				}
				if f.Fix != nil {
					df.FixVersion, df.FixLive = f.Fix.Version, f.Fix.Published
				}
				dp.Findings = append(dp.Findings, df)
			}
			if len(dp.Findings) > 0 {
				rep.Summary.DevicesAffected++
				rep.Summary.OpenFindings += len(dp.Findings)
			}
			mp.Devices = append(mp.Devices, dp)
		}
		for _, v := range versions {
			if q.Device == "" || v == visible[0].Version {
				mp.Versions = append(mp.Versions, *vps[v])
			}
		}
		rep.Summary.Models++
		if covered && len(sboms[m]) > 0 {
			rep.Summary.ModelsWithSBOM++
		}
		rep.Models = append(rep.Models, mp)
	}
	rep.Summary.OpenKEV = len(openKEV)
	if s.Self != nil && q.Model == "" && q.Device == "" {
		data, err := s.Self()
		if err != nil {
			return Report{}, err
		}
		sb, err := ParseSBOM(data)
		if err != nil {
			return Report{}, vitalgate.Internal(err, "this binary's SBOM")
		}
		so := &sbomOf{sbom: sb, info: SBOMInfo{Format: sb.Format, Subject: sb.Subject, Components: len(sb.Components), SHA256: sb.SHA256,
			Source: "vitalgate sbom", Missing: sb.GapCounts()}}
		vp := VersionPosture{Model: "vitalgate", Version: sbomVersion(sb), Release: "none", SBOM: &so.info, Gaps: nil}
		vp.Findings, vp.Unmatched = s.findings(k, "vitalgate", vp.Version, so, now)
		rep.Server = &vp
	}
	return rep, nil
}

// sbomVersion is the version of an SBOM's subject ("" when it names none).
func sbomVersion(sb SBOM) string {
	if i := strings.LastIndex(sb.Subject, " "); i >= 0 {
		return sb.Subject[i+1:]
	}
	return ""
}

func seesSite(principal, device string) bool {
	if principal == "" || principal == vitalgate.AllSites {
		return true
	}
	return vitalgate.InSite(principal, vitalgate.StoredSite(device))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func days(now, since time.Time) int {
	if since.IsZero() || since.After(now) {
		return 0
	}
	return int(now.Sub(since) / (24 * time.Hour))
}

// sortedVersions orders versions in semver order (the generic order; model versions
// follow no ecosystem), then as strings.
func sortedVersions(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i], out[j]) })
	return out
}

func versionLess(a, b string) bool {
	c, err := semantic.ParseSemverVersion(strings.TrimPrefix(a, "v")).CompareStr(strings.TrimPrefix(b, "v"))
	if err != nil || c == 0 {
		return a < b
	}
	return c < 0
}

// fixFor finds the model's first version after v whose SBOM does not have the finding,
// preferring a published (live) release.
func fixFor(model, v string, f *Finding, versions []string, found map[string]map[string]bool, rels map[string]map[string]Release,
	progress map[string]*RolloutProgress) *Fix {
	key := f.Component + "\x00" + f.ID
	var candidate *Fix
	for _, w := range versions {
		if !versionLess(v, w) || found[w] == nil || found[w][key] {
			continue
		}
		r, released := rels[model][w]
		fx := &Fix{Version: w, Published: released && r.Live, Rollout: progress[sbomKey(model, w)]}
		if fx.Published {
			return fx
		}
		if candidate == nil {
			candidate = fx
		}
	}
	return candidate
}

// findings matches an SBOM's components against the advisories.
func (s *Service) findings(k knowledge, model, version string, so *sbomOf, now time.Time) ([]Finding, []Gap) {
	var (
		out       []Finding
		unmatched []Gap
	)
	for _, c := range so.sbom.Components {
		id, why := identify(c)
		if why != "" {
			unmatched = append(unmatched, Gap{Component: label(c), Missing: []string{why}})
			continue
		}
		for _, a := range k.candidates(id) {
			m, ok, err := matchAdvisory(a, id)
			if err != nil {
				unmatched = append(unmatched, Gap{Component: label(c), Missing: []string{a.ID + ": " + err.Error()}})
				continue
			}
			if !ok {
				continue
			}
			f := Finding{ID: a.ID, Aliases: a.Aliases, Summary: a.Summary, Component: c.Name, Version: id.Version, PURL: c.PURL,
				Matched: m.Via + " by " + id.How, Severity: severities(a), Rating: a.DatabaseSpecific.Severity, FixedIn: m.FixedIn, Open: true}
			f.KEV = kevMark(a, k.kev)
			if vx := vexFor(k.vex, model, version, a, c); vx != nil {
				f.VEX = vx
				f.Open = vx.Status != VEXNotAffected && vx.Status != VEXFixed
			}
			known := a.Published // when the vulnerability became known; the import when the record has no date
			if known.IsZero() {
				known = k.imported[a.ID]
			}
			f.OpenSince = later(known, so.info.AttachedAt)
			f.OpenDays = days(now, f.OpenSince)
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].KEV != nil) != (out[j].KEV != nil) {
			return out[i].KEV != nil // known exploited first
		}
		if out[i].Component != out[j].Component {
			return out[i].Component < out[j].Component
		}
		return out[i].ID < out[j].ID
	})
	return out, unmatched
}

func severities(a Advisory) []Severity {
	out := append([]Severity(nil), a.Severity...)
	for _, af := range a.Affected {
		out = append(out, af.Severity...)
	}
	return out
}

func kevMark(a Advisory, kev map[string]KEV) *KEVMark {
	direct, related := a.CVEs()
	for _, c := range direct {
		if e, ok := kev[c]; ok {
			return &KEVMark{CVE: c, Via: "alias", DateAdded: e.DateAdded, DueDate: e.DueDate, Ransomware: e.Ransomware}
		}
	}
	for _, c := range related {
		if e, ok := kev[c]; ok {
			return &KEVMark{CVE: c, Via: "related", DateAdded: e.DateAdded, DueDate: e.DueDate, Ransomware: e.Ransomware}
		}
	}
	return nil
}

// vexFor returns the maker's statement on a finding: a version's own statement before
// one about every version of the model, the newest first.
func vexFor(vex []storedVEX, model, version string, a Advisory, c Component) *VEXMark {
	var best *storedVEX
	for i := range vex {
		v := &vex[i]
		if v.Model != model || (v.Version != "" && v.Version != version) || !namesVuln(a, v.Statement.Vulnerability) ||
			!aboutComponent(v.Statement.Components, c) {
			continue
		}
		if best == nil || (best.Version == "" && v.Version != "") || (best.Version == v.Version && v.ImportedAt.After(best.ImportedAt)) {
			best = v
		}
	}
	if best == nil {
		return nil
	}
	return &VEXMark{Status: best.Statement.Status, Justification: best.Statement.Justification, Detail: best.Statement.Detail}
}

func namesVuln(a Advisory, name string) bool {
	for _, n := range a.Names() {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

func aboutComponent(refs []string, c Component) bool {
	if len(refs) == 0 {
		return true
	}
	base := purlBase(c.PURL)
	for _, r := range refs {
		if r == c.PURL || (base != "" && purlBase(r) == base) || strings.EqualFold(r, c.Name) || (c.Ref != "" && r == c.Ref) {
			return true
		}
	}
	return false
}
