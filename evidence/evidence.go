package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/assess"
	"github.com/vitalgate/vitalgate/audit"
)

// Module is the main module's path: test references in the catalogue are relative to it.
const Module = "github.com/vitalgate/vitalgate"

// Options are the inputs of one report besides the deployment.
type Options struct {
	Format      string           // FormatHTML (default), FormatMD, FormatJSON or FormatMDS2
	VerifyAudit bool             // verify the whole audit log with the public key and include the result
	AssessFile  string           // JSON of `vitalgate assess --json` to include ("" for none)
	ResultsFile string           // `go test -json` output: each listed test's last result ("" for none)
	BuildInfo   *debug.BuildInfo // the binary's modules for the SBOM (nil: this binary's)
	Now         func() time.Time // the report's timestamp (default time.Now)
	Operator    string           // who generates the report, for the audit log
}

// Render gathers the deployment's state and renders the report, unsigned. The same inputs
// give the same bytes apart from the generation time.
func Render(ctx context.Context, d Deployment, opt Options) ([]byte, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Format == "" {
		opt.Format = FormatHTML
	}
	switch opt.Format {
	case FormatHTML, FormatMD, FormatJSON, FormatMDS2:
	default:
		return nil, fmt.Errorf("unknown format %q (want html, md, json or mds2)", opt.Format)
	}
	cat, err := LoadCatalogue()
	if err != nil {
		return nil, err
	}
	tm, err := LoadThreatModel(cat)
	if err != nil {
		return nil, err
	}
	form, err := LoadMDS2(cat)
	if err != nil {
		return nil, err
	}
	s, err := gather(ctx, d, opt.Now(), opt.VerifyAudit)
	if err != nil {
		return nil, err
	}
	if opt.AssessFile != "" {
		data, err := os.ReadFile(opt.AssessFile) // #nosec G304 -- the operator names the file
		if err != nil {
			return nil, fmt.Errorf("--assess: %w", err)
		}
		s.Assessment = new(assess.Report)
		if err := json.Unmarshal(data, s.Assessment); err != nil || s.Assessment.Target == "" {
			if err == nil {
				err = errors.New("no target")
			}
			return nil, fmt.Errorf("--assess %s is not the JSON of `vitalgate assess --json`: %w", opt.AssessFile, err)
		}
	}
	if opt.ResultsFile != "" {
		f, err := os.Open(opt.ResultsFile) // #nosec G304 -- the operator names the file
		if err != nil {
			return nil, fmt.Errorf("--results: %w", err)
		}
		s.Tests, err = ParseTestResults(f, Module)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("--results %s: %w", opt.ResultsFile, err)
		}
	}
	bi := opt.BuildInfo
	if bi == nil {
		bi, _ = debug.ReadBuildInfo()
	}
	s.SBOM = sbomComponents(bi)
	r, err := build(cat, tm, s, opt.ResultsFile != "")
	if err != nil {
		return nil, err
	}
	return render(r, form, opt.Format)
}

// Result is a signed report and what was recorded about it.
type Result struct {
	Report []byte // the signed report file
	Digest string // hex SHA-256 of the report body, also in the audit log
	KeyID  string // the signing key
}

// Generate renders the report, signs it with the data dir's evidence key (created, and its
// creation audited, on first use) and records the report's digest in alog. No report is
// returned without its audit entry.
func Generate(ctx context.Context, d Deployment, alog *audit.Log, opt Options) (Result, error) {
	if alog == nil {
		return Result{}, errors.New("evidence: an audit log is required")
	}
	signer, created, err := LoadOrCreateSigner(d.Dir)
	if err != nil {
		return Result{}, err
	}
	if created {
		if err := alog.Append(ctx, audit.Entry{Action: audit.ActionCreate, Type: "admin", Subtype: "evidence-key",
			AgentType: audit.AgentOperator, AgentID: opt.Operator, OutcomeDesc: "evidence signing key " + signer.KeyID + " created"}); err != nil {
			return Result{}, fmt.Errorf("the evidence signing key was created but could not be audited: %w", err)
		}
	}
	body, err := Render(ctx, d, opt)
	if err != nil {
		return Result{}, err
	}
	format := opt.Format
	if format == "" {
		format = FormatHTML
	}
	file, digest := signer.Sign(body, format)
	res := Result{Report: file, Digest: digest, KeyID: signer.KeyID}
	if err := alog.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "admin", Subtype: "evidence-report",
		AgentType: audit.AgentOperator, AgentID: opt.Operator,
		OutcomeDesc: "evidence report (" + format + ") sha256:" + res.Digest + " signed by " + signer.KeyID}); err != nil {
		return Result{}, fmt.Errorf("the report could not be audited, so it is not given out: %w", err)
	}
	return res, nil
}

// VerifyFile checks the signed report at path with the public key in keyFile.
func VerifyFile(path, keyFile string) (Checked, error) {
	key, err := ReadPublicKey(keyFile)
	if err != nil {
		return Checked{}, fmt.Errorf("evidence public key %s: %w", keyFile, err)
	}
	data, err := os.ReadFile(path) // #nosec G304 -- the operator names the file
	if err != nil {
		return Checked{}, err
	}
	return Verify(data, key)
}

// Recorded finds the audit entry that recorded the report with digest (by Generate) and
// returns its index. It reads the whole log once.
func Recorded(ctx context.Context, log audit.AuditReader, digest string) (index uint64, found bool, err error) {
	size, err := log.AuditSize(ctx)
	if err != nil {
		return 0, false, err
	}
	needle := []byte("sha256:" + digest)
	errFound := errors.New("found")
	err = log.AuditEntries(ctx, 0, size, func(rec vitalgate.AuditRecord) error {
		if !bytes.Contains(rec.Data, needle) {
			return nil
		}
		if e, err := audit.UnmarshalEntry(rec.Data); err == nil && e.Type == "admin" && e.Subtype == "evidence-report" {
			index = rec.Index
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return index, true, nil
	}
	return 0, false, err
}
