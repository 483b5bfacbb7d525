package detect_test

import (
	"testing"

	"github.com/vitalgate/vitalgate/detect"
)

// FuzzParseRules: any input is refused or parses to rules that build an engine (seeds: the
// shipped rules file and an empty rule set). The rules file is the operator's, not the
// wire's, but a malformed one must give an error, never a panic.
func FuzzParseRules(f *testing.F) {
	f.Add(detect.DefaultRulesJSON())
	f.Add([]byte(`{"format":"vitalgate-detection-rules","format_version":1,"version":1,"rules":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := detect.ParseRules(b)
		if err != nil {
			return
		}
		if _, err := detect.NewEngine(rs); err != nil {
			t.Fatalf("parsed rules build no engine: %v", err)
		}
	})
}
