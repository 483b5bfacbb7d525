package rollout

import (
	"context"
	"sort"
	"time"

	"github.com/vitalgate/vitalgate"
)

// Latency are the patch-latency figures of one rollout (FDA premarket guidance §V.A.6):
// the time from the rollout's start to 50 %, 90 % and 100 % of its targeted devices
// installed, the failure rate and the devices behind. The clock starts at the rollout's
// start (Rollout.CreatedAt): the release's publish time belongs to the repository, and
// the lead's `update status` may measure from it instead.
type Latency struct {
	Model, Version string
	Site           string // the one site whose devices the rollout targets; "" for every site
	RolloutID      string
	State          vitalgate.RolloutState
	Started        time.Time
	Targeted       int // devices in the rollout's groups
	Installed      int // reported installed (or healthy, or passed) and not failed since
	Passed         int // through the health gate
	Failed         int // failed, rolled back, or failed the health gate
	Behind         int // targeted devices that do not run the version (Targeted - Installed)
	// To50, To90 and To100 are the times from Started until that share of the targeted
	// devices had installed; negative while not reached.
	To50, To90, To100 time.Duration
	// FailureRate is Failed over the devices that reported anything (0 when none did).
	FailureRate float64
}

// latency computes the figures of r from its device rows.
func latency(r vitalgate.Rollout, rows []vitalgate.DeviceUpdate) Latency {
	l := Latency{Model: r.Model, Version: r.Version, Site: r.Site, RolloutID: r.ID, State: r.State, Started: r.CreatedAt,
		Targeted: len(rows), To50: -1, To90: -1, To100: -1}
	var installs []time.Time
	attempted := 0
	for _, u := range rows {
		if u.State != vitalgate.UpdateAssigned {
			attempted++
		}
		switch {
		case u.State.Failed():
			l.Failed++
		case u.State == vitalgate.UpdateInstalled || u.State == vitalgate.UpdateHealthy || u.State == vitalgate.UpdatePassed:
			l.Installed++
			installs = append(installs, u.InstalledAt)
			if u.State == vitalgate.UpdatePassed {
				l.Passed++
			}
		}
	}
	l.Behind = l.Targeted - l.Installed
	if attempted > 0 {
		l.FailureRate = float64(l.Failed) / float64(attempted)
	}
	sort.Slice(installs, func(i, j int) bool { return installs[i].Before(installs[j]) })
	at := func(pct int) time.Duration {
		need := (pct*l.Targeted + 99) / 100
		if need == 0 || need > len(installs) {
			return -1
		}
		return installs[need-1].Sub(l.Started)
	}
	if l.Targeted > 0 {
		l.To50, l.To90, l.To100 = at(50), at(90), at(100)
	}
	return l
}

// GroupStatus is one group of a rollout and its progress.
type GroupStatus struct {
	vitalgate.RolloutGroup
	GroupCount
}

// Status is a rollout with its groups' progress, its devices and its patch latency.
type Status struct {
	Rollout vitalgate.Rollout
	Groups  []GroupStatus
	Devices []vitalgate.DeviceUpdate
	Latency Latency
}

// Status returns the newest rollout of model, or of every model when model is "" (ordered
// by model), with progress and latency. A model with no rollout has no entry.
func (s *Service) Status(ctx context.Context, model string) ([]Status, error) {
	var rs []vitalgate.Rollout
	if model != "" {
		r, err := s.Store.LatestRollout(ctx, model)
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		rs = []vitalgate.Rollout{r}
	} else {
		all, err := s.Store.Rollouts(ctx, "", 200)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, r := range all {
			if !seen[r.Model] {
				seen[r.Model] = true
				rs = append(rs, r)
			}
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].Model < rs[j].Model })
	}
	out := make([]Status, 0, len(rs))
	for _, r := range rs {
		rows, err := s.Store.RolloutDevices(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		st := Status{Rollout: r, Devices: rows, Latency: latency(r, rows)}
		for i, g := range r.Groups {
			st.Groups = append(st.Groups, GroupStatus{RolloutGroup: g, GroupCount: countGroup(rows, i)})
		}
		out = append(out, st)
	}
	return out, nil
}

// Latencies returns the patch-latency figures of every model's newest rollout, ordered by
// model (for the Prometheus metrics and `update status`).
func (s *Service) Latencies(ctx context.Context) ([]Latency, error) {
	st, err := s.Status(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]Latency, len(st))
	for i, x := range st {
		out[i] = x.Latency
	}
	return out, nil
}

// DeviceState is what an operator sees of one device's software: the version it reported
// installed last, and where it stands in its model's newest rollout.
type DeviceState struct {
	// Version is the software version the device reported installed last ("" when it
	// never reported one).
	Version string
	// Rollout is the version of the model's newest rollout when the device is in it ("" when
	// it is not), State its state there and Reason the reason of a failure.
	Rollout string
	State   vitalgate.DeviceUpdateState
	Reason  string
}

// DeviceStates returns the DeviceState of every device of devices that reported a version
// or is in its model's newest rollout, by device id (a device with neither has no entry).
// Each device costs two indexed lookups, each model one.
func (s *Service) DeviceStates(ctx context.Context, devices []vitalgate.Device) (map[string]DeviceState, error) {
	latest := map[string]*vitalgate.Rollout{} // by model; nil: the model has no rollout
	out := map[string]DeviceState{}
	for _, d := range devices {
		var st DeviceState
		v, err := s.Store.DeviceVersion(ctx, d.ID)
		switch {
		case err == nil:
			st.Version = v.Version
		case vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND:
			return nil, err
		}
		if d.Model != "" {
			r, seen := latest[d.Model]
			if !seen {
				lr, err := s.Store.LatestRollout(ctx, d.Model)
				switch {
				case err == nil:
					r = &lr
				case vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND:
					return nil, err
				}
				latest[d.Model] = r
			}
			if r != nil {
				u, err := s.Store.DeviceUpdate(ctx, r.ID, d.ID)
				switch {
				case err == nil:
					st.Rollout, st.State, st.Reason = r.Version, u.State, u.Reason
				case vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND:
					return nil, err
				}
			}
		}
		if st != (DeviceState{}) {
			out[d.ID] = st
		}
	}
	return out, nil
}
