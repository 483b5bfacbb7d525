package bulk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/seal"
)

// Run claims and runs waiting jobs until ctx ends, and deletes expired ones: every node runs
// it; the store's lease gives each job to one run at a time.
func (s *Service) Run(ctx context.Context) {
	poll := s.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := s.Store.DeleteExpiredExports(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.logger().Warn("deleting expired bulk exports failed; retrying", "error", err.Error())
		}
		for ctx.Err() == nil {
			ran, err := s.RunOne(ctx)
			if err != nil && ctx.Err() == nil {
				s.logger().Warn("a bulk export run failed; another run will take the job over", "error", err.Error())
			}
			if !ran {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// RunOne claims one waiting job and runs it to its end. It reports whether there was one; an
// error means the run stopped without finishing the job (it lost the job, or the store
// failed), which another run then takes over when the lease runs out.
func (s *Service) RunOne(ctx context.Context) (bool, error) {
	owner := s.newOwner()
	now := s.now()
	j, err := s.Store.ClaimExportJob(ctx, owner, now, now.Add(s.lease()))
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	files, total, err := s.export(ctx, j)
	var failure *jobFailure
	switch {
	case errors.As(err, &failure):
		j.Status, j.Error = vitalgate.ExportFailed, failure.msg
	case err != nil:
		return true, err
	default:
		j.Status, j.Files = vitalgate.ExportDone, files
	}
	done := s.now()
	j.DoneAt, j.ExpiresAt = done, done.Add(s.retention())
	e := audit.Entry{Action: audit.ActionExecute, Type: "rest", Subtype: "export", AgentType: audit.AgentClient,
		AgentID: j.Client, Resources: []string{"Patient"}, Count: total, Site: siteOf(j.Site),
		OutcomeDesc: "bulk export " + j.ID + " complete"}
	if j.Group != "" {
		e.Resources = []string{"Group/" + j.Group}
	}
	if j.Status == vitalgate.ExportFailed {
		e.Outcome, e.OutcomeDesc = audit.OutcomeMinorFailure, "bulk export "+j.ID+" failed: "+j.Error
	}
	return true, s.Store.FinishExportJob(ctx, j, s.Audit.Encode(ctx, e))
}

// jobFailure ends a job as failed, with a message for the client.
type jobFailure struct{ msg string }

func (f *jobFailure) Error() string { return f.msg }

// export writes the files of j as owner and returns them with the number of resources.
func (s *Service) export(ctx context.Context, j vitalgate.ExportJob) ([]vitalgate.ExportFile, int, error) {
	c, err := s.Store.Client(ctx, j.Client)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND || err == nil && c.Disabled {
		return nil, 0, &jobFailure{"the client that asked for the export is disabled or no longer registered"}
	} else if err != nil {
		return nil, 0, err
	}
	p := vitalgate.Principal{Kind: "client", ID: c.ID, Role: c.Role, Scopes: c.Scopes, Site: j.Site}
	var patients [][]byte // nil: the whole site
	if j.Group != "" {
		g, err := s.group(ctx, p, j.Group)
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return nil, 0, &jobFailure{"Group/" + j.Group + " no longer exists"}
		} else if err != nil {
			return nil, 0, err
		}
		patients = g.Patients
	}
	dek, err := s.jobKey(ctx, j)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return nil, 0, &jobFailure{vitalgate.ErrorMessage(err)}
	} else if err != nil {
		return nil, 0, err
	}
	defer clear(dek)
	w := &run{s: s, ctx: ctx, job: j, dek: dek, keyID: "export-" + j.ID, visible: map[string]bool{}, principal: p,
		renewAt: s.now().Add(s.lease() / 3)}
	var files []vitalgate.ExportFile
	total := 0
	for i, typ := range j.Types {
		w.file, w.seq, w.count = i, 0, 0
		if patients == nil {
			err = w.exportAll(typ, nil)
		} else {
			for _, pidx := range patients {
				if err = w.exportAll(typ, pidx); err != nil {
					break
				}
			}
		}
		if err == nil {
			err = w.flush()
		}
		if err != nil {
			return nil, 0, err
		}
		files = append(files, vitalgate.ExportFile{Seq: i, Type: typ, Count: w.count})
		total += w.count
	}
	return files, total, nil
}

// run is one run's writing of a job's files.
type run struct {
	s         *Service
	ctx       context.Context
	job       vitalgate.ExportJob
	principal vitalgate.Principal
	dek       []byte
	keyID     string
	file, seq int
	count     int
	buf       bytes.Buffer
	visible   map[string]bool // a clinician's decision per patient
	renewAt   time.Time
}

// exportAll writes the resources of typ of the job's site (of patient pidx when set) that
// its filters keep.
func (w *run) exportAll(typ string, pidx []byte) error {
	f := vitalgate.ResourceFilter{Site: w.job.Site, Type: typ, PatientIndex: pidx, Since: w.job.Since, Limit: pageSize}
	for {
		var page []vitalgate.SealedResource
		if err := w.s.Store.Resources(w.ctx, f, func(r vitalgate.SealedResource) error {
			page = append(page, r)
			return nil
		}); err != nil {
			return err
		}
		for _, r := range page {
			if err := w.write(r); err != nil {
				return err
			}
		}
		if err := w.renew(); err != nil {
			return err
		}
		if len(page) < pageSize {
			return nil
		}
		f.After = page[len(page)-1].ID
	}
}

// write adds r to the current file when the job's rules keep it.
func (w *run) write(r vitalgate.SealedResource) error {
	ok, err := w.mayExport(r)
	if err != nil || !ok {
		return err
	}
	var body []byte
	hasCode := func(code string) bool {
		idx := w.s.Vault.CodeIndex(code)
		return slices.ContainsFunc(r.CodeIndexes, func(b []byte) bool { return bytes.Equal(b, idx) })
	}
	hasCategory := func(cat string) bool {
		if body == nil {
			if body, err = w.s.Vault.Open(w.ctx, r); err != nil {
				return false
			}
		}
		return categoryOf(body, cat)
	}
	if !keeps(w.job.Filters, r.Type, r.Effective, hasCode, hasCategory) {
		return err
	}
	if body == nil {
		if body, err = w.s.Vault.Open(w.ctx, r); err != nil {
			return err
		}
	}
	if err := json.Compact(&w.buf, body); err != nil {
		return vitalgate.Internal(err, "stored resource is not JSON")
	}
	clear(body)
	w.buf.WriteByte('\n')
	w.count++
	if w.buf.Len() >= vitalgate.ExportChunkSize {
		if err := w.flush(); err != nil {
			return err
		}
	}
	return nil
}

// mayExport applies the read rules search applies: the care team of a clinician.
func (w *run) mayExport(r vitalgate.SealedResource) (bool, error) {
	if w.principal.Role != vitalgate.RoleClinician {
		return true, nil
	}
	k := string(r.PatientIndex)
	if v, ok := w.visible[k]; ok {
		return v, nil
	}
	err := w.s.Access.CheckPatient(w.ctx, w.principal, r.PatientIndex)
	if err != nil && vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		return false, err
	}
	w.visible[k] = err == nil
	return err == nil, nil
}

// flush seals what is buffered as the file's next chunk and stores it.
func (w *run) flush() error {
	if w.buf.Len() == 0 {
		return nil
	}
	sealed, err := seal.Seal(w.dek, w.keyID, w.buf.Bytes(), chunkAAD(w.job.ID, w.file, w.seq), nil)
	clear(w.buf.Bytes())
	w.buf.Reset()
	if err != nil {
		return vitalgate.Internal(err, "seal export chunk")
	}
	if err := w.s.Store.PutExportChunk(w.ctx, w.job.ID, w.job.Owner, w.file, w.seq, sealed); err != nil {
		return err
	}
	w.seq++
	return nil
}

// renew extends the lease when a third of it has passed, with the progress so far.
func (w *run) renew() error {
	now := w.s.now()
	if now.Before(w.renewAt) {
		return nil
	}
	w.renewAt = now.Add(w.s.lease() / 3)
	progress := fmt.Sprintf("%s: %d (file %d of %d)", w.job.Types[w.file], w.count, w.file+1, len(w.job.Types))
	return w.s.Store.RenewExportLease(w.ctx, w.job.ID, w.job.Owner, now.Add(w.s.lease()), progress)
}

// categoryOf reports whether a resource body names category code cat.
func categoryOf(body []byte, cat string) bool {
	var r struct {
		Category []struct {
			Coding []struct {
				Code string `json:"code"`
			} `json:"coding"`
		} `json:"category"`
	}
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	for _, c := range r.Category {
		for _, cd := range c.Coding {
			if cd.Code == cat {
				return true
			}
		}
	}
	return false
}
