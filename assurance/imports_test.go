package assurance_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// Package groups of DESIGN.md §2, relative to the module path.
var (
	pureGroup      = []string{"fhir", "hl7v2", "vitals", "seal", "pcd01", "audit", "deid", "lab"}
	transportGroup = []string{"httpapi", "mllp", "console"}
	storeGroup     = []string{"sqlite", "postgres", "sqlstore", "storetest"}
	// assemblyGroup may wire a store to a transport: the binary, the node assembly it
	// shares with demo and bench, and bench, which runs that assembly.
	assemblyGroup = []string{"cmd/vitalgate", "node", "bench"}
)

// importRule forbids the packages in From (paths relative to the module, "." for the root;
// a path also covers its subpackages) to depend, directly or transitively, on Forbid.
// Forbid entries are import paths; an entry without a dot in its first element that is
// not a standard-library path is taken relative to the module. StdOnly forbids every
// non-standard package instead. Direct checks only direct imports (for standard packages
// that every package reaches transitively, such as os through fmt).
type importRule struct {
	Name    string
	From    []string
	Forbid  []string
	StdOnly bool
	// Direct checks only the packages' own imports (for standard packages such as os that
	// the standard library itself imports everywhere).
	Direct bool
}

// importRules is DESIGN.md §2 as a table. Only production code is checked: tests may wire
// a store and a transport together.
var importRules = []importRule{
	{Name: "the root package imports only the standard library", From: []string{"."}, StdOnly: true},
	{Name: "pure packages import no transport", From: pureGroup, Forbid: transportGroup},
	{Name: "pure packages import no store", From: pureGroup, Forbid: storeGroup},
	{Name: "pure packages import neither net/http nor database/sql", From: pureGroup, Forbid: []string{"std:net/http", "std:database/sql"}},
	// seal is pure: it computes over keys it is given; key files are read and written in
	// vault (issue 12 item 3).
	{Name: "seal does no file or network I/O", From: []string{"seal"}, Forbid: []string{"std:os", "std:net", "std:io/fs", "std:path/filepath"}, Direct: true},
	// deid is pure: the de-identified export reads the store and the mapping file in node.
	{Name: "deid does no file or network I/O", From: []string{"deid"}, Forbid: []string{"std:os", "std:net", "std:io/fs", "std:path/filepath"}, Direct: true},
	{Name: "transports never import a store", From: transportGroup, Forbid: storeGroup},
	{Name: "stores never import a transport", From: storeGroup, Forbid: transportGroup},
	{Name: "nothing imports cmd/...", From: []string{"*"}, Forbid: []string{"cmd"}},
	{Name: "audit does no network or file I/O (forwarding is in outbox, key files in cmd)", From: []string{"audit"},
		Forbid: []string{"std:net", "std:crypto/tls", "std:os", "std:io/fs", "std:path/filepath"}, Direct: true},
	{Name: "outbox and auditquery import no transport and no store", From: []string{"outbox", "auditquery"},
		Forbid: append(append([]string{}, transportGroup...), storeGroup...)},
}

// matches reports whether import path p is named by the rule path entry e (see importRule).
func matches(e, p string) bool {
	var full string
	switch {
	case e == "*":
		return ours(p)
	case strings.HasPrefix(e, "std:"):
		full = strings.TrimPrefix(e, "std:")
	case e == ".":
		return p == modulePath
	default:
		full = modulePath + "/" + e
	}
	return p == full || strings.HasPrefix(p, full+"/")
}

// graph indexes a `go list -deps` listing by import path.
type graph map[string]*Package

func newGraph(pkgs []*Package) graph {
	g := graph{}
	for _, p := range pkgs {
		g[p.ImportPath] = p
	}
	return g
}

// chain returns the shortest import chain from -> ... -> to, following direct imports.
func (g graph) chain(from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var out []string
			for c := to; c != ""; c = prev[c] {
				out = append([]string{c}, out...)
			}
			return out
		}
		p := g[cur]
		if p == nil {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return []string{from, "…", to}
}

// deps returns the transitive dependencies of p: Deps from go list, or, for a synthetic
// graph without Deps, the closure of Imports.
func (g graph) deps(p *Package) []string {
	if len(p.Deps) > 0 {
		return p.Deps
	}
	seen := map[string]bool{}
	var walk func(string)
	walk = func(path string) {
		q := g[path]
		if q == nil {
			return
		}
		for _, imp := range q.Imports {
			if !seen[imp] {
				seen[imp] = true
				walk(imp)
			}
		}
	}
	walk(p.ImportPath)
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// shortChain renders an import chain with paths of ours relative to the module.
func shortChain(c []string) string {
	parts := make([]string, len(c))
	for i, p := range c {
		if ours(p) {
			parts[i] = rel(p)
		} else {
			parts[i] = p
		}
	}
	return strings.Join(parts, " -> ")
}

// importRuleViolations checks rules against pkgs, a `go list -deps` listing (our packages
// with all they import), and names each offending import with its chain.
func importRuleViolations(rules []importRule, pkgs []*Package) []string {
	g := newGraph(pkgs)
	var out []string
	for _, p := range pkgs {
		if !ours(p.ImportPath) {
			continue
		}
		deps := g.deps(p)
		for _, r := range rules {
			applies := false
			for _, f := range r.From {
				if matches(f, p.ImportPath) {
					applies = true
				}
			}
			if !applies {
				continue
			}
			checked := deps
			if r.Direct {
				checked = p.Imports
			}
			for _, d := range checked {
				bad := false
				if r.StdOnly {
					q := g[d]
					bad = q != nil && !q.Standard || q == nil && strings.Contains(strings.Split(d, "/")[0], ".")
				}
				for _, f := range r.Forbid {
					if matches(f, d) && d != p.ImportPath {
						bad = true
					}
				}
				if bad {
					out = append(out, fmt.Sprintf("%s: %s imports %s (%s)", r.Name, rel(p.ImportPath), d, shortChain(g.chain(p.ImportPath, d))))
				}
			}
		}
		// Only the binary (and the assembly it runs) wires a store to a transport.
		assembly := false
		for _, a := range assemblyGroup {
			assembly = assembly || matches(a, p.ImportPath)
		}
		if !assembly {
			var store, transport string
			for _, d := range deps {
				for _, s := range storeGroup {
					if matches(s, d) && store == "" {
						store = d
					}
				}
				for _, s := range transportGroup {
					if matches(s, d) && transport == "" {
						transport = d
					}
				}
			}
			if store != "" && transport != "" {
				out = append(out, fmt.Sprintf("only cmd/vitalgate imports both a store and a transport: %s imports %s and %s", rel(p.ImportPath), rel(store), rel(transport)))
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestImportRules enforces DESIGN.md §2's layering on the production import graph.
func TestImportRules(t *testing.T) {
	_, withDeps, _ := listings(t)
	report(t, "DESIGN.md §2 import rules", importRuleViolations(importRules, withDeps))
}
