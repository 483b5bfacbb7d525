package posture_test

import (
	"archive/zip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/posture"
	"github.com/vitalgate/vitalgate/sqlite"
)

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name)) // #nosec G304 -- test data
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParseSBOM(t *testing.T) {
	tests := []struct {
		file, format string
		components   int
		gaps         map[string][]string // component → missing
		nested       map[string]string   // component → parent
	}{
		{"sbom/vm-100-1.0.0.cdx.json", "CycloneDX 1.6", 8,
			map[string][]string{"vm100-display-driver": {"purl", "version", "support level", "end-of-support date"},
				"zlib": {"purl (CPE only)", "version", "supplier", "support level", "end-of-support date"}},
			map[string]string{"wolfSSL": "vm100-bootloader", "nanopb": "vm100-bootloader", "zlib": "vm100-bootloader", "std": ""}},
		{"sbom/pump-7-3.2.0.spdx.json", "SPDX 2.3", 3,
			map[string][]string{"google.golang.org/protobuf v1.31.0": {"supplier", "support level", "end-of-support date"}},
			map[string]string{"google.golang.org/protobuf": "google.golang.org/grpc", "std": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sb, err := posture.ParseSBOM(mustRead(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if sb.Format != tt.format || len(sb.Components) != tt.components {
				t.Fatalf("format %q, %d components; want %q, %d", sb.Format, len(sb.Components), tt.format, tt.components)
			}
			gaps := map[string][]string{}
			for _, g := range sb.Gaps() {
				gaps[g.Component] = g.Missing
			}
			for c, want := range tt.gaps {
				if !slices.Equal(gaps[c], want) {
					t.Errorf("%s lacks %q, want %q", c, gaps[c], want)
				}
			}
			for _, c := range sb.Components {
				if p, ok := tt.nested[c.Name]; ok && c.Parent != p {
					t.Errorf("%s nested in %q, want %q", c.Name, c.Parent, p)
				}
			}
		})
	}
	if sb, _ := posture.ParseSBOM(mustRead(t, "sbom/pump-7-3.2.0.spdx.json")); sb.Components[0].EndOfSupport == "" || sb.Components[0].SupportLevel != "active" {
		t.Errorf("SPDX FDA fields not kept: %+v", sb.Components[0])
	}
	for name, doc := range map[string]string{
		"not JSON":        `{`,
		"neither":         `{"hello":"world"}`,
		"CycloneDX 1.2":   `{"bomFormat":"CycloneDX","specVersion":"1.2"}`,
		"SPDX 2.2":        `{"spdxVersion":"SPDX-2.2"}`,
		"too deep nested": `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[` + strings.Repeat(`{"name":"x","components":[`, 70) + strings.Repeat(`]}`, 70) + `]}`,
	} {
		if _, err := posture.ParseSBOM([]byte(doc)); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			t.Errorf("%s: error %v, want EINVALID", name, err)
		}
	}
}

func TestParseKEVAndVEX(t *testing.T) {
	c, err := posture.ParseKEV(mustRead(t, "kev/known_exploited_vulnerabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rapid posture.KEV
	for _, e := range c.Entries {
		if e.CVE == "CVE-2023-44487" {
			rapid = e
		}
	}
	if rapid.DateAdded != "2023-10-10" || rapid.DueDate != "2023-10-31" || rapid.Ransomware != "Unknown" {
		t.Errorf("CVE-2023-44487 = %+v", rapid)
	}
	for _, bad := range []string{`{}`, `{"vulnerabilities":[{"cveID":"nope","dateAdded":"2023-01-01"}]}`,
		`{"vulnerabilities":[{"cveID":"CVE-2023-1234","dateAdded":"yesterday"}]}`} {
		if _, err := posture.ParseKEV([]byte(bad)); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			t.Errorf("ParseKEV(%s): %v, want EINVALID", bad, err)
		}
	}
	tests := []struct {
		file, vuln, status, justification string
		components                        []string
	}{
		{"vex/vm-100.openvex.json", "CVE-2023-48795", posture.VEXNotAffected, "vulnerable_code_not_in_execute_path", []string{"pkg:golang/golang.org/x/crypto@v0.13.0"}},
		{"vex/pump-7.cdx-vex.json", "GO-2023-2153", posture.VEXAffected, "", []string{"pkg:golang/google.golang.org/grpc@v1.58.2"}},
	}
	for _, tt := range tests {
		sts, err := posture.ParseVEX(mustRead(t, tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if len(sts) != 1 || sts[0].Vulnerability != tt.vuln || sts[0].Status != tt.status || sts[0].Justification != tt.justification ||
			!slices.Equal(sts[0].Components, tt.components) {
			t.Errorf("%s: %+v", tt.file, sts)
		}
	}
	noWhy := `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-2023-48795"},"status":"not_affected"}]}`
	if _, err := posture.ParseVEX([]byte(noWhy)); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("not_affected without justification: %v, want EINVALID", err)
	}
}

// TestMatchEcosystems: each ecosystem's own version order decides, through
// osv-scalibr/semantic (the advisories are built in the test; the real records are in
// TestReport).
func TestMatchEcosystems(t *testing.T) {
	rng := func(eco, name, typ string, events ...posture.Event) posture.Advisory {
		a := posture.Advisory{ID: "TEST-1", Affected: []posture.Affected{{Ranges: []posture.Range{{Type: typ, Events: events}}}}}
		a.Affected[0].Package.Ecosystem, a.Affected[0].Package.Name = eco, name
		return a
	}
	intro := func(v string) posture.Event { return posture.Event{Introduced: v} }
	fixed := func(v string) posture.Event { return posture.Event{Fixed: v} }
	last := func(v string) posture.Event { return posture.Event{LastAffected: v} }
	tests := []struct {
		name      string
		adv       posture.Advisory
		comp      posture.Component
		affected  bool
		fixedIn   string
		unmatched bool
	}{
		{"Go module below fix", rng("Go", "golang.org/x/net", "SEMVER", intro("0"), fixed("0.17.0")),
			posture.Component{Name: "x/net", PURL: "pkg:golang/golang.org/x/net@v0.15.0"}, true, "0.17.0", false},
		{"Go module at fix", rng("Go", "golang.org/x/net", "SEMVER", intro("0"), fixed("0.17.0")),
			posture.Component{Name: "x/net", PURL: "pkg:golang/golang.org/x/net@v0.17.0"}, false, "", false},
		{"Go stdlib second branch", rng("Go", "stdlib", "SEMVER", intro("0"), fixed("1.20.10"), intro("1.21.0-0"), fixed("1.21.3")),
			posture.Component{Name: "std", PURL: "pkg:golang/std@go1.21.1"}, true, "1.21.3", false},
		{"npm scoped, prerelease order", rng("npm", "@babel/traverse", "SEMVER", intro("8.0.0-alpha.0"), fixed("8.0.0-alpha.4")),
			posture.Component{Name: "traverse", PURL: "pkg:npm/%40babel/traverse@8.0.0-alpha.2"}, true, "8.0.0-alpha.4", false},
		{"PyPI post release is after", rng("PyPI", "Django", "ECOSYSTEM", intro("4.2"), fixed("4.2.post1")),
			posture.Component{Name: "django", PURL: "pkg:pypi/django@4.2"}, true, "4.2.post1", false},
		{"PyPI rc is before the release", rng("PyPI", "django", "ECOSYSTEM", intro("0"), fixed("5.0rc1")),
			posture.Component{Name: "django", PURL: "pkg:pypi/django@5.0"}, false, "", false},
		{"Maven qualifiers", rng("Maven", "org.apache.logging.log4j:log4j-core", "ECOSYSTEM", intro("2.0-beta9"), fixed("2.15.0")),
			posture.Component{Name: "log4j-core", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}, true, "2.15.0", false},
		{"Maven beta before release", rng("Maven", "org.apache.logging.log4j:log4j-core", "ECOSYSTEM", intro("2.0-beta9"), fixed("2.15.0")),
			posture.Component{Name: "log4j-core", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.0-beta8"}, false, "", false},
		{"Debian epoch and revision", rng("Debian:12", "openssl", "ECOSYSTEM", intro("0"), fixed("3.0.11-1~deb12u1")),
			posture.Component{Name: "openssl", PURL: "pkg:deb/debian/openssl@3.0.9-1?distro=debian-12"}, true, "3.0.11-1~deb12u1", false},
		{"Debian tilde sorts first", rng("Debian", "openssl", "ECOSYSTEM", intro("0"), fixed("3.0.11-1")),
			posture.Component{Name: "openssl", PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u1"}, true, "3.0.11-1", false},
		{"Alpine revision", rng("Alpine:v3.18", "busybox", "ECOSYSTEM", intro("0"), fixed("1.36.1-r2")),
			posture.Component{Name: "busybox", PURL: "pkg:apk/alpine/busybox@1.36.1-r1"}, true, "1.36.1-r2", false},
		{"last_affected includes it", rng("npm", "left-pad", "SEMVER", intro("1.0.0"), last("1.3.0")),
			posture.Component{Name: "left-pad", PURL: "pkg:npm/left-pad@1.3.0"}, true, "", false},
		{"last_affected excludes after", rng("npm", "left-pad", "SEMVER", intro("1.0.0"), last("1.3.0")),
			posture.Component{Name: "left-pad", PURL: "pkg:npm/left-pad@1.3.1"}, false, "", false},
		{"generic fallback order", rng("Hypothetical", "thing", "ECOSYSTEM", intro("1.0"), fixed("1.10")),
			posture.Component{Name: "thing", PURL: "pkg:generic/thing@1.9"}, false, "", false},
		{"other package", rng("Go", "golang.org/x/net", "SEMVER", intro("0"), fixed("0.17.0")),
			posture.Component{Name: "x/crypto", PURL: "pkg:golang/golang.org/x/crypto@v0.13.0"}, false, "", false},
		{"no version: reported", rng("Go", "golang.org/x/net", "SEMVER", intro("0"), fixed("0.17.0")),
			posture.Component{Name: "x/net", PURL: "pkg:golang/golang.org/x/net"}, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, unmatched := posture.Match([]posture.Advisory{tt.adv}, tt.comp)
			if got := len(fs) == 1; got != tt.affected {
				t.Fatalf("affected = %v (%+v), want %v", got, fs, tt.affected)
			}
			if tt.affected && fs[0].FixedIn != tt.fixedIn {
				t.Errorf("fixed in %q, want %q", fs[0].FixedIn, tt.fixedIn)
			}
			if (len(unmatched) > 0) != tt.unmatched {
				t.Errorf("unmatched = %v, want %v", unmatched, tt.unmatched)
			}
		})
	}
}

// TestMatchAliases: components known only by a CPE or a pkg:github purl are matched
// through the alias table: GIT ranges by the repository and versions[] tags, and an
// ecosystem package where the table names one.
func TestMatchAliases(t *testing.T) {
	wolf := posture.Advisory{ID: "CVE-2023-3724", Affected: []posture.Affected{{
		Ranges:   []posture.Range{{Type: "GIT", Repo: "https://github.com/wolfSSL/wolfssl", Events: []posture.Event{{Introduced: "0"}, {Fixed: "4b4ab5b0b64e3a1bf9eac5b1a2da7a2dc2f84bfb"}}}},
		Versions: []string{"v5.5.3-stable", "v5.5.4-stable", "v5.6.0-stable"}}}}
	nanopb := posture.Advisory{ID: "GHSA-7mv5-5mxh-qg88", Affected: []posture.Affected{{
		Ranges: []posture.Range{{Type: "ECOSYSTEM", Events: []posture.Event{{Introduced: "0"}, {Fixed: "0.4.5"}}}}}}}
	nanopb.Affected[0].Package.Ecosystem, nanopb.Affected[0].Package.Name = "PyPI", "nanopb"
	tests := []struct {
		name     string
		adv      posture.Advisory
		comp     posture.Component
		affected bool
	}{
		{"wolfSSL by CPE, tag listed", wolf, posture.Component{Name: "wolfSSL", Version: "5.5.4", CPE: "cpe:2.3:a:wolfssl:wolfssl:5.5.4:*:*:*:*:*:*:*"}, true},
		{"wolfSSL by CPE version, tag not listed", wolf, posture.Component{Name: "wolfSSL", CPE: "cpe:2.3:a:wolfssl:wolfssl:5.6.4:*:*:*:*:*:*:*"}, false},
		{"wolfSSL by pkg:github", wolf, posture.Component{Name: "wolfssl", PURL: "pkg:github/wolfssl/wolfssl@v5.5.3-stable"}, true},
		{"wolfSSL by name only", wolf, posture.Component{Name: "wolfSSL", Version: "5.6.0"}, true},
		{"nanopb by pkg:github through its PyPI package", nanopb, posture.Component{Name: "nanopb", PURL: "pkg:github/nanopb/nanopb@0.4.4"}, true},
		{"nanopb fixed", nanopb, posture.Component{Name: "nanopb", PURL: "pkg:github/nanopb/nanopb@0.4.7"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, unmatched := posture.Match([]posture.Advisory{tt.adv}, tt.comp)
			if got := len(fs) == 1; got != tt.affected || len(unmatched) > 0 {
				t.Fatalf("affected = %v (%+v, unmatched %v), want %v", got, fs, unmatched, tt.affected)
			}
		})
	}
	// A CPE the table does not know is reported, not dropped.
	if _, un := posture.Match([]posture.Advisory{wolf}, posture.Component{Name: "x", CPE: "cpe:2.3:a:nobody:nothing:1.0"}); len(un) != 1 {
		t.Errorf("an unknown CPE was not reported: %v", un)
	}
}

// staticFleet is a fleet given in the test: the real adapter (package node) is tested
// through the e2e test against a server.
type staticFleet struct {
	devices  []posture.Device
	releases []posture.Release
	rollouts []posture.Rollout
}

func (f *staticFleet) Devices(context.Context) ([]posture.Device, error) { return f.devices, nil }
func (f *staticFleet) Releases(_ context.Context, model string) ([]posture.Release, error) {
	var out []posture.Release
	for _, r := range f.releases {
		if model == "" || r.Model == model {
			out = append(out, r)
		}
	}
	return out, nil
}
func (f *staticFleet) Rollouts(_ context.Context, model string) ([]posture.Rollout, error) {
	var out []posture.Rollout
	for _, r := range f.rollouts {
		if model == "" || r.Model == model {
			out = append(out, r)
		}
	}
	return out, nil
}

var clock = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)

func mustService(t *testing.T, fleet posture.Fleet) (*posture.Service, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &posture.Service{Store: db, Fleet: fleet, Now: func() time.Time { return clock }}, db
}

// TestReport runs the real records through the service: SBOMs of two versions, the Go
// vulnerability database's records, the KEV catalog excerpt and a VEX statement; devices
// on each version; the fix found in the next version's SBOM with its rollout.
func TestReport(t *testing.T) {
	ctx := t.Context()
	fleet := &staticFleet{
		devices: []posture.Device{
			{ID: "vm-1", Model: "VM-100", Site: "default", Version: "1.0.0", ReportedAt: clock.Add(-30 * 24 * time.Hour)},
			{ID: "vm-2", Model: "VM-100", Site: "b", Version: "1.1.0", ReportedAt: clock.Add(-24 * time.Hour)},
			{ID: "vm-3", Model: "VM-100", Site: "default", Version: "0.9.0"},
		},
		releases: []posture.Release{{Model: "VM-100", Version: "1.1.0", Live: true, Created: clock.Add(-48 * time.Hour)}},
		rollouts: []posture.Rollout{{Model: "VM-100", Version: "1.1.0", State: "active", Targeted: 2, Installed: 1}},
	}
	svc, db := mustService(t, fleet)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := svc.AddSBOM(ctx, "op", "VM-100", v, mustRead(t, "sbom/vm-100-"+v+".cdx.json")); err != nil {
			t.Fatal(err)
		}
	}
	files, err := posture.ReadPath(filepath.Join("testdata", "osv"), posture.MaxAdvisoryBytes)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := svc.ImportAdvisories(ctx, "op", files); err != nil || res.Imported != 4 {
		t.Fatalf("ImportAdvisories: %+v, %v", res, err)
	}
	if _, err := svc.ImportKEV(ctx, "op", mustRead(t, "kev/known_exploited_vulnerabilities.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ImportVEX(ctx, "op", "VM-100", "1.0.0", mustRead(t, "vex/vm-100.openvex.json")); err != nil {
		t.Fatal(err)
	}
	// Ten days on: open since the SBOM and the records were known (after vm-1 began
	// running 1.0.0).
	svc.Now = func() time.Time { return clock.Add(10 * 24 * time.Hour) }
	rep, err := svc.Report(ctx, posture.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Models) != 1 || len(rep.Models[0].Versions) != 3 {
		t.Fatalf("report: %+v", rep.Models)
	}
	v10 := rep.Models[0].Versions[1]
	found := map[string]posture.Finding{}
	for _, f := range v10.Findings {
		found[f.ID+" "+f.Component] = f
	}
	xnet := found["GO-2023-2102 golang.org/x/net"]
	if xnet.KEV == nil || xnet.KEV.CVE != "CVE-2023-44487" || xnet.KEV.Via != "related" || xnet.FixedIn != "0.17.0" || !xnet.Open {
		t.Errorf("x/net finding: %+v", xnet)
	}
	if xnet.Fix == nil || xnet.Fix.Version != "1.1.0" || !xnet.Fix.Published || xnet.Fix.Rollout == nil || xnet.Fix.Rollout.Percent != 50 {
		t.Errorf("x/net fix: %+v", xnet.Fix)
	}
	if std := found["GO-2023-2102 std"]; std.FixedIn != "1.20.10" {
		t.Errorf("stdlib finding: %+v", std)
	}
	if ssh := found["GO-2023-2402 golang.org/x/crypto"]; ssh.VEX == nil || ssh.VEX.Status != posture.VEXNotAffected || ssh.Open {
		t.Errorf("x/crypto finding with a not_affected VEX: %+v", ssh)
	}
	if _, ok := found["GO-2022-0535 std"]; ok {
		t.Error("GO-2022-0535 (fixed in Go 1.13.7) matched Go 1.20.8")
	}
	if len(rep.Models[0].Versions[2].Findings) != 0 {
		t.Errorf("1.1.0 has findings: %+v", rep.Models[0].Versions[2].Findings)
	}
	var unmatched []string
	for _, u := range v10.Unmatched {
		unmatched = append(unmatched, u.Component)
	}
	if !slices.Contains(unmatched, "vm100-display-driver") || !slices.Contains(unmatched, "vm100-bootloader 4.2") {
		t.Errorf("unmatched components not reported: %v", unmatched)
	}
	if s := rep.Summary; s.Devices != 3 || s.DevicesWithSBOM != 2 || s.DevicesAffected != 1 || s.OpenKEV != 1 || s.ModelsWithSBOM != 0 {
		t.Errorf("summary %+v", s)
	}
	dev := rep.Models[0].Devices[0]
	if dev.ID != "vm-1" || len(dev.Findings) != 2 || dev.Findings[0].KEV != "CVE-2023-44487" || dev.Findings[0].OpenDays != 10 || !dev.Findings[0].OpenSince.Equal(clock) {
		t.Errorf("device vm-1: %+v", dev)
	}
	// Site b sees only its own device; a device query its version only.
	rb, err := svc.Report(ctx, posture.Query{Site: "b"})
	if err != nil || rb.Summary.Devices != 1 || rb.Models[0].Devices[0].ID != "vm-2" {
		t.Errorf("site b: %+v, %v", rb.Summary, err)
	}
	rd, err := svc.Report(ctx, posture.Query{Device: "vm-1"})
	if err != nil || len(rd.Models) != 1 || len(rd.Models[0].Versions) != 1 || rd.Models[0].Versions[0].Version != "1.0.0" {
		t.Errorf("device query: %+v, %v", rd.Models, err)
	}
	if _, err := svc.Report(ctx, posture.Query{Device: "vm-2", Site: "default"}); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("another site's device: %v, want ENOTFOUND", err)
	}
	// Every write was audited once.
	if n, _ := db.AuditSize(ctx); n != 5 {
		t.Errorf("audit size %d after 5 writes", n)
	}
}

func TestImportRefusals(t *testing.T) {
	svc, db := mustService(t, &staticFleet{})
	ctx := t.Context()
	if _, err := svc.AddSBOM(ctx, "op", "VM-100", "1.0.0", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.4"}`)); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("CycloneDX 1.4: %v", err)
	}
	if _, err := svc.AddSBOM(ctx, "op", "bad model!", "1.0.0", mustRead(t, "sbom/vm-100-1.0.0.cdx.json")); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("bad model: %v", err)
	}
	res, err := svc.ImportAdvisories(ctx, "op", []posture.File{{Name: "x.json", Data: []byte(`{"not":"osv"}`)}})
	if vitalgate.ErrorCode(err) != vitalgate.EINVALID || len(res.Skipped) != 1 {
		t.Errorf("no record: %+v %v", res, err)
	}
	if n, _ := db.AuditSize(ctx); n != 0 {
		t.Errorf("refusals wrote %d audit entries", n)
	}
}

// TestReadPath: a file, a directory and a ZIP archive of OSV records read alike; a record
// over the limit and an archive with no record are refused.
func TestReadPath(t *testing.T) {
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "all.zip")
	f, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, name := range []string{"GO-2023-2102.json", "GO-2023-2402.json", "README.txt"} {
		w, _ := zw.Create(name)
		if strings.HasSuffix(name, ".json") {
			_, _ = w.Write(mustRead(t, "osv/"+name))
		}
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		n    int
	}{{filepath.Join("testdata", "osv", "GO-2023-2102.json"), 1}, {filepath.Join("testdata", "osv"), 4}, {zipPath, 2}} {
		files, err := posture.ReadPath(tt.path, posture.MaxAdvisoryBytes)
		if err != nil || len(files) != tt.n {
			t.Errorf("ReadPath(%s) = %d files, %v; want %d", tt.path, len(files), err, tt.n)
		}
		for _, file := range files {
			if _, err := posture.ParseAdvisory(file.Data); err != nil {
				t.Errorf("%s: %v", file.Name, err)
			}
		}
	}
	if _, err := posture.ReadPath(filepath.Join("testdata", "osv", "GO-2023-2102.json"), 100); err == nil {
		t.Error("a record over the limit was read")
	}
	empty := filepath.Join(dir, "empty.zip")
	f, _ = os.Create(empty)
	_ = zip.NewWriter(f).Close()
	_ = f.Close()
	if _, err := posture.ReadPath(empty, posture.MaxAdvisoryBytes); err == nil {
		t.Error("an archive without records was accepted")
	}
}
