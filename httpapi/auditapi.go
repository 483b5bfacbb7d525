package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
)

// AuditStore is what the audit endpoints read.
type AuditStore interface {
	vitalgate.AuditStore
}

// record appends an audit entry outside a write (authentications, failures). A failure to
// record is logged; the caller's answer stands.
func (s *Server) record(r *http.Request, e audit.Entry) {
	if s.audit == nil {
		return
	}
	if err := s.audit.Append(r.Context(), e); err != nil {
		s.log.Error("audit append failed", "request_id", requestID(r), "error", err.Error())
	}
}

// auditEncode returns the stored audit entry to commit with a write, or none.
func (s *Server) auditEncode(r *http.Request, e audit.Entry) [][]byte {
	if s.audit == nil {
		return nil
	}
	return [][]byte{s.audit.Encode(r.Context(), e)}
}

func requireAuditor(p vitalgate.Principal) error {
	return access.RequireScope(p, "AuditEvent", access.OpRead)
}

func queryUint(q url.Values, name string) (uint64, error) {
	v := q.Get(name)
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil || len(q[name]) != 1 {
		return 0, vitalgate.FieldErrorf(vitalgate.EINVALID, name, "%s must be one non-negative integer", name)
	}
	return n, nil
}

// handleAuditCheckpoint serves the latest signed checkpoint (C2SP signed note) as text.
func (s *Server) handleAuditCheckpoint(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if err := requireAuditor(p); err != nil {
		s.writeError(w, r, err)
		return
	}
	note, err := s.audit.Latest(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(note)
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
	if err := requireAuditor(p); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	index, err := queryUint(q, "index")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	size, err := queryUint(q, "size")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.checkSize(r, size); err != nil {
		s.writeError(w, r, err)
		return
	}
	proof, err := audit.ProveInclusion(r.Context(), audit.StoreLog{Store: s.auditStore}, index, size)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var entry []byte
	_ = s.auditStore.AuditEntries(r.Context(), index, index+1, func(rec vitalgate.AuditRecord) error { entry = rec.Data; return nil })
	writeJSON(w, http.StatusOK, map[string]any{"index": index, "size": size, "entry": string(entry), "proof": hashes(proof)})
}

// handleConsistencyProof serves a consistency proof between trees of sizes `from` and `to`.
func (s *Server) handleConsistencyProof(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if err := requireAuditor(p); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	from, err := queryUint(q, "from")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	to, err := queryUint(q, "to")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.checkSize(r, to); err != nil {
		s.writeError(w, r, err)
		return
	}
	proof, err := audit.ProveConsistency(r.Context(), audit.StoreLog{Store: s.auditStore}, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "proof": hashes(proof)})
}

// checkSize refuses proofs beyond the log.
func (s *Server) checkSize(r *http.Request, size uint64) error {
	n, err := s.auditStore.AuditSize(r.Context())
	if err != nil {
		return err
	}
	if size > n {
		return vitalgate.Errorf(vitalgate.EINVALID, "size is beyond the log (%d entries)", n)
	}
	return nil
}

// handleAuditEvents searches the audit log: patient (a Patient id), agent (a device or
// client id), action (C R U D E), date (ge/le/gt/lt/eq prefixes), _count (default 100, at
// most 1000), newest first.
func (s *Server) handleAuditEvents(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if err := access.RequireScope(p, "AuditEvent", access.OpSearch); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	var patientIdx, agent, action string
	var from, to time.Time
	count := 100
	for name, vals := range q {
		if len(vals) != 1 || len(vals[0]) > 256 || vals[0] == "" {
			s.writeError(w, r, vitalgate.FieldErrorf(vitalgate.EINVALID, trunc(name), "each parameter takes one value of at most 256 characters"))
			return
		}
		v := vals[0]
		switch name {
		case "patient":
			patientIdx = audit.PatientIndex(s.access.Vault.PatientIndex(strings.TrimPrefix(v, "Patient/")))
		case "agent":
			agent = v
		case "action":
			if !strings.Contains("CRUDE", v) || len(v) != 1 {
				s.writeError(w, r, vitalgate.FieldErrorf(vitalgate.EINVALID, "action", "action is one of C, R, U, D, E"))
				return
			}
			action = v
		case "date":
			prefix, val := v[:min(2, len(v))], v
			switch prefix {
			case "ge", "gt", "le", "lt", "eq":
				val = v[2:]
			default:
				prefix = "eq"
			}
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				t, err = time.Parse("2006-01-02", val)
			}
			if err != nil {
				s.writeError(w, r, vitalgate.FieldErrorf(vitalgate.EINVALID, "date", "date must be YYYY-MM-DD or RFC 3339, with an optional ge/gt/le/lt/eq prefix"))
				return
			}
			switch prefix {
			case "ge", "gt":
				from = t
			case "le", "lt":
				to = t
			default:
				from, to = t, t.Add(24*time.Hour)
			}
		case "_count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				s.writeError(w, r, vitalgate.FieldErrorf(vitalgate.EINVALID, "_count", "_count must be a positive integer"))
				return
			}
			count = min(n, 1000)
		default:
			s.writeError(w, r, vitalgate.FieldErrorf(vitalgate.EINVALID, trunc(name), "unknown search parameter"))
			return
		}
	}
	size, err := s.auditStore.AuditSize(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Newest first: walk back in windows of 1000 entries.
	var out []json.RawMessage
	for end := size; end > 0 && len(out) < count; {
		start := end - min(end, 1000)
		var window []vitalgate.AuditRecord
		if err := s.auditStore.AuditEntries(r.Context(), start, end, func(rec vitalgate.AuditRecord) error {
			window = append(window, rec)
			return nil
		}); err != nil {
			s.writeError(w, r, err)
			return
		}
		for i := len(window) - 1; i >= 0 && len(out) < count; i-- {
			e, err := audit.UnmarshalEntry(window[i].Data)
			if err != nil {
				continue
			}
			if (patientIdx != "" && e.PatientIndex != patientIdx) || (agent != "" && e.AgentID != agent) ||
				(action != "" && e.Action != action) || (!from.IsZero() && e.Time.Before(from)) || (!to.IsZero() && !e.Time.Before(to)) {
				continue
			}
			ev, err := e.FHIR(window[i].Index)
			if err != nil {
				s.writeError(w, r, vitalgate.Internal(err, "audit event"))
				return
			}
			out = append(out, ev)
		}
		end = start
	}
	s.record(r, audit.Entry{Action: audit.ActionRead, Type: "rest", Subtype: "search", AgentType: audit.AgentClient,
		AgentID: p.ID, AgentRole: string(p.Role), Resources: []string{"AuditEvent"}, Count: len(out)})
	s.writeSearchSet(w, r, p, "AuditEvent", access.Page{Resources: rawBytes(out)})
}

func rawBytes(rs []json.RawMessage) [][]byte {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out
}
