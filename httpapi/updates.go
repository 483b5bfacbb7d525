package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/updates"
)

// Updates is what the HTTP layer needs from the update repository (updates.Service): the
// TUF metadata and target files in the standard consistent-snapshot layout, for enrolled
// devices. Each method owns its rule (a device sees its own model's role and files only)
// and its audit entry.
type Updates interface {
	// Metadata returns a metadata file (N.root.json, timestamp.json, N.snapshot.json,
	// N.targets.json, N.MODEL.json). ENOTFOUND, EFORBIDDEN.
	Metadata(ctx context.Context, p vitalgate.Principal, name string) ([]byte, error)
	// Target returns a target file (MODEL/VERSION/<sha256>.FILENAME) to stream. ENOTFOUND,
	// EFORBIDDEN, EUNAVAILABLE.
	Target(ctx context.Context, p vitalgate.Principal, path string) (*updates.TargetFile, error)
}

func (s *Server) noUpdates() error {
	return vitalgate.Errorf(vitalgate.ENOTFOUND, "this server publishes no updates")
}

// handleUpdateMetadata serves GET /updates/metadata/{name}.
func (s *Server) handleUpdateMetadata(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if s.updates == nil {
		s.writeError(w, r, s.noUpdates())
		return
	}
	data, err := s.updates.Metadata(r.Context(), p, r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data) // #nosec G705 -- signed TUF metadata served as application/json (nosniff), never as HTML
}

// handleUpdateTarget serves GET /updates/targets/{path...}, streamed from the store with its
// Content-Length.
func (s *Server) handleUpdateTarget(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if s.updates == nil {
		s.writeError(w, r, s.noUpdates())
		return
	}
	f, err := s.updates.Target(r.Context(), p, r.PathValue("path"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(f.Length, 10))
	// The write timeout bounds a stall, not a whole image: each chunk gets it afresh.
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w), d: s.cfg.WriteTimeout}
	if n, err := f.WriteTo(dw); err != nil {
		s.log.Warn("update download ended early", "target", f.Target, "bytes", n, "of", f.Length, "error", err.Error(), "request_id", requestID(r))
	}
}

// deadlineWriter moves the connection's write deadline before each write.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.d > 0 {
		_ = d.rc.SetWriteDeadline(time.Now().Add(d.d)) // not supported by every writer (tests): then the server's own timeout applies
	}
	return d.w.Write(p)
}
