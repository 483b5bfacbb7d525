package rollout_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/rollout"
)

// FuzzReport feeds POST /updates/report bodies, as the transport decodes them, to Report:
// it never panics, refuses with EINVALID or EFORBIDDEN only, accepts only a valid version
// and state, and a device's free-text reason never reaches the audit log (every reason is
// marked with a character no audit text of this package holds).
func FuzzReport(f *testing.F) {
	for _, seed := range []string{
		`{"version":"2.0.0","state":"downloading"}`,
		`{"version":"2.0.0","state":"installed"}`,
		`{"version":"2.0.0","state":"healthy","device":"vm-0"}`,
		`{"version":"2.0.0","state":"failed","reason":"signature check failed on slot B"}`,
		`{"version":"2.0.0","state":"rolled-back","reason":"watchdog reset after boot"}`,
		`{"version":"1.9.3+build.7","state":"installed"}`,
		`{"version":"2.0.0","state":"failed","reason":"x","device":"vm-1"}`,
		`{"version":"../../etc","state":"installed"}`,
		`{"version":"","state":""}`,
	} {
		f.Add([]byte(seed))
	}
	e := newEnv(f)
	e.devices("vm", "VM-100", "default", 2)
	if _, err := e.svc.Start(context.Background(), "op", rollout.Plan{Model: "VM-100", Version: "2.0.0"}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var rep rollout.Report
		if json.Unmarshal(body, &rep) != nil {
			return
		}
		rep.Reason = "\u00ab" + rep.Reason
		err := e.svc.Report(context.Background(), "vm-0", rep)
		switch code := vitalgate.ErrorCode(err); {
		case err == nil:
			if rollout.CheckVersion(rep.Version) != nil {
				t.Fatalf("accepted version %q", rep.Version)
			}
		case code != vitalgate.EINVALID && code != vitalgate.EFORBIDDEN:
			t.Fatalf("report %q: %v (code %s)", body, err, code)
		}
		size, err := e.store.AuditSize(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_ = e.store.AuditEntries(context.Background(), size-min(size, 3), size, func(rec vitalgate.AuditRecord) error {
			if en, _ := audit.UnmarshalEntry(rec.Data); strings.Contains(en.OutcomeDesc, "\u00ab") {
				t.Fatalf("a device's reason reached the audit log: %q", en.OutcomeDesc)
			}
			return nil
		})
	})
}
