package deid_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/vitalgate/vitalgate/deid"
)

// leaf is one string of a JSON document with the element names on its path.
type leaf struct {
	path  []string // element names from the root (array indexes omitted)
	val   string
	coded bool // the string's object is a Coding (has a system and a code)
}

func (l leaf) key() string { return l.path[len(l.path)-1] }

func (l leaf) under(k string) bool {
	for _, p := range l.path {
		if p == k || k == "identifier" && strings.HasSuffix(p, "Identifier") {
			return true
		}
	}
	return false
}

// parent returns the name of the element that holds the string's object.
func (l leaf) parent() string {
	if len(l.path) < 2 {
		return ""
	}
	return l.path[len(l.path)-2]
}

// leaves returns every string of v (decoded JSON), with its path; object keys are
// returned too, as leaves with key "" (so a scan sees element names).
func leaves(v any, path []string, out *[]leaf) {
	switch x := v.(type) {
	case map[string]any:
		_, sys := x["system"].(string)
		_, code := x["code"].(string)
		for k, e := range x {
			p := append(append([]string(nil), path...), k)
			*out = append(*out, leaf{path: append(p, ""), val: k})
			if s, ok := e.(string); ok {
				*out = append(*out, leaf{path: p, val: s, coded: sys && code})
				continue
			}
			leaves(e, p, out)
		}
	case []any:
		for _, e := range x {
			leaves(e, path, out)
		}
	case string:
		if len(path) == 0 {
			path = []string{"(root)"}
		}
		*out = append(*out, leaf{path: path, val: x})
	}
}

func decode(b []byte) (any, error) {
	var v any
	err := json.Unmarshal(b, &v)
	return v, err
}

// codeLeaf reports whether l is where the transform writes its random codes: resource
// ids, references, full URLs and pseudonym identifier values.
func codeLeaf(l leaf) bool {
	switch l.key() {
	case "id", "reference", "fullUrl":
		return true
	case "value", "url":
		return l.under("identifier") || l.under("request")
	}
	return false
}

var (
	codeForm     = regexp.MustCompile(`^(?:[A-Z][A-Za-z]+/)?[a-z2-7]{26}$|^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	phoneLike    = regexp.MustCompile(`(?:\+?\(?\d{2,4}\)?[\s.-]?){2,}\d{3,}`)
	emailLike    = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	ssnLike      = regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`)
	ipv4Like     = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)
	ipv6Like     = regexp.MustCompile(`\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b|::ffff:`)
	urlLike      = regexp.MustCompile(`(?i)\b(?:https?|ftp)://|\bwww\.`)
	fullDateLike = regexp.MustCompile(`^\d{4}-\d{2}`)
	zipLike      = regexp.MustCompile(`^\d{5}(?:-\d{4})?$|^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$|^\d{4} ?[A-Z]{2}$`)
)

// identifierKind is one of the 18 Safe Harbor identifier kinds (45 CFR 164.514(b)(2)(i)),
// as a check over the strings of an exported resource. check returns what it found, or "".
type identifierKind struct {
	name  string
	check func(l leaf, opt scanOptions) string
}

// scanOptions say what the scan may accept: in shifted mode full dates are expected.
type scanOptions struct {
	shifted bool
	nowYear int
}

// kinds is the table of identifier kinds the de-identification test scans for.
var kinds = []identifierKind{
	{"(A) names", func(l leaf, _ scanOptions) string {
		if l.key() == "" && (l.val == "name" || l.val == "given" || l.val == "family" || l.val == "alias" || l.val == "deviceName") {
			return "element " + l.val
		}
		return ""
	}},
	{"(B) geographic subdivisions smaller than a state", func(l leaf, _ scanOptions) string {
		if l.key() == "" && l.under("address") && l.val != "state" && l.val != "country" && l.val != "address" {
			return "address element " + l.val
		}
		if l.key() == "" && (l.val == "postalCode" || l.val == "city" || l.val == "district" || l.val == "line" || l.val == "position") {
			return "element " + l.val
		}
		if !codeLeaf(l) && zipLike.MatchString(l.val) && l.key() != "code" {
			return "postal code " + l.val
		}
		return ""
	}},
	{"(C) dates other than years, ages over 89", func(l leaf, o scanOptions) string {
		if l.key() == "" || codeLeaf(l) {
			return ""
		}
		if !o.shifted && fullDateLike.MatchString(l.val) {
			return "date " + l.val
		}
		if l.key() == "birthDate" && len(l.val) >= 4 {
			var y int
			if _, err := fmt.Sscanf(l.val[:4], "%d", &y); err == nil && o.nowYear-y >= 90 {
				return "birth date of a patient over 89: " + l.val
			}
		}
		return ""
	}},
	{"(D, E) telephone and fax numbers", func(l leaf, _ scanOptions) string {
		if l.key() == "" && l.val == "telecom" {
			return "element telecom"
		}
		if !codeLeaf(l) && l.key() != "" && l.key() != "code" && !l.under("valueSampledData") && phoneLike.MatchString(l.val) {
			return "phone-like " + l.val
		}
		return ""
	}},
	{"(F) e-mail addresses", func(l leaf, _ scanOptions) string {
		if emailLike.MatchString(l.val) {
			return "e-mail " + l.val
		}
		return ""
	}},
	{"(G) social security numbers", func(l leaf, _ scanOptions) string {
		if ssnLike.MatchString(l.val) {
			return "SSN-like " + l.val
		}
		return ""
	}},
	{"(H-L) record, plan, account, licence, vehicle numbers and (M) device identifiers", func(l leaf, _ scanOptions) string {
		if l.key() == "" && (l.val == "udiCarrier" || l.val == "serialNumber" || l.val == "lotNumber" || l.val == "distinctIdentifier" ||
			l.val == "modelNumber" || l.val == "assigner") {
			return "element " + l.val
		}
		if (l.parent() == "identifier" || strings.HasSuffix(l.parent(), "Identifier")) && l.key() == "system" && l.val != deid.IdentifierSystem {
			return "identifier system " + l.val
		}
		if codeLeaf(l) && !codeForm.MatchString(l.val) {
			return "identifier not a random code: " + l.val
		}
		return ""
	}},
	{"(N) URLs", func(l leaf, _ scanOptions) string {
		switch l.key() {
		case "system", "profile", "url":
			if l.key() != "url" || !l.under("request") {
				return "" // code systems, profiles and extension definitions name no one
			}
		}
		if urlLike.MatchString(l.val) {
			return "URL " + l.val
		}
		return ""
	}},
	{"(O) IP addresses", func(l leaf, _ scanOptions) string {
		if l.key() == "system" || l.key() == "code" || l.key() == "" || l.under("valueSampledData") {
			return ""
		}
		if ipv4Like.MatchString(l.val) || ipv6Like.MatchString(l.val) {
			return "IP address " + l.val
		}
		return ""
	}},
	{"(P, Q) biometric identifiers and photographs", func(l leaf, _ scanOptions) string {
		if l.key() == "" && (l.val == "photo" || l.val == "presentedForm" || l.val == "valueAttachment" || l.val == "content" || l.val == "image") {
			return "element " + l.val
		}
		return ""
	}},
	{"(R) free text that can carry any of them", func(l leaf, _ scanOptions) string {
		if l.key() == "" && (l.val == "text" || l.val == "div" || l.val == "note" || l.val == "comment" || l.val == "description" ||
			l.val == "patientInstruction") {
			return "element " + l.val
		}
		if l.key() == "display" && !l.coded {
			return "display outside a coding: " + l.val
		}
		return ""
	}},
}

// scan returns, per identifier kind, what the de-identified resource b still holds.
func scan(b []byte, o scanOptions) (map[string][]string, error) {
	v, err := decode(b)
	if err != nil {
		return nil, err
	}
	var ls []leaf
	leaves(v, nil, &ls)
	found := map[string][]string{}
	for _, l := range ls {
		for _, k := range kinds {
			if f := k.check(l, o); f != "" {
				found[k.name] = append(found[k.name], strings.Join(l.path, ".")+": "+f)
			}
		}
	}
	return found, nil
}

// phiStrings returns the strings of an input resource that identify someone: names,
// identifier values, telecom values, address parts, narrative and notes, reference
// displays, resource ids and referenced ids. Strings that the input also holds at a
// position the transform keeps (codes, statuses, years) are left out, since they may
// legitimately appear in the output.
func phiStrings(b []byte) []string {
	v, err := decode(b)
	if err != nil {
		return nil
	}
	var ls []leaf
	leaves(v, nil, &ls)
	safe := map[string]bool{}
	for _, l := range ls {
		if l.key() == "" {
			safe[l.val] = true // element names appear in the output as names
			continue
		}
		if !phiLeaf(l) {
			safe[l.val] = true
			if len(l.val) >= 4 {
				safe[l.val[:4]] = true // years of dates
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, l := range ls {
		if l.key() == "" || !phiLeaf(l) {
			continue
		}
		s := l.val
		if m := regexp.MustCompile(`([A-Za-z0-9\-.]{1,64})$`).FindString(s); (l.key() == "reference" || l.key() == "fullUrl") && m != "" {
			s = m
		}
		if len(s) < 4 || safe[s] || seen[s] || allDigitsShort(s) {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// allDigitsShort is true for strings of up to 4 digits, which clinical numbers and years in
// the output can equal by chance.
func allDigitsShort(s string) bool {
	return len(s) <= 4 && strings.Trim(s, "0123456789") == ""
}

// phiLeaf reports whether l sits where an identifier of a person is written.
func phiLeaf(l leaf) bool {
	for _, k := range []string{"name", "alias", "telecom", "address", "text", "note", "photo", "contact", "udiCarrier"} {
		if l.under(k) {
			return true
		}
	}
	switch l.key() {
	case "serialNumber", "lotNumber", "modelNumber", "distinctIdentifier", "comment", "description", "reference", "fullUrl":
		return true
	case "display":
		return !l.coded
	case "value":
		return l.under("identifier")
	case "id":
		return len(l.path) == 1 || l.under("resource") && l.path[len(l.path)-2] == "resource"
	}
	return false
}

// leaked returns the input's identifying strings that appear in the output: as a whole
// string, or for strings of 8 characters or more, inside one.
func leaked(in, out []byte) []string {
	v, err := decode(out)
	if err != nil {
		return []string{"output is not JSON"}
	}
	var ls []leaf
	leaves(v, nil, &ls)
	types := map[string]bool{}
	for _, l := range ls {
		if l.key() == "reference" || l.key() == "fullUrl" || l.key() == "url" {
			if i := strings.IndexByte(l.val, '/'); i > 0 {
				types[l.val[:i]] = true // the type part of a rewritten reference comes from the input's type names
			}
		}
	}
	// Values the transform copied unchanged from the input under the same name (a kept code
	// such as "generated"): a short input string inside one of them was not embedded by the
	// transform; an exact match is still a leak.
	copied := map[string]bool{}
	if iv, err := decode(in); err == nil {
		var ins []leaf
		leaves(iv, nil, &ins)
		for _, l := range ins {
			copied[l.key()+"\x00"+l.val] = true
		}
	}
	var bad []string
	for _, s := range phiStrings(in) {
		if types[s] {
			continue
		}
		for _, l := range ls {
			if l.key() == "" || l.val == deid.IdentifierSystem || l.val == deid.AgeOver89URL {
				continue // the transform's own constants
			}
			if l.val == s || len(s) >= 8 && strings.Contains(l.val, s) && !copied[l.key()+"\x00"+l.val] {
				bad = append(bad, fmt.Sprintf("%q at %s", s, strings.Join(l.path, ".")))
				break
			}
		}
	}
	return bad
}
