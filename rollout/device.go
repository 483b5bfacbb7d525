package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Offer is what GET /updates/offer tells a device: the approved release its rollout offers
// it. The device verifies it against the signed targets before it downloads anything.
type Offer struct {
	Model    string `json:"model"`
	Version  string `json:"version"`
	Target   string `json:"target"`
	Critical bool   `json:"critical"`
}

// Offer returns the release the device's rollout offers it, or ok false when nothing new
// is: the device is in no started group of its model's rollout (or the rollout targets
// another site's devices), the rollout is paused,
// waiting or aborted, the device runs the version already or failed it, its site's
// maintenance window is closed (unless the rollout is critical), or the repository no
// longer holds the release as approved. Each step is an indexed lookup.
func (s *Service) Offer(ctx context.Context, deviceID string) (Offer, bool, error) {
	d, err := s.Store.Device(ctx, deviceID)
	if err != nil {
		return Offer{}, false, err
	}
	if d.Model == "" || d.Status != vitalgate.DeviceActive {
		return Offer{}, false, nil
	}
	r, err := s.Store.LatestRollout(ctx, d.Model)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return Offer{}, false, nil
	} else if err != nil {
		return Offer{}, false, err
	}
	if r.State != vitalgate.RolloutActive && r.State != vitalgate.RolloutWaiting && r.State != vitalgate.RolloutCompleted {
		return Offer{}, false, nil
	}
	if !inSite(r.Site, d) {
		return Offer{}, false, nil // the rollout targets another site's devices
	}
	group := lateGroup(r, d)
	u, err := s.Store.DeviceUpdate(ctx, r.ID, d.ID)
	switch {
	case err == nil:
		group = u.Group
		if u.State != vitalgate.UpdateAssigned && u.State != vitalgate.UpdateDownloading {
			return Offer{}, false, nil // installed, through the gate, or failed: not offered again
		}
	case vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND:
		return Offer{}, false, err
	}
	if group < 0 || group > r.Current || r.Groups[group].StartedAt.IsZero() {
		return Offer{}, false, nil
	}
	if v, err := s.Store.DeviceVersion(ctx, d.ID); err == nil && v.Version == r.Version {
		return Offer{}, false, nil
	} else if err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		return Offer{}, false, err
	}
	if !r.Critical {
		open, err := s.windowOpen(ctx, d.Site, s.now())
		if err != nil || !open {
			return Offer{}, false, err
		}
	}
	if s.Releases == nil {
		return Offer{}, false, nil
	}
	target, err := s.Releases.Approved(ctx, r.Model, r.Version)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return Offer{}, false, nil // no longer approved: never offered
	} else if err != nil {
		return Offer{}, false, err
	}
	return Offer{Model: r.Model, Version: r.Version, Target: target, Critical: r.Critical}, true, nil
}

// Report is a device's report of its update (POST /updates/report).
type Report struct {
	Version string `json:"version"`
	State   string `json:"state"` // downloading, installed, healthy, failed or rolled-back
	Reason  string `json:"reason,omitempty"`
	Device  string `json:"device,omitempty"` // optional; if present it must be the caller
}

var reportStates = map[string]vitalgate.DeviceUpdateState{
	"downloading": vitalgate.UpdateDownloading, "installed": vitalgate.UpdateInstalled,
	"healthy": vitalgate.UpdateHealthy, "failed": vitalgate.UpdateFailed, "rolled-back": vitalgate.UpdateRolledBack,
}

func (s *Service) deviceEntry(ctx context.Context, d vitalgate.Device, id, outcome, desc string) []byte {
	return s.encode(ctx, audit.Entry{Action: audit.ActionExecute, Subtype: "report", AgentType: audit.AgentDevice,
		AgentID: id, AgentRole: string(vitalgate.RoleDevice), Outcome: outcome, Site: d.Site,
		Resources: []string{"Device/" + id}, OutcomeDesc: desc})
}

// Report records a device's report: its row in the model's rollout of that version (if it
// is in one), its installed version (installed, healthy; rolled-back restores the one
// before), and the evaluation of the health gate and the rollout, in one write with the
// audit entries. Errors: EFORBIDDEN (the report names another device; audited),
// EINVALID (version, state, reason), ENOTFOUND (unknown device).
func (s *Service) Report(ctx context.Context, deviceID string, rep Report) error {
	d, err := s.Store.Device(ctx, deviceID)
	if err != nil {
		return err
	}
	if rep.Device != "" && rep.Device != deviceID {
		entry := s.deviceEntry(ctx, d, deviceID, audit.OutcomeMinorFailure, "report for another device refused")
		if _, aerr := s.Store.AppendAudit(ctx, entry); aerr != nil {
			return vitalgate.Unavailable(aerr, "the refusal could not be audited; try again")
		}
		return vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, "device",
			"a device reports only its own updates: this report names device %q but the certificate is %q's; leave out \"device\" or name the caller", rep.Device, deviceID)
	}
	if err := CheckVersion(rep.Version); err != nil {
		return err
	}
	state, ok := reportStates[rep.State]
	if !ok {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "state", "state is one of downloading, installed, healthy, failed or rolled-back, not %q", rep.State)
	}
	if err := checkReason(rep.Reason); err != nil {
		return err
	}
	if state.Failed() && rep.Reason == "" {
		rep.Reason = "no reason given"
	}
	for attempt := 0; ; attempt++ {
		err := s.report(ctx, d, state, rep)
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT && attempt < 5 {
			continue // a concurrent evaluation changed the rollout: read it again
		}
		return err
	}
}

func (s *Service) report(ctx context.Context, d vitalgate.Device, state vitalgate.DeviceUpdateState, rep Report) error {
	now := s.now()
	w := vitalgate.RolloutWrite{}
	desc := fmt.Sprintf("%s %s %s", d.Model, rep.Version, rep.State)
	if state.Failed() {
		desc += " (reason kept with the device's rollout record)"
	}
	// The installed version.
	cur, err := s.Store.DeviceVersion(ctx, d.ID)
	if err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		return err
	}
	switch {
	case (state == vitalgate.UpdateInstalled || state == vitalgate.UpdateHealthy) && cur.Version != rep.Version:
		w.Versions = []vitalgate.DeviceVersion{{DeviceID: d.ID, Model: d.Model, Version: rep.Version, Previous: cur.Version, UpdatedAt: now}}
	case state == vitalgate.UpdateRolledBack && cur.Version == rep.Version && cur.Previous != "":
		w.Versions = []vitalgate.DeviceVersion{{DeviceID: d.ID, Model: d.Model, Version: cur.Previous, UpdatedAt: now}}
	}
	entries := [][]byte{}
	r, err := s.Store.LatestRollout(ctx, d.Model)
	if err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		return err
	}
	if err == nil && r.Version == rep.Version && r.State != vitalgate.RolloutAborted {
		u, err := s.Store.DeviceUpdate(ctx, r.ID, d.ID)
		switch {
		case vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND:
			u = vitalgate.DeviceUpdate{RolloutID: r.ID, DeviceID: d.ID, Group: lateGroup(r, d), State: vitalgate.UpdateAssigned}
		case err != nil:
			return err
		}
		if u.Group >= 0 && apply(&u, state, rep.Reason, now, r.HealthWindow) {
			u.UpdatedAt = now
			desc += fmt.Sprintf(", group %d", u.Group+1)
			w.Devices = []vitalgate.DeviceUpdate{u}
			// Only a passed or failed device changes the counts the thresholds read: only
			// then are the rollout's rows read (the other reports cost point lookups).
			if r.State == vitalgate.RolloutActive && (u.State.Failed() || u.State == vitalgate.UpdatePassed) {
				rows, err := s.Store.RolloutDevices(ctx, r.ID)
				if err != nil {
					return err
				}
				if i := rowIndex(rows, d.ID); i >= 0 {
					rows[i] = u
				} else {
					rows = append(rows, u)
				}
				if ev := s.evaluate(ctx, &r, rows, now); len(ev) > 0 {
					entries, w.Rollout = append(entries, ev...), &r
				}
			}
		}
	}
	entries = append([][]byte{s.deviceEntry(ctx, d, d.ID, audit.OutcomeSuccess, desc)}, entries...)
	return s.Store.WriteRollout(ctx, w, entries...)
}

func rowIndex(rows []vitalgate.DeviceUpdate, id string) int {
	for i := range rows {
		if rows[i].DeviceID == id {
			return i
		}
	}
	return -1
}

// apply moves a device's row by its report and reports whether it changed. A failure after
// the gate counts (a device that rolls back later failed); a success after a failure does
// not undo it.
func apply(u *vitalgate.DeviceUpdate, state vitalgate.DeviceUpdateState, reason string, now time.Time, window time.Duration) bool {
	if u.State.Failed() {
		return false
	}
	switch state {
	case vitalgate.UpdateDownloading:
		if u.State != vitalgate.UpdateAssigned {
			return false
		}
		u.State = state
	case vitalgate.UpdateInstalled:
		if u.State != vitalgate.UpdateAssigned && u.State != vitalgate.UpdateDownloading {
			return false
		}
		u.State, u.InstalledAt = state, now
	case vitalgate.UpdateHealthy:
		if u.State == vitalgate.UpdateHealthy || u.State == vitalgate.UpdatePassed {
			return false
		}
		if u.InstalledAt.IsZero() {
			u.InstalledAt = now
		}
		u.State, u.HealthyAt = state, now
		if window <= 0 {
			u.State, u.DoneAt = vitalgate.UpdatePassed, now
		}
	case vitalgate.UpdateFailed, vitalgate.UpdateRolledBack:
		u.State, u.Reason, u.DoneAt = state, reason, now
	}
	return true
}

// gate decides a device's health gate at now: failed with a reason, passed, or unchanged.
// The signal is the device's own entries in the audit log: stored data (action C, outcome
// 0) and refused data (action C, outcome 4).
func (s *Service) gate(ctx context.Context, r vitalgate.Rollout, u *vitalgate.DeviceUpdate, now time.Time) (bool, error) {
	switch u.State {
	case vitalgate.UpdateInstalled:
		if now.Sub(u.InstalledAt) > r.Silence {
			u.State, u.DoneAt = vitalgate.UpdateFailed, now
			u.Reason = fmt.Sprintf("no healthy report within %s of installing", r.Silence)
			return true, nil
		}
	case vitalgate.UpdateHealthy:
		refused, err := s.lastDataAct(ctx, u.DeviceID, audit.OutcomeMinorFailure, u.HealthyAt)
		if err != nil {
			return false, err
		}
		if !refused.IsZero() {
			u.State, u.DoneAt, u.Reason = vitalgate.UpdateFailed, now, "sent data that was refused after the update"
			return true, nil
		}
		valid, err := s.lastDataAct(ctx, u.DeviceID, audit.OutcomeSuccess, u.HealthyAt)
		if err != nil {
			return false, err
		}
		last := u.HealthyAt
		if valid.After(last) {
			last = valid
		}
		end := u.HealthyAt.Add(r.HealthWindow)
		if now.Before(end) {
			end = now
		}
		if end.Sub(last) > r.Silence {
			u.State, u.DoneAt = vitalgate.UpdateFailed, now
			u.Reason = fmt.Sprintf("sent no valid data for more than %s after the update", r.Silence)
			return true, nil
		}
		if !now.Before(u.HealthyAt.Add(r.HealthWindow)) {
			u.State, u.DoneAt = vitalgate.UpdatePassed, now
			return true, nil
		}
	}
	return false, nil
}

// lastDataAct returns the time of the device's newest data act (action C, subtype create)
// with outcome since from, or zero.
func (s *Service) lastDataAct(ctx context.Context, deviceID, outcome string, from time.Time) (time.Time, error) {
	var last time.Time
	err := s.Store.AuditSearch(ctx, vitalgate.AuditQuery{AgentID: deviceID, Action: audit.ActionCreate, Outcome: outcome, From: from, Limit: 20},
		func(rec vitalgate.AuditRecord) error {
			e, err := audit.UnmarshalEntry(rec.Data)
			if err == nil && e.Subtype == "create" && e.AgentType == audit.AgentDevice && e.Time.After(last) {
				last = e.Time
			}
			return nil
		})
	return last, err
}

// Tick evaluates the health gates of the devices of every model's newest rollout and
// advances or pauses the rollouts by them. serve runs it periodically; its cost grows with
// the devices of the current rollouts, not with history.
func (s *Service) Tick(ctx context.Context) error {
	rs, err := s.Store.Rollouts(ctx, "", 200)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[r.Model] {
			continue
		}
		seen[r.Model] = true
		if r.State == vitalgate.RolloutAborted {
			continue
		}
		for attempt := 0; ; attempt++ {
			err := s.tickRollout(ctx, r.ID)
			if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT && attempt < 5 {
				continue
			}
			if err != nil {
				return fmt.Errorf("rollout %s: %w", r.ID, err)
			}
			break
		}
	}
	return nil
}

func (s *Service) tickRollout(ctx context.Context, id string) error {
	r, err := s.Store.Rollout(ctx, id)
	if err != nil {
		return err
	}
	rows, err := s.Store.RolloutDevices(ctx, r.ID)
	if err != nil {
		return err
	}
	now := s.now()
	w := vitalgate.RolloutWrite{}
	var entries [][]byte
	for i := range rows {
		u := &rows[i]
		changed, err := s.gate(ctx, r, u, now)
		if err != nil {
			return err
		}
		if !changed {
			continue
		}
		u.UpdatedAt = now
		w.Devices = append(w.Devices, *u)
		d, _ := s.Store.Device(ctx, u.DeviceID)
		outcome, desc := audit.OutcomeSuccess, fmt.Sprintf("%s %s: device passed its health gate, group %d", r.Model, r.Version, u.Group+1)
		if u.State.Failed() {
			outcome, desc = audit.OutcomeMinorFailure, fmt.Sprintf("%s %s: device failed its health gate (%s), group %d", r.Model, r.Version, u.Reason, u.Group+1)
		}
		entries = append(entries, s.encode(ctx, audit.Entry{Action: audit.ActionExecute, Subtype: "health-gate", AgentType: audit.AgentSystem,
			AgentID: "vitalgate", Outcome: outcome, Site: d.Site, Resources: []string{"Device/" + u.DeviceID}, OutcomeDesc: desc}))
	}
	if r.State == vitalgate.RolloutActive {
		if ev := s.evaluate(ctx, &r, rows, now); len(ev) > 0 {
			entries, w.Rollout = append(entries, ev...), &r
		}
	}
	if len(w.Devices) == 0 && w.Rollout == nil {
		return nil
	}
	return s.Store.WriteRollout(ctx, w, entries...)
}

// InstalledVersion returns the version the device reported installed last ("" when it
// never reported one).
func (s *Service) InstalledVersion(ctx context.Context, deviceID string) (string, error) {
	v, err := s.Store.DeviceVersion(ctx, deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return "", nil
	}
	return v.Version, err
}
