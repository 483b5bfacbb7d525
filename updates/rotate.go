package updates

import (
	"context"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Rotation is what RotateRoot changes. With neither field set it re-signs the root with a
// new expiry.
type Rotation struct {
	// NewKeys, when set, is a key dir from `update keys init` whose root keys, targets keys
	// and threshold replace the current ones; the targets and every model role are then
	// re-signed with its targets keys (which it must hold to its threshold).
	NewKeys *KeySet
	// NewOnline, when set, replaces the snapshot and timestamp keys: the caller installs
	// them in the data dir of every node once RotateRoot succeeds.
	NewOnline *OnlineKeys
}

// RotateRoot publishes the next root version, signed by the threshold of the current root
// keys (in keys) and of the new ones (in rot.NewKeys, when they change), as TUF requires
// so that clients can follow the chain from their trusted root. It returns the new root's
// version. Errors: EFORBIDDEN (too few root keys, a foreign key), ECONFLICT (a release
// awaits signatures while the targets keys change, or another rotation won),
// ENOTFOUND (no repository yet).
func (s *Service) RotateRoot(ctx context.Context, operator string, keys *KeySet, rot Rotation) (int64, error) {
	e := s.entry(audit.ActionUpdate, "update-rotate-root", operator, "root rotation")
	v, err := s.rotate(ctx, operator, keys, rot, &e)
	if err != nil {
		return 0, s.refused(ctx, e, err)
	}
	return v, nil
}

func (s *Service) rotate(ctx context.Context, operator string, keys *KeySet, rot Rotation, e *audit.Entry) (int64, error) {
	if operator == "" {
		return 0, vitalgate.Errorf(vitalgate.EINVALID, "a root rotation needs the operator's name")
	}
	st, err := s.load(ctx)
	if err != nil {
		return 0, err
	}
	if st == nil {
		return 0, vitalgate.Errorf(vitalgate.ENOTFOUND, "the update repository has no root yet: the first `vitalgate update publish` creates it")
	}
	data, err := st.root.ToBytes(false)
	if err != nil {
		return 0, vitalgate.Internal(err, "updates: copy root")
	}
	next, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(data)
	if err != nil {
		return 0, vitalgate.Internal(err, "updates: copy root")
	}
	next.ClearSignatures()
	next.Signed.Version++
	next.Signed.Expires = expiry(s.now(), s.cfg.RootTTL)
	retarget := false
	if nk := rot.NewKeys; nk != nil {
		if nk.Threshold == 0 {
			return 0, vitalgate.Errorf(vitalgate.EINVALID, "the new key dir %s has no %s: name a dir `vitalgate update keys init` created", nk.Dir, KeysFile)
		}
		oldTargets := roleIDs(st.root, roleTargets)
		if err := setRootKeys(next, nk.Root, nk.Targets, nk.Threshold); err != nil {
			return 0, err
		}
		newTargets := roleIDs(next, roleTargets)
		retarget = len(oldTargets) != len(newTargets) || st.root.Signed.Roles[roleTargets].Threshold != next.Signed.Roles[roleTargets].Threshold
		for id := range newTargets {
			retarget = retarget || !oldTargets[id]
		}
	}
	online := s.cfg.Online
	if rot.NewOnline != nil {
		if err := s.setOnlineKeys(next, rot.NewOnline); err != nil {
			return 0, err
		}
		online = rot.NewOnline
	}
	// Remove keys no role uses any more.
	used := map[string]bool{}
	for _, r := range next.Signed.Roles {
		for _, id := range r.KeyIDs {
			used[id] = true
		}
	}
	for id := range next.Signed.Keys {
		if !used[id] {
			delete(next.Signed.Keys, id)
		}
	}
	if _, err := signWith(next, keys.root, roleIDs(st.root, roleRoot), "root"); err != nil {
		return 0, err
	}
	if rot.NewKeys != nil {
		if _, err := signWith(next, rot.NewKeys.root, roleIDs(next, roleRoot), "new root"); err != nil {
			return 0, err
		}
	}
	if err := st.root.VerifyDelegate(roleRoot, next); err != nil {
		return 0, vitalgate.Errorf(vitalgate.EFORBIDDEN, "a new root needs %d signatures of the current root keys; %s holds %d of them", st.root.Signed.Roles[roleRoot].Threshold, keys.Dir, len(roleIDs(st.root, roleRoot).signers(keys.root)))
	}
	if err := next.VerifyDelegate(roleRoot, next); err != nil {
		return 0, vitalgate.Errorf(vitalgate.EFORBIDDEN, "a new root needs %d signatures of the new root keys: the new key dir must hold them", next.Signed.Roles[roleRoot].Threshold)
	}
	rec, err := record(roleRoot, next.Signed.Version, next.Signed.Expires, next)
	if err != nil {
		return 0, err
	}
	ms := []vitalgate.UpdateMetadata{rec}
	changed := map[string]int64{}
	nst := *st
	if retarget && st.targets != nil {
		more, err := s.retarget(ctx, &nst, next, rot.NewKeys, changed)
		if err != nil {
			return 0, err
		}
		ms = append(ms, more...)
	}
	if st.snapshot != nil {
		saved := s.cfg.Online
		s.cfg.Online = online
		online, err := s.snapshotAndTimestamp(&nst, next, changed)
		s.cfg.Online = saved
		if err != nil {
			return 0, err
		}
		ms = append(ms, online...)
	}
	e.OutcomeDesc = "root rotated to version " + strconv.FormatInt(next.Signed.Version, 10)
	if err := s.store.PutUpdateMetadata(ctx, ms, s.alog.Encode(ctx, *e)); err != nil {
		return 0, err
	}
	return next.Signed.Version, nil
}

// retarget re-signs the targets and every model role with the new targets keys.
func (s *Service) retarget(ctx context.Context, st *state, root *metadata.Metadata[metadata.RootType], nk *KeySet, changed map[string]int64) ([]vitalgate.UpdateMetadata, error) {
	rels, err := s.store.UpdateReleases(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, r := range rels {
		if !r.Live {
			return nil, vitalgate.Errorf(vitalgate.ECONFLICT, "release %s of model %s is waiting for signatures: sign it before the targets keys change", r.Version, r.Model)
		}
	}
	t := st.targets
	data, err := t.ToBytes(false)
	if err != nil {
		return nil, vitalgate.Internal(err, "updates: copy targets")
	}
	nt, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(data)
	if err != nil {
		return nil, vitalgate.Internal(err, "updates: copy targets")
	}
	nt.ClearSignatures()
	nt.Signed.Version++
	nt.Signed.Expires = expiry(s.now(), s.cfg.TargetsTTL)
	r := root.Signed.Roles[roleTargets]
	nt.Signed.Delegations.Keys = map[string]*metadata.Key{}
	for _, id := range r.KeyIDs {
		nt.Signed.Delegations.Keys[id] = root.Signed.Keys[id]
	}
	for i := range nt.Signed.Delegations.Roles {
		nt.Signed.Delegations.Roles[i].KeyIDs = append([]string(nil), r.KeyIDs...)
		nt.Signed.Delegations.Roles[i].Threshold = r.Threshold
	}
	accepted := roleIDs(root, roleTargets)
	if _, err := signWith(nt, nk.targets, accepted, "new targets"); err != nil {
		return nil, err
	}
	if err := root.VerifyDelegate(roleTargets, nt); err != nil {
		return nil, vitalgate.Errorf(vitalgate.EFORBIDDEN, "new targets keys replace the old ones only if the new key dir holds %d of them", r.Threshold)
	}
	rec, err := record(roleTargets, nt.Signed.Version, nt.Signed.Expires, nt)
	if err != nil {
		return nil, err
	}
	ms := []vitalgate.UpdateMetadata{rec}
	changed[roleTargets] = nt.Signed.Version
	for _, d := range nt.Signed.Delegations.Roles {
		m, err := loadRole[metadata.TargetsType](ctx, s.store, d.Name, 0)
		if err != nil || m == nil {
			return nil, err
		}
		m.ClearSignatures()
		m.Signed.Version++
		m.Signed.Expires = expiry(s.now(), s.cfg.TargetsTTL)
		if _, err := signWith(m, nk.targets, accepted, "new targets"); err != nil {
			return nil, err
		}
		rec, err := record(d.Name, m.Signed.Version, m.Signed.Expires, m)
		if err != nil {
			return nil, err
		}
		ms = append(ms, rec)
		changed[d.Name] = m.Signed.Version
	}
	st.targets = nt
	return ms, nil
}

// Refresh re-signs the snapshot and timestamp when less than half their lifetime is left,
// and reports whether it published. Several nodes may call it at once: the one that
// stores the new versions first wins and the others find them and do nothing.
func (s *Service) Refresh(ctx context.Context) (bool, error) {
	st, err := s.load(ctx)
	if err != nil || st == nil || st.timestamp == nil {
		return false, err
	}
	now := s.now()
	if st.timestamp.Signed.Expires.Sub(now) > s.cfg.TimestampTTL/2 {
		return false, nil
	}
	changed := map[string]int64{}
	if st.snapshot.Signed.Expires.Sub(now) > s.cfg.SnapshotTTL/2 {
		// Keep the snapshot: a timestamp alone.
		return s.refreshTimestamp(ctx, st)
	}
	ms, err := s.snapshotAndTimestamp(st, st.root, changed)
	if err != nil {
		return false, err
	}
	return s.putRefresh(ctx, ms, "snapshot and timestamp refreshed")
}

func (s *Service) refreshTimestamp(ctx context.Context, st *state) (bool, error) {
	if err := s.checkOnline(st.root); err != nil {
		return false, err
	}
	exp := expiry(s.now(), s.cfg.TimestampTTL)
	ts := metadata.Timestamp(exp)
	ts.Signed.Version = st.timestamp.Signed.Version + 1
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(st.snapshot.Signed.Version)
	if _, err := ts.Sign(s.cfg.Online.timestamp.signer); err != nil {
		return false, vitalgate.Internal(err, "updates: sign timestamp")
	}
	rec, err := record(roleTimestamp, ts.Signed.Version, exp, ts)
	if err != nil {
		return false, err
	}
	return s.putRefresh(ctx, []vitalgate.UpdateMetadata{rec}, "timestamp refreshed")
}

func (s *Service) putRefresh(ctx context.Context, ms []vitalgate.UpdateMetadata, desc string) (bool, error) {
	e := audit.Entry{Action: audit.ActionUpdate, Type: "system", Subtype: "update-refresh", AgentType: audit.AgentSystem, OutcomeDesc: desc}
	if err := s.store.PutUpdateMetadata(ctx, ms, s.alog.Encode(ctx, e)); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return false, nil // another node refreshed first
		}
		return false, err
	}
	return true, nil
}

// Run calls Refresh every interval until ctx ends, passing failures to onError.
func (s *Service) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Refresh(ctx); err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
