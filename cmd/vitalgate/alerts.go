package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/detect"
)

func (m *Main) runAlerts(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "alerts", args, map[string]func(context.Context, []string) error{
		"list": m.alertsList, "ack": m.alertsAck, "resolve": m.alertsResolve,
	})
}

// cliDetect is the detection capability of a data dir, for the command line (its alerts;
// it evaluates nothing).
func (m *Main) cliDetect(n *node) (*detect.Service, error) {
	st, ok := n.store.(vitalgate.AlertStore)
	if !ok {
		return nil, fmt.Errorf("this data dir's store keeps no alerts")
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		return nil, err
	}
	return detect.New(detect.Config{Store: st, Audit: alog, Now: m.Now})
}

// alertJSON is one alert in `alerts list --json`.
type alertJSON struct {
	ID           string            `json:"id"`
	Rule         string            `json:"rule"`
	RulesVersion int               `json:"rules_version"`
	Severity     string            `json:"severity"`
	Category     string            `json:"category"`
	Status       string            `json:"status"`
	Device       string            `json:"device,omitempty"`
	Client       string            `json:"client,omitempty"`
	Source       string            `json:"source,omitempty"`
	Site         string            `json:"site,omitempty"`
	From         time.Time         `json:"from"`
	To           time.Time         `json:"to"`
	Evidence     map[string]string `json:"evidence,omitempty"`
	Quarantined  bool              `json:"quarantined,omitempty"`
	Created      time.Time         `json:"created"`
	UpdatedBy    string            `json:"updated_by,omitempty"`
	Note         string            `json:"note,omitempty"`
}

func (m *Main) alertsList(ctx context.Context, args []string) error {
	fs := m.flags("alerts list", "alerts list --data DIR [--status open|acknowledged|resolved] [--device ID] [--limit N] [--json]")
	dir := fs.String("data", "", "data directory")
	status := fs.String("status", "", "only alerts in this status: open, acknowledged or resolved")
	device := fs.String("device", "", "only alerts that implicate this device")
	limit := fs.Int("limit", 100, "at most this many, newest first")
	asJSON := fs.Bool("json", false, "one JSON object per alert")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	switch vitalgate.AlertStatus(*status) {
	case "", vitalgate.AlertOpen, vitalgate.AlertAcknowledged, vitalgate.AlertResolved:
	default:
		return fmt.Errorf("--status must be open, acknowledged or resolved")
	}
	if *limit < 1 || *limit > 10000 {
		return fmt.Errorf("--limit must be between 1 and 10000")
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	d, err := m.cliDetect(n)
	if err != nil {
		return err
	}
	as, err := d.Alerts(ctx, vitalgate.Principal{Kind: "operator", ID: operator()},
		vitalgate.AlertFilter{Status: vitalgate.AlertStatus(*status), Device: *device, Limit: *limit})
	if err != nil {
		return cliError(err)
	}
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		for _, a := range as {
			if err := enc.Encode(alertJSON{ID: a.ID, Rule: a.Rule, RulesVersion: a.RulesVersion, Severity: a.Severity, Category: a.Category,
				Status: string(a.Status), Device: a.Device, Client: a.Client, Source: a.Source, Site: a.Site, From: a.From, To: a.To,
				Evidence: a.Evidence, Quarantined: a.Quarantined, Created: a.CreatedAt, UpdatedBy: a.UpdatedBy, Note: a.Note}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(as) == 0 {
		fmt.Fprintln(m.Stderr, "No alerts.")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tSEVERITY\tSTATUS\tRULE\tDEVICE\tCLIENT\tSOURCE\tEVIDENCE")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.CreatedAt.Format(time.RFC3339), a.Severity, a.Status, a.Rule,
			dash(a.Device), dash(a.Client), dash(a.Source), evidenceText(a.Evidence))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// evidenceText renders evidence as key=value pairs in key order.
func evidenceText(ev map[string]string) string {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + ev[k]
	}
	return dash(strings.Join(parts, " "))
}

func (m *Main) alertsAck(ctx context.Context, args []string) error {
	return m.alertsMove(ctx, args, "ack", "Acknowledged")
}

func (m *Main) alertsResolve(ctx context.Context, args []string) error {
	return m.alertsMove(ctx, args, "resolve", "Resolved")
}

func (m *Main) alertsMove(ctx context.Context, args []string, verb, done string) error {
	fs := m.flags("alerts "+verb, "alerts "+verb+" --data DIR --id ALERT [--note TEXT]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "alert id (from `vitalgate alerts list`)")
	note := fs.String("note", "", "a note for the audit log and the alert")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *id == "" {
		return fmt.Errorf("--id is required: the alert's id, from `vitalgate alerts list --data %s`", *dir)
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	d, err := m.cliDetect(n)
	if err != nil {
		return err
	}
	p := vitalgate.Principal{Kind: "operator", ID: operator()}
	if verb == "ack" {
		err = d.Acknowledge(ctx, p, *id, *note)
	} else {
		err = d.Resolve(ctx, p, *id, *note)
	}
	if err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "%s alert %s.\n", done, *id)
	return nil
}
