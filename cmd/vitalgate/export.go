package main

import (
	"bufio"
	"context"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate"
)

func (m *Main) runExport(ctx context.Context, args []string) error {
	fs := m.flags("export", "export --data DIR [--patient ID] [--since TIME]")
	dir := fs.String("data", "", "data directory")
	patient := fs.String("patient", "", "only this patient's resources")
	since := fs.String("since", "", "only resources stored at or after this time (RFC 3339, or YYYY-MM-DD)")
	if err := parse(fs, args, false); err != nil {
		return err
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
	if *patient != "" {
		if err := checkID("patient", *patient); err != nil {
			return err
		}
		f.PatientIndex = n.vault.PatientIndex(*patient)
	}
	w := bufio.NewWriter(m.Stdout)
	count := 0
	err = n.store.Resources(ctx, f, func(r vitalgate.SealedResource) error {
		body, err := n.vault.Open(ctx, r)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", r.Type, r.ID, err)
		}
		count++
		if _, err := w.Write(body); err != nil {
			return err
		}
		return w.WriteByte('\n')
	})
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "Exported %d resources.\n", count)
	if count == 0 && *patient != "" {
		return m.explainNoMatch(ctx, n, *patient, f)
	}
	return nil
}
