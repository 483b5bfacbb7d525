package node

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/deid"
	"github.com/vitalgate/vitalgate/seal"
)

// DeidentifyOptions are the choices of a de-identified export.
type DeidentifyOptions struct {
	Filter vitalgate.ResourceFilter // which stored resources
	// ShiftDates shifts dates by a random per-patient offset instead of cutting them to the
	// year (see package deid).
	ShiftDates bool
	// Pseudonyms is the sealed mapping file: read if it exists, created otherwise, and
	// written back with the codes this export added, so that exports sharing it give the
	// same codes to the same identifiers. "" uses a mapping of this export only, kept
	// nowhere: nobody can re-identify the export.
	Pseudonyms string
	Operator   string // who exports, for the audit entry
}

// pseudonymsAAD binds a sealed mapping file to its purpose.
var pseudonymsAAD = []byte("vitalgate deid pseudonyms v1")

const sealedPseudonymsFormat = "vitalgate-deid-pseudonyms-sealed-1"

// sealedPseudonyms is a mapping file: the mapping sealed with AES-256-GCM under a fresh
// data key, itself wrapped under the data dir's current key-encryption key (the same
// envelope as patient data, package seal).
type sealedPseudonyms struct {
	Format     string `json:"format"`
	WrappedKey string `json:"wrapped_key"`
	Sealed     string `json:"sealed"`
}

// ExportDeidentified writes the stored resources that opt.Filter selects to w as FHIR
// NDJSON, de-identified under HIPAA Safe Harbor (package deid), and returns how many it
// wrote. With opt.Pseudonyms the mapping of codes is read from and written back to that
// sealed file; only this data dir's keys open it. The export is audited (who, how many,
// never what). A resource that cannot be opened or transformed stops the export with an
// error naming only its type and id.
func (n *Node) ExportDeidentified(ctx context.Context, w io.Writer, opt DeidentifyOptions) (int, error) {
	p, err := n.readPseudonyms(opt.Pseudonyms)
	if err != nil {
		return 0, err
	}
	tr := deid.New(p, deid.Options{ShiftDates: opt.ShiftDates, Now: n.Now()})
	count, err := n.exportNDJSON(ctx, w, opt.Filter, func(r vitalgate.SealedResource, body []byte) ([]byte, error) {
		out, err := tr.Resource(body)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: de-identify: %w", r.Type, r.ID, err)
		}
		return out, nil
	})
	if err != nil {
		return count, err
	}
	if opt.Pseudonyms != "" {
		if err := n.writePseudonyms(opt.Pseudonyms, p); err != nil {
			return count, err
		}
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		return count, err
	}
	how := "dates cut to years"
	if opt.ShiftDates {
		how = "dates shifted per patient"
	}
	mapping := "no mapping kept"
	if opt.Pseudonyms != "" {
		mapping = "mapping kept in a sealed pseudonyms file"
	}
	if err := alog.Append(ctx, audit.Entry{Action: audit.ActionRead, Type: "export", Subtype: "deidentified",
		AgentType: audit.AgentOperator, AgentID: opt.Operator, Outcome: audit.OutcomeSuccess, Site: opt.Filter.Site,
		PatientIndex: audit.PatientIndex(opt.Filter.PatientIndex),
		OutcomeDesc:  fmt.Sprintf("%d resources exported de-identified (HIPAA Safe Harbor, %s, %s)", count, how, mapping)}); err != nil {
		return count, fmt.Errorf("audit log: %w", err)
	}
	return count, nil
}

// ExportOptions are the choices of an export of stored resources as they are.
type ExportOptions struct {
	Filter   vitalgate.ResourceFilter // which stored resources (Site: one site's)
	Operator string                   // who exports, for the audit entry
}

// Export writes the stored resources that opt.Filter selects to w as FHIR NDJSON, opened
// (identified: this is patient data leaving the server), and returns how many it wrote.
// The export is audited (who, which site, which patient when one is named, how many; never
// what). A resource that cannot be opened stops the export with an error naming only its
// type and id.
func (n *Node) Export(ctx context.Context, w io.Writer, opt ExportOptions) (int, error) {
	count, err := n.exportNDJSON(ctx, w, opt.Filter, func(_ vitalgate.SealedResource, body []byte) ([]byte, error) { return body, nil })
	alog, aerr := n.AuditLog("cli")
	if aerr != nil {
		return count, aerr
	}
	e := audit.Entry{Action: audit.ActionRead, Type: "export", Subtype: "identified",
		AgentType: audit.AgentOperator, AgentID: opt.Operator, Outcome: audit.OutcomeSuccess, Site: opt.Filter.Site,
		PatientIndex: audit.PatientIndex(opt.Filter.PatientIndex), Count: count,
		OutcomeDesc: fmt.Sprintf("%d resources exported", count)}
	if err != nil {
		e.Outcome, e.OutcomeDesc = audit.OutcomeSeriousFailure, fmt.Sprintf("export stopped after %d resources", count)
	}
	if aerr := alog.Append(ctx, e); aerr != nil {
		return count, fmt.Errorf("audit log: %w", aerr)
	}
	return count, err
}

// exportNDJSON streams the resources filter selects, opened and passed through out, to w,
// one a line, and returns how many it wrote.
func (n *Node) exportNDJSON(ctx context.Context, w io.Writer, filter vitalgate.ResourceFilter, out func(vitalgate.SealedResource, []byte) ([]byte, error)) (int, error) {
	bw := bufio.NewWriter(w)
	count := 0
	err := n.Store.Resources(ctx, filter, func(r vitalgate.SealedResource) error {
		body, err := n.Vault.Open(ctx, r)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", r.Type, r.ID, err)
		}
		line, err := out(r, body)
		if err != nil {
			return err
		}
		count++
		if _, err := bw.Write(line); err != nil {
			return err
		}
		return bw.WriteByte('\n')
	})
	if err == nil {
		err = bw.Flush()
	}
	return count, err
}

// readPseudonyms opens the sealed mapping file at path, or returns a new mapping when
// path is "" or names no file yet.
func (n *Node) readPseudonyms(path string) (*deid.Pseudonyms, error) {
	p := deid.NewPseudonyms()
	if path == "" {
		return p, nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	data, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	var f sealedPseudonyms
	if err := json.Unmarshal(data, &f); err != nil || f.Format != sealedPseudonymsFormat {
		return nil, fmt.Errorf("%s is not a Vitalgate pseudonyms file", path)
	}
	wrapped, err1 := base64.StdEncoding.DecodeString(f.WrappedKey)
	sealed, err2 := base64.StdEncoding.DecodeString(f.Sealed)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%s is not a Vitalgate pseudonyms file", path)
	}
	dek, err := n.Keys.UnwrapDataKey(wrapped, pseudonymsAAD)
	if err != nil {
		return nil, fmt.Errorf("%s cannot be opened with this data dir's keys (another data dir's file, a key-encryption key since destroyed, or tampered with): %w", path, err)
	}
	defer clear(dek)
	plain, err := seal.Open(dek, sealed, pseudonymsAAD)
	if err != nil {
		return nil, fmt.Errorf("%s does not authenticate: %w", path, err)
	}
	if err := json.Unmarshal(plain, p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// writePseudonyms seals p under a fresh data key wrapped by the current KEK and replaces
// the file at path atomically (mode 0600).
func (n *Node) writePseudonyms(path string, p *deid.Pseudonyms) error {
	plain, err := json.Marshal(p)
	if err != nil {
		return err
	}
	dek, wrapped, err := n.Keys.NewDataKey(pseudonymsAAD, nil)
	if err != nil {
		return err
	}
	defer clear(dek)
	sealed, err := seal.Seal(dek, "deid-pseudonyms", plain, pseudonymsAAD, nil)
	clear(plain)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(sealedPseudonyms{Format: sealedPseudonymsFormat,
		WrappedKey: base64.StdEncoding.EncodeToString(wrapped), Sealed: base64.StdEncoding.EncodeToString(sealed)}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone already after the rename
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(append(data, '\n'))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
