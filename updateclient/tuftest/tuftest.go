// Package tuftest builds TUF repositories and serves them for tests of update clients, as
// net/http/httptest does for HTTP: a [Repo] made with go-tuf's metadata API on disk in the
// layout the Vitalgate server serves, whose keys the test holds (so it can stage attacks),
// and a [Server] that serves it over HTTPS with client-certificate authentication together
// with the offer and report endpoints of the wire contract.
package tuftest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Repo is a TUF repository built with go-tuf's metadata API on disk, in the layout the
// Vitalgate server serves: DIR/metadata/{N.root,timestamp,N.snapshot,N.targets,N.MODEL}.json
// and DIR/targets/MODEL/VERSION/SHA256HEX.FILENAME, consistent snapshots, one delegated
// targets role per model (paths MODEL/*/*). Root and targets keys stand for the offline
// keys, snapshot and timestamp for the online ones.
type Repo struct {
	t   testing.TB
	Dir string // the repository: Dir/metadata, Dir/targets
	now time.Time

	Keys      map[string]ed25519.PrivateKey // by role name
	Root      *metadata.Metadata[metadata.RootType]
	Targets   *metadata.Metadata[metadata.TargetsType]
	Roles     map[string]*metadata.Metadata[metadata.TargetsType] // by model
	Models    []string
	Snapshot  *metadata.Metadata[metadata.SnapshotType]
	Timestamp *metadata.Metadata[metadata.TimestampType]
}

const day = 24 * time.Hour

// NewRepo creates a repository for models in a temporary directory: root version 1
// (expires in a year), targets delegating MODEL/*/* to a role per model with its own key,
// empty model roles, and a snapshot (a week) and timestamp (a day) signed by the online
// keys. Expiry counts from now.
func NewRepo(t testing.TB, now time.Time, models ...string) *Repo {
	t.Helper()
	r := &Repo{t: t, Dir: t.TempDir(), now: now, Keys: map[string]ed25519.PrivateKey{}, Roles: map[string]*metadata.Metadata[metadata.TargetsType]{}, Models: models}
	for _, d := range []string{"metadata", "targets"} {
		must(t, os.MkdirAll(filepath.Join(r.Dir, d), 0o700))
	}
	r.Root = metadata.Root(now.Add(365 * day))
	r.Root.Signed.ConsistentSnapshot = true
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		r.Keys[role] = newKey(t)
		must(t, r.Root.Signed.AddKey(tufKey(t, r.Keys[role]), role))
	}
	r.Targets = metadata.Targets(now.Add(365 * day))
	r.Targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	for _, m := range models {
		r.Keys[m] = newKey(t)
		k := tufKey(t, r.Keys[m])
		id, err := k.ID()
		must(t, err)
		r.Targets.Signed.Delegations.Keys[id] = k
		r.Targets.Signed.Delegations.Roles = append(r.Targets.Signed.Delegations.Roles, metadata.DelegatedRole{
			Name: m, KeyIDs: []string{id}, Threshold: 1, Terminating: true, Paths: []string{m + "/*/*"},
		})
		r.Roles[m] = metadata.Targets(now.Add(365 * day))
	}
	r.Snapshot = metadata.Snapshot(now.Add(7 * day))
	r.Timestamp = metadata.Timestamp(now.Add(day))
	r.WriteRoot()
	r.WriteTargets(metadata.TARGETS, r.Targets, r.Keys[metadata.TARGETS])
	for _, m := range models {
		r.WriteTargets(m, r.Roles[m], r.Keys[m])
	}
	r.WriteSnapshotTimestamp()
	return r
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	return k
}

func tufKey(t testing.TB, k ed25519.PrivateKey) *metadata.Key {
	t.Helper()
	key, err := metadata.KeyFromPublicKey(k.Public())
	must(t, err)
	return key
}

func signer(t testing.TB, k ed25519.PrivateKey) signature.Signer {
	t.Helper()
	s, err := signature.LoadSigner(k, crypto.Hash(0))
	must(t, err)
	return s
}

// RootBytes returns the current root.json, as a device is provisioned with it.
func (r *Repo) RootBytes() []byte {
	b, err := r.Root.ToBytes(false)
	must(r.t, err)
	return b
}

// MetaPath is the file served as /updates/metadata/name.
func (r *Repo) MetaPath(name string) string { return filepath.Join(r.Dir, "metadata", name) }

// WriteRoot signs the root with the root key and writes N.root.json.
func (r *Repo) WriteRoot() {
	r.Root.ClearSignatures()
	_, err := r.Root.Sign(signer(r.t, r.Keys[metadata.ROOT]))
	must(r.t, err)
	must(r.t, r.Root.ToFile(r.MetaPath(fmt.Sprintf("%d.root.json", r.Root.Signed.Version)), false))
}

// WriteTargets signs a targets role with k (the role's own key, or an attacker's) and
// writes N.ROLE.json.
func (r *Repo) WriteTargets(role string, md *metadata.Metadata[metadata.TargetsType], k ed25519.PrivateKey) {
	md.ClearSignatures()
	_, err := md.Sign(signer(r.t, k))
	must(r.t, err)
	must(r.t, md.ToFile(r.MetaPath(fmt.Sprintf("%d.%s.json", md.Signed.Version, role)), false))
}

// WriteSnapshotTimestamp publishes a new snapshot naming the current version of every
// targets role, and a new timestamp naming that snapshot, signed by the online keys.
func (r *Repo) WriteSnapshotTimestamp() {
	r.Snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.Targets.Signed.Version)
	for _, m := range r.Models {
		r.Snapshot.Signed.Meta[m+".json"] = metadata.MetaFile(r.Roles[m].Signed.Version)
	}
	r.WriteSnapshotOnly()
	r.Timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.Snapshot.Signed.Version)
	r.Timestamp.Signed.Version++
	r.Timestamp.Signed.Expires = r.now.Add(day)
	r.WriteTimestamp()
}

// WriteSnapshotOnly bumps the snapshot version, signs it with the snapshot key and writes
// N.snapshot.json, leaving its meta as the caller set it.
func (r *Repo) WriteSnapshotOnly() {
	r.Snapshot.Signed.Version++
	r.Snapshot.ClearSignatures()
	_, err := r.Snapshot.Sign(signer(r.t, r.Keys[metadata.SNAPSHOT]))
	must(r.t, err)
	must(r.t, r.Snapshot.ToFile(r.MetaPath(fmt.Sprintf("%d.snapshot.json", r.Snapshot.Signed.Version)), false))
}

// WriteTimestamp signs the timestamp as it stands with the timestamp key and writes
// timestamp.json.
func (r *Repo) WriteTimestamp() {
	r.Timestamp.ClearSignatures()
	_, err := r.Timestamp.Sign(signer(r.t, r.Keys[metadata.TIMESTAMP]))
	must(r.t, err)
	must(r.t, r.Timestamp.ToFile(r.MetaPath("timestamp.json"), false))
}

// AddRelease stores a target file of model and lists it in the model's role, signed by the
// model's key, then publishes a snapshot and timestamp. It returns the target path.
func (r *Repo) AddRelease(model, version, name string, data []byte) string {
	return r.ListTarget(model, model, version, name, data, r.Keys[model])
}

// ListTarget stores MODEL/VERSION/NAME and lists it in role (signed with k), then publishes.
func (r *Repo) ListTarget(role, model, version, name string, data []byte, k ed25519.PrivateKey) string {
	tp := path.Join(model, version, name)
	tf, err := metadata.TargetFile().FromBytes(tp, data, "sha256")
	must(r.t, err)
	sum := sha256.Sum256(data)
	file := r.targetFile(tp, hex.EncodeToString(sum[:]))
	must(r.t, os.MkdirAll(filepath.Dir(file), 0o700))
	must(r.t, os.WriteFile(file, data, 0o600))
	md := r.Targets
	if role != metadata.TARGETS {
		md = r.Roles[role]
	}
	md.Signed.Targets[tp] = tf
	md.Signed.Version++
	r.WriteTargets(role, md, k)
	r.WriteSnapshotTimestamp()
	return tp
}

// targetFile is where target tp with the given sha256 lives on disk.
func (r *Repo) targetFile(tp, sha string) string {
	dir, base := path.Split(tp)
	return filepath.Join(r.Dir, "targets", filepath.FromSlash(dir), sha+"."+base)
}

// ServedFile is the file on disk that the server serves for target tp.
func (r *Repo) ServedFile(tp string) string {
	for _, m := range append([]string{metadata.TARGETS}, r.Models...) {
		md := r.Targets
		if m != metadata.TARGETS {
			md = r.Roles[m]
		}
		if tf, ok := md.Signed.Targets[tp]; ok {
			return r.targetFile(tp, hex.EncodeToString(tf.Hashes["sha256"]))
		}
	}
	r.t.Fatalf("target %s is not in the repository", tp)
	return ""
}

// Server is an HTTPS server that requires a client certificate from its CA and serves a
// repository directory under /updates/ in the Vitalgate layout (metadata/ and targets/),
// plus GET /updates/offer and POST /updates/report of the wire contract. The atomic fields
// stage misbehaviour and may be set at any time.
type Server struct {
	// FailNext makes the server answer 503 to this many requests before serving again.
	FailNext atomic.Int32
	// RetryAfter, when positive, is the Retry-After (seconds) sent with those 503s.
	RetryAfter atomic.Int32
	// NotFound makes it answer 404 to everything, as a server without updates does.
	NotFound atomic.Bool
	// Chunked sends targets without Content-Length.
	Chunked atomic.Bool
	// Endless answers every target request with an endless body.
	Endless atomic.Bool

	// CA is the CA that issues the server's certificate and the device certificates it
	// accepts; CAPool holds it.
	CA     *x509.Certificate
	CAPool *x509.CertPool

	srv   *httptest.Server
	caKey crypto.Signer
	offer atomic.Pointer[[]byte] // nil: 204

	mu      sync.Mutex
	reports []Report
	hits    map[string]int
}

// Report is a POST /updates/report the server received.
type Report struct {
	Device string // the client certificate's common name
	Body   []byte
}

// NewServer starts a Server for repoDir with a CA of its own.
func NewServer(tb testing.TB, repoDir string) *Server {
	tb.Helper()
	ca, key := newCA(tb)
	return NewServerWithCA(tb, repoDir, ca, key)
}

// NewServerWithCA starts a Server for repoDir whose certificate is issued by ca (for
// 127.0.0.1) and that accepts client certificates issued by ca.
func NewServerWithCA(tb testing.TB, repoDir string, ca *x509.Certificate, caKey crypto.Signer) *Server {
	tb.Helper()
	s := &Server{hits: map[string]int{}, CA: ca, caKey: caKey, CAPool: x509.NewCertPool()}
	s.CAPool.AddCert(ca)
	files := http.StripPrefix("/updates/", http.FileServer(http.Dir(repoDir)))
	mux := http.NewServeMux()
	mux.Handle("GET /updates/metadata/", files)
	mux.HandleFunc("GET /updates/targets/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.Endless.Load():
			chunk := make([]byte, 32<<10)
			for {
				if _, err := w.Write(chunk); err != nil {
					return // the client hung up
				}
			}
		case s.Chunked.Load():
			files.ServeHTTP(noLength{w}, r)
		default:
			files.ServeHTTP(w, r)
		}
	})
	mux.HandleFunc("GET /updates/offer", func(w http.ResponseWriter, _ *http.Request) {
		o := s.offer.Load()
		if o == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*o)
	})
	mux.HandleFunc("POST /updates/report", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.reports = append(s.reports, Report{Device: r.TLS.PeerCertificates[0].Subject.CommonName, Body: b})
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		switch {
		case len(r.TLS.PeerCertificates) == 0:
			http.Error(w, "client certificate required", http.StatusUnauthorized)
		case s.NotFound.Load():
			http.NotFound(w, r)
		case s.FailNext.Load() > 0 && s.FailNext.Add(-1) >= 0:
			if ra := s.RetryAfter.Load(); ra > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(ra))
			}
			http.Error(w, "try later", http.StatusServiceUnavailable)
		default:
			mux.ServeHTTP(w, r)
		}
	}))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    s.CAPool,
		Certificates: []tls.Certificate{s.Issue(tb, "127.0.0.1", true)},
	}
	s.srv.StartTLS()
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the server's base URL, https://127.0.0.1:PORT.
func (s *Server) URL() string { return s.srv.URL }

// SetOffer makes GET /updates/offer answer 200 with body, or 204 when body is nil.
func (s *Server) SetOffer(body []byte) {
	if body == nil {
		s.offer.Store(nil)
		return
	}
	s.offer.Store(&body)
}

// Reports returns the reports received so far.
func (s *Server) Reports() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Report(nil), s.reports...)
}

// Hits returns how many requests for the URL path p the server received.
func (s *Server) Hits(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[p]
}

// DeviceClient returns a client that presents a device certificate (CN device-1) from the
// server's CA and trusts only that CA.
func (s *Server) DeviceClient(tb testing.TB) *http.Client {
	return s.Client([]tls.Certificate{s.Issue(tb, "device-1", false)})
}

// Client returns a client that presents certs and trusts only the server's CA.
func (s *Server) Client(certs []tls.Certificate) *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: s.CAPool, Certificates: certs}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func newCA(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(day),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	must(t, err)
	c, err := x509.ParseCertificate(der)
	must(t, err)
	return c, k
}

// Issue returns a certificate from the server's CA: a server one for an IP, or a device
// (client) one with common name name.
func (s *Server) Issue(t testing.TB, name string, server bool) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(day),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP(strings.TrimSpace(name))}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.CA, &k.PublicKey, s.caKey)
	must(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// noLength drops the Content-Length header, so the body is sent chunked.
type noLength struct{ http.ResponseWriter }

func (n noLength) WriteHeader(code int) {
	n.Header().Del("Content-Length")
	n.ResponseWriter.WriteHeader(code)
}

func (n noLength) Write(b []byte) (int, error) {
	n.Header().Del("Content-Length")
	return n.ResponseWriter.Write(b)
}

func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	must(t, err)
	return n
}

// RotateKeys publishes the next root version in which each of roles has a new key instead
// of its old one, signed by the old and the new root key (a rotation a client can follow),
// and returns the replaced private keys by role.
func (r *Repo) RotateKeys(roles ...string) map[string]ed25519.PrivateKey {
	old := map[string]ed25519.PrivateKey{}
	oldRoot := r.Keys[metadata.ROOT]
	for _, role := range roles {
		id, err := tufKey(r.t, r.Keys[role]).ID()
		must(r.t, err)
		must(r.t, r.Root.Signed.RevokeKey(id, role))
		old[role] = r.Keys[role]
		r.Keys[role] = newKey(r.t)
		must(r.t, r.Root.Signed.AddKey(tufKey(r.t, r.Keys[role]), role))
	}
	r.Root.Signed.Version++
	r.Root.ClearSignatures()
	for _, k := range []ed25519.PrivateKey{oldRoot, r.Keys[metadata.ROOT]} {
		_, err := r.Root.Sign(signer(r.t, k))
		must(r.t, err)
	}
	must(r.t, r.Root.ToFile(r.MetaPath(fmt.Sprintf("%d.root.json", r.Root.Signed.Version)), false))
	return old
}
