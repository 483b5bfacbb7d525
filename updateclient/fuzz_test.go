package updateclient_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/updateclient"
)

// offerSeeds are answers of GET /updates/offer as the contract writes them, and near misses.
var offerSeeds = []string{
	`{"model":"infusion-pump","version":"1.2.0","target":"infusion-pump/1.2.0/firmware.bin","critical":false}`,
	`{"model":"monitor","version":"2026.12.1","target":"monitor/2026.12.1/image.swu","critical":true}`,
	`{"model":"m","version":"1","target":"m/1/f","critical":false,"rollout":"r-17"}`,
	`{"model":"m","version":"1","target":"m/2/f"}`,
	`{"model":"m","version":"1","target":"m/1/../f"}`,
	`{"model":"m","version":"1","target":"m/1/a/b"}`,
	`{"model":"","version":"1","target":"/1/f"}`,
	`{"model":"m","version":"1","target":"m/1/f"} {}`,
	`{"model":"m\u0000","version":"1","target":"m\u0000/1/f"}`,
	`[]`, `null`, ``, `{"model":1}`,
}

// FuzzParseOffer: ParseOffer never panics; what it accepts validates, names a target
// MODEL/VERSION/NAME of its own model and version, and survives a JSON round trip.
func FuzzParseOffer(f *testing.F) {
	for _, s := range offerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := updateclient.ParseOffer(b)
		if err != nil {
			if o != (updateclient.Offer{}) {
				t.Fatalf("error %v with a non-zero offer %+v", err, o)
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("accepted offer does not validate: %v", err)
		}
		parts := strings.Split(o.Target, "/")
		if len(parts) != 3 || parts[0] != o.Model || parts[1] != o.Version || parts[2] == ".." {
			t.Fatalf("accepted target %q for %q %q", o.Target, o.Model, o.Version)
		}
		again, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		o2, err := updateclient.ParseOffer(again)
		if err != nil || o2 != o {
			t.Fatalf("round trip: %+v %v, want %+v", o2, err, o)
		}
	})
}

// FuzzDiagnostics: reading an error answer never panics and yields bounded valid UTF-8.
func FuzzDiagnostics(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"state \"done\" is not one of downloading, installed, healthy, failed, rolled-back"}]}`,
		`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"forbidden","details":{"text":"report for another device"}}]}`,
		`{"resourceType":"OperationOutcome","issue":[]}`,
		`{"resourceType":"Patient"}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := updateclient.Diagnostics(b)
		if len(d) > 1024*3 || !utf8Valid(d) {
			t.Fatalf("diagnostics %q", d)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

func TestParseOfferSeeds(t *testing.T) {
	valid := map[int]bool{0: true, 1: true, 2: true}
	for i, s := range offerSeeds {
		_, err := updateclient.ParseOffer([]byte(s))
		if (err == nil) != valid[i] {
			t.Errorf("seed %d %s: err = %v", i, s, err)
		}
	}
}
