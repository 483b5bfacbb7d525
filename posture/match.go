package posture

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/osv-scalibr/semantic"
	"github.com/package-url/packageurl-go"
)

// identity is what a component is matched by.
type identity struct {
	Ecosystem string // OSV ecosystem ("Go", "npm", "PyPI", "Maven", "Debian", "Alpine", ...) or ""
	Name      string // its package name there
	PURL      string // its purl without version, qualifiers and subpath ("" when none)
	Repo      string // normalized source repository URL, for GIT ranges ("" when unknown)
	Version   string
	How       string // how it was identified: "purl", "cpe", "alias", "name"
}

// purlEcosystems maps purl types to OSV ecosystems.
var purlEcosystems = map[string]string{
	"golang": "Go", "npm": "npm", "pypi": "PyPI", "maven": "Maven", "deb": "Debian", "apk": "Alpine",
	"cargo": "crates.io", "gem": "RubyGems", "nuget": "NuGet", "composer": "Packagist", "hex": "Hex",
	"pub": "Pub", "conan": "ConanCenter", "cran": "CRAN", "hackage": "Hackage", "rpm": "Red Hat",
	"swift": "SwiftURL",
}

// identify derives a component's identity (ok false: nothing to match it by, and why).
func identify(c Component) (identity, string) {
	id := identity{Version: c.Version}
	if c.PURL != "" {
		p, err := packageurl.FromString(c.PURL)
		if err != nil {
			return identity{}, fmt.Sprintf("its purl does not parse (%v)", err)
		}
		if id.Version == "" {
			id.Version = p.Version
		}
		id.How = "purl"
		base := packageurl.NewPackageURL(p.Type, p.Namespace, p.Name, "", nil, "")
		id.PURL = base.ToString()
		switch p.Type {
		case "github":
			id.Repo = normRepo("https://github.com/" + p.Namespace + "/" + p.Name)
			if a, ok := aliasByRepo(id.Repo); ok {
				id.Ecosystem, id.Name, id.How = a.Ecosystem, a.Package, "purl+alias"
			}
		case "generic":
			if a, ok := aliasByName(p.Name); ok {
				id.Repo, id.Ecosystem, id.Name, id.How = normRepo(a.Repo), a.Ecosystem, a.Package, "purl+alias"
			}
		default:
			eco, ok := purlEcosystems[p.Type]
			if !ok {
				return identity{}, fmt.Sprintf("purl type %q has no OSV ecosystem", p.Type)
			}
			id.Ecosystem, id.Name = eco, purlName(p)
			if p.Type == "deb" && p.Namespace == "ubuntu" {
				id.Ecosystem = "Ubuntu"
			}
		}
	} else if c.CPE != "" {
		vendor, product, ver, ok := parseCPE(c.CPE)
		if !ok {
			return identity{}, "its CPE does not parse"
		}
		if id.Version == "" {
			id.Version = ver
		}
		a, found := aliasByCPE(vendor + ":" + product)
		if !found {
			return identity{}, fmt.Sprintf("CPE %s:%s is not in the alias table", vendor, product)
		}
		id.Repo, id.Ecosystem, id.Name, id.How = normRepo(a.Repo), a.Ecosystem, a.Package, "cpe"
	} else if a, found := aliasByName(c.Name); found {
		id.Repo, id.Ecosystem, id.Name, id.How = normRepo(a.Repo), a.Ecosystem, a.Package, "name"
	} else {
		return identity{}, "it has no purl or CPE, and its name is not in the alias table"
	}
	if id.Version == "" {
		return identity{}, "it has no version"
	}
	if id.Ecosystem == "Go" {
		id.Version = strings.TrimPrefix(strings.TrimPrefix(id.Version, "go"), "v")
	}
	return id, ""
}

// purlName is the package name of p in its OSV ecosystem.
func purlName(p packageurl.PackageURL) string {
	switch p.Type {
	case "golang":
		name := p.Name
		if p.Namespace != "" {
			name = p.Namespace + "/" + p.Name
		}
		if name == "std" || name == "stdlib" {
			return "stdlib" // the Go vulnerability database's name of the standard library
		}
		return name
	case "maven":
		return p.Namespace + ":" + p.Name
	case "npm", "composer":
		if p.Namespace != "" {
			return p.Namespace + "/" + p.Name
		}
		return p.Name
	case "pypi":
		return pypiName(p.Name)
	}
	if p.Namespace != "" && p.Type != "deb" && p.Type != "apk" && p.Type != "rpm" {
		return p.Namespace + "/" + p.Name
	}
	return p.Name
}

// pypiName normalizes a PyPI project name (PEP 503).
func pypiName(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer("_", "-", ".", "-").Replace(s)
}

// sameName reports whether two package names of ecosystem are the same.
func sameName(eco, a, b string) bool {
	switch eco {
	case "PyPI":
		return pypiName(a) == pypiName(b)
	case "Go", "npm", "Maven", "crates.io", "Packagist":
		return a == b
	}
	return strings.EqualFold(a, b)
}

// sameEcosystem reports whether an advisory's ecosystem (possibly "Debian:12") is eco.
func sameEcosystem(advisory, eco string) bool {
	base, _, _ := strings.Cut(advisory, ":")
	return eco != "" && base == eco
}

// parseCPE reads a CPE 2.3 formatted string or a CPE 2.2 URI.
func parseCPE(s string) (vendor, product, version string, ok bool) {
	var parts []string
	switch {
	case strings.HasPrefix(s, "cpe:2.3:"):
		parts = strings.Split(s[len("cpe:2.3:"):], ":")
	case strings.HasPrefix(s, "cpe:/"):
		parts = strings.Split(s[len("cpe:/"):], ":")
	default:
		return "", "", "", false
	}
	if len(parts) < 3 || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	vendor, product = strings.ToLower(parts[1]), strings.ToLower(parts[2])
	if len(parts) > 3 && parts[3] != "*" && parts[3] != "-" {
		version = strings.ReplaceAll(parts[3], `\`, "")
	}
	return vendor, product, version, true
}

// normRepo normalizes a repository URL: lower case, no scheme difference, no trailing
// slash or ".git".
func normRepo(u string) string {
	u = strings.ToLower(strings.TrimSpace(u))
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	u = strings.TrimPrefix(u, "git://")
	u = strings.TrimSuffix(strings.TrimSuffix(u, "/"), ".git")
	return u
}

func aliasByCPE(cpe string) (Alias, bool) {
	for _, a := range Aliases {
		if a.CPE == cpe {
			return a, true
		}
	}
	return Alias{}, false
}

func aliasByRepo(repo string) (Alias, bool) {
	for _, a := range Aliases {
		if normRepo(a.Repo) == repo {
			return a, true
		}
	}
	return Alias{}, false
}

func aliasByName(name string) (Alias, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, a := range Aliases {
		for _, n := range a.Names {
			if n == name {
				return a, true
			}
		}
	}
	return Alias{}, false
}

// match is one advisory affecting one component.
type match struct {
	FixedIn string // the first fixed version above the component's ("" when none is known)
	Via     string // "SEMVER", "ECOSYSTEM", "GIT" or "versions"
}

// errNotComparable marks a version the advisory's ecosystem cannot order.
var errNotComparable = errors.New("version not comparable")

// matchAdvisory reports whether a affects the component of identity id.
func matchAdvisory(a Advisory, id identity) (match, bool, error) {
	for _, af := range a.Affected {
		pkgMatch := false
		switch {
		case af.Package.PURL != "" && id.PURL != "" && purlBase(af.Package.PURL) == id.PURL:
			pkgMatch = true
		case af.Package.Name != "" && sameEcosystem(af.Package.Ecosystem, id.Ecosystem) && sameName(id.Ecosystem, af.Package.Name, id.Name):
			pkgMatch = true
		}
		if pkgMatch {
			if listed(af.Versions, id.Version) {
				m := match{Via: "versions"}
				m.FixedIn = firstFixed(af, id)
				return m, true, nil
			}
			for _, r := range af.Ranges {
				if r.Type == "GIT" {
					continue
				}
				ok, fixed, err := inRange(af.Package.Ecosystem, r.Type, id.Version, r)
				if err != nil {
					return match{}, false, err
				}
				if ok {
					return match{FixedIn: fixed, Via: r.Type}, true, nil
				}
			}
		}
		// GIT ranges: the component's repository, its version among the listed tags.
		if id.Repo != "" {
			for _, r := range af.Ranges {
				if r.Type == "GIT" && normRepo(r.Repo) == id.Repo && listed(af.Versions, id.Version) {
					return match{Via: "GIT", FixedIn: gitFixedTag(af, id.Version)}, true, nil
				}
			}
		}
	}
	return match{}, false, nil
}

// purlBase is a purl without version, qualifiers and subpath ("" when it does not parse).
func purlBase(s string) string {
	p, err := packageurl.FromString(s)
	if err != nil {
		return ""
	}
	b := packageurl.NewPackageURL(p.Type, p.Namespace, p.Name, "", nil, "")
	return b.ToString()
}

// tagForms are the forms a version takes as a tag of a source repository.
func tagForms(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	v = strings.TrimPrefix(v, "v")
	v = strings.TrimSuffix(v, "-stable") // wolfSSL tags v5.5.4-stable
	return v
}

// listed reports whether v is among versions (as given, or in tag form).
func listed(versions []string, v string) bool {
	t := tagForms(v)
	for _, x := range versions {
		if x == v || tagForms(x) == t {
			return true
		}
	}
	return false
}

// firstFixed returns a fixed event of the affected entry's ranges above id.Version, if any.
func firstFixed(af Affected, id identity) string {
	for _, r := range af.Ranges {
		if r.Type == "GIT" {
			continue
		}
		if _, fixed, err := inRange(af.Package.Ecosystem, r.Type, id.Version, r); err == nil && fixed != "" {
			return fixed
		}
	}
	return ""
}

// gitFixedTag: GIT ranges fix in commits, not versions; the fix is named only when the
// range's fixed event is itself a tag-like version.
func gitFixedTag(af Affected, _ string) string {
	for _, r := range af.Ranges {
		for _, e := range r.Events {
			if e.Fixed != "" && len(e.Fixed) < 40 && strings.ContainsAny(e.Fixed, ".") {
				return e.Fixed
			}
		}
	}
	return ""
}

// parseIn parses v in ecosystem's version order (semver for SEMVER ranges and, as the
// fallback, for ecosystems semantic does not know).
func parseIn(ecosystem, rangeType, v string) (semantic.Version, error) {
	if rangeType == "SEMVER" {
		return semantic.ParseSemverVersion(strings.TrimPrefix(v, "v")), nil
	}
	if base, _, _ := strings.Cut(ecosystem, ":"); base == "Go" {
		v = strings.TrimPrefix(strings.TrimPrefix(v, "go"), "v")
	}
	pv, err := semantic.Parse(v, ecosystem)
	if errors.Is(err, semantic.ErrUnsupportedEcosystem) {
		return semantic.ParseSemverVersion(v), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %q in %s: %v", errNotComparable, v, ecosystem, err)
	}
	return pv, nil
}

// inRange evaluates an OSV SEMVER or ECOSYSTEM range (OSV schema, "Evaluation"): the
// events in version order; v is affected after an introduced at or below it until a
// fixed or limit at or below it, or a last_affected below it. fixed is the first fixed
// version above v when v is affected.
func inRange(ecosystem, rangeType, v string, r Range) (affected bool, fixed string, err error) {
	pv, err := parseIn(ecosystem, rangeType, v)
	if err != nil {
		return false, "", err
	}
	type ev struct {
		kind, ver string
		parsed    semantic.Version
	}
	evs := make([]ev, 0, len(r.Events))
	for _, e := range r.Events {
		var x ev
		switch {
		case e.Introduced != "":
			x = ev{kind: "introduced", ver: e.Introduced}
		case e.Fixed != "":
			x = ev{kind: "fixed", ver: e.Fixed}
		case e.LastAffected != "":
			x = ev{kind: "last_affected", ver: e.LastAffected}
		case e.Limit != "":
			x = ev{kind: "limit", ver: e.Limit}
		default:
			continue
		}
		if x.ver != "0" {
			if x.parsed, err = parseIn(ecosystem, rangeType, x.ver); err != nil {
				return false, "", err
			}
		}
		evs = append(evs, x)
	}
	var sortErr error
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].ver == "0" || evs[j].ver == "0" {
			return evs[i].ver == "0" && evs[j].ver != "0"
		}
		c, err := evs[i].parsed.Compare(evs[j].parsed)
		if err != nil && sortErr == nil {
			sortErr = err
		}
		return c < 0
	})
	if sortErr != nil {
		return false, "", fmt.Errorf("%w: the range's events: %v", errNotComparable, sortErr)
	}
	for _, e := range evs {
		c := 1 // v against "0": every version is at or above it
		if e.ver != "0" {
			if c, err = pv.Compare(e.parsed); err != nil {
				return false, "", fmt.Errorf("%w: %v", errNotComparable, err)
			}
		}
		switch e.kind {
		case "introduced":
			if c >= 0 {
				affected = true
			}
		case "fixed", "limit":
			if c >= 0 {
				affected = false
			} else if affected && e.kind == "fixed" {
				return true, e.ver, nil
			}
		case "last_affected":
			if c > 0 {
				affected = false
			}
		}
	}
	return affected, "", nil
}

// Match matches one component against advisories, as a report does: the findings, and
// why the component cannot be matched when it cannot (no version, no purl or CPE, a CPE
// the alias table does not know, a version the ecosystem cannot order).
func Match(advisories []Advisory, c Component) ([]Finding, []Gap) {
	svc := &Service{}
	k := knowledge{advisories: advisories}
	k.buildIndex()
	return svc.findings(k, "", "", &sbomOf{sbom: SBOM{Components: []Component{c}}}, time.Time{})
}
