package e2e_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recipe returns the shell block of README.md between <!-- recipe:NAME --> and <!-- /recipe -->.
func recipe(t *testing.T, name string) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	start := strings.Index(s, "<!-- recipe:"+name+" -->")
	if start < 0 {
		t.Fatalf("README.md has no recipe %q", name)
	}
	s = s[start:]
	end := strings.Index(s, "<!-- /recipe -->")
	if end < 0 {
		t.Fatalf("recipe %q is not closed", name)
	}
	s = s[:end]
	open := strings.Index(s, "```sh\n")
	closeFence := strings.LastIndex(s, "```")
	if open < 0 || closeFence <= open {
		t.Fatalf("recipe %q has no ```sh block", name)
	}
	return s[open+len("```sh\n") : closeFence]
}

// needTools skips when a device-side tool is missing, except in CI where it must be there.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; .ci/run must install it", tool)
			}
			t.Skipf("%s is not installed: skipping the README recipe", tool)
		}
	}
}

// TestReadmeRecipes walks the README's path from a fresh machine to an EHR read, every
// block run verbatim with bash: "Deploying" creates the data dir for a host name and starts
// the server, "Enrolling" registers and enrolls a device with openssl and curl and posts an
// observation, "Reading data as an EHR" gets a token and finds it. The host name is not the
// default one, so a recipe that reached the server by any other name than VG_HOST would fail
// the certificate check. Then the device recipe is run again: it must stop with a message
// and leave the working key as it was.
func TestReadmeRecipes(t *testing.T) {
	needTools(t, "bash", "openssl", "curl")
	work := t.TempDir()
	data := filepath.Join(work, "vg-data")
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	env := append(os.Environ(),
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VG_DATA="+data, "VG_HOST=vitalgate.localhost", "VG_PORT="+port) // curl resolves *.localhost to loopback
	bash := func(name string) (string, string, error) {
		cmd := exec.Command("bash", "-c", recipe(t, name)) // no -e: the recipes must stop on errors themselves
		cmd.Dir, cmd.Env = work, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	for _, name := range []string{"deploy", "serve", "openssl-curl", "ehr-curl", "bulk-curl"} {
		if r := recipe(t, name); strings.Contains(r, "localhost") || strings.Contains(r, "./vg-data") {
			t.Errorf("recipe %s names a host or data dir of its own instead of VG_HOST and VG_DATA", name)
		}
	}

	// Deploying: init prints the admin client's secret alone on standard output.
	out, errOut, err := bash("deploy")
	if err != nil {
		t.Fatalf("deploy recipe: %v\n%s", err, errOut)
	}
	if secret := strings.TrimSpace(out); len(secret) != 43 || strings.ContainsAny(secret, " :\n") {
		t.Fatalf("init printed %q on standard output, want the admin secret alone", out)
	}
	srv := startRecipeServer(t, work, env, data, port)

	// Enrolling: the device recipe, verbatim, ends with the stored Observation.
	out, errOut, err = bash("openssl-curl")
	if err != nil {
		t.Fatalf("device recipe failed: %v\nstdout: %s\nstderr: %s\nserver: %s", err, out, errOut, srv.String())
	}
	var obs struct {
		ResourceType string
		ID           string
		Meta         struct{ VersionID string }
	}
	if err := json.Unmarshal([]byte(out), &obs); err != nil || obs.ResourceType != "Observation" || obs.ID == "" || obs.Meta.VersionID != "1" {
		t.Fatalf("recipe's last answer is not the stored Observation: %v\n%s", err, out)
	}
	if !strings.Contains(errOut, `no Patient with id "patient-0001" is stored`) {
		t.Errorf("device add did not warn that no Patient patient-0001 is stored: %s", errOut)
	}

	// A rerun stops before anything changes and keeps the working key.
	key, err := os.ReadFile(filepath.Join(work, "device.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(work, "device.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("device.key has mode %o, want 600", st.Mode().Perm())
	}
	out, errOut, err = bash("openssl-curl")
	if err == nil {
		t.Fatalf("the device recipe ran through a second time:\n%s", out)
	}
	if !strings.Contains(errOut, "device.key exists: keep it") || strings.TrimSpace(out) != "" {
		t.Errorf("the rerun did not stop at once with the reason: stdout %q stderr %q", out, errOut)
	}
	if again, _ := os.ReadFile(filepath.Join(work, "device.key")); !bytes.Equal(again, key) {
		t.Fatal("the rerun replaced the working device key")
	}

	// Reading data as an EHR: the EHR recipe finds the observation.
	out, errOut, err = bash("ehr-curl")
	if err != nil {
		t.Fatalf("EHR recipe failed: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	var set struct {
		ResourceType, Type string
		Entry              []struct{ Resource struct{ ID string } }
	}
	if err := json.Unmarshal([]byte(out), &set); err != nil || set.Type != "searchset" || len(set.Entry) != 1 || set.Entry[0].Resource.ID != obs.ID {
		t.Fatalf("EHR recipe did not find the observation %s: %v\n%s", obs.ID, err, out)
	}

	// Bulk export: the last week of vital signs of the site, as NDJSON, holds the observation.
	out, errOut, err = bash("bulk-curl")
	if err != nil {
		t.Fatalf("bulk export recipe failed: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var exported struct{ ResourceType, ID string }
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &exported) != nil || exported.ResourceType != "Observation" || exported.ID != obs.ID {
		t.Fatalf("bulk export recipe did not give the observation %s as one NDJSON line:\n%s", obs.ID, out)
	}

	srv.stop(t)
	if got := exportIDs(t, data); got[obs.ID] != 1 {
		t.Fatalf("the recipe's observation %s is not in the export", obs.ID)
	}
}

// recipeServer is the README's serve recipe running under bash, in a process group of its
// own so that the server goes with it.
type recipeServer struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func (s *recipeServer) String() string { return s.stderr.String() }

// startRecipeServer runs the serve recipe and waits until the server answers on port for
// the recipes' host name, with the data dir's CA.
func startRecipeServer(t *testing.T, work string, env []string, data, port string) *recipeServer {
	t.Helper()
	s := &recipeServer{stderr: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command("bash", "-c", recipe(t, "serve"))
	s.cmd.Dir, s.cmd.Env, s.cmd.Stderr = work, env, s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	})
	caPEM, err := os.ReadFile(filepath.Join(data, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "vitalgate.localhost", MinVersion: tls.VersionTLS13}}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get("https://127.0.0.1:" + port + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("the serve recipe exited: %v\n%s", err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the serve recipe's server did not answer: %v\n%s", err, s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGINT to the server's process group and waits for a graceful exit.
func (s *recipeServer) stop(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("server exit: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30 s of SIGINT")
	}
}
