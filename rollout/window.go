package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// SetWindow sets the maintenance window of a site: its devices are offered non-critical
// updates only from w.Start for w.Length on w.Days (every day when empty), in w.Zone (UTC
// when empty). A zero Length removes the window (updates at any time). Errors: EINVALID
// (the window, an unknown time zone), ENOTFOUND (no such site).
func (s *Service) SetWindow(ctx context.Context, operator string, w vitalgate.MaintenanceWindow) error {
	if err := vitalgate.CheckSiteID(w.Site); err != nil {
		return err
	}
	if err := vitalgate.CheckMaintenanceWindow(w); err != nil {
		return err
	}
	if _, err := location(w.Zone); err != nil {
		return err
	}
	if sites, ok := s.Store.(interface {
		Site(ctx context.Context, id string) (vitalgate.Site, error)
	}); ok {
		if _, err := sites.Site(ctx, w.Site); vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return vitalgate.Errorf(vitalgate.ENOTFOUND, "no site %q is registered (site list shows them)", w.Site)
		} else if err != nil {
			return err
		}
	}
	w.UpdatedAt = s.now()
	subtype, desc := "window-set", "site "+w.Site+": "+DescribeWindow(w)
	if w.Length == 0 {
		subtype, desc = "window-clear", "site "+w.Site+": no maintenance window, updates at any time"
	}
	entry := s.encode(ctx, audit.Entry{Action: audit.ActionExecute, Subtype: subtype, AgentType: audit.AgentOperator,
		AgentID: operator, Site: w.Site, Resources: []string{"Organization/" + w.Site}, OutcomeDesc: desc})
	return s.Store.SetMaintenanceWindow(ctx, w, entry)
}

// Windows returns every site's maintenance window, ordered by site.
func (s *Service) Windows(ctx context.Context) ([]vitalgate.MaintenanceWindow, error) {
	return s.Store.MaintenanceWindows(ctx)
}

// location returns the time zone named zone (UTC for ""), or EINVALID.
func location(zone string) (*time.Location, error) {
	if zone == "" || zone == "UTC" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, "zone", "unknown time zone %q: use an IANA name such as Europe/Berlin, or UTC", zone)
	}
	return loc, nil
}

// InWindow reports whether t falls within w (a window with zero Length is always open).
// A window that runs past midnight belongs to the day it starts on.
func InWindow(w vitalgate.MaintenanceWindow, t time.Time) bool {
	if w.Length == 0 {
		return true
	}
	loc, err := location(w.Zone)
	if err != nil {
		return false
	}
	local := t.In(loc)
	for _, back := range []int{0, -1} { // today's window, or yesterday's running past midnight
		day := local.AddDate(0, 0, back)
		if len(w.Days) > 0 && !slices.Contains(w.Days, day.Weekday()) {
			continue
		}
		midnight := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
		start := midnight.Add(w.Start)
		if !local.Before(start) && local.Before(start.Add(w.Length)) {
			return true
		}
	}
	return false
}

func (s *Service) windowOpen(ctx context.Context, site string, now time.Time) (bool, error) {
	w, err := s.Store.MaintenanceWindow(ctx, vitalgate.StoredSite(site))
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return true, nil
	} else if err != nil {
		return false, err
	}
	return InWindow(w, now), nil
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseDays parses a list of days such as "mon-fri" or "sat,sun" (empty: every day).
func ParseDays(s string) ([]time.Weekday, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	index := func(name string) (int, error) {
		i := slices.Index(dayNames, strings.ToLower(strings.TrimSpace(name)))
		if i < 0 {
			return 0, vitalgate.FieldErrorf(vitalgate.EINVALID, "days", "unknown day %q: use mon, tue, wed, thu, fri, sat, sun, lists (sat,sun) and ranges (mon-fri)", name)
		}
		return i, nil
	}
	var out []time.Weekday
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, err := index(from)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = index(to); err != nil {
				return nil, err
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			if !slices.Contains(out, time.Weekday(d)) {
				out = append(out, time.Weekday(d))
			}
			if d == b {
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// ParseClockRange parses "HH:MM-HH:MM" into a start and a length (a range that ends at or
// before its start runs past midnight: 22:00-02:00 lasts 4 hours).
func ParseClockRange(s string) (start, length time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	bad := vitalgate.FieldErrorf(vitalgate.EINVALID, "window", "a window is HH:MM-HH:MM, such as 02:00-04:00 (22:00-02:00 runs past midnight), not %q", s)
	if !ok {
		return 0, 0, bad
	}
	clock := func(v string) (time.Duration, bool) {
		t, err := time.Parse("15:04", strings.TrimSpace(v))
		if err != nil {
			return 0, false
		}
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, true
	}
	from, ok1 := clock(a)
	to, ok2 := clock(b)
	if !ok1 || !ok2 {
		return 0, 0, bad
	}
	length = to - from
	if length <= 0 {
		length += 24 * time.Hour
	}
	return from, length, nil
}

// DescribeWindow says when a window is open, in words: "02:00-04:00 UTC, mon-fri".
func DescribeWindow(w vitalgate.MaintenanceWindow) string {
	if w.Length == 0 {
		return "any time"
	}
	end := (w.Start + w.Length) % (24 * time.Hour)
	hm := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	zone := w.Zone
	if zone == "" {
		zone = "UTC"
	}
	days := "every day"
	if len(w.Days) > 0 && len(w.Days) < 7 {
		names := make([]string, len(w.Days))
		for i, d := range w.Days {
			names[i] = dayNames[d]
		}
		days = strings.Join(names, ",")
	}
	return fmt.Sprintf("%s-%s %s, %s", hm(w.Start), hm(end), zone, days)
}
