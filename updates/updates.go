// Package updates is Vitalgate's update repository (The Update Framework 1.0, on go-tuf's
// metadata API): root, targets, snapshot and timestamp roles, and one delegated targets
// role per device model, named as the model, that lists the model's approved releases at
// target paths MODEL/VERSION/FILENAME. Snapshots are consistent: metadata is served as
// N.root.json, timestamp.json, N.snapshot.json, N.targets.json and N.MODEL.json, target
// files as targets/MODEL/VERSION/<sha256>.FILENAME.
//
// The root and targets keys (which also sign the model roles) are offline: files in a key
// dir the operator keeps off the server, with a threshold that may be above one, so that a
// release published with `update publish` goes live only once enough key holders signed it
// with `update sign`. The snapshot and timestamp keys are online (in the data dir) with a
// short expiry, and the server re-signs both before they expire. Every act is audited.
package updates

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Defaults of Config.
const (
	DefaultMaxTargetSize = 2 << 30 // 2 GiB
	DefaultRootTTL       = 365 * 24 * time.Hour
	DefaultTargetsTTL    = 365 * 24 * time.Hour
	DefaultSnapshotTTL   = 7 * 24 * time.Hour
	DefaultTimestampTTL  = 24 * time.Hour
)

// Store is what the repository persists and reads: its own records, and the device models
// and devices it checks.
type Store interface {
	vitalgate.UpdateStore
	Model(ctx context.Context, id string) (vitalgate.DeviceModel, error)
	Device(ctx context.Context, id string) (vitalgate.Device, error)
}

// Config configures a Service.
type Config struct {
	Store Store
	Audit *audit.Log
	// Online holds the snapshot and timestamp keys; without them the service serves but
	// cannot publish, sign, rotate or refresh.
	Online *OnlineKeys
	// MaxTargetSize is the largest target file publish accepts (DefaultMaxTargetSize).
	MaxTargetSize int64
	// Lifetimes of the roles' metadata (the defaults above).
	RootTTL, TargetsTTL, SnapshotTTL, TimestampTTL time.Duration
	Now                                            func() time.Time
}

// Service is the update repository.
type Service struct {
	cfg   Config
	store Store
	alog  *audit.Log
	now   func() time.Time
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil {
		return nil, errors.New("updates: a store and an audit log are required")
	}
	if cfg.MaxTargetSize <= 0 {
		cfg.MaxTargetSize = DefaultMaxTargetSize
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.RootTTL, DefaultRootTTL)
	def(&cfg.TargetsTTL, DefaultTargetsTTL)
	def(&cfg.SnapshotTTL, DefaultSnapshotTTL)
	def(&cfg.TimestampTTL, DefaultTimestampTTL)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, store: cfg.Store, alog: cfg.Audit, now: func() time.Time { return cfg.Now().UTC() }}, nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkName reports whether v can be a model id, version or file name in a target path.
func checkName(field, v string) error {
	if !namePattern.MatchString(v) || strings.Contains(v, "..") {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "%s %q cannot be part of an update target path: use 1 to 64 letters, digits, '.', '_' or '-'", field, v)
	}
	if field == "model" {
		switch v {
		case roleRoot, roleTargets, roleSnapshot, roleTimestamp:
			return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "a device model cannot be named %q (a TUF role name)", v)
		}
	}
	return nil
}

func (s *Service) entry(action, subtype, operator, desc string) audit.Entry {
	return audit.Entry{Action: action, Type: "admin", Subtype: subtype, AgentType: audit.AgentOperator, AgentID: operator, OutcomeDesc: desc}
}

// refused audits a refused or failed act and returns err.
func (s *Service) refused(ctx context.Context, e audit.Entry, err error) error {
	e.Outcome = audit.OutcomeMinorFailure
	if vitalgate.ErrorCode(err) == vitalgate.EINTERNAL {
		e.Outcome = audit.OutcomeSeriousFailure
	}
	e.OutcomeDesc = strings.TrimSpace(e.OutcomeDesc + ": " + vitalgate.ErrorMessage(err))
	if aerr := s.alog.Append(ctx, e); aerr != nil {
		return fmt.Errorf("%w (and the refusal could not be audited: %v)", err, aerr)
	}
	return err
}

// Release is what Publish publishes.
type Release struct {
	Model    string
	Version  string
	FileName string        // the file's base name, the last part of the target path
	Content  io.ReadSeeker // the target file; read twice (hash, then store)
	SBOM     []byte        // optional CycloneDX JSON
}

// Publish stores a release of a device model and signs its model role (and, for the
// model's first release, the top-level targets) with the targets keys in keys. With the
// threshold met the release is live at once; otherwise it waits for `update sign`. The
// first publish of a repository creates its root, which needs the root threshold of keys.
// Nothing is stored unless everything is. Errors: EINVALID (names, a key dir without
// keys.json for the first root), ENOTFOUND (unregistered model), ECONFLICT (the release
// exists, or another release of the model awaits signatures), ETOOLARGE (over the size
// limit), EFORBIDDEN (a key the repository does not accept, too few root keys).
func (s *Service) Publish(ctx context.Context, operator string, keys *KeySet, r Release) (vitalgate.UpdateRelease, error) {
	e := s.entry(audit.ActionCreate, "update-publish", operator, "release "+r.Version+" of model "+r.Model)
	out, err := s.publish(ctx, operator, keys, r, e)
	if err != nil {
		return out, s.refused(ctx, e, err)
	}
	return out, nil
}

func (s *Service) publish(ctx context.Context, operator string, keys *KeySet, r Release, e audit.Entry) (vitalgate.UpdateRelease, error) {
	var out vitalgate.UpdateRelease
	for _, c := range [][2]string{{"model", r.Model}, {"version", r.Version}, {"file name", r.FileName}} {
		if err := checkName(c[0], c[1]); err != nil {
			return out, err
		}
	}
	if operator == "" {
		return out, vitalgate.Errorf(vitalgate.EINVALID, "publishing needs the operator's name")
	}
	if len(keys.targets) == 0 {
		return out, vitalgate.Errorf(vitalgate.EFORBIDDEN, "key dir %s holds no targets key (targets-N.key): a release must be signed by one", keys.Dir)
	}
	if _, err := s.store.Model(ctx, r.Model); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return out, vitalgate.FieldErrorf(vitalgate.ENOTFOUND, "model", "device model %q is not registered: add it with `vitalgate model add` first", r.Model)
		}
		return out, err
	}
	if _, err := s.store.UpdateRelease(ctx, r.Model, r.Version); err == nil {
		return out, vitalgate.Errorf(vitalgate.ECONFLICT, "model %s has a release %s already: publish a new version", r.Model, r.Version)
	} else if vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		return out, err
	}
	rels, err := s.store.UpdateReleases(ctx, r.Model)
	if err != nil {
		return out, err
	}
	for _, x := range rels {
		if !x.Live {
			return out, vitalgate.Errorf(vitalgate.ECONFLICT, "release %s of model %s is waiting for signatures (%d of %d): sign it with `vitalgate update sign` before publishing another", x.Version, x.Model, x.Signed, x.Needed)
		}
	}
	length, sum, err := s.measure(r.Content)
	if err != nil {
		return out, err
	}
	target := r.Model + "/" + r.Version + "/" + r.FileName
	for attempt := 0; ; attempt++ {
		out, err = s.publishOnce(ctx, operator, keys, r, e, target, length, sum)
		if vitalgate.ErrorCode(err) != vitalgate.ECONFLICT || attempt == 3 {
			return out, err
		}
		// A conflict on metadata: another node refreshed the snapshot or timestamp in
		// between. Start again from the new metadata, unless the release itself exists now.
		if _, gerr := s.store.UpdateRelease(ctx, r.Model, r.Version); gerr == nil {
			return out, err
		}
	}
}

// measure reads content once for its length and SHA-256, refusing it over the size limit.
func (s *Service) measure(content io.ReadSeeker) (int64, []byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(content, s.cfg.MaxTargetSize+1))
	if err != nil {
		return 0, nil, vitalgate.Errorf(vitalgate.EINVALID, "could not read the release file: %v", err)
	}
	if n > s.cfg.MaxTargetSize {
		return 0, nil, vitalgate.Errorf(vitalgate.ETOOLARGE, "the release file is larger than the limit of %d bytes: make it smaller, or raise the limit (--max-size)", s.cfg.MaxTargetSize)
	}
	return n, h.Sum(nil), nil
}

func (s *Service) publishOnce(ctx context.Context, operator string, keys *KeySet, r Release, e audit.Entry, target string, length int64, sum []byte) (vitalgate.UpdateRelease, error) {
	var out vitalgate.UpdateRelease
	st, err := s.load(ctx)
	if err != nil {
		return out, err
	}
	var ms []vitalgate.UpdateMetadata
	if st == nil {
		root, err := s.newRoot(keys)
		if err != nil {
			return out, err
		}
		rec, err := record(roleRoot, 1, root.Signed.Expires, root)
		if err != nil {
			return out, err
		}
		ms = append(ms, rec)
		st = &state{root: root}
	}
	// The model's next role version, listing its live releases and this one.
	targets := st.targets
	newTargets := delegation(targets, r.Model) == nil
	if newTargets {
		if targets, err = s.withDelegation(st, st.root, r.Model); err != nil {
			return out, err
		}
		if _, err := signWith(targets, keys.targets, roleIDs(st.root, roleTargets), "targets"); err != nil {
			return out, err
		}
	}
	model, err := loadRole[metadata.TargetsType](ctx, s.store, r.Model, 0)
	if err != nil {
		return out, err
	}
	if model == nil {
		model = metadata.Targets(expiry(s.now(), s.cfg.TargetsTTL))
	} else {
		model.Signed.Version++
		model.Signed.Expires = expiry(s.now(), s.cfg.TargetsTTL)
		model.ClearSignatures()
	}
	tf := metadata.TargetFile()
	tf.Length, tf.Hashes = length, metadata.Hashes{"sha256": sum}
	tf.Path = target
	model.Signed.Targets[target] = tf
	accepted, needed := delegationIDs(targets, r.Model)
	if _, err := signWith(model, keys.targets, accepted, "targets"); err != nil {
		return out, err
	}
	now := s.now()
	out = vitalgate.UpdateRelease{Model: r.Model, Version: r.Version, Target: target, Length: length, SHA256: sum,
		SBOM: r.SBOM, Signed: countSigned(model, accepted), Needed: needed, By: operator, Created: now}
	if met(st.root, targets, model, newTargets, r.Model) {
		live, err := s.liveMetadata(st, targets, model, newTargets, r.Model)
		if err != nil {
			return out, err
		}
		ms = append(ms, live...)
		out.Live, out.LiveAt = true, now
		e.OutcomeDesc += " published and live"
	} else {
		var pt *metadata.Metadata[metadata.TargetsType]
		if newTargets {
			pt = targets
		}
		if out.Pending, err = encodePending(pt, model); err != nil {
			return out, err
		}
		e.OutcomeDesc += fmt.Sprintf(" published, %d of %d signatures", out.Signed, out.Needed)
	}
	if _, err := r.Content.Seek(0, io.SeekStart); err != nil {
		return out, vitalgate.Errorf(vitalgate.EINVALID, "could not read the release file again: %v", err)
	}
	e.Resources = []string{"update-release/" + r.Model + "/" + r.Version}
	content := &verifying{r: io.LimitReader(r.Content, length+1), h: sha256.New(), length: length, sum: sum}
	if err := s.store.CreateUpdateRelease(ctx, out, content, ms, s.alog.Encode(ctx, e)); err != nil {
		return out, err
	}
	return out, nil
}

// liveMetadata returns the metadata that make a release live: the targets (when it
// changed), the model role and new snapshot and timestamp versions.
func (s *Service) liveMetadata(st *state, targets, model *metadata.Metadata[metadata.TargetsType], newTargets bool, name string) ([]vitalgate.UpdateMetadata, error) {
	var ms []vitalgate.UpdateMetadata
	changed := map[string]int64{name: model.Signed.Version}
	if newTargets {
		rec, err := record(roleTargets, targets.Signed.Version, targets.Signed.Expires, targets)
		if err != nil {
			return nil, err
		}
		ms = append(ms, rec)
		changed[roleTargets] = targets.Signed.Version
	}
	rec, err := record(name, model.Signed.Version, model.Signed.Expires, model)
	if err != nil {
		return nil, err
	}
	ms = append(ms, rec)
	next := *st
	if newTargets {
		next.targets = targets
	}
	online, err := s.snapshotAndTimestamp(&next, st.root, changed)
	if err != nil {
		return nil, err
	}
	return append(ms, online...), nil
}

// verifying passes a target file's bytes through and fails at the end if they are not the
// bytes publish measured (the file changed in between): the store then stores nothing.
type verifying struct {
	r      io.Reader
	h      hash.Hash
	n      int64
	length int64
	sum    []byte
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) && (v.n != v.length || !strings.EqualFold(hex.EncodeToString(v.h.Sum(nil)), hex.EncodeToString(v.sum))) {
		return n, vitalgate.Errorf(vitalgate.ECONFLICT, "the release file changed while it was being published: publish it again")
	}
	return n, err
}

// Sign adds the signatures of the targets keys in keys to a release that awaits them; once
// its threshold is met the release is live. Errors: ENOTFOUND, ECONFLICT (live already, or
// its metadata went stale), EFORBIDDEN (a key the repository does not accept), EINVALID
// (the keys signed it already).
func (s *Service) Sign(ctx context.Context, operator string, keys *KeySet, model, version string) (vitalgate.UpdateRelease, error) {
	e := s.entry(audit.ActionUpdate, "update-sign", operator, "release "+version+" of model "+model)
	e.Resources = []string{"update-release/" + model + "/" + version}
	out, err := s.sign(ctx, operator, keys, model, version, e)
	if err != nil {
		return out, s.refused(ctx, e, err)
	}
	return out, nil
}

func (s *Service) sign(ctx context.Context, operator string, keys *KeySet, model, version string, e audit.Entry) (vitalgate.UpdateRelease, error) {
	if operator == "" {
		return vitalgate.UpdateRelease{}, vitalgate.Errorf(vitalgate.EINVALID, "signing needs the operator's name")
	}
	for attempt := 0; ; attempt++ {
		r, err := s.store.UpdateRelease(ctx, model, version)
		if err != nil {
			if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
				return r, vitalgate.Errorf(vitalgate.ENOTFOUND, "model %s has no release %s: publish it with `vitalgate update publish`", model, version)
			}
			return r, err
		}
		if r.Live {
			return r, vitalgate.Errorf(vitalgate.ECONFLICT, "release %s of model %s is live already: it needs no more signatures", version, model)
		}
		out, err := s.signOnce(ctx, keys, r, e)
		if vitalgate.ErrorCode(err) != vitalgate.ECONFLICT || attempt == 3 {
			return out, err
		}
	}
}

func (s *Service) signOnce(ctx context.Context, keys *KeySet, r vitalgate.UpdateRelease, e audit.Entry) (vitalgate.UpdateRelease, error) {
	st, err := s.load(ctx)
	if err != nil {
		return r, err
	}
	if st == nil {
		return r, vitalgate.Internal(errors.New("a release without a root"), "updates: sign")
	}
	_, pt, model, err := decodePending(r.Pending)
	if err != nil {
		return r, err
	}
	newTargets := pt != nil
	targets := st.targets
	if newTargets {
		if (st.targets == nil && pt.Signed.Version != 1) || (st.targets != nil && pt.Signed.Version != st.targets.Signed.Version+1) {
			return r, vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "release %s of model %s was prepared against older metadata: the key holders must sign a new publish", r.Version, r.Model)
		}
		targets = pt
	}
	if cur, err := loadRole[metadata.TargetsType](ctx, s.store, r.Model, 0); err != nil {
		return r, err
	} else if cur != nil && cur.Signed.Version+1 != model.Signed.Version {
		return r, vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "release %s of model %s was prepared against older metadata: the key holders must sign a new publish", r.Version, r.Model)
	}
	added := 0
	if newTargets {
		n, err := signWith(targets, keys.targets, roleIDs(st.root, roleTargets), "targets")
		if err != nil {
			return r, err
		}
		added += n
	}
	accepted, _ := delegationIDs(targets, r.Model)
	n, err := signWith(model, keys.targets, accepted, "targets")
	if err != nil {
		return r, err
	}
	if added += n; added == 0 {
		if len(keys.targets) == 0 {
			return r, vitalgate.Errorf(vitalgate.EFORBIDDEN, "key dir %s holds no targets key (targets-N.key)", keys.Dir)
		}
		return r, vitalgate.Errorf(vitalgate.EINVALID, "the keys in %s have signed release %s of model %s already: another key holder must sign", keys.Dir, r.Version, r.Model)
	}
	r.Signed = countSigned(model, accepted)
	var ms []vitalgate.UpdateMetadata
	if met(st.root, targets, model, newTargets, r.Model) {
		if ms, err = s.liveMetadata(st, targets, model, newTargets, r.Model); err != nil {
			return r, err
		}
		r.Live, r.LiveAt, r.Pending = true, s.now(), nil
		e.OutcomeDesc += fmt.Sprintf(" signed, %d of %d: live", r.Signed, r.Needed)
	} else {
		if !newTargets {
			pt = nil
		}
		if r.Pending, err = encodePending(pt, model); err != nil {
			return r, err
		}
		e.OutcomeDesc += fmt.Sprintf(" signed, %d of %d", r.Signed, r.Needed)
	}
	return r, s.store.SignUpdateRelease(ctx, r, ms, s.alog.Encode(ctx, e))
}

// Approved returns the target path of model's release version if it is live (its
// threshold of offline signatures met), and ENOTFOUND otherwise.
func (s *Service) Approved(ctx context.Context, model, version string) (target string, err error) {
	r, err := s.store.UpdateRelease(ctx, model, version)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "model %s has no release %s", model, version)
		}
		return "", err
	}
	if !r.Live {
		return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "release %s of model %s is not approved yet (%d of %d signatures)", version, model, r.Signed, r.Needed)
	}
	return r.Target, nil
}

// ReleaseStatus is one release as `update status` shows it. Fields may be added.
type ReleaseStatus struct {
	Model       string            `json:"model"`
	Version     string            `json:"version"`
	Target      string            `json:"target"`
	Length      int64             `json:"length"`
	Hashes      map[string]string `json:"hashes"`
	Signatures  int               `json:"signatures"`
	Threshold   int               `json:"threshold"`
	Live        bool              `json:"live"`
	PublishedAt time.Time         `json:"publishedAt"`
	PublishedBy string            `json:"publishedBy"`
	LiveAt      *time.Time        `json:"liveAt,omitempty"`
	SBOM        bool              `json:"sbom"`
}

// Status returns the releases of model (every model for ""), ordered by model and
// publication.
func (s *Service) Status(ctx context.Context, model string) ([]ReleaseStatus, error) {
	rels, err := s.store.UpdateReleases(ctx, model)
	if err != nil {
		return nil, err
	}
	out := make([]ReleaseStatus, 0, len(rels))
	for _, r := range rels {
		rs := ReleaseStatus{Model: r.Model, Version: r.Version, Target: r.Target, Length: r.Length,
			Hashes: map[string]string{"sha256": hex.EncodeToString(r.SHA256)}, Signatures: r.Signed, Threshold: r.Needed,
			Live: r.Live, PublishedAt: r.Created, PublishedBy: r.By, SBOM: len(r.SBOM) > 0}
		if r.Live {
			t := r.LiveAt
			rs.LiveAt = &t
		}
		out = append(out, rs)
	}
	return out, nil
}

// Root returns the repository's first root metadata (1.root.json): what a device is
// provisioned with as its trusted root. ENOTFOUND before the first publish.
func (s *Service) Root(ctx context.Context) ([]byte, error) {
	m, err := s.store.UpdateMetadata(ctx, roleRoot, 1)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// SBOM returns the SBOM published with a release. ENOTFOUND when there is none.
func (s *Service) SBOM(ctx context.Context, model, version string) ([]byte, error) {
	r, err := s.store.UpdateRelease(ctx, model, version)
	if err != nil {
		return nil, err
	}
	if len(r.SBOM) == 0 {
		return nil, vitalgate.Errorf(vitalgate.ENOTFOUND, "release %s of model %s has no SBOM", version, model)
	}
	return r.SBOM, nil
}

// parseMetadataName splits a consistent-snapshot metadata file name: "timestamp.json"
// (version 0) or "N.ROLE.json".
func parseMetadataName(name string) (role string, version int64, ok bool) {
	base, found := strings.CutSuffix(name, ".json")
	if !found {
		return "", 0, false
	}
	if base == roleTimestamp {
		return roleTimestamp, 0, true
	}
	num, role, found := strings.Cut(base, ".")
	if !found || num == "" || num[0] == '0' || role == roleTimestamp || strings.Trim(num, "0123456789") != "" {
		return "", 0, false // digits only: ParseInt also takes a sign ("+1.ROLE.json")
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 1 {
		return "", 0, false
	}
	if role != roleRoot && role != roleTargets && role != roleSnapshot && checkName("model", role) != nil {
		return "", 0, false
	}
	return role, v, true
}

// parseTargetPath splits a hash-prefixed target path, MODEL/VERSION/<sha256 hex>.FILENAME.
func parseTargetPath(path string) (model, version, sum, file string, ok bool) {
	parts := strings.Split(path, "/")
	if len(parts) != 3 {
		return "", "", "", "", false
	}
	model, version = parts[0], parts[1]
	sum, file, ok = strings.Cut(parts[2], ".")
	if !ok || len(sum) != 64 || checkName("model", model) != nil || checkName("version", version) != nil || checkName("file name", file) != nil {
		return "", "", "", "", false
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return "", "", "", "", false
	}
	return model, version, sum, file, true
}

func notFound() error {
	return vitalgate.Errorf(vitalgate.ENOTFOUND, "no such update metadata or target")
}

// deviceModel returns the model of the device p is.
func (s *Service) deviceModel(ctx context.Context, p vitalgate.Principal) (vitalgate.Device, error) {
	if p.Kind != "device" || p.ID == "" {
		return vitalgate.Device{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "updates are served to enrolled devices only")
	}
	return s.store.Device(ctx, p.ID)
}

// Metadata returns a metadata file by its name in the standard layout to device p. A
// device is served the delegated role of its own model only (least privilege): another
// model's role is ENOTFOUND, as is a name that does not exist.
func (s *Service) Metadata(ctx context.Context, p vitalgate.Principal, name string) ([]byte, error) {
	role, version, ok := parseMetadataName(name)
	if !ok {
		return nil, notFound()
	}
	switch role {
	case roleRoot, roleTargets, roleSnapshot, roleTimestamp:
	default:
		d, err := s.deviceModel(ctx, p)
		if err != nil {
			return nil, err
		}
		if d.Model != role {
			return nil, notFound()
		}
	}
	m, err := s.store.UpdateMetadata(ctx, role, version)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return nil, notFound()
		}
		return nil, err
	}
	return m.Data, nil
}

// TargetFile is a target file ready to stream: its length and a WriteTo that copies it
// from the store one chunk at a time.
type TargetFile struct {
	Length int64
	Target string
	write  func(w io.Writer) (int64, error)
}

// WriteTo streams the file to w.
func (t *TargetFile) WriteTo(w io.Writer) (int64, error) { return t.write(w) }

// Target returns the target file at path (MODEL/VERSION/<sha256>.FILENAME, the
// hash-prefixed name of a consistent snapshot) to device p, which must be of MODEL: another
// model's file, a release that is not live, and a wrong hash are ENOTFOUND. Each download is
// audited.
func (s *Service) Target(ctx context.Context, p vitalgate.Principal, path string) (*TargetFile, error) {
	model, version, sum, file, ok := parseTargetPath(path)
	if !ok {
		return nil, notFound()
	}
	d, err := s.deviceModel(ctx, p)
	if err != nil {
		return nil, err
	}
	if d.Model != model {
		return nil, notFound()
	}
	r, err := s.store.UpdateRelease(ctx, model, version)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return nil, notFound()
		}
		return nil, err
	}
	if !r.Live || r.Target != model+"/"+version+"/"+file || !strings.EqualFold(sum, hex.EncodeToString(r.SHA256)) {
		return nil, notFound()
	}
	if err := s.alog.Append(ctx, audit.Entry{Action: audit.ActionRead, Type: "rest", Subtype: "update-download",
		AgentType: audit.AgentDevice, AgentID: p.ID, AgentRole: string(p.Role), Site: d.Site,
		Resources: []string{"update-release/" + model + "/" + version}}); err != nil {
		return nil, vitalgate.Unavailable(err, "the download could not be audited")
	}
	return &TargetFile{Length: r.Length, Target: r.Target, write: func(w io.Writer) (int64, error) {
		return s.store.WriteUpdateTarget(ctx, model, version, w)
	}}, nil
}
