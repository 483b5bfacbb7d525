package posture

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Document kinds in the store.
const (
	KindSBOM     = "sbom"
	KindAdvisory = "advisory"
	KindKEV      = "kev"
	KindVEX      = "vex"
)

// Store is what posture needs from storage: its documents, and (through PutPostureDocs)
// the audit entries of each write in the same transaction.
type Store interface {
	PutPostureDocs(ctx context.Context, docs []vitalgate.PostureDoc, audit ...[]byte) error
	PostureDocs(ctx context.Context, kind string) ([]vitalgate.PostureDoc, error)
}

// Device is a device of the fleet and the version it reported installed last.
type Device struct {
	ID, Model, Site string
	Version         string    // "" when it never reported one
	ReportedAt      time.Time // when it began reporting Version
}

// Release is a software release of a model in the update repository.
type Release struct {
	Model, Version string
	Live           bool // approved (signed by the offline keys) and published
	Created        time.Time
	LiveAt         time.Time
	SBOM           []byte // the SBOM published with it (update publish --sbom), if any
}

// Rollout is the progress of a rollout of one version of a model.
type Rollout struct {
	Model, Version string
	State          string
	Started        time.Time
	Targeted       int // devices in its groups
	Installed      int // reported installed (or healthy, or passed) and not failed
}

// Fleet is what posture reads of the fleet: the devices and the versions they run, the
// releases of the update repository, and the rollouts' progress.
type Fleet interface {
	Devices(ctx context.Context) ([]Device, error)
	Releases(ctx context.Context, model string) ([]Release, error)
	Rollouts(ctx context.Context, model string) ([]Rollout, error)
}

// Service is the posture capability.
type Service struct {
	Store Store
	Fleet Fleet
	// Audit, when set, encodes the entries (request id, node); otherwise they are encoded
	// as they are.
	Audit *audit.Log
	// Self returns the SBOM (CycloneDX JSON) of this Vitalgate binary, whose posture is a
	// section of the report; nil: no such section.
	Self func() ([]byte, error)
	Now  func() time.Time // nil: time.Now
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) entry(ctx context.Context, operator, subtype, desc string, resources ...string) []byte {
	e := audit.Entry{Time: s.now(), Action: audit.ActionExecute, Type: "posture", Subtype: subtype,
		AgentType: audit.AgentOperator, AgentID: operator, Outcome: audit.OutcomeSuccess, OutcomeDesc: desc, Resources: resources}
	if s.Audit != nil {
		return s.Audit.Encode(ctx, e)
	}
	return e.Marshal()
}

var (
	modelPattern   = regexp.MustCompile(`^[A-Za-z0-9\-._]{1,64}$`)
	versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_\-]{0,63}$`)
)

// storedSBOM is the document of an attached SBOM: the SBOM as given, and who attached it
// when.
type storedSBOM struct {
	Model      string          `json:"model"`
	Version    string          `json:"version"`
	AttachedBy string          `json:"attached_by"`
	AttachedAt time.Time       `json:"attached_at"`
	Document   json.RawMessage `json:"document"`
}

func sbomKey(model, version string) string { return model + "/" + version }

// AddSBOM attaches an SBOM (CycloneDX 1.5/1.6 or SPDX 2.3 JSON) to a model's version,
// replacing the one it had, and audits it. EINVALID for a model or version that cannot
// name one, or a document ParseSBOM refuses.
func (s *Service) AddSBOM(ctx context.Context, operator, model, version string, data []byte) (SBOM, error) {
	if !modelPattern.MatchString(model) {
		return SBOM{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "model", "a model id is 1 to 64 letters, digits, '-', '.' or '_'")
	}
	if !versionPattern.MatchString(version) {
		return SBOM{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "version", "a version is 1 to 64 letters, digits, '.', '+', '_' or '-'")
	}
	sb, err := ParseSBOM(data)
	if err != nil {
		return SBOM{}, err
	}
	doc, err := compactJSON(data)
	if err != nil {
		return SBOM{}, vitalgate.Errorf(vitalgate.EINVALID, "the SBOM is not JSON: %v", err)
	}
	now := s.now()
	b, err := json.Marshal(storedSBOM{Model: model, Version: version, AttachedBy: operator, AttachedAt: now, Document: doc})
	if err != nil {
		return SBOM{}, vitalgate.Internal(err, "encode the SBOM")
	}
	desc := fmt.Sprintf("SBOM attached to %s %s: %s, %d components, %d lacking a field, sha256 %s",
		model, version, sb.Format, len(sb.Components), len(sb.Gaps()), sb.SHA256)
	err = s.Store.PutPostureDocs(ctx, []vitalgate.PostureDoc{{Kind: KindSBOM, Key: sbomKey(model, version), Data: b, UpdatedAt: now}},
		s.entry(ctx, operator, "sbom-add", desc, "DeviceDefinition/"+model))
	return sb, err
}

// ImportResult says what an import kept and what it refused.
type ImportResult struct {
	Imported int      `json:"imported"`
	Skipped  []string `json:"skipped,omitempty"` // "NAME: why", for documents that are not valid records
}

// ImportAdvisories imports OSV records (each file one record, or a JSON array of them),
// replacing records of the same id, in one write with one audit entry. Withdrawn records
// are kept (and never match). A file that is not an OSV record is skipped and reported;
// EINVALID when none is.
func (s *Service) ImportAdvisories(ctx context.Context, operator string, files []File) (ImportResult, error) {
	var (
		res  ImportResult
		docs []vitalgate.PostureDoc
		seen = map[string]int{}
	)
	now := s.now()
	add := func(name string, raw []byte) {
		a, err := ParseAdvisory(raw)
		if err != nil {
			res.Skipped = append(res.Skipped, name+": "+vitalgate.ErrorMessage(err))
			return
		}
		doc, err := compactJSON(raw)
		if err != nil {
			res.Skipped = append(res.Skipped, name+": "+err.Error())
			return
		}
		d := vitalgate.PostureDoc{Kind: KindAdvisory, Key: a.ID, Data: doc, UpdatedAt: now}
		if i, ok := seen[a.ID]; ok {
			docs[i] = d
			return
		}
		seen[a.ID] = len(docs)
		docs = append(docs, d)
	}
	for _, f := range files {
		trimmed := strings.TrimSpace(string(f.Data))
		if strings.HasPrefix(trimmed, "[") {
			var list []json.RawMessage
			if err := json.Unmarshal(f.Data, &list); err != nil {
				res.Skipped = append(res.Skipped, f.Name+": not a JSON array of OSV records")
				continue
			}
			for i, raw := range list {
				add(fmt.Sprintf("%s[%d]", f.Name, i), raw)
			}
			continue
		}
		add(f.Name, f.Data)
	}
	if len(docs) == 0 {
		return res, vitalgate.Errorf(vitalgate.EINVALID, "no OSV record to import (%d skipped): give OSV JSON files, a directory or a ZIP of them", len(res.Skipped))
	}
	res.Imported = len(docs)
	desc := fmt.Sprintf("%d OSV advisories imported, %d files skipped", len(docs), len(res.Skipped))
	return res, s.Store.PutPostureDocs(ctx, docs, s.entry(ctx, operator, "advisories-import", desc))
}

// ImportKEV imports the CISA KEV catalog: each entry replaces the one of its CVE id, in
// one write with one audit entry. EINVALID for what ParseKEV refuses.
func (s *Service) ImportKEV(ctx context.Context, operator string, data []byte) (ImportResult, error) {
	c, err := ParseKEV(data)
	if err != nil {
		return ImportResult{}, err
	}
	now := s.now()
	docs := make([]vitalgate.PostureDoc, 0, len(c.Entries))
	for _, e := range c.Entries {
		b, err := json.Marshal(e)
		if err != nil {
			return ImportResult{}, vitalgate.Internal(err, "encode a KEV entry")
		}
		docs = append(docs, vitalgate.PostureDoc{Kind: KindKEV, Key: e.CVE, Data: b, UpdatedAt: now})
	}
	desc := fmt.Sprintf("KEV catalog %s imported: %d entries", c.Version, len(docs))
	return ImportResult{Imported: len(docs)}, s.Store.PutPostureDocs(ctx, docs, s.entry(ctx, operator, "kev-import", desc))
}

// storedVEX is the document of one VEX statement and what it is about.
type storedVEX struct {
	Model      string    `json:"model"`
	Version    string    `json:"version,omitempty"` // "": every version of the model
	Statement  Statement `json:"statement"`
	ImportedBy string    `json:"imported_by"`
	ImportedAt time.Time `json:"imported_at"`
}

// ImportVEX imports a maker's VEX statements about a model (version "": every version),
// each replacing the one on the same vulnerability and components, in one write with one
// audit entry. EINVALID for what ParseVEX refuses or a model that cannot name one.
func (s *Service) ImportVEX(ctx context.Context, operator, model, version string, data []byte) (ImportResult, error) {
	if !modelPattern.MatchString(model) {
		return ImportResult{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "model", "VEX statements are about a model: name it (--model)")
	}
	if version != "" && !versionPattern.MatchString(version) {
		return ImportResult{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "version", "a version is 1 to 64 letters, digits, '.', '+', '_' or '-'")
	}
	sts, err := ParseVEX(data)
	if err != nil {
		return ImportResult{}, err
	}
	now := s.now()
	docs := make([]vitalgate.PostureDoc, 0, len(sts))
	for _, st := range sts {
		b, err := json.Marshal(storedVEX{Model: model, Version: version, Statement: st, ImportedBy: operator, ImportedAt: now})
		if err != nil {
			return ImportResult{}, vitalgate.Internal(err, "encode a VEX statement")
		}
		key := model + "/" + version + "/" + st.Vulnerability + "/" + strings.Join(st.Components, ",")
		if len(key) > vitalgate.MaxPostureKeyBytes {
			key = key[:vitalgate.MaxPostureKeyBytes]
		}
		docs = append(docs, vitalgate.PostureDoc{Kind: KindVEX, Key: key, Data: b, UpdatedAt: now})
	}
	desc := fmt.Sprintf("%d VEX statements imported for %s %s", len(docs), model, orAll(version))
	return ImportResult{Imported: len(docs)}, s.Store.PutPostureDocs(ctx, docs,
		s.entry(ctx, operator, "vex-import", desc, "DeviceDefinition/"+model))
}

func orAll(version string) string {
	if version == "" {
		return "(every version)"
	}
	return version
}
