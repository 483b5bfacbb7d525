// Package rollout is the capability that decides which approved release each device is
// offered: staged rollouts per device model, in groups (percentages of the model's devices
// or explicit lists) that advance when a success threshold is met and pause when an error
// threshold is passed; operator pause, resume, approve and abort; maintenance windows per
// site; out-of-cycle critical rollouts; the devices' reports (downloading, installed,
// healthy, failed, rolled-back) and the health gate after them; and the patch-latency
// figures (time from the rollout's start to 50 %, 90 % and 100 % of its devices installed).
//
// A rollout is online state, not signed metadata: it offers only what the release
// repository (Releases) holds as approved, checked at every offer. It covers the model's
// devices in every site, each within its own site's maintenance window, or one site's
// devices only (Plan.Site); a model has one live rollout at a time.
//
// The health gate: after installed, a device must report healthy within the rollout's
// Silence, and from its healthy report on keep sending valid data for HealthWindow with no
// gap longer than Silence and no refused message. The signal is the audit log: ingest
// records every stored message (action C, outcome 0) and every refused one (outcome 4)
// with the device as agent, so the gate reads the device's newest entries through the
// indexed audit search (vitalgate.AuditQuery by agent), and ingest is not touched. Gates
// are evaluated on every report and by Tick, which serve runs periodically.
//
// Every act is audited (type "update"): operator acts, device reports and refusals, and
// the system's own decisions (a group advanced, a rollout paused, a gate failed). Audit
// text holds model, version, group and counts only; a device's free-text reason is stored
// with its row, never written to the audit log.
package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Releases is the release repository: Approved returns the TUF target path
// (MODEL/VERSION/FILENAME) of a live, signed release of model, or ENOTFOUND.
type Releases interface {
	Approved(ctx context.Context, model, version string) (target string, err error)
}

// Store is what rollouts need from storage: the rollout records, the devices, and the
// indexed audit search the health gate reads.
type Store interface {
	vitalgate.RolloutStore
	Device(ctx context.Context, id string) (vitalgate.Device, error)
	Devices(ctx context.Context) ([]vitalgate.Device, error)
	AuditSearch(ctx context.Context, q vitalgate.AuditQuery, fn func(vitalgate.AuditRecord) error) error
	AppendAudit(ctx context.Context, entries ...[]byte) (uint64, error)
}

// Defaults of a rollout's thresholds and health gate.
const (
	DefaultSuccessPercent = 90
	DefaultErrorPercent   = 10
	DefaultHealthWindow   = 30 * time.Minute
	DefaultSilence        = 10 * time.Minute
	// MaxReasonBytes bounds a device's or an operator's reason.
	MaxReasonBytes = 500
)

// Service is the rollout capability.
type Service struct {
	Store    Store
	Releases Releases
	// Audit, when set, encodes the entries (request id, node); otherwise they are encoded
	// as they are.
	Audit *audit.Log
	Now   func() time.Time // nil: time.Now
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) encode(ctx context.Context, e audit.Entry) []byte {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Type = "update"
	if e.Outcome == "" {
		e.Outcome = audit.OutcomeSuccess
	}
	if s.Audit != nil {
		return s.Audit.Encode(ctx, e)
	}
	return e.Marshal()
}

// siteEntry is an operator's entry about a rollout of site ("" for every site), so that the
// site's auditors see it.
func (s *Service) siteEntry(ctx context.Context, operator, subtype, model, site, desc string) []byte {
	return s.encode(ctx, audit.Entry{Action: audit.ActionExecute, Subtype: subtype, AgentType: audit.AgentOperator,
		AgentID: operator, Site: site, Resources: []string{"DeviceDefinition/" + model}, OutcomeDesc: desc})
}

func (s *Service) systemEntry(ctx context.Context, subtype, model, desc string) []byte {
	return s.encode(ctx, audit.Entry{Action: audit.ActionExecute, Subtype: subtype, AgentType: audit.AgentSystem,
		AgentID: "vitalgate", Resources: []string{"DeviceDefinition/" + model}, OutcomeDesc: desc})
}

var (
	modelPattern   = regexp.MustCompile(`^[A-Za-z0-9\-._]{1,64}$`)
	versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_\-]{0,63}$`)
)

// CheckVersion reports whether v can name a release version: 1 to 64 letters, digits, '.',
// '+', '_' or '-', beginning with a letter or digit. EINVALID otherwise.
func CheckVersion(v string) error {
	if !versionPattern.MatchString(v) {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "version", "a version is 1 to 64 letters, digits, '.', '+', '_' or '-', beginning with a letter or digit")
	}
	return nil
}

func checkReason(r string) error {
	if len(r) > MaxReasonBytes || !utf8.ValidString(r) || strings.ContainsFunc(r, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "reason", "a reason is at most %d bytes of printable text", MaxReasonBytes)
	}
	return nil
}

// Plan is what an operator asks for when starting a rollout.
type Plan struct {
	Model, Version string
	// Groups in order; empty: one group of every device of the model. A group's zero
	// SuccessPercent and ErrorPercent take the defaults (use ErrorPercent -1 for "pause on
	// the first failure", stored as 0).
	Groups   []vitalgate.RolloutGroup
	Critical bool
	// Site, when set, limits the rollout to that site's devices of the model: its percentage
	// groups are shares of them, a listed device must be one of them, and no device of
	// another site is offered the release. Empty: every site the model has devices in, each
	// offered within its own site's maintenance window.
	Site string
	// HealthWindow (0: DefaultHealthWindow; negative: none, a healthy report suffices) and
	// Silence (0: DefaultSilence).
	HealthWindow, Silence time.Duration
}

// deviceHash places a device in a rollout's percentage groups: stable for the device.
func deviceHash(id string) uint64 {
	h := sha256.Sum256([]byte("vitalgate-rollout\x00" + id))
	return binary.BigEndian.Uint64(h[:8])
}

// Start begins a rollout of model to version, once the repository confirms the release is
// approved. Devices are assigned to the groups now: explicit lists first, then the other
// devices of the model by the order of a hash of their id, cut at each group's cumulative
// percentage; a device enrolled later joins the percentage group its hash falls in. The
// first group starts at once. With p.Site only that site's devices take part. Errors:
// EINVALID (plan), ENOTFOUND (no approved release, a listed device that does not exist, an
// unknown site), EUNPROCESSABLE (a listed device of another model or site), ECONFLICT (the
// model has a live rollout).
func (s *Service) Start(ctx context.Context, operator string, p Plan) (vitalgate.Rollout, error) {
	if !modelPattern.MatchString(p.Model) {
		return vitalgate.Rollout{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "model", "a model id is 1 to 64 letters, digits, '-', '.' or '_'")
	}
	if err := CheckVersion(p.Version); err != nil {
		return vitalgate.Rollout{}, err
	}
	groups, err := normalizeGroups(p.Groups)
	if err != nil {
		return vitalgate.Rollout{}, err
	}
	if p.Site != "" {
		if err := s.checkSite(ctx, p.Site); err != nil {
			return vitalgate.Rollout{}, err
		}
	}
	if s.Releases == nil {
		return vitalgate.Rollout{}, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this server has no release repository")
	}
	target, err := s.Releases.Approved(ctx, p.Model, p.Version)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Rollout{}, vitalgate.Errorf(vitalgate.ENOTFOUND,
			"%s %s is not an approved release: publish it (update publish) and sign it to its threshold (update sign) first", p.Model, p.Version)
	} else if err != nil {
		return vitalgate.Rollout{}, err
	}
	if live, err := s.Store.LatestRollout(ctx, p.Model); err == nil && live.State.Live() {
		return vitalgate.Rollout{}, vitalgate.Errorf(vitalgate.ECONFLICT,
			"model %s has a rollout of %s that is %s; abort it first (update rollout abort --model %s)", p.Model, live.Version, live.State, p.Model)
	} else if err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		return vitalgate.Rollout{}, err
	}
	all, err := s.Store.Devices(ctx)
	if err != nil {
		return vitalgate.Rollout{}, err
	}
	members, err := assign(all, p.Model, p.Site, groups)
	if err != nil {
		return vitalgate.Rollout{}, err
	}
	now := s.now()
	r := vitalgate.Rollout{ID: p.Model + "/" + p.Version + "/" + now.Format("20060102T150405.000000Z"),
		Model: p.Model, Version: p.Version, Target: target, Critical: p.Critical, Site: p.Site, State: vitalgate.RolloutActive,
		Groups: groups, HealthWindow: p.HealthWindow, Silence: p.Silence, CreatedBy: operator, CreatedAt: now, UpdatedAt: now}
	if r.HealthWindow == 0 {
		r.HealthWindow = DefaultHealthWindow
	} else if r.HealthWindow < 0 {
		r.HealthWindow = 0
	}
	if r.Silence <= 0 {
		r.Silence = DefaultSilence
	}
	if r.Groups[0].Approval && !r.Critical {
		r.State, r.Reason = vitalgate.RolloutWaiting, "group 1 waits for approval"
	} else {
		r.Groups[0].StartedAt = now
	}
	rows := make([]vitalgate.DeviceUpdate, 0, len(members))
	for id, g := range members {
		rows = append(rows, vitalgate.DeviceUpdate{RolloutID: r.ID, DeviceID: id, Group: g, State: vitalgate.UpdateAssigned, UpdatedAt: now})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].DeviceID < rows[j].DeviceID })
	kind := "rollout-start"
	if p.Critical {
		kind = "rollout-critical"
	}
	desc := fmt.Sprintf("%s %s to %d devices in %d groups", p.Model, p.Version, len(rows), len(groups))
	if p.Site != "" {
		desc += " of site " + p.Site
	}
	entries := [][]byte{s.siteEntry(ctx, operator, kind, p.Model, p.Site, desc)}
	// An empty first group (or more) advances at once.
	entries = append(entries, s.evaluate(ctx, &r, rows, now)...)
	err = s.Store.WriteRollout(ctx, vitalgate.RolloutWrite{Rollout: &r, Create: true, Devices: rows}, entries...)
	if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
		return vitalgate.Rollout{}, vitalgate.Errorf(vitalgate.ECONFLICT,
			"another rollout of model %s was started at the same moment; see update rollout status, abort it if it is not wanted, and try again", p.Model)
	}
	return r, err
}

// normalizeGroups checks the groups and fills in the defaults.
func normalizeGroups(in []vitalgate.RolloutGroup) ([]vitalgate.RolloutGroup, error) {
	if len(in) == 0 {
		in = []vitalgate.RolloutGroup{{Percent: 100}}
	}
	if len(in) > 20 {
		return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, "groups", "a rollout has at most 20 groups")
	}
	out := make([]vitalgate.RolloutGroup, len(in))
	last := 0
	seen := map[string]bool{}
	for i, g := range in {
		g.StartedAt, g.Accepted = time.Time{}, 0
		switch {
		case len(g.Devices) > 0 && g.Percent != 0:
			return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, "groups", "group %d: a group is a percentage or a list of devices, not both", i+1)
		case len(g.Devices) == 0 && (g.Percent < 1 || g.Percent > 100):
			return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, "groups", "group %d: a percentage is 1 to 100", i+1)
		case len(g.Devices) == 0 && g.Percent <= last:
			return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, "groups",
				"group %d: percentages are cumulative and must grow (%d%% after %d%%): --percent 10,50,100 takes 10%%, then up to 50%%, then the rest", i+1, g.Percent, last)
		}
		if len(g.Devices) == 0 {
			last = g.Percent
		}
		for _, d := range g.Devices {
			if seen[d] {
				return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, "groups", "device %s is listed in two groups", d)
			}
			seen[d] = true
		}
		g.Devices = slices.Clone(g.Devices)
		if g.SuccessPercent == 0 {
			g.SuccessPercent = DefaultSuccessPercent
		}
		if g.ErrorPercent == 0 {
			g.ErrorPercent = DefaultErrorPercent
		} else if g.ErrorPercent < 0 {
			g.ErrorPercent = 0
		}
		if g.SuccessPercent < 1 || g.SuccessPercent > 100 || g.ErrorPercent > 100 {
			return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, "groups", "group %d: thresholds are percentages (success 1 to 100, errors 0 to 100)", i+1)
		}
		out[i] = g
	}
	return out, nil
}

// assign returns the group of every device of model (of site, when set) that the groups
// take.
func assign(all []vitalgate.Device, model, site string, groups []vitalgate.RolloutGroup) (map[string]int, error) {
	byID := map[string]vitalgate.Device{}
	for _, d := range all {
		byID[d.ID] = d
	}
	members := map[string]int{}
	for i, g := range groups {
		for _, id := range g.Devices {
			d, ok := byID[id]
			if !ok {
				return nil, vitalgate.Errorf(vitalgate.ENOTFOUND, "group %d lists device %s, which is not registered", i+1, id)
			}
			if d.Model != model {
				return nil, vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "group %d lists device %s, which is of model %q, not %s", i+1, id, d.Model, model)
			}
			if !inSite(site, d) {
				return nil, vitalgate.Errorf(vitalgate.EUNPROCESSABLE,
					"group %d lists device %s, which is of site %s: this rollout targets site %s's devices only", i+1, id, vitalgate.StoredSite(d.Site), site)
			}
			members[id] = i
		}
	}
	var rest []vitalgate.Device
	for _, d := range all {
		if _, listed := members[d.ID]; !listed && d.Model == model && d.Status == vitalgate.DeviceActive && inSite(site, d) {
			rest = append(rest, d)
		}
	}
	sort.Slice(rest, func(i, j int) bool {
		hi, hj := deviceHash(rest[i].ID), deviceHash(rest[j].ID)
		return hi < hj || hi == hj && rest[i].ID < rest[j].ID
	})
	n, from := len(rest), 0
	for i, g := range groups {
		if len(g.Devices) > 0 {
			continue
		}
		to := (g.Percent*n + 99) / 100
		for _, d := range rest[from:to] {
			members[d.ID] = i
		}
		from = to
	}
	return members, nil
}

// inSite reports whether a rollout of site ("" for every site) targets device d.
func inSite(site string, d vitalgate.Device) bool {
	return site == "" || vitalgate.StoredSite(d.Site) == site
}

// checkSite reports whether site can scope a rollout: a site id that is registered (when
// the store keeps sites). EINVALID, ENOTFOUND.
func (s *Service) checkSite(ctx context.Context, site string) error {
	if err := vitalgate.CheckSiteID(site); err != nil {
		return err
	}
	if sites, ok := s.Store.(interface {
		Site(ctx context.Context, id string) (vitalgate.Site, error)
	}); ok {
		if _, err := sites.Site(ctx, site); vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return vitalgate.FieldErrorf(vitalgate.ENOTFOUND, "site", "no site %q is registered (site list shows them)", site)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// lateGroup is the group of a device the rollout did not assign at its start (enrolled
// later): the percentage group its hash falls in, or -1 (also for a device of another site
// than the rollout's).
func lateGroup(r vitalgate.Rollout, d vitalgate.Device) int {
	if !inSite(r.Site, d) {
		return -1
	}
	bucket := int(deviceHash(d.ID) % 100)
	for i, g := range r.Groups {
		if len(g.Devices) == 0 && bucket < g.Percent {
			return i
		}
	}
	return -1
}

// live returns the model's live rollout, or ENOTFOUND with what to do.
func (s *Service) live(ctx context.Context, model string) (vitalgate.Rollout, error) {
	r, err := s.Store.LatestRollout(ctx, model)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND || err == nil && !r.State.Live() {
		return vitalgate.Rollout{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "model %s has no rollout in progress", model)
	}
	return r, err
}

// act applies an operator's change to the model's live rollout, retrying when a concurrent
// evaluation changed it meanwhile.
func (s *Service) act(ctx context.Context, operator, model, subtype string, change func(r *vitalgate.Rollout, now time.Time) (string, error)) (vitalgate.Rollout, error) {
	for attempt := 0; ; attempt++ {
		r, err := s.live(ctx, model)
		if err != nil {
			return vitalgate.Rollout{}, err
		}
		now := s.now()
		desc, err := change(&r, now)
		if err != nil {
			return vitalgate.Rollout{}, err
		}
		r.UpdatedAt = now
		entries := [][]byte{s.siteEntry(ctx, operator, subtype, model, r.Site, fmt.Sprintf("%s %s: %s", r.Model, r.Version, desc))}
		var rows []vitalgate.DeviceUpdate
		if r.State == vitalgate.RolloutActive {
			if rows, err = s.Store.RolloutDevices(ctx, r.ID); err != nil {
				return vitalgate.Rollout{}, err
			}
			entries = append(entries, s.evaluate(ctx, &r, rows, now)...)
		}
		err = s.Store.WriteRollout(ctx, vitalgate.RolloutWrite{Rollout: &r}, entries...)
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT && attempt < 5 {
			continue
		}
		return r, err
	}
}

// Pause stops offering the model's rollout until Resume. Errors: ENOTFOUND (no rollout in
// progress), ECONFLICT (it is not active), EINVALID (reason).
func (s *Service) Pause(ctx context.Context, operator, model, reason string) (vitalgate.Rollout, error) {
	if err := checkReason(reason); err != nil {
		return vitalgate.Rollout{}, err
	}
	return s.act(ctx, operator, model, "rollout-pause", func(r *vitalgate.Rollout, _ time.Time) (string, error) {
		if r.State != vitalgate.RolloutActive {
			return "", vitalgate.Errorf(vitalgate.ECONFLICT, "the rollout of %s is %s, not active", model, r.State)
		}
		r.State, r.Reason = vitalgate.RolloutPaused, "paused by "+operator
		if reason != "" {
			r.Reason += ": " + reason
		}
		return "paused", nil
	})
}

// Resume continues a paused rollout. The failures of the current group so far are accepted:
// they no longer count against its error threshold, nor in its success ratio. Errors:
// ENOTFOUND, ECONFLICT (not paused).
func (s *Service) Resume(ctx context.Context, operator, model string) (vitalgate.Rollout, error) {
	var accepted int
	r, err := s.act(ctx, operator, model, "rollout-resume", func(r *vitalgate.Rollout, _ time.Time) (string, error) {
		if r.State != vitalgate.RolloutPaused {
			return "", vitalgate.Errorf(vitalgate.ECONFLICT, "the rollout of %s is %s, not paused", model, r.State)
		}
		rows, err := s.Store.RolloutDevices(ctx, r.ID)
		if err != nil {
			return "", err
		}
		accepted = 0
		for _, u := range rows {
			if u.Group == r.Current && u.State.Failed() {
				accepted++
			}
		}
		r.Groups[r.Current].Accepted = accepted
		r.State, r.Reason = vitalgate.RolloutActive, ""
		return fmt.Sprintf("resumed, %d failures of group %d accepted", accepted, r.Current+1), nil
	})
	return r, err
}

// Approve starts the group that waits for approval. Errors: ENOTFOUND, ECONFLICT (no group
// waits).
func (s *Service) Approve(ctx context.Context, operator, model string) (vitalgate.Rollout, error) {
	return s.act(ctx, operator, model, "rollout-approve", func(r *vitalgate.Rollout, now time.Time) (string, error) {
		if r.State != vitalgate.RolloutWaiting {
			return "", vitalgate.Errorf(vitalgate.ECONFLICT, "no group of the rollout of %s waits for approval (it is %s)", model, r.State)
		}
		if !r.Groups[r.Current].StartedAt.IsZero() {
			r.Current++
		}
		r.Groups[r.Current].StartedAt = now
		r.State, r.Reason = vitalgate.RolloutActive, ""
		return fmt.Sprintf("group %d approved", r.Current+1), nil
	})
}

// Abort ends the model's rollout for good: nothing more is offered (devices that installed
// keep what they run). Errors: ENOTFOUND, EINVALID (reason).
func (s *Service) Abort(ctx context.Context, operator, model, reason string) (vitalgate.Rollout, error) {
	if err := checkReason(reason); err != nil {
		return vitalgate.Rollout{}, err
	}
	return s.act(ctx, operator, model, "rollout-abort", func(r *vitalgate.Rollout, _ time.Time) (string, error) {
		r.State, r.Reason = vitalgate.RolloutAborted, "aborted by "+operator
		if reason != "" {
			r.Reason += ": " + reason
		}
		return "aborted", nil
	})
}

// evaluate advances or pauses an active rollout by its current group's counts and returns
// the system's audit entries: one for every change it makes to r (in place), none when r
// is unchanged.
func (s *Service) evaluate(ctx context.Context, r *vitalgate.Rollout, rows []vitalgate.DeviceUpdate, now time.Time) [][]byte {
	var entries [][]byte
	for r.State == vitalgate.RolloutActive {
		g := &r.Groups[r.Current]
		c := countGroup(rows, r.Current)
		if failed := c.Failed - g.Accepted; failed > 0 && failed*100 > g.ErrorPercent*c.Targeted {
			r.State = vitalgate.RolloutPaused
			r.Reason = fmt.Sprintf("group %d: %d of %d devices failed, above its error threshold of %d%%; "+
				"resume to accept these failures and go on, or abort", r.Current+1, failed, c.Targeted, g.ErrorPercent)
			r.UpdatedAt = now
			entries = append(entries, s.systemEntry(ctx, "rollout-pause", r.Model, r.Version+": "+r.Reason))
			return entries
		}
		denom := c.Targeted - g.Accepted
		if denom > 0 && c.Passed*100 < g.SuccessPercent*denom {
			return entries
		}
		r.UpdatedAt = now
		if r.Current == len(r.Groups)-1 {
			r.State, r.Reason = vitalgate.RolloutCompleted, ""
			entries = append(entries, s.systemEntry(ctx, "rollout-complete", r.Model,
				fmt.Sprintf("%s: group %d met its success threshold (%d of %d passed); rollout completed", r.Version, r.Current+1, c.Passed, c.Targeted)))
			return entries
		}
		next := r.Current + 1
		if r.Groups[next].Approval && !r.Critical {
			r.State, r.Reason = vitalgate.RolloutWaiting, fmt.Sprintf("group %d waits for approval", next+1)
			entries = append(entries, s.systemEntry(ctx, "rollout-wait", r.Model,
				fmt.Sprintf("%s: group %d met its success threshold (%d of %d passed); group %d waits for approval", r.Version, r.Current+1, c.Passed, c.Targeted, next+1)))
			return entries
		}
		r.Current = next
		r.Groups[next].StartedAt = now
		entries = append(entries, s.systemEntry(ctx, "rollout-advance", r.Model,
			fmt.Sprintf("%s: group %d met its success threshold (%d of %d passed); group %d started", r.Version, next, c.Passed, c.Targeted, next+1)))
	}
	return entries
}

// GroupCount is the progress of one group.
type GroupCount struct {
	Targeted  int // devices in the group
	Pending   int // not reported or not yet through the health gate
	Installed int // reported installed (or healthy, or passed) and not failed
	Passed    int // through the health gate
	Failed    int // failed or rolled back (reported, or by the health gate)
}

func countGroup(rows []vitalgate.DeviceUpdate, group int) GroupCount {
	var c GroupCount
	for _, u := range rows {
		if u.Group != group {
			continue
		}
		c.Targeted++
		switch {
		case u.State.Failed():
			c.Failed++
		case u.State == vitalgate.UpdatePassed:
			c.Passed++
			c.Installed++
		case u.State == vitalgate.UpdateInstalled || u.State == vitalgate.UpdateHealthy:
			c.Installed++
			c.Pending++
		default:
			c.Pending++
		}
	}
	return c
}
