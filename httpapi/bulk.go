package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/bulk"
)

// Bulk is the bulk export capability as the $export routes use it (*bulk.Service).
type Bulk interface {
	KickOff(ctx context.Context, p vitalgate.Principal, req bulk.Request) (vitalgate.ExportJob, error)
	Job(ctx context.Context, p vitalgate.Principal, id string) (vitalgate.ExportJob, error)
	Cancel(ctx context.Context, p vitalgate.Principal, id string) error
	WriteFile(ctx context.Context, p vitalgate.Principal, id string, n int, w io.Writer) error
	Groups(ctx context.Context, p vitalgate.Principal) ([]bulk.Group, error)
}

// fhirNDJSON is the media type of export files.
const fhirNDJSON = "application/fhir+ndjson"

// handlePatientExport serves GET|POST /fhir/Patient/$export.
func (s *Server) handlePatientExport(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.kickOff(w, r, p, "")
}

// handleGroupExport serves GET|POST /fhir/Group/{id}/$export.
func (s *Server) handleGroupExport(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.kickOff(w, r, p, id)
}

// kickOff decodes a kick-off request (query parameters, or a FHIR Parameters body on
// POST), queues the job and answers 202 with its status URL.
func (s *Server) kickOff(w http.ResponseWriter, r *http.Request, p vitalgate.Principal, group string) {
	if s.bulk == nil {
		s.writeError(w, r, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this server does not run bulk exports"))
		return
	}
	if !preferAsync(r) {
		s.writeError(w, r, vitalgate.Errorf(vitalgate.EINVALID, "a bulk export runs asynchronously: send the header Prefer: respond-async"))
		return
	}
	params, err := s.exportParams(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := exportRequest(params)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req.URL, req.Group = s.fhirBase(r)+strings.TrimPrefix(r.URL.RequestURI(), "/fhir"), group
	j, err := s.bulk.KickOff(r.Context(), p, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Location", s.fhirBase(r)+"/bulk/"+j.ID)
	w.WriteHeader(http.StatusAccepted)
}

// preferAsync reports whether the request asks for an asynchronous response.
func preferAsync(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for pref := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(pref), "respond-async") {
				return true
			}
		}
	}
	return false
}

// exportParams returns the kick-off parameters: the query's, and on POST those of a FHIR
// Parameters body.
func (s *Server) exportParams(w http.ResponseWriter, r *http.Request) (map[string][]string, error) {
	params := map[string][]string(r.URL.Query())
	if r.Method != http.MethodPost {
		return params, nil
	}
	if err := requireMediaType(r, "application/fhir+json", "application/json"); err != nil {
		return nil, err
	}
	body, err := s.readBody(r, w)
	if err != nil {
		return nil, err
	}
	var pr struct {
		ResourceType string `json:"resourceType"`
		Parameter    []struct {
			Name         string  `json:"name"`
			ValueString  *string `json:"valueString"`
			ValueInstant *string `json:"valueInstant"`
			ValueCode    *string `json:"valueCode"`
		} `json:"parameter"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pr); err != nil || dec.More() || pr.ResourceType != "Parameters" {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "a POST kick-off takes a FHIR Parameters resource whose parameters have valueString, valueInstant or valueCode")
	}
	for _, pm := range pr.Parameter {
		v := pm.ValueString
		if v == nil {
			v = pm.ValueInstant
		}
		if v == nil {
			v = pm.ValueCode
		}
		if v == nil {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "parameter %q has no value", pm.Name)
		}
		params[pm.Name] = append(params[pm.Name], *v)
	}
	return params, nil
}

// exportRequest decodes the kick-off parameters of the Bulk Data Access IG.
func exportRequest(params map[string][]string) (bulk.Request, error) {
	var req bulk.Request
	for name, vals := range params {
		switch name {
		case "_outputFormat":
			for _, v := range vals {
				switch v {
				case fhirNDJSON, "application/ndjson", "ndjson":
				default:
					return req, vitalgate.Errorf(vitalgate.EINVALID, "_outputFormat %q is not supported; files are %s", v, fhirNDJSON)
				}
			}
		case "_type":
			for _, v := range vals {
				for t := range strings.SplitSeq(v, ",") {
					if t = strings.TrimSpace(t); t != "" {
						req.Types = append(req.Types, t)
					}
				}
			}
		case "_since":
			if len(vals) != 1 {
				return req, vitalgate.Errorf(vitalgate.EINVALID, "_since takes one instant")
			}
			t, err := time.Parse(time.RFC3339Nano, vals[0])
			if err != nil {
				return req, vitalgate.Errorf(vitalgate.EINVALID, "_since %q is not a FHIR instant (2026-11-27T10:00:00Z)", vals[0])
			}
			req.Since = t
		case "_typeFilter":
			req.TypeFilters = append(req.TypeFilters, vals...)
		default:
			return req, vitalgate.Errorf(vitalgate.EINVALID, "kick-off parameter %q is not supported; use _type, _since, _typeFilter or _outputFormat", name)
		}
	}
	return req, nil
}

// handleExportStatus serves GET /fhir/bulk/{id}: 202 with X-Progress and Retry-After while
// the job runs, the manifest when it is done, an OperationOutcome when it failed.
func (s *Server) handleExportStatus(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	j, ok := s.exportJob(w, r, p)
	if !ok {
		return
	}
	switch j.Status {
	case vitalgate.ExportQueued, vitalgate.ExportRunning:
		progress := "queued"
		if j.Status == vitalgate.ExportRunning {
			progress = "in progress"
			if j.Progress != "" {
				progress += ": " + j.Progress
			}
		}
		w.Header().Set("X-Progress", progress)
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusAccepted)
	case vitalgate.ExportFailed:
		s.writeError(w, r, vitalgate.Errorf(vitalgate.EINTERNAL, "the export failed: %s", j.Error))
	default:
		base := s.fhirBase(r) + "/bulk/" + j.ID + "/file/"
		m := bulk.ManifestOf(j, func(n int) string { return base + strconv.Itoa(n) })
		w.Header().Set("Expires", j.ExpiresAt.UTC().Format(http.TimeFormat))
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, m)
	}
}

// handleExportCancel serves DELETE /fhir/bulk/{id}.
func (s *Server) handleExportCancel(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	id, err := s.exportID(r)
	if err == nil {
		err = s.bulk.Cancel(r.Context(), p, id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// handleExportFile serves GET /fhir/bulk/{id}/file/{n}: the NDJSON file, streamed.
func (s *Server) handleExportFile(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	id, err := s.exportID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		s.writeError(w, r, vitalgate.Errorf(vitalgate.ENOTFOUND, "an export file is named by its number, from 0"))
		return
	}
	fw := &fileWriter{w: w}
	if err := s.bulk.WriteFile(r.Context(), p, id, n, fw); err != nil {
		if !fw.started {
			s.writeError(w, r, err)
			return
		}
		// Part of the file is sent: cut the response so the client sees it incomplete.
		s.log.Warn("bulk export file cut short", "export", id, "file", n, "error", err.Error())
		panic(http.ErrAbortHandler)
	}
	if !fw.started {
		fw.header()
		w.WriteHeader(http.StatusOK)
	}
}

// fileWriter sends the file's headers before its first bytes.
type fileWriter struct {
	w       http.ResponseWriter
	started bool
}

func (f *fileWriter) header() {
	h := f.w.Header()
	h.Set("Content-Type", fhirNDJSON)
	h.Set("Cache-Control", "no-store")
}

func (f *fileWriter) Write(b []byte) (int, error) {
	if !f.started {
		f.started = true
		f.header()
		f.w.WriteHeader(http.StatusOK)
	}
	return f.w.Write(b) // #nosec G705 -- NDJSON of FHIR resources served as application/fhir+ndjson (nosniff), never as HTML
}

// exportID is the {id} of a bulk route, or 503 when exports are off.
func (s *Server) exportID(r *http.Request) (string, error) {
	if s.bulk == nil {
		return "", vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this server does not run bulk exports")
	}
	return pathID(r)
}

// exportJob returns the job of the request's {id}, or answers the error.
func (s *Server) exportJob(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) (vitalgate.ExportJob, bool) {
	id, err := s.exportID(r)
	var j vitalgate.ExportJob
	if err == nil {
		j, err = s.bulk.Job(r.Context(), p, id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return j, false
	}
	return j, true
}

// handleGroups serves GET /fhir/Group: the groups the client may export, as a searchset
// Bundle of Group resources.
func (s *Server) handleGroups(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if s.bulk == nil {
		s.writeError(w, r, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this server does not run bulk exports"))
		return
	}
	gs, err := s.bulk.Groups(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type group struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Type         string `json:"type"`
		Actual       bool   `json:"actual"`
		Name         string `json:"name"`
		Quantity     *int   `json:"quantity,omitempty"`
	}
	type entry struct {
		FullURL  string `json:"fullUrl"`
		Resource group  `json:"resource"`
	}
	out := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Total        int     `json:"total"`
		Entry        []entry `json:"entry"`
	}{ResourceType: "Bundle", Type: "searchset", Total: len(gs), Entry: []entry{}}
	for _, g := range gs {
		res := group{ResourceType: "Group", ID: g.ID, Type: "person", Actual: true, Name: g.Name}
		if g.Quantity >= 0 {
			q := g.Quantity
			res.Quantity = &q
		}
		out.Entry = append(out.Entry, entry{FullURL: fmt.Sprintf("%s/Group/%s", s.fhirBase(r), g.ID), Resource: res})
	}
	body, err := json.Marshal(out)
	if err != nil {
		s.writeError(w, r, vitalgate.Internal(err, "group bundle"))
		return
	}
	writeResource(w, http.StatusOK, body, 0, time.Time{})
}
