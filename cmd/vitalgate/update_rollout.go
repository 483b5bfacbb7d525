package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/registry"
	"github.com/vitalgate/vitalgate/rollout"
)

// rolloutSubcommands are the update subcommands of this file, for the update dispatcher.
func (m *Main) rolloutSubcommands() map[string]func(context.Context, []string) error {
	return map[string]func(context.Context, []string) error{"rollout": m.updateRollout, "window": m.updateWindow}
}

// rollouts opens the data dir and returns its rollout capability, checking releases
// against the data dir's repository (Main.Releases when set).
func (m *Main) rollouts(ctx context.Context, dir string) (*rollout.Service, *node, error) {
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	st, ok := n.store.(rollout.Store)
	if !ok {
		_ = n.Close()
		return nil, nil, fmt.Errorf("the store of %s keeps no rollouts", dir)
	}
	var rel rollout.Releases
	if m.Releases != nil {
		rel = m.Releases(n.dir)
	} else {
		alog, err := n.AuditLog("cli")
		if err != nil {
			_ = n.Close()
			return nil, nil, err
		}
		if rel, err = n.Updates(alog, 0); err != nil {
			_ = n.Close()
			return nil, nil, err
		}
	}
	return &rollout.Service{Store: st, Releases: rel, Now: m.Now}, n, nil
}

// rolloutError turns a capability error into the message a person reads (its safe text).
func rolloutError(err error) error {
	switch vitalgate.ErrorCode(err) {
	case vitalgate.ENOTFOUND, vitalgate.ECONFLICT, vitalgate.EINVALID, vitalgate.EUNPROCESSABLE, vitalgate.EFORBIDDEN, vitalgate.EUNAVAILABLE:
		return errors.New(vitalgate.ErrorMessage(err))
	}
	return err
}

const rolloutUsage = `update rollout --data DIR --model M --version V [--percent 10,50,100] [--devices ID,...]... [--success 90] [--errors 10] [--approve-each] [--health-window 30m] [--silence 10m] [--critical] [--site S]
       vitalgate update rollout pause|resume|approve|abort|status --data DIR --model M ...`

// updateRollout starts a rollout, or runs one of its subactions (pause, resume, approve,
// abort, status).
func (m *Main) updateRollout(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "pause", "resume", "approve", "abort":
			return m.rolloutAct(ctx, args[0], args[1:])
		case "status":
			return m.rolloutStatus(ctx, args[1:])
		}
	}
	fs := m.flags("update rollout", rolloutUsage)
	dir := fs.String("data", "", "data directory")
	model := fs.String("model", "", "device model to update")
	version := fs.String("version", "", "approved release version to offer")
	percent := fs.String("percent", "", "cumulative percentages of the model's devices, one group each (10,50,100: 10%, then up to 50%, then the rest)")
	var devices stringList
	fs.Var(&devices, "devices", "a group of listed devices (comma-separated; repeat for more groups), ahead of the percentage groups")
	success := fs.Int("success", rollout.DefaultSuccessPercent, "percent of a group that must pass its health gate before the next group starts")
	errs := fs.Int("errors", rollout.DefaultErrorPercent, "percent of a group failing that pauses the rollout (0: the first failure)")
	approveEach := fs.Bool("approve-each", false, "every group after the first waits for an operator's update rollout approve")
	window := fs.Duration("health-window", rollout.DefaultHealthWindow, "how long an updated device must keep sending valid data after its healthy report (0: the report suffices)")
	silence := fs.Duration("silence", rollout.DefaultSilence, "longest gap without valid data (and longest wait for the healthy report) before a device counts as failed")
	critical := fs.Bool("critical", false, "out-of-cycle rollout: skips maintenance windows and approvals")
	site := fs.String("site", "", "only this site's devices of the model (default: every site the model has devices in, each within its own maintenance window)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *model == "" || *version == "" {
		fmt.Fprintln(m.Stderr, "update rollout needs --model and --version")
		fs.Usage()
		return errUsage
	}
	errPct := *errs
	if errPct == 0 {
		errPct = -1 // the plan's "pause on the first failure"
	}
	var groups []vitalgate.RolloutGroup
	for _, list := range devices {
		var ids []string
		for _, id := range strings.Split(list, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return fmt.Errorf("--devices names no device: give comma-separated device ids")
		}
		groups = append(groups, vitalgate.RolloutGroup{Devices: ids})
	}
	if *percent != "" {
		for _, p := range strings.Split(*percent, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(p), "%")))
			if err != nil {
				return fmt.Errorf("--percent takes cumulative percentages such as 10,50,100, not %q", *percent)
			}
			groups = append(groups, vitalgate.RolloutGroup{Percent: n})
		}
	} else if len(groups) == 0 {
		groups = []vitalgate.RolloutGroup{{Percent: 100}}
	}
	for i := range groups {
		groups[i].SuccessPercent, groups[i].ErrorPercent = *success, errPct
		groups[i].Approval = *approveEach && i > 0
	}
	hw := *window
	if hw == 0 {
		hw = -1 // the plan's "no health window"
	}
	svc, n, err := m.rollouts(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	r, err := svc.Start(ctx, operator(), rollout.Plan{Model: *model, Version: *version, Groups: groups, Critical: *critical,
		HealthWindow: hw, Silence: *silence, Site: *site})
	if err != nil {
		return rolloutError(err)
	}
	kind := "Rollout"
	if r.Critical {
		kind = "Critical rollout (maintenance windows and approvals skipped)"
	}
	fmt.Fprintf(m.Stderr, "%s of %s %s to %s started: %s.\n", kind, r.Model, r.Version, rolloutSites(r), describeState(r))
	return m.printStatus(ctx, svc, r.Model, false)
}

// rolloutAct runs pause, resume, approve or abort.
func (m *Main) rolloutAct(ctx context.Context, act string, args []string) error {
	usage := "update rollout " + act + " --data DIR --model M"
	if act == "pause" || act == "abort" {
		usage += " [--reason TEXT]"
	}
	fs := m.flags("update rollout "+act, usage)
	dir := fs.String("data", "", "data directory")
	model := fs.String("model", "", "device model whose rollout to "+act)
	var reason *string
	if act == "pause" || act == "abort" {
		reason = fs.String("reason", "", "why, for the audit log and the status (no patient data)")
	}
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *model == "" {
		fmt.Fprintln(m.Stderr, "update rollout "+act+" needs --model")
		fs.Usage()
		return errUsage
	}
	svc, n, err := m.rollouts(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	var r vitalgate.Rollout
	switch act {
	case "pause":
		r, err = svc.Pause(ctx, operator(), *model, *reason)
	case "resume":
		r, err = svc.Resume(ctx, operator(), *model)
	case "approve":
		r, err = svc.Approve(ctx, operator(), *model)
	case "abort":
		r, err = svc.Abort(ctx, operator(), *model, *reason)
	}
	if err != nil {
		return rolloutError(err)
	}
	fmt.Fprintf(m.Stderr, "Rollout of %s %s: %s.\n", r.Model, r.Version, describeState(r))
	return nil
}

// rolloutStatus prints the newest rollout of each model (or of --model) with its groups'
// progress and patch latency; --json gives the same as JSON.
func (m *Main) rolloutStatus(ctx context.Context, args []string) error {
	fs := m.flags("update rollout status", "update rollout status --data DIR [--model M] [--json]")
	dir := fs.String("data", "", "data directory")
	model := fs.String("model", "", "only this model")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	svc, n, err := m.rollouts(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	return m.printStatus(ctx, svc, *model, *asJSON)
}

func (m *Main) printStatus(ctx context.Context, svc *rollout.Service, model string, asJSON bool) error {
	st, err := svc.Status(ctx, model)
	if err != nil {
		return rolloutError(err)
	}
	if asJSON {
		return printStatusJSON(m.Stdout, st)
	}
	if len(st) == 0 {
		fmt.Fprintln(m.Stderr, "No rollouts yet: start one with `vitalgate update rollout --data DIR --model M --version V`.")
		return nil
	}
	return printStatusTable(m.Stdout, st)
}

// rolloutSites says whose devices a rollout targets, in words.
func rolloutSites(r vitalgate.Rollout) string {
	if r.Site == "" {
		return "the devices of every site"
	}
	return "site " + r.Site + "'s devices"
}

// describeState says where a rollout stands, in words.
func describeState(r vitalgate.Rollout) string {
	s := fmt.Sprintf("%s, group %d of %d", r.State, r.Current+1, len(r.Groups))
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s
}

func minutes(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}

// printStatusTable writes each rollout, its groups and its patch latency.
func printStatusTable(w io.Writer, st []rollout.Status) error {
	for i, s := range st {
		r, l := s.Rollout, s.Latency
		if i > 0 {
			fmt.Fprintln(w)
		}
		critical := ""
		if r.Critical {
			critical = ", critical"
		}
		fmt.Fprintf(w, "%s %s: %s%s\n", r.Model, r.Version, describeState(r), critical)
		fmt.Fprintf(w, "  target %s for %s, started %s by %s, health window %s, silence %s\n",
			r.Target, rolloutSites(r), r.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"), r.CreatedBy, r.HealthWindow, r.Silence)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  GROUP\tMEMBERS\tSUCCESS\tERRORS\tSTARTED\tDEVICES\tINSTALLED\tPASSED\tFAILED\tPENDING")
		for j, g := range s.Groups {
			members := fmt.Sprintf("up to %d%%", g.Percent)
			if len(g.Devices) > 0 {
				members = strings.Join(g.Devices, ",")
			}
			started := "no"
			switch {
			case !g.StartedAt.IsZero():
				started = g.StartedAt.UTC().Format("01-02 15:04")
			case g.Approval && !r.Critical:
				started = "on approval"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d%%\t%d%%\t%s\t%d\t%d\t%d\t%d\t%d\n", j+1, members, g.SuccessPercent, g.ErrorPercent, started,
				g.Targeted, g.Installed, g.Passed, g.Failed, g.Pending)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "  patch latency from the rollout's start: 50%% %s, 90%% %s, 100%% %s; failure rate %.0f%%; %d of %d devices behind\n",
			minutes(l.To50), minutes(l.To90), minutes(l.To100), 100*l.FailureRate, l.Behind, l.Targeted)
	}
	return nil
}

// printStatusJSON writes the status as one JSON document (durations in seconds, -1 while
// not reached).
func printStatusJSON(w io.Writer, st []rollout.Status) error {
	type group struct {
		Percent   int       `json:"percent,omitempty"`
		Devices   []string  `json:"devices,omitempty"`
		Success   int       `json:"success_percent"`
		Errors    int       `json:"error_percent"`
		Approval  bool      `json:"approval"`
		Started   time.Time `json:"started,omitzero"`
		Targeted  int       `json:"devices_targeted"`
		Installed int       `json:"installed"`
		Passed    int       `json:"passed"`
		Failed    int       `json:"failed"`
		Pending   int       `json:"pending"`
	}
	type device struct {
		ID     string `json:"id"`
		Group  int    `json:"group"`
		State  string `json:"state"`
		Reason string `json:"reason,omitempty"`
	}
	type entry struct {
		Model       string    `json:"model"`
		Version     string    `json:"version"`
		Target      string    `json:"target"`
		State       string    `json:"state"`
		Reason      string    `json:"reason,omitempty"`
		Critical    bool      `json:"critical"`
		Site        string    `json:"site,omitempty"` // absent: every site
		Group       int       `json:"current_group"`
		Started     time.Time `json:"started"`
		Groups      []group   `json:"groups"`
		Devices     []device  `json:"devices"`
		To50        float64   `json:"seconds_to_50_percent"`
		To90        float64   `json:"seconds_to_90_percent"`
		To100       float64   `json:"seconds_to_100_percent"`
		FailureRate float64   `json:"failure_rate"`
		Behind      int       `json:"devices_behind"`
		Targeted    int       `json:"devices_targeted"`
	}
	secs := func(d time.Duration) float64 {
		if d < 0 {
			return -1
		}
		return d.Seconds()
	}
	out := []entry{}
	for _, s := range st {
		r, l := s.Rollout, s.Latency
		e := entry{Model: r.Model, Version: r.Version, Target: r.Target, State: string(r.State), Reason: r.Reason, Critical: r.Critical, Site: r.Site,
			Group: r.Current + 1, Started: r.CreatedAt, To50: secs(l.To50), To90: secs(l.To90), To100: secs(l.To100),
			FailureRate: l.FailureRate, Behind: l.Behind, Targeted: l.Targeted, Devices: []device{}}
		for _, g := range s.Groups {
			e.Groups = append(e.Groups, group{Percent: g.Percent, Devices: g.Devices, Success: g.SuccessPercent, Errors: g.ErrorPercent,
				Approval: g.Approval, Started: g.StartedAt, Targeted: g.Targeted, Installed: g.Installed, Passed: g.Passed, Failed: g.Failed, Pending: g.Pending})
		}
		for _, u := range s.Devices {
			e.Devices = append(e.Devices, device{ID: u.DeviceID, Group: u.Group + 1, State: string(u.State), Reason: u.Reason})
		}
		out = append(out, e)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// updateWindow sets, clears or lists the sites' maintenance windows.
func (m *Main) updateWindow(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "update window", args, map[string]func(context.Context, []string) error{
		"set": m.windowSet, "clear": m.windowClear, "list": m.windowList,
	})
}

func (m *Main) windowSet(ctx context.Context, args []string) error {
	fs := m.flags("update window set", "update window set --data DIR --site S --hours HH:MM-HH:MM [--days mon-fri] [--zone Europe/Berlin]")
	dir := fs.String("data", "", "data directory")
	site := fs.String("site", vitalgate.DefaultSite, "the site whose devices the window is for")
	hours := fs.String("hours", "", "when updates may be offered, such as 02:00-04:00 (22:00-02:00 runs past midnight)")
	days := fs.String("days", "", "days of the window, such as mon-fri or sat,sun (default: every day)")
	zone := fs.String("zone", "UTC", "time zone of the hours (an IANA name)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	start, length, err := rollout.ParseClockRange(*hours)
	if err != nil {
		return rolloutError(err)
	}
	ds, err := rollout.ParseDays(*days)
	if err != nil {
		return rolloutError(err)
	}
	z := *zone
	if z == "UTC" {
		z = ""
	}
	svc, n, err := m.rollouts(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	w := vitalgate.MaintenanceWindow{Site: *site, Start: start, Length: length, Days: ds, Zone: z}
	if err := svc.SetWindow(ctx, operator(), w); err != nil {
		return rolloutError(err)
	}
	fmt.Fprintf(m.Stderr, "Site %s takes non-critical updates %s.\n", *site, rollout.DescribeWindow(w))
	return nil
}

func (m *Main) windowClear(ctx context.Context, args []string) error {
	fs := m.flags("update window clear", "update window clear --data DIR --site S")
	dir := fs.String("data", "", "data directory")
	site := fs.String("site", vitalgate.DefaultSite, "the site whose window to remove")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	svc, n, err := m.rollouts(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := svc.SetWindow(ctx, operator(), vitalgate.MaintenanceWindow{Site: *site}); err != nil {
		return rolloutError(err)
	}
	fmt.Fprintf(m.Stderr, "Site %s has no maintenance window: it takes updates at any time.\n", *site)
	return nil
}

func (m *Main) windowList(ctx context.Context, args []string) error {
	fs := m.flags("update window list", "update window list --data DIR")
	dir := fs.String("data", "", "data directory")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	svc, n, err := m.rollouts(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	ws, err := svc.Windows(ctx)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		fmt.Fprintln(m.Stderr, "No maintenance windows: every site takes updates at any time.")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tWINDOW")
	for _, w := range ws {
		fmt.Fprintf(tw, "%s\t%s\n", w.Site, rollout.DescribeWindow(w))
	}
	return tw.Flush()
}

// softwareStates are the devices' installed versions and last update states, by device id,
// for device list.
type softwareStates = map[string]rollout.DeviceState

// overviewDevices returns the devices of device list's rows.
func overviewDevices(rows []registry.DeviceRow) []vitalgate.Device {
	ds := make([]vitalgate.Device, len(rows))
	for i, r := range rows {
		ds[i] = r.Device
	}
	return ds
}

// deviceSoftware returns what POST /updates/report recorded of each device: the version it
// reported installed and its state in its model's newest rollout.
func deviceSoftware(ctx context.Context, n *node, devices []vitalgate.Device) (softwareStates, error) {
	st, ok := n.store.(rollout.Store)
	if !ok {
		return nil, nil
	}
	sw, err := (&rollout.Service{Store: st}).DeviceStates(ctx, devices)
	return sw, rolloutError(err)
}

// softwareText renders a device's installed version ("-" for none) and last update state,
// such as "2.0.0 installed", "2.0.0 failed" or "2.0.0 not reported yet" ("-" when it is
// in no rollout).
func softwareText(s rollout.DeviceState) (version, update string) {
	version, update = "-", "-"
	if s.Version != "" {
		version = s.Version
	}
	if s.Rollout != "" {
		state := string(s.State)
		switch s.State {
		case vitalgate.UpdateAssigned:
			state = "not reported yet"
		case vitalgate.UpdatePassed:
			state = "passed its health gate"
		}
		update = s.Rollout + " " + state
	}
	return version, update
}

// addSoftware adds a device's installed version and last update state to its device list
// --json object (fields absent when unknown).
func addSoftware(row map[string]any, s rollout.DeviceState) {
	if s.Version != "" {
		row["version"] = s.Version
	}
	if s.Rollout != "" {
		row["update_version"], row["update_state"] = s.Rollout, string(s.State)
		if s.Reason != "" {
			row["update_reason"] = s.Reason
		}
	}
}
