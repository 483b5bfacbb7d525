package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auditquery"
)

// Auditor serves the audit log to auditors (*auditquery.Service): it checks scopes and
// records searches itself.
type Auditor interface {
	// Search returns matching AuditEvents, newest first. Errors: EFORBIDDEN, EINVALID,
	// EUNAVAILABLE (the search could not be audited).
	Search(ctx context.Context, p vitalgate.Principal, q auditquery.Query) ([][]byte, error)
	// Checkpoint returns the latest signed checkpoint. Errors: EFORBIDDEN, ENOTFOUND.
	Checkpoint(ctx context.Context, p vitalgate.Principal) ([]byte, error)
	// Inclusion proves an entry's inclusion. Errors: EFORBIDDEN, EINVALID.
	Inclusion(ctx context.Context, p vitalgate.Principal, index, size uint64) (auditquery.Inclusion, error)
	// Consistency proves that one tree extends another. Errors: EFORBIDDEN, EINVALID.
	Consistency(ctx context.Context, p vitalgate.Principal, from, to uint64) ([][audit.HashSize]byte, error)
}

func queryUint(q url.Values, name string) (uint64, error) {
	v := q.Get(name)
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil || len(q[name]) != 1 {
		return 0, vitalgate.FieldErrorf(vitalgate.EINVALID, name, "%s must be one non-negative integer", name)
	}
	return n, nil
}

// queryUints decodes two integer parameters.
func queryUints(q url.Values, a, b string) (uint64, uint64, error) {
	x, err := queryUint(q, a)
	if err != nil {
		return 0, 0, err
	}
	y, err := queryUint(q, b)
	return x, y, err
}

// handleAuditCheckpoint serves the latest signed checkpoint (C2SP signed note) as text.
func (s *Server) handleAuditCheckpoint(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	note, err := s.auditor.Checkpoint(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(note) // #nosec G705 -- a signed checkpoint note served as text/plain (nosniff, CSP default-src 'none'), never as HTML
}

func hashes(hs [][32]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

// handleInclusionProof serves an inclusion proof of entry `index` in the tree of `size`.
func (s *Server) handleInclusionProof(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	index, size, err := queryUints(r.URL.Query(), "index", "size")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	inc, err := s.auditor.Inclusion(r.Context(), p, index, size)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": inc.Index, "size": inc.Size, "entry": string(inc.Entry), "proof": hashes(inc.Proof)})
}

// handleConsistencyProof serves a consistency proof between trees of sizes `from` and `to`.
func (s *Server) handleConsistencyProof(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	from, to, err := queryUints(r.URL.Query(), "from", "to")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	proof, err := s.auditor.Consistency(r.Context(), p, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "proof": hashes(proof)})
}

// handleAuditEvents searches the audit log (parameters: auditquery.ParseQuery), newest first.
func (s *Server) handleAuditEvents(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	q, err := auditquery.ParseQuery(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	evs, err := s.auditor.Search(r.Context(), p, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeSearchSet(w, r, p, "AuditEvent", access.Page{Resources: evs})
}
