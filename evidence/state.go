package evidence

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/assess"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/posture"
)

// Store is what the report reads from the deployment's store.
type Store interface {
	audit.AuditReader
	NodeConfigs(ctx context.Context) ([]vitalgate.NodeConfig, error)
	Devices(ctx context.Context) ([]vitalgate.Device, error)
	Clients(ctx context.Context) ([]vitalgate.Client, error)
	AuditCheckpoints(ctx context.Context) ([]vitalgate.AuditCheckpoint, error)
	RetiredKEKs(ctx context.Context) ([]vitalgate.RetiredKEK, error)
	Sites(ctx context.Context) ([]vitalgate.Site, error)
	AuditSegments(ctx context.Context) ([]vitalgate.AuditSegment, error)
}

// DataFiles names the files of the data dir the report reads (their contents for the
// certificates, only their modification times for keys).
type DataFiles struct {
	CACert     string   // PEM CA certificate
	ServerCert string   // PEM server certificate
	KeysDir    string   // the keyring directory (key-encryption keys kek-N.key, index key)
	Keys       []string // other key files whose age the report states (CA, server, token, audit)
	// BackupStatus is the record of the last backup and the last verified backup
	// (backup-status.json, written by `vitalgate backup` and `vitalgate restore`); empty: none.
	BackupStatus string
}

// Deployment is the deployment a report describes.
type Deployment struct {
	Dir      string // the data dir
	Files    DataFiles
	Store    Store
	Origin   string         // the audit log's origin (names the deployment)
	Verifier audit.Verifier // the audit checkpoint verifier key (audit.pub)
	// CryptoMode is the data dir's cryptographic mode record with the reporting process's
	// FIPS 140-3 mode (node.CryptoRecord.Mode), e.g. "fips140=only; secrets pbkdf2-sha256
	// (FIPS data dir)".
	CryptoMode string
	// Posture, when set, reports the fleet's vulnerability posture (*posture.Service).
	Posture interface {
		Report(ctx context.Context, q posture.Query) (posture.Report, error)
	}
}

// CertInfo describes one certificate.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	KeyAlg    string    `json:"key_algorithm"`
	SigAlg    string    `json:"signature_algorithm"`
	DaysLeft  int       `json:"-"` // at the report's time (for the status; the report states dates)
}

// KeyFile is one key file of the data dir and when it was written.
type KeyFile struct {
	Name    string    `json:"name"`
	Written time.Time `json:"written"` // the file's modification time: key files are written once
	AgeDays int       `json:"-"`       // at the report's time (for the status; the report states dates)
}

// AuditState is the audit log as the report found it.
type AuditState struct {
	Entries          uint64         `json:"entries"`
	Checkpoints      int            `json:"checkpoints"`
	LatestCheckpoint *CheckpointRef `json:"latest_checkpoint,omitempty"`
	Verification     *Verification  `json:"verification,omitempty"` // nil when not run with the report
	Volume           []DayCount     `json:"volume"`                 // entries per UTC day, the last 30 days of the log
}

// CheckpointRef is the latest signed checkpoint.
type CheckpointRef struct {
	Size      uint64    `json:"size"`
	CreatedAt time.Time `json:"created_at"`
}

// Verification is the result of verifying the whole audit log with the public key.
type Verification struct {
	OK          bool   `json:"ok"`
	Entries     uint64 `json:"entries"`
	Checkpoints int    `json:"checkpoints"`
	Unsigned    uint64 `json:"unsigned"` // entries after the last checkpoint
	Error       string `json:"error,omitempty"`
	Key         string `json:"key"`
}

// DayCount is the number of audit entries of one UTC day.
type DayCount struct {
	Day   string `json:"day"` // YYYY-MM-DD
	Count int    `json:"count"`
}

// State is everything a report states, gathered once.
type State struct {
	GeneratedAt time.Time              `json:"-"`
	Origin      string                 `json:"deployment"`
	Nodes       []vitalgate.NodeConfig `json:"nodes"`
	Devices     map[string]int         `json:"devices"` // by status, plus "pending-enrollment"
	Clients     map[string]int         `json:"clients"` // by role, plus "disabled" and "key-authenticated"
	// Users are the people of the web console by role, plus "disabled" and "setup-pending".
	Users       map[string]int         `json:"users"`
	CA          *CertInfo              `json:"ca,omitempty"`
	Server      *CertInfo              `json:"server_certificate,omitempty"`
	Keys        []KeyFile              `json:"keys"`
	CryptoMode  string                 `json:"crypto_mode,omitempty"` // the data dir's record (Deployment.CryptoMode)
	RetiredKEKs []vitalgate.RetiredKEK `json:"retired_keks"`          // KEKs retired by erasures`
	Audit       AuditState             `json:"audit"`
	Assessment  *assess.Report         `json:"assessment,omitempty"`
	Rollouts    []RolloutSummary       `json:"rollouts,omitempty"` // each model's newest rollout
	Releases    []ReleaseSummary       `json:"releases,omitempty"` // signed update releases per model
	Backups     *BackupState           `json:"backups,omitempty"`  // the last backup and verified backup, nil if none
	// AuditSegments are the audit log's archive segments (vitalgate audit archive), in log order.
	AuditSegments []vitalgate.AuditSegment `json:"audit_segments,omitempty"`
	Posture       *PostureSummary          `json:"posture,omitempty"` // the vulnerability posture (nil: not reported)
	Alerts        *AlertSummary            `json:"alerts,omitempty"`  // detection alerts (nil: the store keeps none)
	Sites         []SiteSummary            `json:"sites"`
	// ErasedSiteDevices counts active devices of erased sites (none, unless the erasure was cut short).
	ErasedSiteDevices int               `json:"erased_site_devices"`
	Tests             map[string]string `json:"-"` // "pkg.TestName" → pass, fail or skip
	SBOM              []Component       `json:"-"`
}

// SiteSummary is one site as the report states it.
type SiteSummary struct {
	ID      string `json:"id"`
	OwnKeys bool   `json:"own_keys"`
	Erased  bool   `json:"erased"`
}

// gather reads the deployment's state at now.
func gather(ctx context.Context, d Deployment, now time.Time, verify bool) (*State, error) {
	s := &State{GeneratedAt: now.UTC(), Origin: d.Origin, Devices: map[string]int{}, Clients: map[string]int{}, Users: map[string]int{}, CryptoMode: d.CryptoMode}
	var err error
	if s.RetiredKEKs, err = d.Store.RetiredKEKs(ctx); err != nil {
		return nil, fmt.Errorf("retired key-encryption keys: %w", err)
	}
	if s.Nodes, err = d.Store.NodeConfigs(ctx); err != nil {
		return nil, fmt.Errorf("node configurations: %w", err)
	}
	ds, err := d.Store.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	sites, err := d.Store.Sites(ctx)
	if err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	erased := map[string]bool{}
	for _, st := range sites {
		s.Sites = append(s.Sites, SiteSummary{ID: st.ID, OwnKeys: st.OwnKeys, Erased: !st.ErasedAt.IsZero()})
		erased[st.ID] = !st.ErasedAt.IsZero()
	}
	for _, dv := range ds {
		if erased[vitalgate.StoredSite(dv.Site)] && dv.Status == vitalgate.DeviceActive {
			s.ErasedSiteDevices++
		}
		s.Devices[string(dv.Status)]++
		if dv.Status == vitalgate.DeviceActive && dv.EnrollSecretHash != "" {
			s.Devices["pending-enrollment"]++
		}
	}
	cs, err := d.Store.Clients(ctx)
	if err != nil {
		return nil, fmt.Errorf("clients: %w", err)
	}
	for _, c := range cs {
		s.Clients[string(c.Role)]++
		if c.Disabled {
			s.Clients["disabled"]++
		}
		if len(c.JWKS) > 0 {
			s.Clients["key-authenticated"]++
		}
	}
	if us, ok := d.Store.(interface {
		Users(ctx context.Context) ([]vitalgate.User, error)
	}); ok {
		users, err := us.Users(ctx)
		if err != nil {
			return nil, fmt.Errorf("console users: %w", err)
		}
		for _, u := range users {
			s.Users[string(u.Role)]++
			if u.Disabled {
				s.Users["disabled"]++
			}
			if u.SetupHash != "" {
				s.Users["setup-pending"]++
			}
		}
	}
	if s.CA, err = readCert(filepath.Join(d.Dir, d.Files.CACert), now); err != nil {
		return nil, err
	}
	if s.Server, err = readCert(filepath.Join(d.Dir, d.Files.ServerCert), now); err != nil {
		return nil, err
	}
	if s.Keys, err = keyFiles(d, now); err != nil {
		return nil, err
	}
	if s.Audit, err = auditState(ctx, d, verify); err != nil {
		return nil, err
	}
	if s.Rollouts, err = rollouts(ctx, d.Store); err != nil {
		return nil, err
	}
	if s.Backups, err = backupState(d); err != nil {
		return nil, err
	}
	if s.AuditSegments, err = d.Store.AuditSegments(ctx); err != nil {
		return nil, fmt.Errorf("audit segments: %w", err)
	}
	if s.Releases, err = releases(ctx, d.Store); err != nil {
		return nil, err
	}
	if d.Posture != nil {
		rep, err := d.Posture.Report(ctx, posture.Query{})
		if err != nil {
			return nil, fmt.Errorf("vulnerability posture: %w", err)
		}
		s.Posture = &PostureSummary{Summary: rep.Summary}
		if rep.Server != nil {
			for _, f := range rep.Server.Findings {
				if f.Open {
					s.Posture.ServerOpen++
				}
			}
		}
	}
	if s.Alerts, err = alertSummary(ctx, d.Store); err != nil {
		return nil, err
	}
	return s, nil
}

// PostureSummary is the fleet's vulnerability posture (package posture) and the open
// findings of this server's own SBOM.
type PostureSummary struct {
	posture.Summary
	ServerOpen int `json:"server_open"`
}

// AlertSummary counts the newest detection alerts (at most 10000) by status, and the open
// ones of high severity.
type AlertSummary struct {
	Counted  int            `json:"counted"`
	ByStatus map[string]int `json:"by_status"`
	OpenHigh int            `json:"open_high"`
}

// alertSummary counts the alerts, when the store keeps them.
func alertSummary(ctx context.Context, st Store) (*AlertSummary, error) {
	as, ok := st.(vitalgate.AlertStore)
	if !ok {
		return nil, nil
	}
	all, err := as.Alerts(ctx, vitalgate.AlertFilter{Limit: 10000})
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	out := &AlertSummary{Counted: len(all), ByStatus: map[string]int{}}
	for _, a := range all {
		out.ByStatus[string(a.Status)]++
		if a.Status == vitalgate.AlertOpen && a.Severity == "high" {
			out.OpenHigh++
		}
	}
	return out, nil
}

// ReleaseSummary counts a model's update releases.
type ReleaseSummary struct {
	Model   string `json:"model"`
	Live    int    `json:"live"`
	Pending int    `json:"pending"`
}

// releases counts each model's live and pending releases, when the store keeps them.
func releases(ctx context.Context, st Store) ([]ReleaseSummary, error) {
	us, ok := st.(vitalgate.UpdateStore)
	if !ok {
		return nil, nil
	}
	all, err := us.UpdateReleases(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("update releases: %w", err)
	}
	var out []ReleaseSummary
	for _, r := range all {
		if len(out) == 0 || out[len(out)-1].Model != r.Model {
			out = append(out, ReleaseSummary{Model: r.Model})
		}
		if r.Live {
			out[len(out)-1].Live++
		} else {
			out[len(out)-1].Pending++
		}
	}
	return out, nil
}

// RolloutSummary is a model's newest rollout and its devices' progress.
type RolloutSummary struct {
	Model     string `json:"model"`
	Version   string `json:"version"`
	State     string `json:"state"`
	Critical  bool   `json:"critical,omitempty"`
	Targeted  int    `json:"devices_targeted"`
	Installed int    `json:"devices_installed"`
	Failed    int    `json:"devices_failed"`
}

// rollouts summarizes each model's newest rollout, when the store keeps rollouts.
func rollouts(ctx context.Context, st Store) ([]RolloutSummary, error) {
	rs, ok := st.(vitalgate.RolloutStore)
	if !ok {
		return nil, nil
	}
	all, err := rs.Rollouts(ctx, "", 200)
	if err != nil {
		return nil, fmt.Errorf("rollouts: %w", err)
	}
	var out []RolloutSummary
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.Model] {
			continue
		}
		seen[r.Model] = true
		rows, err := rs.RolloutDevices(ctx, r.ID)
		if err != nil {
			return nil, fmt.Errorf("rollout devices: %w", err)
		}
		sum := RolloutSummary{Model: r.Model, Version: r.Version, State: string(r.State), Critical: r.Critical, Targeted: len(rows)}
		for _, u := range rows {
			switch {
			case u.State.Failed():
				sum.Failed++
			case u.State == vitalgate.UpdateInstalled || u.State == vitalgate.UpdateHealthy || u.State == vitalgate.UpdatePassed:
				sum.Installed++
			}
		}
		out = append(out, sum)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out, nil
}

// readCert reads a PEM certificate.
func readCert(path string, now time.Time) (*CertInfo, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- a file of the operator's data dir
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &CertInfo{Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		KeyAlg: c.PublicKeyAlgorithm.String(), SigAlg: c.SignatureAlgorithm.String(), DaysLeft: int(c.NotAfter.Sub(now).Hours() / 24)}, nil
}

// keyFiles lists the key files and when each was written, sorted by name.
func keyFiles(d Deployment, now time.Time) ([]KeyFile, error) {
	names := append([]string(nil), d.Files.Keys...)
	entries, err := os.ReadDir(filepath.Join(d.Dir, d.Files.KeysDir))
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".key") {
			names = append(names, filepath.Join(d.Files.KeysDir, e.Name()))
		}
	}
	var out []KeyFile
	for _, n := range names {
		st, err := os.Stat(filepath.Join(d.Dir, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue // e.g. no evidence key yet
		} else if err != nil {
			return nil, err
		}
		w := st.ModTime().UTC().Truncate(time.Second)
		out = append(out, KeyFile{Name: filepath.ToSlash(n), Written: w, AgeDays: int(now.Sub(w).Hours() / 24)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// auditState reads the log's size and checkpoints, and in one pass over the entries counts
// them per day and, when verify is set, verifies the whole log with the public key.
func auditState(ctx context.Context, d Deployment, verify bool) (AuditState, error) {
	var a AuditState
	cps, err := d.Store.AuditCheckpoints(ctx)
	if err != nil {
		return a, fmt.Errorf("audit checkpoints: %w", err)
	}
	a.Checkpoints = len(cps)
	if len(cps) > 0 {
		last := cps[len(cps)-1]
		a.LatestCheckpoint = &CheckpointRef{Size: last.Size, CreatedAt: last.CreatedAt.UTC().Truncate(time.Second)}
	}
	days := map[string]int{}
	tap := &volumeTap{src: audit.StoreLog{Store: d.Store}, days: days}
	if verify {
		rep, err := audit.Verify(ctx, tap, audit.SignedCheckpoints(cps), d.Verifier, nil)
		var ve *audit.VerifyError
		switch {
		case errors.As(err, &ve):
			a.Verification = &Verification{OK: false, Error: ve.Error(), Key: d.Verifier.Name()}
		case err != nil:
			return a, fmt.Errorf("verify the audit log: %w", err)
		default:
			a.Verification = &Verification{OK: true, Entries: rep.Entries, Checkpoints: rep.Checkpoints, Unsigned: rep.Unsigned, Key: d.Verifier.Name()}
		}
		a.Entries = tap.size
	} else {
		if a.Entries, err = tap.Size(ctx); err != nil {
			return a, err
		}
		err := tap.Entries(ctx, 0, func(uint64, []byte, [audit.HashSize]byte) error { return nil })
		if err != nil {
			return a, fmt.Errorf("read the audit log: %w", err)
		}
	}
	a.Volume = lastDays(days, 30)
	return a, nil
}

// volumeTap passes a log through to Verify and counts its entries per UTC day on the way.
type volumeTap struct {
	src  audit.StoreLog
	days map[string]int
	size uint64
}

func (t *volumeTap) Size(ctx context.Context) (uint64, error) {
	n, err := t.src.Size(ctx)
	t.size = n
	return n, err
}

func (t *volumeTap) Entries(ctx context.Context, from uint64, fn func(uint64, []byte, [audit.HashSize]byte) error) error {
	return t.src.Entries(ctx, from, func(i uint64, data []byte, h [audit.HashSize]byte) error {
		if t.size > 0 && i >= t.size {
			return fn(i, data, h)
		}
		if e, err := audit.UnmarshalEntry(data); err == nil {
			t.days[e.Time.UTC().Format(time.DateOnly)]++
		}
		return fn(i, data, h)
	})
}

// lastDays returns the counts of the n days ending at the latest day with entries.
func lastDays(days map[string]int, n int) []DayCount {
	latest := ""
	for d := range days {
		latest = max(latest, d)
	}
	if latest == "" {
		return nil
	}
	end, _ := time.Parse(time.DateOnly, latest)
	out := make([]DayCount, 0, n)
	for i := n - 1; i >= 0; i-- {
		d := end.AddDate(0, 0, -i).Format(time.DateOnly)
		out = append(out, DayCount{Day: d, Count: days[d]})
	}
	return out
}

// ParseTestResults reads `go test -json` output and returns the last result of every
// top-level test, keyed "pkg.TestName" with pkg relative to module.
func ParseTestResults(r io.Reader, module string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var ev struct{ Action, Package, Test string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // go test -json interleaves build output lines that are not events
		}
		if ev.Test == "" || strings.Contains(ev.Test, "/") {
			continue
		}
		switch ev.Action {
		case "pass", "fail", "skip":
			pkg := strings.TrimPrefix(strings.TrimPrefix(ev.Package, module), "/")
			if pkg == "" {
				pkg = "."
			}
			out[pkg+"."+ev.Test] = ev.Action
		}
	}
	return out, sc.Err()
}

// BackupState is the data dir's record of its backups (backup-status.json).
type BackupState struct {
	LastBackup *struct {
		ID      string    `json:"id"`
		At      time.Time `json:"at"`
		Store   string    `json:"store"`
		Entries uint64    `json:"audit_entries"`
		Bytes   int64     `json:"bytes"`
		Cipher  string    `json:"encrypted"`
	} `json:"last_backup,omitempty"`
	LastVerified *struct {
		ID       string    `json:"id"`
		BackupAt time.Time `json:"backup_at"`
		At       time.Time `json:"at"`
		OK       bool      `json:"ok"`
		Entries  uint64    `json:"audit_entries"`
		Tables   int       `json:"tables"`
		Seconds  float64   `json:"seconds"`
		Problem  string    `json:"problem,omitempty"`
	} `json:"last_verified,omitempty"`
}

// backupState reads the backup record, nil when there is none.
func backupState(d Deployment) (*BackupState, error) {
	if d.Files.BackupStatus == "" {
		return nil, nil
	}
	data, err := os.ReadFile(filepath.Join(d.Dir, d.Files.BackupStatus)) // #nosec G304 -- data dir path
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("backup record: %w", err)
	}
	var b BackupState
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("backup record %s: %w", d.Files.BackupStatus, err)
	}
	return &b, nil
}
