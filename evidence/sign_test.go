package evidence_test

import (
	"bytes"
	"testing"

	"github.com/vitalgate/vitalgate/evidence"
)

// FuzzVerify: Verify never panics on any file, every signed body verifies with its digest,
// and a signed file with one byte changed does not.
func FuzzVerify(f *testing.F) {
	signer, _, err := evidence.LoadOrCreateSigner(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	key := signer.Public()
	for _, seed := range []string{"", "<html></html>\n", "# report\nno newline at the end", "ID,Answer\nEMRG-1,Yes\n", `{"title":"x"}` + "\n"} {
		f.Add([]byte(seed), uint16(0))
		signed, _ := signer.Sign([]byte(seed), evidence.FormatHTML)
		f.Add(signed, uint16(len(signed)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, at uint16) {
		_, _ = evidence.Verify(data, key) // must not panic
		formats := []string{evidence.FormatHTML, evidence.FormatJSON, evidence.FormatMDS2}
		{ // one format per input, so that an execution costs one signature and two checks
			format := formats[int(at)%len(formats)]
			signed, digest := signer.Sign(data, format)
			c, err := evidence.Verify(signed, key)
			if err != nil || c.Digest != digest {
				t.Fatalf("%s: signed %q does not verify: %v", format, data, err)
			}
			bad := bytes.Clone(signed)
			bad[int(at)%len(bad)] ^= 0x20
			if _, err := evidence.Verify(bad, key); err == nil {
				t.Fatalf("%s: a changed byte at %d of %q verifies", format, int(at)%len(bad), signed)
			}
		}
	})
}
