package fhir_test

import (
	"encoding/json"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

const ns = `xmlns="http://www.w3.org/1999/xhtml"`

func TestCheckNarrative(t *testing.T) {
	tests := []struct {
		name string
		div  string
		ok   bool
	}{
		{"simple", `<div ` + ns + `><p>x</p></div>`, true},
		{"text only", `<div ` + ns + `>x</div>`, true},
		{"table and fragment link", `<div ` + ns + `><table border="1"><tr><td colspan="2"><a href="#x" name="y">x</a></td></tr></table></div>`, true},
		{"inline image only", `<div ` + ns + `><img src="data:image/png;base64,iVBORw0KGgo=" alt="x"/></div>`, true},
		{"harmless style", `<div ` + ns + `><span style="color: red; font-weight: bold">x</span></div>`, true},
		{"xml lang", `<div ` + ns + ` xml:lang="en" lang="en"><p>x</p></div>`, true},
		{"entities", `<div ` + ns + `>&lt;b&gt; &amp; &#160;</div>`, true},
		{"script", `<div ` + ns + `><script>alert(1)</script></div>`, false},
		{"script in other namespace", `<div ` + ns + `><s:script xmlns:s="http://www.w3.org/2000/svg">alert(1)</s:script></div>`, false},
		{"onclick", `<div ` + ns + `><p onclick="alert(1)">x</p></div>`, false},
		{"onload upper case", `<div ` + ns + `><img ONLOAD="alert(1)" src="#x"/></div>`, false},
		{"form", `<div ` + ns + `><form><p>x</p></form></div>`, false},
		{"iframe", `<div ` + ns + `><iframe>x</iframe></div>`, false},
		{"object", `<div ` + ns + `><object>x</object></div>`, false},
		{"embed", `<div ` + ns + `><embed/>x</div>`, false},
		{"style element", `<div ` + ns + `><style>p{}</style>x</div>`, false},
		{"base", `<div ` + ns + `><base href="#x"/>x</div>`, false},
		{"link", `<div ` + ns + `><link href="#x"/>x</div>`, false},
		{"meta", `<div ` + ns + `><meta/>x</div>`, false},
		{"style url", `<div ` + ns + `><p style="background:url(http://x)">x</p></div>`, false},
		{"style url spaced", `<div ` + ns + `><p style="background: u r l (x)">x</p></div>`, false},
		{"style expression", `<div ` + ns + `><p style="width:expression(alert(1))">x</p></div>`, false},
		{"style escape", `<div ` + ns + `><p style="background:u\72l(x)">x</p></div>`, false},
		{"external img", `<div ` + ns + `><img src="http://evil.example/x.png"/></div>`, false},
		{"svg data img", `<div ` + ns + `><img src="data:image/svg+xml;base64,PHN2Zz4="/></div>`, false},
		{"javascript href", `<div ` + ns + `><a href="javascript:alert(1)">x</a></div>`, false},
		{"http href", `<div ` + ns + `><a href="http://evil.example/">x</a></div>`, false},
		{"relative href", `<div ` + ns + `><a href="Patient/1">x</a></div>`, false},
		{"processing instruction", `<div ` + ns + `><?x ><script>alert(1)</script>?>x</div>`, false},
		{"doctype", `<div ` + ns + `><!DOCTYPE html>x</div>`, false},
		{"xml declaration first", `<?xml version="1.0"?><div ` + ns + `>x</div>`, false},
		{"comment", `<div ` + ns + `><!--[if IE]><script>alert(1)</script><![endif]-->x</div>`, false},
		{"cdata", `<div ` + ns + `><![CDATA[<script>alert(1)</script>]]>x</div>`, false},
		{"html entity", `<div ` + ns + `>a&nbsp;b</div>`, false},
		{"no namespace", `<div><p>x</p></div>`, false},
		{"wrong namespace", `<div xmlns="http://example.org/">x</div>`, false},
		{"prefixed root", `<h:div xmlns:h="http://www.w3.org/1999/xhtml">x</h:div>`, false},
		{"root not div", `<p ` + ns + `>x</p>`, false},
		{"leading text", ` <div ` + ns + `>x</div>`, false},
		{"trailing element", `<div ` + ns + `>x</div><div ` + ns + `>y</div>`, false},
		{"trailing text", `<div ` + ns + `>x</div>y`, false},
		{"unclosed", `<div ` + ns + `><p>x</div>`, false},
		{"empty", `<div ` + ns + `></div>`, false},
		{"whitespace only", `<div ` + ns + `> <br/> </div>`, false},
		{"unknown attribute", `<div ` + ns + `><p data-x="1">x</p></div>`, false},
		{"xlink", `<div ` + ns + ` xmlns:xlink="http://www.w3.org/1999/xlink"><a xlink:href="http://x">x</a></div>`, false},
		{"empty string", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fhir.CheckNarrative(tt.div)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckNarrative: %v", err)
				}
				return
			}
			if vitalgate.ErrorCode(err) != vitalgate.EUNPROCESSABLE {
				t.Fatalf("got %v, want %s", err, vitalgate.EUNPROCESSABLE)
			}
			if msg := vitalgate.ErrorMessage(err); markup.MatchString(msg) {
				t.Fatalf("message %q contains markup", msg)
			}
		})
	}
}

// TestExampleNarratives checks the official examples' narratives directly.
func TestExampleNarratives(t *testing.T) {
	for _, name := range exampleFiles(t, "Observation-*.json") {
		t.Run(name, func(t *testing.T) {
			var o struct{ Text struct{ Div string } }
			if err := json.Unmarshal(mustRead(t, name), &o); err != nil {
				t.Fatal(err)
			}
			if err := fhir.CheckNarrative(o.Text.Div); err != nil {
				t.Fatal(err)
			}
		})
	}
}
