// Package bulk runs FHIR Bulk Data exports ($export, Bulk Data Access IG v2) once for every
// transport: the kick-off with its checks (the client's role, SMART scopes, site and group),
// the job a node of the deployment runs exactly once (a lease in the store; a node that dies
// leaves it to another), NDJSON files streamed from the store and sealed at rest under a data
// key of the job's own, served only to the client that asked, and every step audited.
//
// A job reads the same rows search does, through the same rules: the client's site only,
// the care team of a clinician (access.Service.CheckPatient), the types its scopes allow.
// Files are deleted when they expire (Retention, 24 hours by default) or the job is
// cancelled.
package bulk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/seal"
	"github.com/vitalgate/vitalgate/vault"
)

// Store is what exports need from storage.
type Store interface {
	vitalgate.ExportStore
	Resources(ctx context.Context, f vitalgate.ResourceFilter, fn func(vitalgate.SealedResource) error) error
	Client(ctx context.Context, id string) (vitalgate.Client, error)
	Clients(ctx context.Context) ([]vitalgate.Client, error)
	Devices(ctx context.Context) ([]vitalgate.Device, error)
}

// Types are the resource types an export can hold, in file order: the stored resources of
// the Patient compartment.
var Types = []string{"Patient", "Observation", "DiagnosticReport", "Specimen"}

// Defaults.
const (
	DefaultRetention = 24 * time.Hour
	DefaultLease     = 30 * time.Second
	DefaultPoll      = time.Second
	// pageSize is how many stored resources a run reads at a time: a short read each, so
	// that no read transaction stays open for a whole export.
	pageSize = 500
)

// Service runs bulk exports.
type Service struct {
	Store  Store
	Vault  *vault.Vault
	Access *access.Service // the care-team rule (CheckPatient)
	Audit  *audit.Log
	Now    func() time.Time
	// Node names this node in the runs it claims.
	Node string
	// Retention is how long a finished job's files are kept (DefaultRetention when zero).
	Retention time.Duration
	// Lease is how long a run holds a job without renewing it (DefaultLease when zero): a
	// node that dies leaves its jobs to another node after it.
	Lease time.Duration
	// Poll is how often Run looks for waiting jobs (DefaultPoll when zero).
	Poll   time.Duration
	Logger *slog.Logger
	// wake, when set, is signalled by KickOff so that this node's Run starts at once.
	wake chan struct{}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) retention() time.Duration {
	if s.Retention > 0 {
		return s.Retention
	}
	return DefaultRetention
}

func (s *Service) lease() time.Duration {
	if s.Lease > 0 {
		return s.Lease
	}
	return DefaultLease
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Request is a kick-off request as a transport decoded it.
type Request struct {
	// URL is the kick-off request URL (the manifest's "request").
	URL string
	// Group is the Group to export; empty for Patient/$export (every patient the client
	// may see).
	Group string
	// Types are the _type values (resource types); none for every type the client may read.
	Types []string
	// Since is _since: only resources updated at or after it.
	Since time.Time
	// TypeFilters are the _typeFilter values, as sent ("Observation?code=...&date=ge...").
	TypeFilters []string
}

// errNoSite refuses an export to a client that acts within no one site.
var errNoSite = vitalgate.Errorf(vitalgate.EFORBIDDEN, "this client acts within no site: patient data is exported by clients of its site")

// KickOff checks a request and queues its job, audited in the same transaction. Errors:
// EFORBIDDEN (a type the scopes do not allow, no site), ENOTFOUND (a group the client may not
// export), EINVALID (an unsupported type or filter).
func (s *Service) KickOff(ctx context.Context, p vitalgate.Principal, req Request) (vitalgate.ExportJob, error) {
	j, err := s.prepare(ctx, p, req)
	if err != nil {
		return vitalgate.ExportJob{}, s.refused(ctx, p, "export", req.Group, err)
	}
	e := s.entry(p, audit.ActionExecute, "export", j.Group, 0)
	e.OutcomeDesc = "bulk export " + j.ID + " queued: " + strings.Join(j.Types, ",")
	if err := s.Store.CreateExportJob(ctx, j, s.Audit.Encode(ctx, e)); err != nil {
		return vitalgate.ExportJob{}, err
	}
	if s.wake != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return j, nil
}

func (s *Service) prepare(ctx context.Context, p vitalgate.Principal, req Request) (vitalgate.ExportJob, error) {
	if !vitalgate.InSite(p.Site, p.Site) {
		return vitalgate.ExportJob{}, errNoSite
	}
	types := req.Types
	if len(types) == 0 {
		for _, t := range Types {
			if access.RequireScope(p, t, access.OpRead) == nil {
				types = append(types, t)
			}
		}
		if len(types) == 0 {
			return vitalgate.ExportJob{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "the access token's scopes allow reading none of the exported types (%s)", strings.Join(Types, ", "))
		}
	}
	seen := map[string]bool{}
	var ordered []string
	for _, t := range types {
		if !slices.Contains(Types, t) {
			return vitalgate.ExportJob{}, vitalgate.Errorf(vitalgate.EINVALID, "_type %q cannot be exported; the types are %s", t, strings.Join(Types, ", "))
		}
		if err := access.RequireScope(p, t, access.OpRead); err != nil {
			return vitalgate.ExportJob{}, err
		}
		if !seen[t] {
			seen[t] = true
			ordered = append(ordered, t)
		}
	}
	filters, err := ParseTypeFilters(req.TypeFilters)
	if err != nil {
		return vitalgate.ExportJob{}, err
	}
	for _, f := range filters {
		if !seen[f.Type] {
			return vitalgate.ExportJob{}, vitalgate.Errorf(vitalgate.EINVALID, "_typeFilter names %s, which the export does not hold; add it to _type", f.Type)
		}
	}
	if req.Group != "" {
		if _, err := s.group(ctx, p, req.Group); err != nil {
			return vitalgate.ExportJob{}, err
		}
	}
	now := s.now()
	id, err := ingest.NewID(now, rand.Reader)
	if err != nil {
		return vitalgate.ExportJob{}, err
	}
	kr, err := s.Vault.SiteKeyring(ctx, p.Site)
	if err != nil {
		return vitalgate.ExportJob{}, err
	}
	dek, wrapped, err := kr.NewDataKey(keyAAD(id), nil)
	if err != nil {
		return vitalgate.ExportJob{}, err
	}
	clear(dek)
	return vitalgate.ExportJob{ID: id, Client: p.ID, Site: p.Site, Request: req.URL, Group: req.Group, Types: ordered,
		Since: req.Since, Filters: filters, WrappedKey: wrapped, CreatedAt: now, ExpiresAt: now.Add(s.retention())}, nil
}

// jobKey unwraps the data key of job j. The key-encryption key of the job's site wraps it,
// as it wraps the site's patients' keys, so an erasure in the site, which destroys that key
// (vault.ShredKEK), destroys the files of every export of the site made before it:
// ENOTFOUND, in words for the client.
func (s *Service) jobKey(ctx context.Context, j vitalgate.ExportJob) ([]byte, error) {
	kr, err := s.Vault.SiteKeyring(ctx, j.Site)
	if err != nil {
		return nil, err
	}
	dek, err := kr.UnwrapDataKey(j.WrappedKey, keyAAD(j.ID))
	if errors.Is(err, seal.ErrUnknownKey) {
		return nil, vitalgate.Errorf(vitalgate.ENOTFOUND, "the files of export %s were destroyed by a patient or site erasure after it was made; kick off a new export", j.ID)
	}
	return dek, err
}

// keyAAD binds a job's wrapped data key to the job.
func keyAAD(id string) []byte { return []byte("vitalgate export key " + id) }

// chunkAAD binds a sealed chunk to its job, file and place.
func chunkAAD(id string, file, seq int) []byte {
	return seal.AAD("export", id, fmt.Sprintf("%d.%d", file, seq))
}

// Job returns a job of p's for its status. ENOTFOUND for a job of another client, a
// cancelled one and an expired one, alike.
func (s *Service) Job(ctx context.Context, p vitalgate.Principal, id string) (vitalgate.ExportJob, error) {
	j, err := s.Store.ExportJob(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND || err == nil && (j.Client != p.ID || j.Site != p.Site ||
		j.Status == vitalgate.ExportCancelled || !j.ExpiresAt.After(s.now())) {
		return vitalgate.ExportJob{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "export %s is not known (or was cancelled, or expired)", id)
	}
	return j, err
}

// Cancel cancels a job of p's and deletes its files, audited.
func (s *Service) Cancel(ctx context.Context, p vitalgate.Principal, id string) error {
	j, err := s.Job(ctx, p, id)
	if err != nil {
		return err
	}
	e := s.entry(p, audit.ActionDelete, "export-cancel", j.Group, 0)
	e.OutcomeDesc = "bulk export " + id + " cancelled"
	return s.Store.CancelExportJob(ctx, id, s.now(), s.Audit.Encode(ctx, e))
}

// WriteFile writes file n of a done job of p's to w as NDJSON, after checking that p's
// scopes still allow its type and auditing the read. ENOTFOUND for a file that does not
// exist; EINVALID (in words for the client) for a job not done.
func (s *Service) WriteFile(ctx context.Context, p vitalgate.Principal, id string, n int, w io.Writer) error {
	j, err := s.Job(ctx, p, id)
	if err != nil {
		return err
	}
	if j.Status != vitalgate.ExportDone {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "export %s has no files yet: poll its status until it is complete", id)
	}
	if n < 0 || n >= len(j.Files) {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "export %s has no file %d", id, n)
	}
	f := j.Files[n]
	if err := access.RequireScope(p, f.Type, access.OpRead); err != nil {
		return s.refused(ctx, p, "export-file", j.Group, err)
	}
	dek, err := s.jobKey(ctx, j)
	if err != nil {
		return err
	}
	defer clear(dek)
	e := s.entry(p, audit.ActionRead, "export-file", j.Group, f.Count)
	e.Resources = []string{f.Type}
	e.OutcomeDesc = fmt.Sprintf("bulk export %s file %d", id, n)
	if err := s.Audit.Append(ctx, e); err != nil {
		return vitalgate.Unavailable(err, "the file read could not be audited; try again")
	}
	return s.Store.ExportChunks(ctx, id, n, func(seq int, sealed []byte) error {
		plain, err := seal.Open(dek, sealed, chunkAAD(id, n, seq))
		if err != nil {
			return vitalgate.Internal(err, "open export chunk")
		}
		_, err = w.Write(plain)
		clear(plain)
		return err
	})
}

// entry is an audit entry about an export of p's.
func (s *Service) entry(p vitalgate.Principal, action, subtype, group string, n int) audit.Entry {
	res := []string{"Patient"}
	if group != "" {
		res = []string{"Group/" + group}
	}
	return audit.Entry{Action: action, Type: "rest", Subtype: subtype, AgentType: audit.AgentClient, AgentID: p.ID,
		AgentRole: string(p.Role), Resources: res, Count: n, Site: siteOf(p.Site)}
}

// siteOf is the audit site of a principal's site.
func siteOf(site string) string {
	if site == vitalgate.AllSites {
		return ""
	}
	return site
}

// refused audits a refused request and returns err (EUNAVAILABLE if the refusal could not
// be audited).
func (s *Service) refused(ctx context.Context, p vitalgate.Principal, subtype, group string, err error) error {
	e := s.entry(p, audit.ActionExecute, subtype, group, 0)
	e.Outcome = audit.OutcomeMinorFailure
	e.OutcomeDesc = vitalgate.ErrorCode(err) + ": " + vitalgate.ErrorMessage(err)
	if aerr := s.Audit.Append(ctx, e); aerr != nil {
		return vitalgate.Unavailable(aerr, "the refusal could not be audited; try again")
	}
	return err
}

// Group is an exportable group of patients: a site, a clinician's care team, or the
// patients of a device model.
type Group struct {
	ID   string
	Name string
	// Patients are the blind indexes of its members; nil for a site (every patient of it).
	Patients [][]byte
	// Quantity is how many patients it holds; -1 when not counted (a site).
	Quantity int
}

// fhirID is the form of a FHIR id.
var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// Groups returns the groups p may export, ordered by id: its site, the care teams of the
// site's clinicians, the patients of each device model placed at the site.
func (s *Service) Groups(ctx context.Context, p vitalgate.Principal) ([]Group, error) {
	if !vitalgate.InSite(p.Site, p.Site) {
		return nil, s.refused(ctx, p, "group-list", "", errNoSite)
	}
	gs := []Group{{ID: "site-" + p.Site, Name: "All patients of site " + p.Site, Quantity: -1}}
	clients, err := s.Store.Clients(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range clients {
		id := "careteam-" + c.ID
		if c.Role == vitalgate.RoleClinician && !c.Disabled && c.Site == p.Site && len(c.PatientIndexes) > 0 && fhirID.MatchString(id) {
			gs = append(gs, Group{ID: id, Name: "Care team of " + c.ID, Patients: c.PatientIndexes, Quantity: len(c.PatientIndexes)})
		}
	}
	devices, err := s.Store.Devices(ctx)
	if err != nil {
		return nil, err
	}
	models := map[string][][]byte{}
	for _, d := range devices {
		if d.Site == p.Site && d.Status == vitalgate.DeviceActive && len(d.PatientIndex) > 0 && fhirID.MatchString("model-"+d.Model) {
			ps := models[d.Model]
			if !slices.ContainsFunc(ps, func(b []byte) bool { return bytes.Equal(b, d.PatientIndex) }) {
				models[d.Model] = append(ps, d.PatientIndex)
			}
		}
	}
	for m, ps := range models {
		gs = append(gs, Group{ID: "model-" + m, Name: "Patients of " + m + " devices", Patients: ps, Quantity: len(ps)})
	}
	sort.Slice(gs, func(i, k int) bool { return gs[i].ID < gs[k].ID })
	if err := s.Audit.Append(ctx, s.entry(p, audit.ActionExecute, "group-list", "", len(gs))); err != nil {
		return nil, vitalgate.Unavailable(err, "the group list could not be audited; try again")
	}
	return gs, nil
}

// group returns the group id of p's. ENOTFOUND.
func (s *Service) group(ctx context.Context, p vitalgate.Principal, id string) (Group, error) {
	site, ok := strings.CutPrefix(id, "site-")
	if ok && site == p.Site {
		return Group{ID: id, Quantity: -1}, nil
	}
	clients, devices := []vitalgate.Client(nil), []vitalgate.Device(nil)
	var err error
	if cid, ok := strings.CutPrefix(id, "careteam-"); ok {
		c, cerr := s.Store.Client(ctx, cid)
		if cerr == nil {
			clients = []vitalgate.Client{c}
		} else if vitalgate.ErrorCode(cerr) != vitalgate.ENOTFOUND {
			return Group{}, cerr
		}
	}
	if model, ok := strings.CutPrefix(id, "model-"); ok && model != "" {
		if devices, err = s.Store.Devices(ctx); err != nil {
			return Group{}, err
		}
	}
	for _, c := range clients {
		if c.Role == vitalgate.RoleClinician && !c.Disabled && c.Site == p.Site {
			return Group{ID: id, Patients: c.PatientIndexes, Quantity: len(c.PatientIndexes)}, nil
		}
	}
	g := Group{ID: id}
	for _, d := range devices {
		if "model-"+d.Model == id && d.Site == p.Site && d.Status == vitalgate.DeviceActive && len(d.PatientIndex) > 0 &&
			!slices.ContainsFunc(g.Patients, func(b []byte) bool { return bytes.Equal(b, d.PatientIndex) }) {
			g.Patients = append(g.Patients, d.PatientIndex)
		}
	}
	if len(g.Patients) > 0 {
		g.Quantity = len(g.Patients)
		return g, nil
	}
	return Group{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "Group/%s is not known; GET /fhir/Group lists the groups this client may export", id)
}

// newOwner names a run of this node: the node and a fresh token.
func (s *Service) newOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return s.Node + "/" + hex.EncodeToString(b[:])
}

// Manifest is the Bulk Data completion manifest of a done job.
type Manifest struct {
	TransactionTime     string           `json:"transactionTime"`
	Request             string           `json:"request"`
	RequiresAccessToken bool             `json:"requiresAccessToken"`
	Output              []ManifestOutput `json:"output"`
	Error               []ManifestOutput `json:"error"`
}

// ManifestOutput is one file of a manifest.
type ManifestOutput struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count"`
}

// ManifestOf returns the manifest of a done job, its files at fileURL(n).
func ManifestOf(j vitalgate.ExportJob, fileURL func(n int) string) Manifest {
	m := Manifest{TransactionTime: j.CreatedAt.UTC().Format(time.RFC3339Nano), Request: j.Request, RequiresAccessToken: true,
		Output: []ManifestOutput{}, Error: []ManifestOutput{}}
	for _, f := range j.Files {
		m.Output = append(m.Output, ManifestOutput{Type: f.Type, URL: fileURL(f.Seq), Count: f.Count})
	}
	return m
}

// MarshalManifest is the manifest's JSON.
func MarshalManifest(m Manifest) ([]byte, error) { return json.Marshal(m) }
