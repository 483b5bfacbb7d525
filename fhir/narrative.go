package fhir

import (
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"unicode"

	"github.com/vitalgate/vitalgate"
)

const (
	xhtmlNS = "http://www.w3.org/1999/xhtml"
	xmlNS   = "http://www.w3.org/XML/1998/namespace"

	maxNarrativeDepth = 64
)

// narrativeElements are the XHTML elements FHIR narratives may use (txt-1: the basic HTML
// formatting elements of HTML 4.0 chapters 7-11 and 15, a and img).
var narrativeElements = set("a", "abbr", "acronym", "b", "big", "blockquote", "br", "caption",
	"cite", "code", "col", "colgroup", "dd", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3",
	"h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "q", "samp", "small", "span",
	"strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "ul", "var")

// narrativeAttributes are the attributes allowed on any of them (HTML 4.0 core, i18n and
// table attributes, and a/img specifics). Event handlers (on*) are never allowed.
var narrativeAttributes = set("id", "class", "style", "title", "lang", "dir", "name", "href",
	"src", "alt", "width", "height", "border", "cellpadding", "cellspacing", "summary", "rules",
	"frame", "colspan", "rowspan", "headers", "scope", "abbr", "axis", "align", "valign", "char",
	"charoff", "span", "start", "type", "value", "cite", "datetime", "compact")

// dangerousCSS are substrings (lower case, whitespace removed) that let a style attribute
// load content or run script.
var dangerousCSS = []string{"url(", "expression(", "image(", "image-set(", "@import", "javascript:",
	"vbscript:", "behavior:", "-moz-binding", "\\", "/*", "<", "&"}

// imgData is the only non-fragment img src allowed: an inline raster image.
var imgData = regexp.MustCompile(`^data:image/(png|gif|jpeg|webp);base64,[A-Za-z0-9+/=\s]+$`)

func set(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}

// CheckNarrative checks a Narrative.div against FHIR R4's XHTML rules (txt-1, txt-2), made
// stricter where HTML and XML parsers could disagree: well-formed XML whose root is a div in
// the XHTML namespace; only the basic formatting elements and their plain attributes; no
// scripts, forms, frames, objects, styles or links (so also no event handlers, no CSS url()
// or expression(), no external references: a href and cite only "#fragment", img src only
// "#fragment" or an inline data:image); no comments, CDATA sections, processing instructions
// or DOCTYPE; only XML's own entities; and some text or an image.
//
// It returns an EUNPROCESSABLE *vitalgate.Error without Field (the caller names the
// element, e.g. "Observation.text.div"). Messages never quote the narrative.
func CheckNarrative(div string) error {
	fail := func(format string, args ...any) error {
		return vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "narrative: "+format, args...)
	}
	if !strings.HasPrefix(div, "<div") {
		return fail("must start with a div element")
	}
	if strings.Contains(div, "<![CDATA[") {
		return fail("CDATA sections are not allowed")
	}
	d := xml.NewDecoder(strings.NewReader(div))
	d.Strict = true
	depth, sawRoot, content := 0, false, false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail("not well-formed XHTML")
		}
		if sawRoot && depth == 0 {
			return fail("nothing may follow the root div")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && t.Name.Local != "div" {
				return fail("the root element must be div")
			}
			if t.Name.Space != xhtmlNS {
				return fail("elements must be in the XHTML namespace")
			}
			if !narrativeElements[t.Name.Local] {
				return fail("element %s is not allowed", safeName(t.Name.Local))
			}
			depth++
			sawRoot = true
			if depth > maxNarrativeDepth {
				return fail("nested deeper than %d elements", maxNarrativeDepth)
			}
			if t.Name.Local == "img" {
				content = true
			}
			if err := checkAttrs(t, depth == 1); err != nil {
				return fail("%s", err.Error())
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if !sawRoot {
				return fail("must start with a div element")
			}
			if strings.TrimFunc(string(t), unicode.IsSpace) != "" {
				content = true
			}
		case xml.Comment:
			return fail("comments are not allowed")
		case xml.ProcInst:
			return fail("processing instructions are not allowed")
		case xml.Directive:
			return fail("DOCTYPE and other directives are not allowed")
		}
	}
	if !sawRoot || depth != 0 {
		return fail("not well-formed XHTML")
	}
	if !content {
		return fail("must contain some text or an image")
	}
	return nil
}

// checkAttrs checks the attributes of one element; root is true for the outer div.
func checkAttrs(t xml.StartElement, root bool) error {
	for _, a := range t.Attr {
		name, val := a.Name.Local, a.Value
		switch {
		case a.Name.Space == "" && name == "xmlns":
			if val != xhtmlNS {
				return errors.New("only the XHTML namespace may be declared")
			}
			continue
		case a.Name.Space == "xmlns":
			return errors.New("namespace prefixes are not allowed")
		case a.Name.Space == xmlNS && (name == "lang" || name == "space"):
			continue
		case a.Name.Space != "":
			return errors.New("attributes in other namespaces are not allowed")
		case strings.HasPrefix(strings.ToLower(name), "on"):
			return errors.New("event handler attributes are not allowed")
		case !narrativeAttributes[name]:
			return errors.New("attribute " + safeName(name) + " is not allowed")
		}
		switch name {
		case "style":
			css := strings.ToLower(strings.Join(strings.FieldsFunc(val, unicode.IsSpace), ""))
			for _, bad := range dangerousCSS {
				if strings.Contains(css, bad) {
					return errors.New("style may not load content or run script")
				}
			}
		case "href", "cite":
			if !isFragment(val) {
				return errors.New(name + " may only refer to a fragment (#name) of the narrative")
			}
		case "src":
			if t.Name.Local != "img" || !(isFragment(val) || imgData.MatchString(val)) {
				return errors.New("img src may only be a fragment or an inline data:image")
			}
		}
	}
	return nil
}

var fragmentRE = regexp.MustCompile(`^#[A-Za-z0-9\-._:]*$`)

func isFragment(s string) bool { return fragmentRE.MatchString(s) }
