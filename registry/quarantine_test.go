package registry_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/registry"
)

// sink records the signals it is given.
type sink struct {
	mu   sync.Mutex
	sigs []detect.Signal
}

func (s *sink) Emit(sig detect.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sigs = append(s.sigs, sig)
}

func (s *sink) kinds() map[detect.Kind]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[detect.Kind]int{}
	for _, x := range s.sigs {
		out[x.Kind]++
	}
	return out
}

func TestQuarantine(t *testing.T) {
	sigs := &sink{}
	e := mustEnv(t, func(c *registry.Config) { c.Signals = sigs })
	ctx := t.Context()
	cert := e.enroll("dev-q")
	other := e.node(nil) // another node, which read the device before the quarantine
	if _, err := other.Authorize(ctx, cert); err != nil {
		t.Fatal(err)
	}
	pending := e.add("dev-pending", "pat-1")

	wantCode(t, "no reason", e.reg.Quarantine(ctx, op, "dev-q", " "), vitalgate.EINVALID)
	wantCode(t, "unknown device", e.reg.Quarantine(ctx, op, "dev-nobody", "stolen"), vitalgate.ENOTFOUND)
	wantCode(t, "a device may not", e.reg.Quarantine(ctx, vitalgate.Principal{Kind: "device", ID: "dev-q"}, "dev-q", "x"), vitalgate.EFORBIDDEN)
	if err := e.reg.Quarantine(ctx, op, "dev-q", "certificate seen from an unknown network"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "twice", e.reg.Quarantine(ctx, op, "dev-q", "again"), vitalgate.ECONFLICT)
	if err := e.reg.Quarantine(ctx, vitalgate.Principal{Kind: registry.KindDetector, ID: "detect:a1", Site: vitalgate.AllSites}, "dev-pending", "rule x"); err != nil {
		t.Fatalf("the detector may quarantine: %v", err)
	}

	_, err := e.reg.Authorize(ctx, cert)
	wantCode(t, "authorize on this node", err, vitalgate.EUNAUTHORIZED)
	// Remediation: the update repository still lets it in, until an operator blocks it.
	for _, c := range []struct {
		name string
		do   func() error
		code string
	}{
		{"updates while quarantined", func() error { _, err := e.reg.AuthorizeUpdates(ctx, cert); return err }, ""},
		{"handshake while quarantined", func() error { _, err := e.reg.AuthorizeHandshake(ctx, cert); return err }, ""},
		{"block without a reason", func() error { return e.reg.BlockUpdates(ctx, op, "dev-q", "") }, vitalgate.EINVALID},
		{"the detector may not block", func() error {
			return e.reg.BlockUpdates(ctx, vitalgate.Principal{Kind: registry.KindDetector, ID: "detect:a1", Site: vitalgate.AllSites}, "dev-q", "x")
		}, vitalgate.EFORBIDDEN},
		{"block an unknown device", func() error { return e.reg.BlockUpdates(ctx, op, "dev-nobody", "x") }, vitalgate.ENOTFOUND},
		{"block", func() error { return e.reg.BlockUpdates(ctx, op, "dev-q", "firmware tampered with") }, ""},
		{"updates once blocked", func() error { _, err := e.reg.AuthorizeUpdates(ctx, cert); return err }, vitalgate.EUNAUTHORIZED},
		{"handshake once blocked", func() error { _, err := e.reg.AuthorizeHandshake(ctx, cert); return err }, vitalgate.EUNAUTHORIZED},
	} {
		wantCode(t, c.name, c.do(), c.code)
	}
	_, err = e.reg.Sender(ctx, "dev-q")
	wantCode(t, "send", err, vitalgate.EFORBIDDEN)
	_, err = e.reg.Reenroll(ctx, cert, csr(t, "dev-q"))
	wantCode(t, "re-enroll", err, vitalgate.EUNAUTHORIZED)
	_, err = e.reg.Enroll(ctx, enrollee("dev-pending", "192.0.2.9"), pending, csr(t, "dev-pending"))
	wantCode(t, "enrollment secret voided", err, vitalgate.EUNAUTHORIZED)
	if d, _ := e.store.Device(ctx, "dev-pending"); d.EnrollSecretHash != "" || d.Status != vitalgate.DeviceQuarantined {
		t.Fatalf("device after quarantine: status %s, secret hash kept %v", d.Status, d.EnrollSecretHash != "")
	}
	e.clock.Advance(other.MaxStaleness() + time.Millisecond)
	_, err = other.Authorize(ctx, cert)
	wantCode(t, "authorize on another node after the staleness bound", err, vitalgate.EUNAUTHORIZED)

	wantCode(t, "the detector may not release", e.reg.Release(ctx, vitalgate.Principal{Kind: registry.KindDetector, ID: "detect:a1", Site: vitalgate.AllSites}, "dev-q", "x"), vitalgate.EFORBIDDEN)
	wantCode(t, "release an active device", e.reg.Release(ctx, op, "dev-1-none", "x"), vitalgate.ENOTFOUND)
	if err := e.reg.Release(ctx, op, "dev-q", "the network was the new ward's"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "release twice", e.reg.Release(ctx, op, "dev-q", "again"), vitalgate.ECONFLICT)
	if _, err := e.reg.Authorize(ctx, cert); err != nil {
		t.Fatalf("a released device acts again: %v", err)
	}
	wantCode(t, "block an active device", e.reg.BlockUpdates(ctx, op, "dev-q", "x"), vitalgate.ECONFLICT)
	if blocked, err := e.store.DeviceUpdatesBlocked(ctx, "dev-q"); err != nil || blocked {
		t.Fatalf("the release kept the block of updates: %v %v", blocked, err)
	}
	if k := sigs.kinds(); k[detect.KindCertRefused] < 2 || k[detect.KindEnrollFailure] != 1 {
		t.Fatalf("signals %v: want the refused certificates and the refused enrollment", k)
	}
	var subtypes []string
	size, _ := e.store.AuditSize(ctx)
	if err := e.store.AuditEntries(ctx, 0, size, func(r vitalgate.AuditRecord) error {
		subtypes = append(subtypes, string(r.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, s := range subtypes {
		for _, want := range []string{"device-quarantine", "device-release", "certificate seen from an unknown network", "device-block-updates"} {
			if strings.Contains(s, want) {
				found[want] = true
			}
		}
	}
	if len(found) != 4 {
		t.Fatalf("audit log lacks quarantine entries: %v", found)
	}
}

// TestModelNetworks: a model's network allow-list is checked at the handshake, once the
// certificate names the device: an address outside it (or none) is refused and signalled, a
// handshake that passes is signalled with its TLS fingerprint;
// a model without a list is not restricted; requests on an open connection are not checked
// again.
func TestModelNetworks(t *testing.T) {
	sigs := &sink{}
	nets, err := guard.ParseNetworks("10.20.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	e := mustEnv(t, func(c *registry.Config) {
		c.Signals, c.ModelNetworks = sigs, guard.ModelNetworks{"m": nets}
	})
	other := e.node(nil) // a node without lists
	cert := e.enroll("dev-n")
	from := func(ip string) context.Context {
		return vitalgate.WithRequestInfo(t.Context(), vitalgate.RequestInfo{RemoteIP: ip, TLSFingerprint: "fp-" + ip})
	}
	tests := []struct {
		name string
		do   func() error
		code string
	}{
		{"handshake from the model's network", func() error { _, err := e.reg.AuthorizeHandshake(from("10.20.3.4"), cert); return err }, ""},
		{"handshake from elsewhere", func() error { _, err := e.reg.AuthorizeHandshake(from("198.51.100.23"), cert); return err }, vitalgate.EUNAUTHORIZED},
		{"handshake from an unknown address", func() error { _, err := e.reg.AuthorizeHandshake(t.Context(), cert); return err }, vitalgate.EUNAUTHORIZED},
		{"a request on an open connection", func() error { _, err := e.reg.Authorize(from("198.51.100.23"), cert); return err }, ""},
		{"a node without lists", func() error { _, err := other.AuthorizeHandshake(from("198.51.100.23"), cert); return err }, ""},
	}
	for _, tc := range tests {
		wantCode(t, tc.name, tc.do(), tc.code)
	}
	if k := sigs.kinds(); k[detect.KindCertRefused] != 2 || k[detect.KindHandshake] != 1 {
		t.Errorf("signals %v, want the two refused handshakes and the one that passed on this node", k)
	}
	for _, s := range sigs.sigs {
		if s.Kind == detect.KindHandshake && (s.Device != "dev-n" || s.Model != "m" || s.Source != "10.20.3.4" || s.Fingerprint != "fp-10.20.3.4") {
			t.Errorf("handshake signal %+v, want the device, its model, address and TLS fingerprint", s)
		}
	}
}
