package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/posture"
	"github.com/vitalgate/vitalgate/rollout"
	"github.com/vitalgate/vitalgate/updates"
)

// runUpdate is `vitalgate update`: the signed update repository (TUF).
func (m *Main) runUpdate(ctx context.Context, args []string) error {
	cmds := map[string]func(context.Context, []string) error{
		"keys":        m.updateKeys,
		"publish":     m.updatePublish,
		"sign":        m.updateSign,
		"rotate-root": m.updateRotateRoot,
		"status":      m.updateStatus,
		"root":        m.updateRoot,
	}
	for name, run := range m.rolloutSubcommands() { // rollout, window (update_rollout.go)
		cmds[name] = run
	}
	return m.dispatch(ctx, "update", args, cmds)
}

// updateError shows a refusal's plain message (what to do), keeping internal errors whole.
func updateError(err error) error {
	if err == nil {
		return nil
	}
	switch vitalgate.ErrorCode(err) {
	case vitalgate.EINTERNAL:
		return err
	}
	return errors.New(vitalgate.ErrorMessage(err))
}

func (m *Main) updateKeys(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "update keys", args, map[string]func(context.Context, []string) error{"init": m.updateKeysInit})
}

// updateKeysInit creates a key dir of offline root and targets keys.
func (m *Main) updateKeysInit(_ context.Context, args []string) error {
	fs := m.flags("update keys init", "update keys init --out KEYDIR [--threshold N]")
	out := fs.String("out", "", "the new key dir (keep it off the server)")
	threshold := fs.Int("threshold", 1, "signatures a release (and a new root) needs; as many root and targets keys are made")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required: the directory to create the keys in")
	}
	if _, err := updates.InitKeys(*out, *threshold, nil); err != nil {
		return updateError(err)
	}
	fmt.Fprintf(m.Stderr, "Created %d root and %d targets keys (threshold %d) in %s: root-N.key and targets-N.key are secret; give each key holder one of each with %s, and keep them off the server.\n",
		*threshold, *threshold, *threshold, *out, updates.KeysFile)
	return nil
}

// updateService opens the data dir and its update repository.
func (m *Main) updateService(ctx context.Context, dir string, maxSize int64) (*updates.Service, *node, error) {
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		_ = n.Close()
		return nil, nil, err
	}
	svc, err := n.Updates(alog, maxSize)
	if err != nil {
		_ = n.Close()
		return nil, nil, err
	}
	return svc, n, nil
}

func loadKeyDir(dir string) (*updates.KeySet, error) {
	if dir == "" {
		return nil, errors.New("--keys is required: the key dir `vitalgate update keys init` created (or a key holder's copy)")
	}
	ks, err := updates.LoadKeys(dir)
	return ks, updateError(err)
}

func liveText(r vitalgate.UpdateRelease) string {
	if r.Live {
		return "live"
	}
	return fmt.Sprintf("waiting for signatures (%d of %d): each key holder runs `vitalgate update sign --model %s --version %s`", r.Signed, r.Needed, r.Model, r.Version)
}

// updatePublish publishes a release: FILE may come before or after the optional flags.
func (m *Main) updatePublish(ctx context.Context, args []string) error {
	fs := m.flags("update publish", "update publish --data DIR --keys KEYDIR --model M --version V FILE [--sbom SBOM.json] [--max-size BYTES]")
	dir := fs.String("data", "", "data directory")
	keys := fs.String("keys", "", "key dir holding the targets keys to sign with")
	model := fs.String("model", "", "device model the release is for (registered with `vitalgate model add`)")
	version := fs.String("version", "", "the release's version")
	sbom := fs.String("sbom", "", "SBOM of the release (CycloneDX 1.5/1.6 or SPDX 2.3 JSON), kept with it and attached to its vulnerability posture")
	maxSize := fs.Int64("max-size", updates.DefaultMaxTargetSize, "largest file accepted, in bytes")
	if err := parse(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(m.Stderr, "the release FILE is missing")
		fs.Usage()
		return errUsage
	}
	file := fs.Arg(0)
	if rest := fs.Args()[1:]; len(rest) > 0 {
		if err := parse(fs, rest, false); err != nil {
			return err
		}
	}
	ks, err := loadKeyDir(*keys)
	if err != nil {
		return err
	}
	var sbomData []byte
	if *sbom != "" {
		if sbomData, err = os.ReadFile(*sbom); err != nil { // #nosec G304 -- the operator names the file
			return fmt.Errorf("--sbom: %w", err)
		}
		if !json.Valid(sbomData) {
			return fmt.Errorf("--sbom %s is not JSON: give the CycloneDX SBOM of the release", *sbom)
		}
		if _, err := posture.ParseSBOM(sbomData); err != nil { // refused before anything is published
			return fmt.Errorf("--sbom %s: %s", *sbom, vitalgate.ErrorMessage(err))
		}
	}
	f, err := os.Open(file) // #nosec G304 -- the operator names the file
	if err != nil {
		return fmt.Errorf("open the release file: %w", err)
	}
	defer f.Close()
	svc, n, err := m.updateService(ctx, *dir, *maxSize)
	if err != nil {
		return err
	}
	defer n.Close()
	r, err := svc.Publish(ctx, operator(), ks, updates.Release{Model: *model, Version: *version, FileName: baseName(file), Content: f, SBOM: sbomData})
	if err != nil {
		return updateError(err)
	}
	fmt.Fprintf(m.Stderr, "Published %s (%d bytes, sha256 %x): %s.\n", r.Target, r.Length, r.SHA256, liveText(r))
	if sbomData == nil {
		return nil
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		return err
	}
	ps, err := n.Posture(alog) // the vulnerability posture of the release (posture.go)
	if err != nil {
		return err
	}
	return m.addSBOM(ctx, ps, *model, *version, sbomData)
}

func baseName(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[i+1:]
		}
	}
	return path
}

// updateSign adds a key holder's signatures to a release.
func (m *Main) updateSign(ctx context.Context, args []string) error {
	fs := m.flags("update sign", "update sign --data DIR --keys KEYDIR --model M --version V")
	dir := fs.String("data", "", "data directory")
	keys := fs.String("keys", "", "key dir holding your targets key")
	model := fs.String("model", "", "device model of the release")
	version := fs.String("version", "", "the release's version")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	ks, err := loadKeyDir(*keys)
	if err != nil {
		return err
	}
	svc, n, err := m.updateService(ctx, *dir, 0)
	if err != nil {
		return err
	}
	defer n.Close()
	r, err := svc.Sign(ctx, operator(), ks, *model, *version)
	if err != nil {
		return updateError(err)
	}
	fmt.Fprintf(m.Stderr, "Signed %s (%d of %d signatures): %s.\n", r.Target, r.Signed, r.Needed, liveText(r))
	return nil
}

// updateRotateRoot publishes the next root version.
func (m *Main) updateRotateRoot(ctx context.Context, args []string) error {
	fs := m.flags("update rotate-root", "update rotate-root --data DIR --keys KEYDIR [--new-keys NEWKEYDIR] [--online]")
	dir := fs.String("data", "", "data directory")
	keys := fs.String("keys", "", "key dir holding the current root keys (their threshold)")
	newKeys := fs.String("new-keys", "", "key dir from `update keys init` whose root and targets keys replace the current ones")
	online := fs.Bool("online", false, "also replace the online snapshot and timestamp keys in the data dir")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	ks, err := loadKeyDir(*keys)
	if err != nil {
		return err
	}
	var rot updates.Rotation
	if *newKeys != "" {
		if rot.NewKeys, err = loadKeyDir(*newKeys); err != nil {
			return err
		}
	}
	svc, n, err := m.updateService(ctx, *dir, 0)
	if err != nil {
		return err
	}
	defer n.Close()
	var install func() error
	if *online {
		if rot.NewOnline, install, err = n.NewOnlineKeys(); err != nil {
			return err
		}
	}
	v, err := svc.RotateRoot(ctx, operator(), ks, rot)
	if err != nil {
		return updateError(err)
	}
	fmt.Fprintf(m.Stderr, "Published root version %d; devices follow it at their next update check.\n", v)
	if install != nil {
		if err := install(); err != nil {
			return fmt.Errorf("root %d names new online keys but they could not be written to the data dir: %w", v, err)
		}
		fmt.Fprintf(m.Stderr, "New online keys are in %s/update-snapshot.key and update-timestamp.key: copy both to every other node now.\n", n.dir)
	}
	if rot.NewKeys != nil {
		fmt.Fprintf(m.Stderr, "From now on sign with the keys in %s; the old key dir signs nothing.\n", rot.NewKeys.Dir)
	}
	return nil
}

// updateRoot prints the repository's first root metadata: what devices are provisioned
// with as their trusted root.
func (m *Main) updateRoot(ctx context.Context, args []string) error {
	fs := m.flags("update root", "update root --data DIR")
	dir := fs.String("data", "", "data directory")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	svc, n, err := m.updateService(ctx, *dir, 0)
	if err != nil {
		return err
	}
	defer n.Close()
	root, err := svc.Root(ctx)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return errors.New("the update repository has no root yet: the first `vitalgate update publish` creates it")
	} else if err != nil {
		return err
	}
	_, err = m.Stdout.Write(append(root, '\n'))
	return err
}

// updateStatus lists the releases per model.
func (m *Main) updateStatus(ctx context.Context, args []string) error {
	fs := m.flags("update status", "update status --data DIR [--model M] [--json]")
	dir := fs.String("data", "", "data directory")
	model := fs.String("model", "", "only this device model's releases")
	asJSON := fs.Bool("json", false, "one JSON object per release")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	svc, n, err := m.updateService(ctx, *dir, 0)
	if err != nil {
		return err
	}
	defer n.Close()
	rs, err := svc.Status(ctx, *model)
	if err != nil {
		return updateError(err)
	}
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		for _, r := range rs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rs) == 0 {
		fmt.Fprintln(m.Stderr, "No releases yet: publish one with `vitalgate update publish`.")
		return nil
	}
	if err := printUpdateStatus(m.Stdout, rs); err != nil {
		return err
	}
	return m.printPatchLatency(ctx, n, svc, rs, *model)
}

// printPatchLatency writes, under the releases, each rollout's patch latency (FDA premarket
// guidance §V.A.6): the time from the release going live to 50, 90 and 100 % of the
// targeted devices running it, the failure rate and the devices behind.
func (m *Main) printPatchLatency(ctx context.Context, n *node, svc *updates.Service, rs []updates.ReleaseStatus, model string) error {
	st, ok := n.store.(rollout.Store)
	if !ok {
		return nil
	}
	ls, err := (&rollout.Service{Store: st, Releases: svc, Now: m.Now}).Latencies(ctx)
	if err != nil {
		return updateError(err)
	}
	live := map[string]time.Time{}
	for _, r := range rs {
		if r.LiveAt != nil {
			live[r.Model+" "+r.Version] = *r.LiveAt
		}
	}
	first := true
	for _, l := range ls {
		at, ok := live[l.Model+" "+l.Version]
		if (model != "" && l.Model != model) || !ok {
			continue
		}
		if first {
			fmt.Fprintln(m.Stdout, "\nPatch latency from the release going live (its rollout's progress):")
			first = false
		}
		wait := l.Started.Sub(at) // from live to the rollout's start
		since := func(d time.Duration) string {
			if d < 0 {
				return "not yet"
			}
			return (wait + d).Round(time.Second).String()
		}
		state := string(l.State)
		if l.Site != "" {
			state += ", site " + l.Site
		}
		fmt.Fprintf(m.Stdout, "  %s %s (%s): 50%% %s, 90%% %s, 100%% %s; failure rate %.0f%%; %d of %d devices behind\n",
			l.Model, l.Version, state, since(l.To50), since(l.To90), since(l.To100), 100*l.FailureRate, l.Behind, l.Targeted)
	}
	return nil
}

// statusColumns are the columns of `update status`, each read from a ReleaseStatus: a new
// field is one more line here.
var statusColumns = []struct {
	name  string
	value func(updates.ReleaseStatus) string
}{
	{"MODEL", func(r updates.ReleaseStatus) string { return r.Model }},
	{"VERSION", func(r updates.ReleaseStatus) string { return r.Version }},
	{"TARGET", func(r updates.ReleaseStatus) string { return r.Target }},
	{"LENGTH", func(r updates.ReleaseStatus) string { return strconv.FormatInt(r.Length, 10) }},
	{"SHA256", func(r updates.ReleaseStatus) string { return r.Hashes["sha256"] }},
	{"SIGNATURES", func(r updates.ReleaseStatus) string { return fmt.Sprintf("%d/%d", r.Signatures, r.Threshold) }},
	{"LIVE", func(r updates.ReleaseStatus) string {
		if r.Live {
			return "yes"
		}
		return "no"
	}},
	{"PUBLISHED", func(r updates.ReleaseStatus) string { return r.PublishedAt.UTC().Format(time.RFC3339) }},
}

// printUpdateStatus writes the status table.
func printUpdateStatus(w io.Writer, rs []updates.ReleaseStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, c := range statusColumns {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c.name)
	}
	fmt.Fprintln(tw)
	for _, r := range rs {
		for i, c := range statusColumns {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c.value(r))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
