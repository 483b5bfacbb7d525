package registry

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
)

// ImportRow is one device of an import file.
type ImportRow struct {
	Line      int // line in the file, for messages
	ID        string
	PatientID string
	Model     string
}

// MaxImportRows bounds one import file.
const MaxImportRows = 100000

// ParseImportCSV reads an import file: a CSV header naming the columns id and patient (and
// optionally model), in any order, then one device per line. It checks every row (ids,
// duplicates within the file) before anything is registered. Errors: EINVALID naming the
// line.
func ParseImportCSV(r io.Reader) ([]ImportRow, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the import file is empty: it needs a header line id,patient[,model]")
	} else if err != nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file: %v", err)
	}
	col := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; dup {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file line 1: column %q appears twice", h)
		}
		switch h {
		case "id", "patient", "model":
			col[h] = i
		default:
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file line 1: unknown column %q (the columns are id, patient and optionally model)", h)
		}
	}
	if _, ok := col["id"]; !ok {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file line 1: the header must name the columns id and patient (and optionally model), e.g. id,patient,model")
	}
	if _, ok := col["patient"]; !ok {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file line 1: the header must name the column patient")
	}
	var rows []ImportRow
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file: %v", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rows) >= MaxImportRows {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file: more than %d devices; split it", MaxImportRows)
		}
		field := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		row := ImportRow{Line: line, ID: field("id"), PatientID: field("patient"), Model: field("model")}
		if err := checkID("id", "the device id", row.ID); err != nil {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file line %d: device id %q: %s", line, row.ID, vitalgate.ErrorMessage(err))
		}
		if err := checkID("patient", "the patient id", row.PatientID); err != nil {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file line %d: patient id %q: %s", line, row.PatientID, vitalgate.ErrorMessage(err))
		}
		if len(row.Model) > 256 {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file line %d: the model is longer than 256 characters", line)
		}
		if first, dup := seen[row.ID]; dup {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "import file line %d: device %q is on line %d already", line, row.ID, first)
		}
		seen[row.ID] = line
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the import file has a header but no devices")
	}
	return rows, nil
}

// Import registers every device of rows (each audited as device-add, like Add) and writes
// its one-time enrollment secret to secrets as CSV (id,secret,expires), a line as soon as the
// device is registered. Devices that exist already are refused before any is registered.
// If registering one fails midway, the devices before it stay registered (their secrets are
// in secrets) and the error names the device. Returns how many were registered.
func (s *Service) Import(ctx context.Context, p vitalgate.Principal, rows []ImportRow, expires time.Duration, secrets io.Writer) (int, error) {
	for _, r := range rows {
		_, err := s.cfg.Store.Device(ctx, r.ID)
		switch vitalgate.ErrorCode(err) {
		case vitalgate.ENOTFOUND:
		case "":
			return 0, vitalgate.Errorf(vitalgate.ECONFLICT, "import file line %d: device %q is already registered (nothing was imported; for a new secret use `vitalgate device reissue`)", r.Line, r.ID)
		default:
			return 0, err
		}
	}
	w := csv.NewWriter(secrets)
	if err := w.Write([]string{"id", "secret", "expires"}); err != nil {
		return 0, err
	}
	for i, r := range rows {
		d, secret, err := s.Add(ctx, p, r.ID, r.PatientID, r.Model, expires)
		if err != nil {
			return i, fmt.Errorf("device %q (line %d), after %d registered: %w", r.ID, r.Line, i, err)
		}
		if err := w.Write([]string{d.ID, secret, d.EnrollExpiresAt.UTC().Format(time.RFC3339)}); err != nil {
			return i + 1, err
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return i + 1, err
		}
	}
	return len(rows), nil
}
