package sbom

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// Producer is the supplier and author written into the documents.
const Producer = "Vitalgate project"

// Options control document generation. The zero value is usable except for Now.
type Options struct {
	// Now is the SBOM's timestamp (metadata.timestamp, SPDX created). Required: pass the
	// clock in, the package never reads it.
	Now time.Time
	// Serial, if set, is the CycloneDX serialNumber ("urn:uuid:..."); callers that want one
	// generate a random UUID.
	Serial string
	// ToolVersion is the version of the tool that writes the SBOM; it defaults to the main
	// module's version.
	ToolVersion string
}

// BOM is a CycloneDX 1.5 document (the subset Vitalgate writes).
type BOM struct {
	BOMFormat    string       `json:"bomFormat"`
	SpecVersion  string       `json:"specVersion"`
	SerialNumber string       `json:"serialNumber,omitempty"`
	Version      int          `json:"version"`
	Metadata     Metadata     `json:"metadata"`
	Components   []Component  `json:"components"`
	Dependencies []Dependency `json:"dependencies"`
}

// Metadata is the CycloneDX metadata: when, by what tool and by whom, about what.
type Metadata struct {
	Timestamp string             `json:"timestamp"`
	Tools     Tools              `json:"tools"`
	Authors   []OrganizationalID `json:"authors"`
	Supplier  *OrganizationalEnt `json:"supplier,omitempty"`
	Component Component          `json:"component"`
}

// Tools lists the tools that produced the document (CycloneDX 1.5 object form).
type Tools struct {
	Components []Component `json:"components"`
}

// OrganizationalID names a person or organization that authored the SBOM data.
type OrganizationalID struct {
	Name string `json:"name"`
}

// OrganizationalEnt is a supplier.
type OrganizationalEnt struct {
	Name string   `json:"name"`
	URL  []string `json:"url,omitempty"`
}

// Component is a CycloneDX component.
type Component struct {
	BOMRef      string             `json:"bom-ref,omitempty"`
	Type        string             `json:"type"`
	Supplier    *OrganizationalEnt `json:"supplier,omitempty"`
	Author      string             `json:"author,omitempty"`
	Name        string             `json:"name"`
	Version     string             `json:"version,omitempty"`
	Description string             `json:"description,omitempty"`
	Scope       string             `json:"scope,omitempty"`
	Hashes      []Hash             `json:"hashes,omitempty"`
	PURL        string             `json:"purl,omitempty"`
	Properties  []Property         `json:"properties,omitempty"`
}

// Hash is a component hash.
type Hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

// Property is a name/value pair.
type Property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Dependency is one node of the dependency graph.
type Dependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

// module is a dependency resolved from build info (replacement applied).
type module struct {
	path, version, sum string
	replaces           *debug.Module // the original requirement, if replaced
}

// devel is the version Go records for a main module built from a work tree.
const devel = "(devel)"

// PURL returns the package URL of a Go module: pkg:golang/PATH@VERSION, the version
// omitted when unknown. Path segments are percent-encoded as the purl spec requires.
func PURL(path, version string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	p := "pkg:golang/" + strings.Join(segs, "/")
	if version != "" && version != devel {
		p += "@" + url.PathEscape(version)
	}
	return p
}

// H1ToSHA256Hex converts a go.sum hash ("h1:" + base64 SHA-256) to lowercase hex. It
// returns an error for other hash kinds or a malformed hash.
func H1ToSHA256Hex(sum string) (string, error) {
	b64, ok := strings.CutPrefix(sum, "h1:")
	if !ok {
		return "", fmt.Errorf("sbom: unsupported module hash %q (want h1:)", sum)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("sbom: module hash %q: %w", sum, err)
	}
	if len(raw) != 32 {
		return "", fmt.Errorf("sbom: module hash %q is %d bytes, want 32", sum, len(raw))
	}
	return hex.EncodeToString(raw), nil
}

// Supplier derives a supplier name from a module path (see the package doc).
func Supplier(path string) string {
	parts := strings.Split(path, "/")
	host := parts[0]
	switch {
	case host == "golang.org" && len(parts) > 1 && parts[1] == "x", host == "go.googlesource.com":
		return "The Go Authors"
	case (host == "github.com" || host == "gitlab.com" || host == "bitbucket.org" || host == "codeberg.org") && len(parts) > 1:
		return parts[1] + " (" + host + ")"
	}
	return host
}

// goVersion returns the toolchain version without the "go" prefix and any suffix
// ("go1.26.8 X:foo" → "1.26.8").
func goVersion(bi *debug.BuildInfo) string {
	v := bi.GoVersion
	if f := strings.Fields(v); len(f) > 0 {
		v = f[0]
	}
	return strings.TrimPrefix(v, "go")
}

// modules resolves bi.Deps (replacements applied), sorted by path.
func modules(bi *debug.BuildInfo) []module {
	var out []module
	for _, d := range bi.Deps {
		if d == nil {
			continue
		}
		m := module{path: d.Path, version: d.Version, sum: d.Sum}
		if d.Replace != nil {
			m = module{path: d.Replace.Path, version: d.Replace.Version, sum: d.Replace.Sum, replaces: d}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// ErrNoBuildInfo is returned for a nil BuildInfo (a binary built without module support).
var ErrNoBuildInfo = errors.New("sbom: no build information")

// CycloneDX builds a CycloneDX 1.5 BOM of the binary bi describes.
func CycloneDX(bi *debug.BuildInfo, opts Options) (*BOM, error) {
	if bi == nil {
		return nil, ErrNoBuildInfo
	}
	if opts.Now.IsZero() {
		return nil, errors.New("sbom: Options.Now is required")
	}
	producer := &OrganizationalEnt{Name: Producer}
	mainPath := bi.Main.Path
	if mainPath == "" {
		mainPath = bi.Path
	}
	mainVersion := bi.Main.Version
	if mainVersion == "" {
		mainVersion = devel
	}
	toolVersion := opts.ToolVersion
	if toolVersion == "" {
		toolVersion = mainVersion
	}
	var settings []Property
	for _, s := range bi.Settings {
		settings = append(settings, Property{Name: "go:build:" + s.Key, Value: s.Value})
	}
	mainRef := PURL(mainPath, mainVersion)
	main := Component{
		BOMRef: mainRef, Type: "application", Supplier: producer, Author: Producer,
		Name: mainPath, Version: mainVersion, PURL: mainRef,
		Description: "Vitalgate: secure connectivity backend for connected medical devices (binary " + bi.Path + ")",
		Properties:  settings,
	}
	bom := &BOM{
		BOMFormat: "CycloneDX", SpecVersion: "1.5", SerialNumber: opts.Serial, Version: 1,
		Metadata: Metadata{
			Timestamp: opts.Now.UTC().Format(time.RFC3339),
			Tools:     Tools{Components: []Component{{Type: "application", Supplier: producer, Name: "vitalgate", Version: toolVersion}}},
			Authors:   []OrganizationalID{{Name: Producer}},
			Supplier:  producer,
			Component: main,
		},
		Components: []Component{},
	}
	deps := Dependency{Ref: mainRef, DependsOn: []string{}}

	gv := goVersion(bi)
	std := Component{
		BOMRef: PURL("std", gv), Type: "library", Supplier: &OrganizationalEnt{Name: "The Go Authors", URL: []string{"https://go.dev"}},
		Name: "std", Version: gv, Scope: "required", PURL: PURL("std", gv),
		Description: "Go standard library and runtime, compiled into the binary by toolchain " + bi.GoVersion,
	}
	bom.Components = append(bom.Components, std)
	deps.DependsOn = append(deps.DependsOn, std.BOMRef)

	for _, m := range modules(bi) {
		c := Component{
			BOMRef: PURL(m.path, m.version), Type: "library", Supplier: &OrganizationalEnt{Name: Supplier(m.path)},
			Name: m.path, Version: m.version, Scope: "required", PURL: PURL(m.path, m.version),
		}
		if m.sum != "" {
			h, err := H1ToSHA256Hex(m.sum)
			if err != nil {
				return nil, err
			}
			c.Hashes = []Hash{{Alg: "SHA-256", Content: h}}
			c.Properties = append(c.Properties, Property{Name: "go:module:sum", Value: m.sum})
		}
		if m.replaces != nil {
			c.Properties = append(c.Properties, Property{Name: "go:module:replaces", Value: m.replaces.Path + "@" + m.replaces.Version})
		}
		bom.Components = append(bom.Components, c)
		deps.DependsOn = append(deps.DependsOn, c.BOMRef)
	}
	bom.Dependencies = []Dependency{deps}
	return bom, nil
}

// WriteJSON writes v as indented JSON followed by a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
