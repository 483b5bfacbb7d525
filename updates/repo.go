package updates

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/vitalgate/vitalgate"
)

// The top-level role names, and the metadata files a client asks for.
const (
	roleRoot      = metadata.ROOT
	roleTargets   = metadata.TARGETS
	roleSnapshot  = metadata.SNAPSHOT
	roleTimestamp = metadata.TIMESTAMP
)

// state is the repository's current top-level metadata (root always; the others once a
// release went live).
type state struct {
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
}

// pending is what a release that is not live yet will publish: its model's role and, for a
// model's first release, the top-level targets that delegates to it; each carries the
// signatures collected so far.
type pending struct {
	Targets []byte `json:"targets,omitempty"`
	Model   []byte `json:"model"`
}

func expiry(now time.Time, d time.Duration) time.Time { return now.Add(d).UTC().Truncate(time.Second) }

func loadRole[T metadata.Roles](ctx context.Context, st vitalgate.UpdateStore, role string, version int64) (*metadata.Metadata[T], error) {
	m, err := st.UpdateMetadata(ctx, role, version)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return nil, nil
		}
		return nil, err
	}
	out, err := (&metadata.Metadata[T]{}).FromBytes(m.Data)
	if err != nil {
		return nil, vitalgate.Internal(err, "updates: stored "+role+" metadata")
	}
	return out, nil
}

// load reads the current top-level metadata; nil when the repository has no root yet.
func (s *Service) load(ctx context.Context) (*state, error) {
	root, err := loadRole[metadata.RootType](ctx, s.store, roleRoot, 0)
	if err != nil || root == nil {
		return nil, err
	}
	st := &state{root: root}
	if st.targets, err = loadRole[metadata.TargetsType](ctx, s.store, roleTargets, 0); err != nil {
		return nil, err
	}
	if st.snapshot, err = loadRole[metadata.SnapshotType](ctx, s.store, roleSnapshot, 0); err != nil {
		return nil, err
	}
	if st.timestamp, err = loadRole[metadata.TimestampType](ctx, s.store, roleTimestamp, 0); err != nil {
		return nil, err
	}
	return st, nil
}

func record[T metadata.Roles](role string, version int64, expires time.Time, m *metadata.Metadata[T]) (vitalgate.UpdateMetadata, error) {
	data, err := m.ToBytes(false)
	if err != nil {
		return vitalgate.UpdateMetadata{}, vitalgate.Internal(err, "updates: encode "+role)
	}
	return vitalgate.UpdateMetadata{Role: role, Version: version, Data: data, Expires: expires}, nil
}

// newRoot builds and signs the first root from a key dir's keys.json and the online keys.
func (s *Service) newRoot(ks *KeySet) (*metadata.Metadata[metadata.RootType], error) {
	if ks.Threshold == 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the repository has no root yet: the first publish needs the key dir that `vitalgate update keys init` created, with its %s", KeysFile)
	}
	root := metadata.Root(expiry(s.now(), s.cfg.RootTTL))
	if err := setRootKeys(root, ks.Root, ks.Targets, ks.Threshold); err != nil {
		return nil, err
	}
	if err := s.setOnlineKeys(root, s.cfg.Online); err != nil {
		return nil, err
	}
	if _, err := signWith(root, ks.root, roleIDs(root, roleRoot), "root"); err != nil {
		return nil, err
	}
	if err := root.VerifyDelegate(roleRoot, root); err != nil {
		return nil, vitalgate.Errorf(vitalgate.EFORBIDDEN, "creating the update repository needs %d of its %d root keys; %s holds %d of them", ks.Threshold, len(ks.Root), ks.Dir, len(roleIDs(root, roleRoot).signers(ks.root)))
	}
	return root, nil
}

func setRootKeys(root *metadata.Metadata[metadata.RootType], rootKeys, targetsKeys []*metadata.Key, threshold int) error {
	for _, role := range []string{roleRoot, roleTargets} {
		for _, id := range root.Signed.Roles[role].KeyIDs {
			if err := root.Signed.RevokeKey(id, role); err != nil {
				return vitalgate.Internal(err, "updates: replace "+role+" keys")
			}
		}
	}
	for _, k := range rootKeys {
		if err := root.Signed.AddKey(k, roleRoot); err != nil {
			return vitalgate.Internal(err, "updates: add root key")
		}
	}
	for _, k := range targetsKeys {
		if err := root.Signed.AddKey(k, roleTargets); err != nil {
			return vitalgate.Internal(err, "updates: add targets key")
		}
	}
	root.Signed.Roles[roleRoot].Threshold = threshold
	root.Signed.Roles[roleTargets].Threshold = threshold
	return nil
}

func (s *Service) setOnlineKeys(root *metadata.Metadata[metadata.RootType], o *OnlineKeys) error {
	if o == nil {
		return vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this data dir has no online update keys (update-snapshot.key, update-timestamp.key)")
	}
	for _, x := range []struct {
		role string
		k    key
	}{{roleSnapshot, o.snapshot}, {roleTimestamp, o.timestamp}} {
		for _, id := range root.Signed.Roles[x.role].KeyIDs {
			if err := root.Signed.RevokeKey(id, x.role); err != nil {
				return vitalgate.Internal(err, "updates: replace "+x.role+" key")
			}
		}
		if err := root.Signed.AddKey(x.k.public, x.role); err != nil {
			return vitalgate.Internal(err, "updates: add "+x.role+" key")
		}
		root.Signed.Roles[x.role].Threshold = 1
	}
	return nil
}

// ids is a set of key ids a role accepts.
type ids map[string]bool

func roleIDs(root *metadata.Metadata[metadata.RootType], role string) ids {
	out := ids{}
	if r := root.Signed.Roles[role]; r != nil {
		for _, id := range r.KeyIDs {
			out[id] = true
		}
	}
	return out
}

func (a ids) signers(ks []key) []key {
	var out []key
	for _, k := range ks {
		if a[k.id] {
			out = append(out, k)
		}
	}
	return out
}

// signWith adds the signature of every key of ks that m lacks; a key the role does not
// accept is refused (EFORBIDDEN), naming its file. It returns how many it added.
func signWith[T metadata.Roles](m *metadata.Metadata[T], ks []key, accepted ids, role string) (int, error) {
	for _, k := range ks {
		if !accepted[k.id] {
			return 0, vitalgate.Errorf(vitalgate.EFORBIDDEN, "the key in %s is not one of this repository's %s keys: use the key dir of this repository (or rotate to it with `vitalgate update rotate-root`)", k.file, role)
		}
	}
	added := 0
	for _, k := range ks {
		if slices.ContainsFunc(m.Signatures, func(sig metadata.Signature) bool { return sig.KeyID == k.id }) {
			continue
		}
		if _, err := m.Sign(k.signer); err != nil {
			return 0, vitalgate.Internal(err, "updates: sign "+role)
		}
		added++
	}
	return added, nil
}

// countSigned counts m's signatures by keys the role accepts (signWith adds only valid ones;
// the threshold itself is checked with VerifyDelegate).
func countSigned[T metadata.Roles](m *metadata.Metadata[T], accepted ids) int {
	n := 0
	for _, sig := range m.Signatures {
		if accepted[sig.KeyID] {
			n++
		}
	}
	return n
}

// checkOnline reports whether the data dir's online keys are those the root names.
func (s *Service) checkOnline(root *metadata.Metadata[metadata.RootType]) error {
	o := s.cfg.Online
	if o == nil {
		return vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this data dir has no online update keys (update-snapshot.key, update-timestamp.key)")
	}
	if !roleIDs(root, roleSnapshot)[o.snapshot.id] || !roleIDs(root, roleTimestamp)[o.timestamp.id] {
		return vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this data dir's online update keys (update-snapshot.key, update-timestamp.key) are not those of the repository's root: copy them from the node that ran `vitalgate update rotate-root`")
	}
	return nil
}

// snapshotAndTimestamp returns new snapshot and timestamp versions that publish changed
// (role → version of targets or model roles), signed with the online keys.
func (s *Service) snapshotAndTimestamp(st *state, root *metadata.Metadata[metadata.RootType], changed map[string]int64) ([]vitalgate.UpdateMetadata, error) {
	if err := s.checkOnline(root); err != nil {
		return nil, err
	}
	now := s.now()
	snapExp := expiry(now, s.cfg.SnapshotTTL)
	snap := metadata.Snapshot(snapExp)
	if st.snapshot != nil {
		snap.Signed.Version = st.snapshot.Signed.Version + 1
		for name, mf := range st.snapshot.Signed.Meta {
			snap.Signed.Meta[name] = metadata.MetaFile(mf.Version)
		}
	}
	for role, v := range changed {
		snap.Signed.Meta[role+".json"] = metadata.MetaFile(v)
	}
	if _, err := snap.Sign(s.cfg.Online.snapshot.signer); err != nil {
		return nil, vitalgate.Internal(err, "updates: sign snapshot")
	}
	tsExp := expiry(now, s.cfg.TimestampTTL)
	ts := metadata.Timestamp(tsExp)
	if st.timestamp != nil {
		ts.Signed.Version = st.timestamp.Signed.Version + 1
	}
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(snap.Signed.Version)
	if _, err := ts.Sign(s.cfg.Online.timestamp.signer); err != nil {
		return nil, vitalgate.Internal(err, "updates: sign timestamp")
	}
	a, err := record(roleSnapshot, snap.Signed.Version, snapExp, snap)
	if err != nil {
		return nil, err
	}
	b, err := record(roleTimestamp, ts.Signed.Version, tsExp, ts)
	if err != nil {
		return nil, err
	}
	return []vitalgate.UpdateMetadata{a, b}, nil
}

// delegation returns the delegation of model in targets, or nil.
func delegation(targets *metadata.Metadata[metadata.TargetsType], model string) *metadata.DelegatedRole {
	if targets == nil || targets.Signed.Delegations == nil {
		return nil
	}
	for i := range targets.Signed.Delegations.Roles {
		if targets.Signed.Delegations.Roles[i].Name == model {
			return &targets.Signed.Delegations.Roles[i]
		}
	}
	return nil
}

// delegationIDs is the key set of a model's role (in targets), for counting signatures.
func delegationIDs(targets *metadata.Metadata[metadata.TargetsType], model string) (ids, int) {
	d := delegation(targets, model)
	out := ids{}
	if d == nil {
		return out, 0
	}
	for _, id := range d.KeyIDs {
		out[id] = true
	}
	return out, d.Threshold
}

// withDelegation returns the next targets version delegating model's paths (MODEL/*/*: TUF
// clients match a pattern segment by segment, so MODEL/* would not cover MODEL/VERSION/FILE) to
// the root's targets keys with the root's targets threshold, unsigned.
func (s *Service) withDelegation(st *state, root *metadata.Metadata[metadata.RootType], model string) (*metadata.Metadata[metadata.TargetsType], error) {
	next := metadata.Targets(expiry(s.now(), s.cfg.TargetsTTL))
	if st.targets != nil {
		data, err := st.targets.ToBytes(false)
		if err != nil {
			return nil, vitalgate.Internal(err, "updates: copy targets")
		}
		if next, err = (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(data); err != nil {
			return nil, vitalgate.Internal(err, "updates: copy targets")
		}
		next.Signed.Version++
		next.Signed.Expires = expiry(s.now(), s.cfg.TargetsTTL)
		next.ClearSignatures()
	}
	if next.Signed.Delegations == nil {
		next.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	r := root.Signed.Roles[roleTargets]
	for _, id := range r.KeyIDs {
		next.Signed.Delegations.Keys[id] = root.Signed.Keys[id]
	}
	next.Signed.Delegations.Roles = append(next.Signed.Delegations.Roles, metadata.DelegatedRole{
		Name: model, KeyIDs: slices.Clone(r.KeyIDs), Threshold: r.Threshold, Terminating: true, Paths: []string{model + "/*/*"},
	})
	return next, nil
}

// met reports whether the pending metadata has its thresholds: the targets (if changed) by
// the root, the model role by the targets that delegates to it.
func met(root *metadata.Metadata[metadata.RootType], targets, model *metadata.Metadata[metadata.TargetsType], newTargets bool, name string) bool {
	if newTargets && root.VerifyDelegate(roleTargets, targets) != nil {
		return false
	}
	return targets.VerifyDelegate(name, model) == nil
}

func decodePending(data []byte) (pending, *metadata.Metadata[metadata.TargetsType], *metadata.Metadata[metadata.TargetsType], error) {
	var p pending
	if err := json.Unmarshal(data, &p); err != nil {
		return p, nil, nil, vitalgate.Internal(err, "updates: pending release")
	}
	model, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(p.Model)
	if err != nil {
		return p, nil, nil, vitalgate.Internal(err, "updates: pending model role")
	}
	var targets *metadata.Metadata[metadata.TargetsType]
	if len(p.Targets) > 0 {
		if targets, err = (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(p.Targets); err != nil {
			return p, nil, nil, vitalgate.Internal(err, "updates: pending targets")
		}
	}
	return p, targets, model, nil
}

func encodePending(targets, model *metadata.Metadata[metadata.TargetsType]) ([]byte, error) {
	var p pending
	var err error
	if targets != nil {
		if p.Targets, err = targets.ToBytes(false); err != nil {
			return nil, vitalgate.Internal(err, "updates: encode pending targets")
		}
	}
	if p.Model, err = model.ToBytes(false); err != nil {
		return nil, vitalgate.Internal(err, "updates: encode pending model role")
	}
	out, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("updates: encode pending: %w", err)
	}
	return out, nil
}
