package deploy_test

import (
	"archive/tar"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/pki"
)

// buildah runs buildah with the storage and isolation that work without a daemon, as root
// in a plain machine or a CI container (vfs storage, chroot isolation).
func buildah(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("buildah", append([]string{"--storage-driver", "vfs"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestContainerImage builds deploy/Containerfile with buildah (no daemon, no base image to
// pull) around a static build of the binary, and checks what the README promises: the image
// holds the binary and nothing else, runs as user 65532, has /data (owned by 65532) as its
// only volume; then it runs init and serve inside the image and reaches /healthz over TLS
// with the CA init made.
func TestContainerImage(t *testing.T) {
	if raceEnabled {
		// It builds and runs the real binary in a container, where the race detector of this
		// test process sees nothing; unpacking the layer under it takes minutes. The README's
		// test run (no -race) runs it.
		t.Skip("the container image test runs without the race detector (go test ./deploy/)")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("buildah is not installed; .ci/run must install it")
		}
		t.Skip("buildah is not installed: skipping the container image build")
	}
	if os.Geteuid() != 0 {
		t.Skip("building the image with chroot isolation needs root")
	}
	ctxDir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctxDir, "vitalgate"), "../cmd/vitalgate")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	cf, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), cf, 0o600); err != nil {
		t.Fatal(err)
	}
	tag := "localhost/vitalgate-test-" + strings.ToLower(filepath.Base(ctxDir))
	buildah(t, "bud", "-q", "--isolation", "chroot", "-f", filepath.Join(ctxDir, "Containerfile"), "-t", tag, ctxDir)
	t.Cleanup(func() { _ = exec.Command("buildah", "--storage-driver", "vfs", "rmi", "-f", tag).Run() })

	// What the image holds, read from its OCI layout.
	img := filepath.Join(t.TempDir(), "image")
	buildah(t, "push", "-q", tag, "dir:"+img)
	var manifest struct {
		Config struct{ Digest string }
		Layers []struct{ Digest, MediaType string }
	}
	readJSON(t, filepath.Join(img, "manifest.json"), &manifest)
	var config struct {
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Volumes    map[string]struct{}
			Env        []string
		}
	}
	readJSON(t, filepath.Join(img, strings.TrimPrefix(manifest.Config.Digest, "sha256:")), &config)
	c := config.Config
	if _, ok := c.Volumes["/data"]; c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/vitalgate"}) || len(c.Volumes) != 1 || !ok {
		t.Errorf("image config: user %q, entrypoint %q, volumes %v; want 65532:65532, the binary, /data alone", c.User, c.Entrypoint, c.Volumes)
	}
	if len(manifest.Layers) != 1 {
		t.Fatalf("%d layers, want the binary's alone", len(manifest.Layers))
	}
	files := layerFiles(t, filepath.Join(img, strings.TrimPrefix(manifest.Layers[0].Digest, "sha256:")))
	if len(files) != 1 || files["usr/local/bin/vitalgate"] == nil {
		t.Errorf("the image holds %d files, want the binary alone: %v", len(files), keys(files))
	} else if h := files["usr/local/bin/vitalgate"]; h.Mode&0o777 != 0o555 || h.Uid != 0 {
		t.Errorf("the binary has mode %o and owner %d, want 0555 and root (not writable by the service)", h.Mode&0o777, h.Uid)
	}

	// init and serve inside the image, as its user, with host networking (chroot isolation).
	ctr := buildah(t, "from", "-q", tag)
	t.Cleanup(func() { _ = exec.Command("buildah", "--storage-driver", "vfs", "rm", ctr).Run() })
	// (buildah gives the image's VOLUME /data a volume of its own for the container, as an
	// engine does without -v.)
	buildah(t, "run", "--isolation", "chroot", ctr, "--", "/usr/local/bin/vitalgate", "init", "--data", "/data/vg", "--host", "localhost")
	addr := freePort(t)
	serve := exec.Command("buildah", "--storage-driver", "vfs", "run", "--isolation", "chroot", ctr, "--",
		"/usr/local/bin/vitalgate", "serve", "--data", "/data/vg", "--addr", addr)
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &syncBuf{}
	serve.Stderr = logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-serve.Process.Pid, syscall.SIGTERM)
		_ = serve.Wait()
	}()
	// The CA the server's init made, fetched over EST (RFC 7030 §4.1.1 bootstrap: the
	// first fetch is not verified), then every later request verified with it.
	var pool *x509.CertPool
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}}} // #nosec G402 -- bootstrap fetch of the CA, verified below
	waitUntil(t, logs, "the CA over EST", func() bool {
		resp, err := insecure.Get("https://" + addr + "/.well-known/est/cacerts")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		der, err := pki.DecodeBase64(body)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := pki.ParseCertsOnly(der)
		if err != nil || len(certs) != 1 {
			t.Fatalf("cacerts: %v", err)
		}
		pool = x509.NewCertPool()
		pool.AddCert(certs[0])
		return true
	})
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13}}}
	waitUntil(t, logs, "/healthz", func() bool {
		resp, err := client.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("/healthz with the CA of the container's data dir: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if uid := processUID(t, serve.Process.Pid, "vitalgate"); uid != "65532" {
		t.Errorf("serve runs as user %q in the container, want 65532", uid)
	}
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, logs *syncBuf, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s from serve in the container\n%s", what, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processUID returns the real user id of the process named comm in process group pgid.
func processUID(t *testing.T, pgid int, comm string) string {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p) // #nosec G304 -- /proc
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		s := string(data)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open || s[open+1:close] != comm {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 3 || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status")) // #nosec G304 -- /proc
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
				return f[1]
			}
		}
	}
	t.Fatalf("no %s process in process group %d", comm, pgid)
	return ""
}

// syncBuf is a buffer the serve process writes to while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path) // #nosec G304 -- a file of the image the test built
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// layerFiles returns the entries of a gzip tar layer that are not directories, by path.
func layerFiles(t *testing.T, path string) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(path) // #nosec G304 -- a file of the image the test built
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeDir {
			out[strings.TrimPrefix(h.Name, "./")] = h
		}
	}
}

func keys(m map[string]*tar.Header) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
