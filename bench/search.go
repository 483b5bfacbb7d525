package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/simulator"
)

// benchSearch stores --observations observations (sealed rows inserted straight into the
// store, one per minute per patient over a week, so a patient has 1440 in any 24 h) and
// measures an EHR client's search for a patient's last 24 h of vital signs, first page of
// 100, against the same result bytes served from memory over the same TLS.
func (b *benchRun) benchSearch(ctx context.Context) ([]Row, error) {
	srv, err := b.server(ctx)
	if err != nil {
		return nil, err
	}
	loadedAt := time.Now().UTC().Truncate(time.Second)
	patients, err := b.loadSearchData(ctx, srv.n, loadedAt)
	if err != nil {
		return nil, err
	}
	token, err := b.ehrToken(ctx, srv)
	if err != nil {
		return nil, err
	}
	from := loadedAt.Add(-24 * time.Hour).Format("2006-01-02T15:04:05Z")
	query := func(base, patient string) string {
		return base + "/fhir/Observation?patient=" + patient + "&date=ge" + from + "&_count=100"
	}
	clients := make([]*http.Client, b.opt.SearchClients)
	for i := range clients {
		clients[i] = benchClient(srv.n.CA.Pool(), nil)
	}
	defer closeClients(clients)
	get := func(ctx context.Context, url string, w int) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token.get())
		req.Header.Set("Accept", "application/fhir+json")
		return benchDo(clients[w], req, http.StatusOK)
	}
	// The baseline's answers, and a check of the page size.
	answers := make(map[string][]byte, len(patients))
	for _, p := range patients {
		body, err := get(ctx, query(srv.url, p), 0)
		if err != nil {
			return nil, fmt.Errorf("search for %s: %w", p, err)
		}
		if n := strings.Count(string(body), `"fullUrl"`); n != 100 {
			return nil, fmt.Errorf("search for %s returned %d entries on the first page, want 100", p, n)
		}
		answers[p] = body
	}
	next := make([]int, len(clients))
	call := func(base string) Call {
		return func(ctx context.Context, w int) (int, error) {
			p := patients[(w+next[w]*len(clients))%len(patients)]
			next[w]++
			_, err := get(ctx, query(base, p), w)
			return 1, err
		}
	}
	fig := b.load(ctx, "search (Vitalgate)", "queries", len(clients), call(srv.url))
	baseURL, stop, err := srv.startBaseline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := answers[r.URL.Query().Get("patient")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
		_, _ = w.Write(body)
	}))
	if err != nil {
		return nil, err
	}
	base := b.load(ctx, "search baseline (bytes from memory)", "queries", len(clients), call(baseURL))
	stop()
	const bn = "same bytes from memory"
	scale := fmt.Sprintf("%d stored observations, %d clients", b.opt.Observations, len(clients))
	rows := []Row{{Scenario: "search", Metric: "queries/s, " + scale, Unit: "queries/s", Value: fig.CallRate(),
		Baseline: base.CallRate(), BaselineName: bn, Note: errorNote(fig)}}
	rows = append(rows, latencyRows("search", bn, fig, &base, AtMost(10))...)
	if b.opt.Observations < 1_000_000 {
		rows[2].Note = fmt.Sprintf("target stated at 1 000 000 observations; measured at %d", b.opt.Observations)
	}
	return rows, nil
}

// loadSearchData inserts opt.observations sealed Observations straight into the store:
// patients get one observation a minute back from at (a week's worth each, the last patient
// fewer), cycling through a monitor's vital signs. It returns the patient ids that have a
// full 24 h.
func (b *benchRun) loadSearchData(ctx context.Context, n *node.Node, at time.Time) ([]string, error) {
	const perDay = 1440
	total := b.opt.Observations
	perPatient := 7 * perDay
	if total < perPatient {
		perPatient = total
	}
	var jobs []loadJob
	for left, i := total, 0; left > 0; i++ {
		c := min(left, perPatient)
		jobs = append(jobs, loadJob{fmt.Sprintf("bench-search-patient-%05d", i+1), c})
		left -= c
	}
	if err := b.loadJobs(ctx, n, jobs, at, false, "search data"); err != nil {
		return nil, err
	}
	var full []string
	for _, j := range jobs {
		if j.count >= perDay {
			full = append(full, j.patient)
		}
	}
	return full, nil
}

// loadJob is one patient's share of a load: count observations.
type loadJob struct {
	patient string
	count   int
}

// loadJobs stores the observations of jobs, one patient at a time on each CPU (loadPatient).
func (b *benchRun) loadJobs(ctx context.Context, n *node.Node, jobs []loadJob, at time.Time, identified bool, what string) error {
	total := 0
	for _, j := range jobs {
		total += j.count
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stored   int
		firstErr error
	)
	start := time.Now()
	work := make(chan int)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				err := b.loadPatient(ctx, n, jobs[j].patient, jobs[j].count, at, identified, func(k int) {
					mu.Lock()
					stored += k
					b.progress("   loading %s: %d/%d observations (%.0f/s)", what, stored, total, float64(stored)/time.Since(start).Seconds())
					mu.Unlock()
				})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for j := range jobs {
		if ctx.Err() != nil {
			break
		}
		work <- j
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.done("loaded %d observations (%s) for %d patients in %s (%.0f/s, sealed rows straight into the store)",
		stored, what, len(jobs), time.Since(start).Round(100*time.Millisecond), float64(stored)/time.Since(start).Seconds())
	return nil
}

// loadPatient stores count observations of one patient, one a minute back from at, in
// batches of 1000. Each hour's readings come from the simulator's generator, decoded
// once; the minutes of the hour reuse them with their own time, id and meta, stored as
// ingest stores them (marshalled, sealed under the patient's key, blind-indexed). With
// identified set each carries an identifier of its own, as HL7 OBX and retrying devices set.
func (b *benchRun) loadPatient(ctx context.Context, n *node.Node, patient string, count int, at time.Time, identified bool, stored func(int)) error {
	gen, err := simulator.NewGenerator(simulator.KindMonitor, rand.Reader)
	if err != nil {
		return err
	}
	const device = "bench-search-monitor"
	ing, dev := sealer(n), vitalgate.Device{ID: device, PatientIndex: n.Vault.PatientIndex(patient)}
	var templates []*fhir.Observation
	rows := make([]vitalgate.SealedResource, 0, 1000)
	flush := func() error {
		if err := n.Store.CreateResources(ctx, rows); err != nil {
			return err
		}
		stored(len(rows))
		rows = rows[:0]
		return nil
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for k := range count {
		if k%60 == 0 { // a new hour: fresh readings
			templates = templates[:0]
			for _, r := range gen.Next() {
				doc, err := simulator.NewObservation(r, device, patient, at)
				if err != nil {
					return err
				}
				o, err := fhir.DecodeObservation(doc)
				if err != nil {
					return err
				}
				templates = append(templates, o)
			}
		}
		o := *templates[k%len(templates)]
		o.EffectiveDateTime = at.Add(-time.Duration(k) * time.Minute).Format(time.RFC3339)
		if identified {
			o.Identifier = []fhir.Identifier{{Use: "official", System: "urn:vitalgate:bench:history:" + patient, Value: strconv.Itoa(k)}}
		}
		id, err := ingest.NewID(now, rand.Reader)
		if err != nil {
			return err
		}
		r, err := ing.Seal(ctx, &o, dev, id, now)
		if err != nil {
			return err
		}
		if rows = append(rows, r); len(rows) == cap(rows) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(rows) > 0 {
		return flush()
	}
	return nil
}

// benchToken is an access token, renewed when close to expiry.
type benchToken struct {
	mu      sync.Mutex
	token   string
	expires time.Time
	renew   func() (string, time.Duration, error)
}

// get returns a valid token (renewing it a minute before it expires; on failure the old
// one, which the server then refuses).
func (t *benchToken) get() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Until(t.expires) < time.Minute {
		if tok, ttl, err := t.renew(); err == nil {
			t.token, t.expires = tok, time.Now().Add(ttl)
		}
	}
	return t.token
}

// ehrToken registers an EHR client (role ehr-system) and returns its access token source
// (OAuth2 client_credentials over TLS, scope system/Observation.rs).
func (b *benchRun) ehrToken(ctx context.Context, srv *benchServer) (*benchToken, error) {
	secret, err := auth.NewSecret(rand.Reader)
	if err != nil {
		return nil, err
	}
	hash, err := auth.HashSecret(secret, auth.DefaultHashParams, rand.Reader)
	if err != nil {
		return nil, err
	}
	const id = "bench-ehr"
	if err := srv.n.Store.CreateClient(ctx, vitalgate.Client{ID: id, Role: vitalgate.RoleEHRSystem, SecretHash: hash,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}); err != nil && vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		return nil, err
	}
	c := benchClient(srv.n.CA.Pool(), nil)
	t := &benchToken{renew: func() (string, time.Duration, error) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Observation.rs"}}
		req, err := http.NewRequest(http.MethodPost, srv.url+"/oauth2/token", strings.NewReader(form.Encode()))
		if err != nil {
			return "", 0, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		body, err := benchDo(c, req, http.StatusOK)
		if err != nil {
			return "", 0, fmt.Errorf("token: %w", err)
		}
		var out struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
			return "", 0, fmt.Errorf("token: unexpected answer %.200s", body)
		}
		return out.AccessToken, time.Duration(out.ExpiresIn) * time.Second, nil
	}}
	tok, ttl, err := t.renew()
	if err != nil {
		return nil, err
	}
	t.token, t.expires = tok, time.Now().Add(ttl)
	return t, nil
}
