package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/vitalgate/vitalgate/posture"
)

// runPosture is `vitalgate posture`: the fleet's vulnerability posture report, and the
// imports it is built from (SBOMs, OSV advisories, the KEV catalog, VEX statements).
func (m *Main) runPosture(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return m.postureReport(ctx, args)
	}
	return m.dispatch(ctx, "posture", args, map[string]func(context.Context, []string) error{
		"sbom":       m.postureSBOM,
		"advisories": m.postureAdvisories,
		"kev":        m.postureKEV,
		"vex":        m.postureVEX,
	})
}

// postureService opens the data dir and its posture capability.
func (m *Main) postureService(ctx context.Context, dir string) (*posture.Service, *node, error) {
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		_ = n.Close()
		return nil, nil, err
	}
	svc, err := n.Posture(alog)
	if err != nil {
		_ = n.Close()
		return nil, nil, err
	}
	return svc, n, nil
}

// postureReport prints the posture: every model's versions (SBOM, what its components
// lack, findings) and devices, and this server's own posture.
func (m *Main) postureReport(ctx context.Context, args []string) error {
	fs := m.flags("posture", "posture --data DIR [--model M] [--device ID] [--json]\n"+
		"       posture sbom add --data DIR --model M --version V FILE\n"+
		"       posture advisories import --data DIR FILE|DIR|ZIP\n"+
		"       posture kev import --data DIR FILE\n"+
		"       posture vex import --data DIR --model M [--version V] FILE")
	dir := fs.String("data", "", "data directory")
	model := fs.String("model", "", "only this device model")
	device := fs.String("device", "", "only this device (and the version it runs)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	usage := fs.Usage
	fs.Usage = func() { // --device names a device id here, not simulate's ID:PATIENT:SECRET
		out := fs.Output()
		var b strings.Builder
		fs.SetOutput(&b)
		usage()
		fs.SetOutput(out)
		fmt.Fprint(out, strings.Replace(b.String(), "-device ID:PATIENT:SECRET[:KIND]", "-device ID", 1))
	}
	if err := parse(fs, args, false); err != nil {
		return err
	}
	svc, n, err := m.postureService(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	rep, err := svc.Report(ctx, posture.Query{Model: *model, Device: *device})
	if err != nil {
		return updateError(err)
	}
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return posture.WriteText(m.Stdout, rep)
}

func (m *Main) postureSBOM(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "posture sbom", args, map[string]func(context.Context, []string) error{"add": m.postureSBOMAdd})
}

// fileArg parses flags around one positional FILE (before or after the flags).
func fileArg(m *Main, fs *flag.FlagSet, parseRest func([]string) error, what string) (string, error) {
	if fs.NArg() == 0 {
		fmt.Fprintf(m.Stderr, "the %s is missing\n", what)
		fs.Usage()
		return "", errUsage
	}
	file := fs.Arg(0)
	if rest := fs.Args()[1:]; len(rest) > 0 {
		if err := parseRest(rest); err != nil {
			return "", err
		}
	}
	return file, nil
}

// postureSBOMAdd attaches an SBOM to a model's version.
func (m *Main) postureSBOMAdd(ctx context.Context, args []string) error {
	fs := m.flags("posture sbom add", "posture sbom add --data DIR --model M --version V FILE   (CycloneDX 1.5/1.6 or SPDX 2.3 JSON)")
	dir := fs.String("data", "", "data directory")
	model := fs.String("model", "", "device model the SBOM is of")
	version := fs.String("version", "", "the model's software version the SBOM describes")
	if err := parse(fs, args, true); err != nil {
		return err
	}
	file, err := fileArg(m, fs, func(rest []string) error { return parse(fs, rest, false) }, "SBOM FILE")
	if err != nil {
		return err
	}
	data, err := readBounded(file, posture.MaxSBOMBytes)
	if err != nil {
		return err
	}
	svc, n, err := m.postureService(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	return m.addSBOM(ctx, svc, *model, *version, data)
}

// addSBOM attaches data to model's version and says what the SBOM lacks.
func (m *Main) addSBOM(ctx context.Context, svc *posture.Service, model, version string, data []byte) error {
	sb, err := svc.AddSBOM(ctx, operator(), model, version, data)
	if err != nil {
		return updateError(err)
	}
	fmt.Fprintf(m.Stderr, "Attached the SBOM (%s, %d components) to %s %s.\n", sb.Format, len(sb.Components), model, version)
	if gaps := sb.GapCounts(); len(gaps) > 0 {
		parts := make([]string, len(gaps))
		for i, g := range gaps {
			parts[i] = fmt.Sprintf("%s %d", g.Field, g.Components)
		}
		fmt.Fprintf(m.Stderr, "Components lacking a field (the FDA asks for supplier, support level and end-of-support date of each): %s.\n", strings.Join(parts, ", "))
	}
	return nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	files, err := posture.ReadPath(path, limit)
	if err != nil {
		return nil, err
	}
	if len(files) != 1 {
		return nil, fmt.Errorf("%s: give one JSON file", path)
	}
	return files[0].Data, nil
}

func (m *Main) postureAdvisories(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "posture advisories", args, map[string]func(context.Context, []string) error{"import": m.postureAdvisoriesImport})
}

// postureAdvisoriesImport imports OSV records from a file, a directory or a ZIP archive.
func (m *Main) postureAdvisoriesImport(ctx context.Context, args []string) error {
	fs := m.flags("posture advisories import", "posture advisories import --data DIR FILE|DIR|ZIP   (OSV JSON records, e.g. osv.dev's all.zip of an ecosystem)")
	dir := fs.String("data", "", "data directory")
	if err := parse(fs, args, true); err != nil {
		return err
	}
	path, err := fileArg(m, fs, func(rest []string) error { return parse(fs, rest, false) }, "FILE, DIR or ZIP of OSV records")
	if err != nil {
		return err
	}
	files, err := posture.ReadPath(path, posture.MaxAdvisoryBytes)
	if err != nil {
		return err
	}
	svc, n, err := m.postureService(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	res, err := svc.ImportAdvisories(ctx, operator(), files)
	for _, s := range res.Skipped {
		fmt.Fprintf(m.Stderr, "skipped %s\n", s)
	}
	if err != nil {
		return updateError(err)
	}
	fmt.Fprintf(m.Stderr, "Imported %d OSV advisories (%d files skipped).\n", res.Imported, len(res.Skipped))
	return nil
}

func (m *Main) postureKEV(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "posture kev", args, map[string]func(context.Context, []string) error{"import": m.postureKEVImport})
}

// postureKEVImport imports CISA's KEV catalog.
func (m *Main) postureKEVImport(ctx context.Context, args []string) error {
	fs := m.flags("posture kev import", "posture kev import --data DIR FILE   (CISA's known_exploited_vulnerabilities.json)")
	dir := fs.String("data", "", "data directory")
	if err := parse(fs, args, true); err != nil {
		return err
	}
	file, err := fileArg(m, fs, func(rest []string) error { return parse(fs, rest, false) }, "KEV catalog FILE")
	if err != nil {
		return err
	}
	data, err := readBounded(file, posture.MaxKEVBytes)
	if err != nil {
		return err
	}
	svc, n, err := m.postureService(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	res, err := svc.ImportKEV(ctx, operator(), data)
	if err != nil {
		return updateError(err)
	}
	fmt.Fprintf(m.Stderr, "Imported %d KEV entries.\n", res.Imported)
	return nil
}

func (m *Main) postureVEX(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "posture vex", args, map[string]func(context.Context, []string) error{"import": m.postureVEXImport})
}

// postureVEXImport imports a maker's VEX statements about a model.
func (m *Main) postureVEXImport(ctx context.Context, args []string) error {
	fs := m.flags("posture vex import", "posture vex import --data DIR --model M [--version V] FILE   (CycloneDX VEX or OpenVEX JSON)")
	dir := fs.String("data", "", "data directory")
	model := fs.String("model", "", "device model the statements are about")
	version := fs.String("version", "", "only this version of the model (default: every version)")
	if err := parse(fs, args, true); err != nil {
		return err
	}
	file, err := fileArg(m, fs, func(rest []string) error { return parse(fs, rest, false) }, "VEX FILE")
	if err != nil {
		return err
	}
	data, err := readBounded(file, posture.MaxVEXBytes)
	if err != nil {
		return err
	}
	svc, n, err := m.postureService(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	res, err := svc.ImportVEX(ctx, operator(), *model, *version, data)
	if err != nil {
		return updateError(err)
	}
	fmt.Fprintf(m.Stderr, "Imported %d VEX statements for %s.\n", res.Imported, *model)
	return nil
}
