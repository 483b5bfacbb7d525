package simulator_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestRerunReusesSavedCertificate: with CertDir, a second device run (a rerun of simulate)
// reuses the certificate the first enrollment saved and does not spend the one-time secret
// again; the saved files are the owner's alone; a certificate from another CA is not used.
func TestRerunReusesSavedCertificate(t *testing.T) {
	f := newFakeServer(t)
	dc := f.addDevice("rerun-1", "pat-1", "monitor")
	cfg := f.config()
	cfg.CertDir = filepath.Join(t.TempDir(), "certs")

	first := mustDevice(t, cfg, dc)
	mustEnroll(t, first)
	if n := f.enrolls.Load(); n != 1 {
		t.Fatalf("%d enrollments after the first run, want 1", n)
	}
	for _, name := range []string{"rerun-1.key", "rerun-1.crt"} {
		st, err := os.Stat(filepath.Join(cfg.CertDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 600", name, st.Mode().Perm())
		}
	}

	f.set(func(f *fakeServer) { f.secrets["rerun-1"] = "spent" }) // the secret works once
	again := mustDevice(t, cfg, dc)
	mustEnroll(t, again)
	if n := f.enrolls.Load(); n != 1 {
		t.Fatalf("the rerun enrolled again (%d enrollments): it must reuse the saved certificate", n)
	}
	if again.Certificate().SerialNumber.Cmp(first.Certificate().SerialNumber) != 0 {
		t.Fatal("the rerun does not use the saved certificate")
	}
	if res, err := again.Send(context.Background()); err != nil || res.Accepted == 0 {
		t.Fatalf("the rerun cannot send with the saved certificate: %+v %v", res, err)
	}

	// Another server (another CA) with the same device id: the saved certificate is not for
	// it, so the device enrolls with its secret.
	other := newFakeServer(t)
	dc2 := other.addDevice("rerun-1", "pat-1", "monitor")
	cfg2 := other.config()
	cfg2.CertDir = cfg.CertDir
	mustEnroll(t, mustDevice(t, cfg2, dc2))
	if n := other.enrolls.Load(); n != 1 {
		t.Fatalf("a certificate of another CA was reused (%d enrollments at the second server)", n)
	}
}
