package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/registry"
)

func (m *Main) runDevice(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "device", args, map[string]func(context.Context, []string) error{
		"add": m.deviceAdd, "assign": m.deviceAssign, "revoke": m.deviceRevoke, "list": m.deviceList,
		"reissue": m.deviceReissue, "import": m.deviceImport, "place": m.devicePlace,
		"quarantine": m.deviceQuarantine, "release": m.deviceRelease,
	})
}

// deviceQuarantine isolates a device (registry.Service.Quarantine).
func (m *Main) deviceQuarantine(ctx context.Context, args []string) error {
	return m.deviceIsolation(ctx, args, "quarantine", true)
}

// deviceRelease ends a device's quarantine (registry.Service.Release).
func (m *Main) deviceRelease(ctx context.Context, args []string) error {
	return m.deviceIsolation(ctx, args, "release", false)
}

func (m *Main) deviceIsolation(ctx context.Context, args []string, verb string, on bool) error {
	usage := "device " + verb + " --data DIR --id ID --reason TEXT"
	if on {
		usage += " [--block-updates]"
	}
	fs := m.flags("device "+verb, usage)
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id")
	reason := fs.String("reason", "", "why (kept in the audit log)")
	block := new(bool)
	if on {
		fs.BoolVar(block, "block-updates", false, "refuse it the update repository too (by default a quarantined device may still fetch updates, for remediation); also for a device quarantined already")
	}
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("device", *id); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("--reason is required: say why the device is %s (it is kept in the audit log)", map[bool]string{true: "quarantined", false: "released"}[on])
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	reg, err := m.cliRegistry(n)
	if err != nil {
		return err
	}
	if on {
		op := registry.Operator(operator())
		err := reg.Quarantine(ctx, op, *id, *reason)
		switch {
		case err == nil:
			fmt.Fprintf(m.Stderr, "Quarantined device %s: every transport refuses its data (on running servers within %s), its enrollment secret is void and its rollouts offer it nothing. Release it with `vitalgate device release --data %s --id %s --reason TEXT`.\n",
				*id, reg.MaxStaleness(), *dir, *id)
		case !*block || vitalgate.ErrorCode(err) != vitalgate.ECONFLICT:
			return cliError(err)
		}
		if !*block {
			fmt.Fprintf(m.Stderr, "It may still fetch updates (remediation); `--block-updates` refuses it those too.\n")
			return nil
		}
		if err := reg.BlockUpdates(ctx, op, *id, *reason); err != nil {
			return cliError(err)
		}
		fmt.Fprintf(m.Stderr, "Blocked the updates of quarantined device %s: it may fetch nothing until its release.\n", *id)
		return nil
	}
	if err := reg.Release(ctx, registry.Operator(operator()), *id, *reason); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Released device %s: it may act again with its certificates (on running servers within %s).\n", *id, reg.MaxStaleness())
	return nil
}

func (m *Main) deviceAdd(ctx context.Context, args []string) error {
	fs := m.flags("device add", "device add --data DIR --id ID --patient PATIENT [--site S] [--model M] [--expires 24h] [--strict]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id (becomes the CN of its certificate)")
	patient := fs.String("patient", "", "id of the patient the device is assigned to (none for a model whose binding is identified)")
	model := fs.String("model", "", "device model (optional; its binding decides how the device's patients are found)")
	site := fs.String("site", vitalgate.DefaultSite, "the site the device belongs to")
	expires := fs.Duration("expires", 24*time.Hour, "how long the enrollment secret stays valid")
	strict := fs.Bool("strict", false, "refuse a patient id that no stored Patient has (default: warn)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("device", *id); err != nil {
		return err
	}
	if *patient != "" {
		if err := checkID("patient", *patient); err != nil {
			return err
		}
	}
	if *expires <= 0 || *expires > 30*24*time.Hour {
		return fmt.Errorf("--expires must be between 1s and 720h")
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	taken := func() error {
		return fmt.Errorf("device %q is already registered: for a new enrollment secret use `vitalgate device reissue --data %s --id %s`", *id, *dir, *id)
	}
	if _, err := n.store.Device(ctx, *id); err == nil {
		return taken()
	}
	if *patient != "" { // a shared (identified) device is added without a patient
		if err := m.checkPatient(ctx, n, *patient, *strict); err != nil {
			return err
		}
	}
	d, secret, err := m.addDeviceTo(ctx, n, *site, *id, *patient, *model, *expires)
	if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
		return taken()
	} else if err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Registered device %s. Its one-time enrollment secret (valid until %s) is on standard output.\n",
		*id, d.EnrollExpiresAt.Format(time.RFC3339))
	fmt.Fprintln(m.Stdout, secret)
	return nil
}

func (m *Main) deviceRevoke(ctx context.Context, args []string) error {
	fs := m.flags("device revoke", "device revoke --data DIR --id ID")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("device", *id); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	reg, err := m.cliRegistry(n)
	if err != nil {
		return err
	}
	if err := reg.Revoke(ctx, registry.Operator(operator()), *id); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Revoked device %s: its certificates are no longer accepted (on running servers within %s).\n",
		*id, reg.MaxStaleness())
	return nil
}

// cliError turns a registry error into the command's message.
func cliError(err error) error {
	switch vitalgate.ErrorCode(err) {
	case vitalgate.ENOTFOUND, vitalgate.ECONFLICT, vitalgate.EINVALID:
		return errors.New(vitalgate.ErrorMessage(err))
	}
	return err
}

func (m *Main) deviceList(ctx context.Context, args []string) error {
	fs := m.flags("device list", "device list --data DIR [--json]")
	dir := fs.String("data", "", "data directory")
	asJSON := fs.Bool("json", false, "one JSON object per device (the fields of earlier versions)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	reg, err := m.cliRegistry(n)
	if err != nil {
		return err
	}
	if *asJSON {
		return m.deviceListJSON(ctx, n, reg)
	}
	rows, err := reg.Overview(ctx, registry.Operator(operator()))
	if err != nil {
		return err
	}
	sw, err := deviceSoftware(ctx, n, overviewDevices(rows))
	if err != nil {
		return err
	}
	return printDeviceTable(m.Stdout, rows, sw, m.Now())
}

// printDeviceTable writes the operator's device table; sw holds each device's installed
// version and last update state (deviceSoftware).
func printDeviceTable(w io.Writer, rows []registry.DeviceRow, sw softwareStates, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMODEL\tVERSION\tPATIENT\tSTATUS\tCERTIFICATE EXPIRES\tLAST SEEN\tLAST UPDATE")
	for _, r := range rows {
		status := string(r.Status)
		switch {
		case r.Status != vitalgate.DeviceActive:
		case !r.Enrolled() && !now.Before(r.EnrollExpiresAt):
			status = "secret expired (reissue)"
		case !r.Enrolled():
			status = "awaiting enrollment"
		default:
			status = "enrolled"
		}
		patient := r.PatientID
		switch {
		case r.PatientErr != nil:
			patient = "(cannot open: " + vitalgate.ErrorMessage(r.PatientErr) + ")"
		case patient == "":
			patient = "-"
		}
		cert := "-"
		if r.Cert.Serial != "" {
			cert = r.Cert.NotAfter.UTC().Format(time.RFC3339)
			if r.Cert.RevokedBy(now) {
				cert += " (revoked)"
			} else if !now.Before(r.Cert.NotAfter) {
				cert += " (expired)"
			}
		}
		seen := "never"
		if !r.LastSeen.IsZero() {
			seen = r.LastSeen.UTC().Format(time.RFC3339)
		}
		model := r.Model
		if model == "" {
			model = "-"
		}
		version, update := softwareText(sw[r.ID])
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, model, version, patient, status, cert, seen, update)
	}
	return tw.Flush()
}

// deviceListJSON prints one JSON object per device, as device list did before the table.
func (m *Main) deviceListJSON(ctx context.Context, n *node, reg *registry.Service) error {
	ds, err := reg.Devices(ctx)
	if err != nil {
		return err
	}
	sw, err := deviceSoftware(ctx, n, ds)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	for _, d := range ds {
		enrolled := d.EnrollSecretHash == ""
		row := map[string]any{
			"id": d.ID, "site": d.Site, "model": d.Model, "status": d.Status, "enrolled": enrolled,
			"created": d.CreatedAt.Format(time.RFC3339),
		}
		as, err := reg.Assignments(ctx, d.ID, 2)
		if err != nil {
			return err
		}
		if len(as) > 0 && as[0].Current() {
			row["assigned_since"] = as[0].From.Format(time.RFC3339)
		}
		if len(as) > 1 && !as[1].To.IsZero() {
			// Readings of the previous assignment are accepted for the server's
			// --assignment-grace after this time.
			row["previous_assignment_ended"] = as[1].To.Format(time.RFC3339)
		}
		addSoftware(row, sw[d.ID])
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

// checkPatient warns (or with strict refuses) when no stored Patient has the id: a device
// assigned to a mistyped id would store readings nobody finds under the intended patient.
func (m *Main) checkPatient(ctx context.Context, n *node, patient string, strict bool) error {
	ok, err := registry.PatientStored(ctx, n.store, patient)
	if err != nil || ok {
		return err
	}
	if strict {
		return fmt.Errorf("no Patient with id %q is stored (--strict): check the id, or create the Patient first (POST /fhir/Patient) and use the id it gets", patient)
	}
	fmt.Fprintf(m.Stderr, "Warning: no Patient with id %q is stored yet; readings will be filed under that id. If it is a typo, fix it with `vitalgate device assign` (--strict refuses instead).\n", patient)
	return nil
}

// deviceReissue prints a new one-time enrollment secret for a device that has not enrolled
// (lost or expired secret) or was revoked (to provision it again).
func (m *Main) deviceReissue(ctx context.Context, args []string) error {
	fs := m.flags("device reissue", "device reissue --data DIR --id ID [--expires 24h]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id")
	expires := fs.Duration("expires", registry.DefaultEnrollTTL, "how long the new enrollment secret stays valid")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("device", *id); err != nil {
		return err
	}
	if *expires <= 0 || *expires > registry.MaxEnrollTTL {
		return fmt.Errorf("--expires must be between 1s and 720h")
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	reg, err := m.cliRegistry(n)
	if err != nil {
		return err
	}
	was, err := reg.Device(ctx, *id)
	if err != nil {
		return cliError(err)
	}
	d, secret, err := reg.Reissue(ctx, registry.Operator(operator()), *id, *expires)
	if err != nil {
		return cliError(err)
	}
	again := ""
	if was.Status == vitalgate.DeviceRevoked {
		again = " It is active again; its old certificates stay revoked, so it must enroll anew."
	}
	fmt.Fprintf(m.Stderr, "Device %s has a new one-time enrollment secret (valid until %s), on standard output; the previous one no longer works.%s\n",
		*id, d.EnrollExpiresAt.Format(time.RFC3339), again)
	fmt.Fprintln(m.Stdout, secret)
	return nil
}

// deviceImport registers the devices of a CSV file and writes their secrets to a new file
// only the operator can read.
func (m *Main) deviceImport(ctx context.Context, args []string) error {
	fs := m.flags("device import", "device import --data DIR [--secrets FILE] [--expires 24h] FILE.csv")
	dir := fs.String("data", "", "data directory")
	secretsFile := fs.String("secrets", "", "new file for the enrollment secrets, mode 0600, never overwritten (default FILE.secrets.csv)")
	expires := fs.Duration("expires", registry.DefaultEnrollTTL, "how long the enrollment secrets stay valid")
	if err := parse(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(fs.Output(), "name one CSV file (header id,patient[,model], then one device per line)")
		fs.Usage()
		return errUsage
	}
	if *expires <= 0 || *expires > registry.MaxEnrollTTL {
		return fmt.Errorf("--expires must be between 1s and 720h")
	}
	in := fs.Arg(0)
	if *secretsFile == "" {
		*secretsFile = strings.TrimSuffix(in, ".csv") + ".secrets.csv"
	}
	f, err := os.Open(in) // #nosec G304 -- the operator names the file
	if err != nil {
		return err
	}
	rows, err := registry.ParseImportCSV(f)
	_ = f.Close()
	if err != nil {
		return cliError(err)
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	reg, err := m.cliRegistry(n)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(*secretsFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the operator names the file
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: it may hold the secrets of an earlier import, so it is never overwritten; move it away or give --secrets NEWFILE", *secretsFile)
	} else if err != nil {
		return err
	}
	count, err := reg.Import(ctx, registry.Operator(operator()), rows, *expires, out)
	if serr := out.Sync(); err == nil {
		err = serr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if count == 0 {
		_ = os.Remove(*secretsFile) // nothing registered: no secrets to keep
	}
	if err != nil {
		if count > 0 {
			return fmt.Errorf("%w; the %d registered before it have their secrets in %s", cliError(err), count, *secretsFile)
		}
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Registered %d devices. Their one-time enrollment secrets are in %s (mode 0600, shown only there): hand each to its device, then delete the file.\n",
		count, *secretsFile)
	return nil
}

// cliRegistry returns the registry for a command-line action (audited as the operator).
func (m *Main) cliRegistry(n *node) (*registry.Service, error) {
	alog, err := n.AuditLog("cli")
	if err != nil {
		return nil, err
	}
	return n.NewRegistry(alog, registry.DefaultConfig(), nil)
}

// addDevice registers a device assigned to patient and returns it with its one-time
// enrollment secret.
func (m *Main) addDevice(ctx context.Context, n *node, id, patient, model string, expires time.Duration) (vitalgate.Device, string, error) {
	return m.addDeviceTo(ctx, n, vitalgate.DefaultSite, id, patient, model, expires)
}

// addDeviceTo is addDevice for a device of site.
func (m *Main) addDeviceTo(ctx context.Context, n *node, site, id, patient, model string, expires time.Duration) (vitalgate.Device, string, error) {
	reg, err := m.cliRegistry(n)
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	return reg.AddToSite(ctx, registry.Operator(operator()), site, id, patient, model, expires)
}

// deviceAssign reassigns a device to another patient; it takes effect for readings measured
// from now on (earlier ones still belong to the previous patient).
func (m *Main) deviceAssign(ctx context.Context, args []string) error {
	fs := m.flags("device assign", "device assign --data DIR --id ID --patient PATIENT [--strict]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id")
	patient := fs.String("patient", "", "id of the patient the device is now assigned to")
	strict := fs.Bool("strict", false, "refuse a patient id that no stored Patient has (default: warn)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("device", *id); err != nil {
		return err
	}
	if err := checkID("patient", *patient); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := m.checkPatient(ctx, n, *patient, *strict); err != nil {
		return err
	}
	reg, err := m.cliRegistry(n)
	if err != nil {
		return err
	}
	if _, err := reg.Assign(ctx, registry.Operator(operator()), *id, *patient); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Device %s is now assigned to patient %s; readings it measures from now on must name that patient.\n", *id, *patient)
	return nil
}

// explainNoMatch says why an export for a patient found nothing: no Patient with that id
// (a typo?) is another answer than a Patient with no data (in that range).
func (m *Main) explainNoMatch(ctx context.Context, n *node, patient string, f vitalgate.ResourceFilter) error {
	ok, err := registry.PatientStored(ctx, n.store, patient)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		fmt.Fprintf(m.Stderr, "Nothing is stored for patient %q, and no Patient has that id: check the id (`vitalgate device list` shows the patients devices are assigned to).\n", patient)
	case !f.Since.IsZero():
		fmt.Fprintf(m.Stderr, "Patient %q exists but has no data stored since %s.\n", patient, f.Since.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(m.Stderr, "Patient %q exists but has no data stored.\n", patient)
	}
	return nil
}
