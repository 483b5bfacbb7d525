package console

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/auditquery"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/httpapi"
)

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	names := []string{"login", "setup", "enroll", "home", "passkeys", "fleet", "device", "patients", "patient", "audit", "auditentry", "error"}
	funcs := template.FuncMap{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
	}
	out := make(map[string]*template.Template, len(names))
	for _, n := range names {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, err
		}
		out[n] = t
	}
	return out, nil
}

// page is what every template gets.
type page struct {
	Title     string
	User      *vitalgate.Principal
	FormToken string
	Data      any
}

// render writes a page with status 200 (or the given one).
func (s *Server) render(w http.ResponseWriter, r *http.Request, p vitalgate.Principal, name, title string, status int, data any) {
	pg := page{Title: title, FormToken: s.formToken(w, r), Data: data}
	if p.Kind == "user" {
		pg.User = &p
	}
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, pg); err != nil {
		s.o.Logger.Error("console page failed", "page", name, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// statusOf is the HTTP status of an error code: the mapping of httpapi, the other HTTP
// transport, so that both answer the same error alike.
func statusOf(code string) int { return httpapi.StatusOf(code) }

// fail answers with an error page: the error's safe message, and for an internal error only
// an error id that is logged with the cause.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, p vitalgate.Principal, err error) {
	code := vitalgate.ErrorCode(err)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	msg := vitalgate.ErrorMessage(err)
	if code == vitalgate.EINTERNAL || code == vitalgate.EUNAVAILABLE {
		s.o.Logger.LogAttrs(r.Context(), slog.LevelError, "console request failed", slog.String("error_id", id),
			slog.String("code", code), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		msg = "Something went wrong on the server. Quote the error id to your administrator."
	}
	if code == vitalgate.ETHROTTLED {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(auth.RetryAfter(err).Seconds()))))
	}
	s.render(w, r, p, "error", "Error", statusOf(code), struct{ Message, ID, Code string }{msg, id, code})
}

// --- sign-in ---

type loginData struct {
	Ended    bool
	Error    string
	ID       string
	Passkeys bool
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.render(w, r, p, "login", "Sign in", http.StatusOK, loginData{Ended: r.URL.Query().Get("ended") != "", Passkeys: s.o.People.PasskeysEnabled()})
}

// writeJSON answers a request of the passkey script.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // #nosec G705 -- JSON served as application/json (nosniff), never as HTML
}

// failJSON answers a request of the passkey script with the error's safe message.
func (s *Server) failJSON(w http.ResponseWriter, r *http.Request, err error) {
	code := vitalgate.ErrorCode(err)
	msg := vitalgate.ErrorMessage(err)
	if code == vitalgate.EINTERNAL || code == vitalgate.EUNAVAILABLE {
		s.o.Logger.Error("console request failed", "path", r.URL.Path, "error", err.Error())
		msg = "something went wrong on the server"
	}
	b, _ := json.Marshal(map[string]string{"error": msg})
	writeJSON(w, statusOf(code), b)
}

func (s *Server) handlePasskeyLoginBegin(w http.ResponseWriter, r *http.Request, _ vitalgate.Principal) {
	b, err := s.o.People.BeginPasskeyLogin(r.Context(), boundToken(r, r.Context()))
	if err != nil {
		s.failJSON(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handlePasskeyLoginFinish(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	token, _, err := s.o.People.FinishPasskeyLogin(r.Context(), boundToken(r, r.Context()), r.Body, p.RemoteIP)
	if err != nil {
		s.failJSON(w, r, err)
		return
	}
	s.signIn(w, token)
	writeJSON(w, http.StatusOK, []byte(`{"redirect":"/console/"}`))
}

func (s *Server) handlePasskeys(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.render(w, r, p, "passkeys", "Passkeys", http.StatusOK, struct{ Enabled bool }{s.o.People.PasskeysEnabled()})
}

func (s *Server) handlePasskeyBegin(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	b, err := s.o.People.BeginPasskeyRegistration(r.Context(), p, boundToken(r, r.Context()))
	if err != nil {
		s.failJSON(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handlePasskeyReauthBegin(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	b, err := s.o.People.BeginPasskeyReauth(r.Context(), p, boundToken(r, r.Context()))
	if err != nil {
		s.failJSON(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handlePasskeyFinish(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if err := s.o.People.FinishPasskeyRegistration(r.Context(), p, boundToken(r, r.Context()), r.Body); err != nil {
		s.failJSON(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"ok":true}`))
}

func (s *Server) signIn(w http.ResponseWriter, token string) {
	setCookie(w, SessionCookie, token)
	clearCookie(w, preCookie)
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	f := r.PostForm
	token, _, err := s.o.People.Login(r.Context(), auth.SignIn{ID: f.Get("id"), Password: f.Get("password"), Code: f.Get("code"), Source: p.RemoteIP})
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.EUNAUTHORIZED {
			s.render(w, r, p, "login", "Sign in", http.StatusUnauthorized, loginData{Error: vitalgate.ErrorMessage(err), ID: f.Get("id")})
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.signIn(w, token)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	token, _ := r.Context().Value(tokenKey{}).(string)
	if err := s.o.People.Logout(r.Context(), token, p.RemoteIP); err != nil {
		s.fail(w, r, p, err)
		return
	}
	clearCookie(w, SessionCookie)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

type setupData struct {
	Error, ID, Setup string
	Secret, URI      string
	MinPassword      int
}

func (s *Server) handleSetupForm(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.render(w, r, p, "setup", "First sign-in", http.StatusOK, setupData{})
}

func (s *Server) handleSetup(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	f := r.PostForm
	in := auth.SignIn{ID: f.Get("id"), Setup: f.Get("setup"), Source: p.RemoteIP}
	enr, err := s.o.People.BeginSetup(r.Context(), in)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.EUNAUTHORIZED {
			s.render(w, r, p, "setup", "First sign-in", http.StatusUnauthorized, setupData{Error: vitalgate.ErrorMessage(err), ID: in.ID})
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, p, "enroll", "Enroll your authenticator", http.StatusOK,
		setupData{ID: in.ID, Setup: in.Setup, Secret: enr.Secret, URI: enr.URI, MinPassword: auth.MinPasswordLength})
}

func (s *Server) handleSetupComplete(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	f := r.PostForm
	in := auth.SignIn{ID: f.Get("id"), Setup: f.Get("setup"), Password: f.Get("password"), Code: f.Get("code"), Source: p.RemoteIP}
	if f.Get("password") != f.Get("password2") {
		s.render(w, r, p, "enroll", "Enroll your authenticator", http.StatusBadRequest,
			setupData{Error: "the two passwords differ", ID: in.ID, Setup: in.Setup, MinPassword: auth.MinPasswordLength})
		return
	}
	token, _, err := s.o.People.CompleteSetup(r.Context(), in)
	if err != nil {
		switch vitalgate.ErrorCode(err) {
		case vitalgate.EUNAUTHORIZED, vitalgate.EINVALID:
			s.render(w, r, p, "enroll", "Enroll your authenticator", statusOf(vitalgate.ErrorCode(err)),
				setupData{Error: vitalgate.ErrorMessage(err), ID: in.ID, Setup: in.Setup, MinPassword: auth.MinPasswordLength})
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.signIn(w, token)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// --- pages ---

// handleHome links the pages; each page checks its own permission (the links are the same
// for everyone).
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.render(w, r, p, "home", "Vitalgate", http.StatusOK, nil)
}

// fleetRow is one device of the fleet page.
type fleetRow struct {
	ID, Model, Patient, Status, Version string
	CertExpires, LastSeen               time.Time
	Enrolled                            bool
}

func (s *Server) handleFleet(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	status := r.URL.Query().Get("status")
	rows, err := s.o.Fleet.Overview(r.Context(), p)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	var out []fleetRow
	for _, d := range rows {
		fr := fleetRow{ID: d.ID, Model: d.Model, Patient: d.PatientID, Status: string(d.Status), CertExpires: d.Cert.NotAfter,
			LastSeen: d.LastSeen, Enrolled: d.Enrolled()}
		if status != "" && fr.Status != status {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(fr.ID+" "+fr.Model+" "+fr.Patient), strings.ToLower(q)) {
			continue
		}
		if s.o.Versions != nil {
			fr.Version, _ = s.o.Versions.InstalledVersion(r.Context(), d.ID)
		}
		out = append(out, fr)
	}
	s.render(w, r, p, "fleet", "Fleet", http.StatusOK, struct {
		Q, Status string
		Rows      []fleetRow
		Total     int
	}{q, status, out, len(rows)})
}

// deviceRow returns the fleet row of one device, ENOTFOUND when p does not see it.
func (s *Server) deviceRow(r *http.Request, p vitalgate.Principal, id string) (fleetRow, error) {
	rows, err := s.o.Fleet.Overview(r.Context(), p)
	if err != nil {
		return fleetRow{}, err
	}
	for _, d := range rows {
		if d.ID == id {
			fr := fleetRow{ID: d.ID, Model: d.Model, Patient: d.PatientID, Status: string(d.Status), CertExpires: d.Cert.NotAfter,
				LastSeen: d.LastSeen, Enrolled: d.Enrolled()}
			if s.o.Versions != nil {
				fr.Version, _ = s.o.Versions.InstalledVersion(r.Context(), d.ID)
			}
			return fr, nil
		}
	}
	return fleetRow{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered", id)
}

type deviceData struct {
	Device   fleetRow
	Error    string
	Revoked  bool
	Passkeys bool
}

func (s *Server) handleDevice(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	d, err := s.deviceRow(r, p, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, p, "device", "Device", http.StatusOK, deviceData{Device: d, Revoked: r.URL.Query().Get("revoked") != "", Passkeys: s.o.People.PasskeysEnabled()})
}

// handleRevoke revokes a device once its admin has re-authenticated: password and code in
// the form, or a passkey assertion as JSON (the passkey script).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	id := r.PathValue("id")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		again, err := s.o.People.ReauthenticatePasskey(r.Context(), p, boundToken(r, r.Context()), r.Body)
		if err == nil {
			err = s.o.Fleet.Revoke(r.Context(), again, id)
		}
		if err != nil {
			s.failJSON(w, r, err)
			return
		}
		b, _ := json.Marshal(map[string]string{"redirect": "/console/devices/" + url.PathEscape(id) + "?revoked=1"})
		writeJSON(w, http.StatusOK, b)
		return
	}
	again, err := s.o.People.Reauthenticate(r.Context(), p, auth.SignIn{Password: r.PostForm.Get("password"), Code: r.PostForm.Get("code")})
	if err == nil {
		err = s.o.Fleet.Revoke(r.Context(), again, id)
	}
	if err != nil {
		if c := vitalgate.ErrorCode(err); c == vitalgate.EUNAUTHORIZED || c == vitalgate.EFORBIDDEN {
			if d, derr := s.deviceRow(r, p, id); derr == nil {
				s.render(w, r, p, "device", "Device", statusOf(c), deviceData{Device: d, Error: vitalgate.ErrorMessage(err)})
				return
			}
		}
		s.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/console/devices/"+url.PathEscape(id)+"?revoked=1", http.StatusSeeOther)
}

// patientView is a Patient as the console shows it.
type patientView struct {
	ID          string
	Identifiers []string
	Name        string
	Gender      string
	BirthDate   string
}

func parsePatient(b []byte) patientView {
	var pt struct {
		ID         string `json:"id"`
		Identifier []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		} `json:"identifier"`
		Name []struct {
			Family string   `json:"family"`
			Given  []string `json:"given"`
			Text   string   `json:"text"`
		} `json:"name"`
		Gender    string `json:"gender"`
		BirthDate string `json:"birthDate"`
	}
	_ = json.Unmarshal(b, &pt)
	v := patientView{ID: pt.ID, Gender: pt.Gender, BirthDate: pt.BirthDate}
	for _, id := range pt.Identifier {
		v.Identifiers = append(v.Identifiers, strings.TrimPrefix(id.System+"|"+id.Value, "|"))
	}
	if len(pt.Name) > 0 {
		n := pt.Name[0]
		v.Name = n.Text
		if v.Name == "" {
			v.Name = strings.TrimSpace(strings.Join(n.Given, " ") + " " + n.Family)
		}
	}
	return v
}

func (s *Server) handlePatients(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	ident := strings.TrimSpace(r.URL.Query().Get("identifier"))
	var found []patientView
	searched := ident != ""
	if searched {
		if len(ident) > 256 {
			s.fail(w, r, p, vitalgate.FieldErrorf(vitalgate.EINVALID, "identifier", "an identifier is at most 256 characters"))
			return
		}
		page, err := s.o.Access.Search(r.Context(), p, access.Query{Type: "Patient", Token: ident, ByPatientToken: true, Count: 50})
		if err != nil {
			s.fail(w, r, p, err)
			return
		}
		for _, b := range page.Resources {
			found = append(found, parsePatient(b))
		}
	}
	s.render(w, r, p, "patients", "Patients", http.StatusOK, struct {
		Identifier string
		Searched   bool
		Found      []patientView
	}{ident, searched, found})
}

// Ranges of the patient chart.
var chartRanges = []struct {
	Key   string
	Label string
	D     time.Duration
}{{"6h", "6 hours", 6 * time.Hour}, {"24h", "24 hours", 24 * time.Hour}, {"7d", "7 days", 7 * 24 * time.Hour}, {"30d", "30 days", 30 * 24 * time.Hour}}

func (s *Server) handlePatient(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	id := r.PathValue("id")
	rng := r.URL.Query().Get("range")
	span := 24 * time.Hour
	if rng == "" {
		rng = "24h"
	}
	i := slices.IndexFunc(chartRanges, func(c struct {
		Key   string
		Label string
		D     time.Duration
	}) bool {
		return c.Key == rng
	})
	if i < 0 {
		s.fail(w, r, p, vitalgate.FieldErrorf(vitalgate.EINVALID, "range", "range is one of 6h, 24h, 7d, 30d"))
		return
	}
	span = chartRanges[i].D
	body, _, err := s.o.Access.Read(r.Context(), p, "Patient", id)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	now := s.o.Now().UTC()
	page, err := s.o.Access.Search(r.Context(), p, access.Query{Type: "Observation", PatientID: id, From: now.Add(-span), To: now.Add(time.Minute), Count: maxPoints})
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	var obs []reading
	for _, b := range page.Resources {
		obs = append(obs, parseObservation(b)...)
	}
	charts := buildCharts(obs, now.Add(-span), now)
	type rangeLink struct {
		Label, Href string
		Current     bool
	}
	var links []rangeLink
	for _, c := range chartRanges {
		links = append(links, rangeLink{c.Label, "/console/patients/" + url.PathEscape(id) + "?range=" + c.Key, c.Key == rng})
	}
	s.render(w, r, p, "patient", "Patient", http.StatusOK, struct {
		Patient patientView
		Charts  []chart
		Ranges  []rangeLink
		From    time.Time
		To      time.Time
		More    bool
	}{parsePatient(body), charts, links, now.Add(-span), now, page.Next != ""})
}

// auditRow is an AuditEvent as the audit page lists it.
type auditRow struct {
	Index                       string
	Recorded                    string
	Type, Subtype, Action       string
	Outcome, OutcomeDesc        string
	AgentType, AgentID, Address string
	Emergency                   bool
}

func parseAuditEvent(b []byte) auditRow {
	var ev struct {
		ID   string `json:"id"`
		Type struct {
			Display string `json:"display"`
		} `json:"type"`
		Subtype []struct {
			Code string `json:"code"`
		} `json:"subtype"`
		Action      string `json:"action"`
		Recorded    string `json:"recorded"`
		Outcome     string `json:"outcome"`
		OutcomeDesc string `json:"outcomeDesc"`
		Agent       []struct {
			Type struct {
				Text string `json:"text"`
			} `json:"type"`
			Who struct {
				Identifier struct {
					Value string `json:"value"`
				} `json:"identifier"`
			} `json:"who"`
			Network struct {
				Address string `json:"address"`
			} `json:"network"`
			PurposeOfUse []json.RawMessage `json:"purposeOfUse"`
		} `json:"agent"`
	}
	_ = json.Unmarshal(b, &ev)
	row := auditRow{Index: ev.ID, Recorded: ev.Recorded, Type: ev.Type.Display, Action: ev.Action, Outcome: ev.Outcome, OutcomeDesc: ev.OutcomeDesc}
	if len(ev.Subtype) > 0 {
		row.Subtype = ev.Subtype[0].Code
	}
	if len(ev.Agent) > 0 {
		a := ev.Agent[0]
		row.AgentType, row.AgentID, row.Address, row.Emergency = a.Type.Text, a.Who.Identifier.Value, a.Network.Address, len(a.PurposeOfUse) > 0
	}
	return row
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	params := map[string][]string{}
	form := r.URL.Query()
	for _, k := range []string{"patient", "agent", "action", "outcome", "date"} {
		if v := strings.TrimSpace(form.Get(k)); v != "" {
			params[k] = []string{v}
		}
	}
	params["_count"] = []string{"100"}
	q, err := auditquery.ParseQuery(params)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	evs, err := s.o.Auditor.Search(r.Context(), p, q)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	st, err := s.o.Auditor.Status(r.Context(), p)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	var rows []auditRow
	for _, b := range evs {
		rows = append(rows, parseAuditEvent(b))
	}
	s.render(w, r, p, "audit", "Audit log", http.StatusOK, struct {
		Query  map[string]string
		Rows   []auditRow
		Status auditquery.Status
		Root   string
	}{map[string]string{"patient": form.Get("patient"), "agent": form.Get("agent"), "action": form.Get("action"),
		"outcome": form.Get("outcome"), "date": form.Get("date")}, rows, st, hex.EncodeToString(st.Checkpoint.Root[:])})
}

func (s *Server) handleAuditEntry(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	index, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil {
		s.fail(w, r, p, vitalgate.FieldErrorf(vitalgate.EINVALID, "index", "an audit entry is named by its index, a number"))
		return
	}
	ev, err := s.o.Auditor.Entry(r.Context(), p, index)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, ev, "", "  ")
	s.render(w, r, p, "auditentry", "Audit entry", http.StatusOK, struct {
		Row  auditRow
		JSON string
	}{parseAuditEvent(ev), pretty.String()})
}
