package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate"
	vgnode "github.com/vitalgate/vitalgate/node"
)

func (m *Main) runExport(ctx context.Context, args []string) error {
	fs := m.flags("export", "export --data DIR [--site SITE] [--patient ID] [--since TIME] [--deidentify [--pseudonyms FILE] [--shift-dates]]")
	dir := fs.String("data", "", "data directory")
	site := fs.String("site", "", "only this site's resources (default: every site; a --patient of the default site)")
	patient := fs.String("patient", "", "only this patient's resources (of --site, or of the default site)")
	since := fs.String("since", "", "only resources stored at or after this time (RFC 3339, or YYYY-MM-DD)")
	deidentify := fs.Bool("deidentify", false, "de-identify under HIPAA Safe Harbor: identifiers removed, generalized or replaced by random codes")
	pseudonyms := fs.String("pseudonyms", "", "with --deidentify: sealed file of the random codes (created if missing, updated), so exports sharing it use the same codes; without it no mapping is kept")
	shiftDates := fs.Bool("shift-dates", false, "with --deidentify: shift dates by a random per-patient offset instead of keeping only the year")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if !*deidentify && (*pseudonyms != "" || *shiftDates) {
		fmt.Fprintln(m.Stderr, "--pseudonyms and --shift-dates need --deidentify")
		fs.Usage()
		return errUsage
	}
	var f vitalgate.ResourceFilter
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			t, err = time.Parse("2006-01-02", *since)
		}
		if err != nil {
			return fmt.Errorf("--since %q: use RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", *since)
		}
		f.Since = t
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if *site != "" {
		if err := vitalgate.CheckSiteID(*site); err != nil {
			return cliError(err)
		}
		if _, err := n.store.Site(ctx, *site); vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return fmt.Errorf("no site %q is registered (vitalgate site list shows them)", *site)
		} else if err != nil {
			return err
		}
		f.Site = *site
	}
	if *patient != "" {
		if err := checkID("patient", *patient); err != nil {
			return err
		}
		f.PatientIndex = n.vault.SitePatientIndex(vitalgate.StoredSite(*site), *patient)
	}
	if *deidentify {
		count, err := n.ExportDeidentified(ctx, m.Stdout, vgnode.DeidentifyOptions{Filter: f, ShiftDates: *shiftDates,
			Pseudonyms: *pseudonyms, Operator: operator()})
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stderr, "Exported %d resources, de-identified (HIPAA Safe Harbor).\n", count)
		if *pseudonyms != "" {
			fmt.Fprintf(m.Stderr, "The codes are kept in %s, sealed under this data dir's keys: it re-identifies the export, never hand it over with it.\n", *pseudonyms)
		}
		return nil
	}
	count, err := n.Export(ctx, m.Stdout, vgnode.ExportOptions{Filter: f, Operator: operator()})
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "Exported %d resources.\n", count)
	if count == 0 && *patient != "" {
		return m.explainNoMatch(ctx, n, *patient, f)
	}
	return nil
}
