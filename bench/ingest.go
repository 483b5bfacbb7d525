package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/simulator"
)

// benchIngest measures single-Observation POSTs from every device over kept-alive mutual
// TLS, against a handler that reads and discards the body over the same TLS settings with
// the same clients. Half of the bodies carry an identifier, new for every request (a
// device's retry would repeat it); the rows stored are counted in the store.
func (b *benchRun) benchIngest(ctx context.Context) ([]Row, error) {
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	srv := b.srv
	fig, cnt, base, err := b.ingestRun(ctx, srv, devs, false, true)
	if err != nil {
		return nil, err
	}
	const bn = "read+discard handler"
	rows := []Row{{Scenario: "ingest", Metric: fmt.Sprintf("accepted/s, %d devices, half the bodies identified", len(devs)), Unit: "obs/s",
		Value: fig.UnitRate(), Baseline: base.UnitRate(), BaselineName: bn, Target: RatioAtLeast(0.5), Note: errorNote(fig)},
		storedObsRow("ingest", fig, cnt)}
	return append(rows, latencyRows("ingest", bn, fig, &base, AtMost(25))...), nil
}

// storedObsRow reports the Observation rows a load added to the store per measured second,
// against what the server acknowledged in the same window.
func storedObsRow(scenario string, fig Summary, cnt Counts) Row {
	r := Row{Scenario: scenario, Metric: "stored obs/s (rows counted in the store)", Unit: "obs/s",
		Value: perSecond(cnt.Observations, fig.Elapsed), Note: countNote(cnt) + fmt.Sprintf("; %d acknowledged in the window, %d in the whole run", fig.Units, fig.AllUnits)}
	return r
}

// ingestRun runs single-Observation POSTs from devs on srv (identified: every body carries
// a fresh identifier, else half of them) and, with baseline set, the read-and-discard
// baseline with the same clients and bodies.
func (b *benchRun) ingestRun(ctx context.Context, srv *benchServer, devs []*benchDevice, identified, baseline bool) (fig Summary, cnt Counts, base Summary, err error) {
	clients := make([]*http.Client, len(devs))
	bodies := make([][]template, len(devs))
	for i, d := range devs {
		clients[i] = benchClient(srv.n.CA.Pool(), d.cert)
		if bodies[i], err = d.observationTemplates(16, identified); err != nil {
			return fig, cnt, base, err
		}
	}
	defer closeClients(clients)
	post := func(base string) Call {
		next := make([]int, len(devs))
		return func(ctx context.Context, w int) (int, error) {
			body := bodies[w][next[w]%len(bodies[w])].fill(&b.seq)
			next[w]++
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/fhir/Observation", bytes.NewReader(body))
			if err != nil {
				return 0, err
			}
			req.Header.Set("Content-Type", simulator.ContentTypeFHIRJSON)
			_, err = benchDo(clients[w], req, http.StatusCreated)
			return 1, err
		}
	}
	what := "ingest (Vitalgate)"
	if identified {
		what = "ingest, identified (Vitalgate)"
	}
	fig, cnt, err = b.loadCounted(ctx, srv, what, "obs", len(devs), post(srv.url))
	if err != nil || !baseline {
		return fig, cnt, base, err
	}
	baseURL, stop, err := srv.startBaseline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	if err != nil {
		return fig, cnt, base, err
	}
	base = b.load(ctx, "ingest baseline (read+discard)", "obs", len(devs), post(baseURL))
	stop()
	return fig, cnt, base, nil
}

// benchIngestBatch measures Bundles of 100 Observations (half of them identified, with
// fresh identifiers for every request) posted by every device, against the physical limit of
// the store: the same sealed row bytes inserted by the same driver into a table with only a
// primary key, one transaction of 100 rows per call, same durability (rawTable). A second
// baseline is the store's own CreateResources of the same rows (no HTTP, no decoding, no
// validation, no audit entry).
func (b *benchRun) benchIngestBatch(ctx context.Context) ([]Row, error) {
	const perBundle = 100
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	srv := b.srv
	clients := make([]*http.Client, len(devs))
	bundles := make([][]template, len(devs))
	rows := make([][]storedRow, len(devs))                  // the baselines' rows, per device
	sealed := make([][]vitalgate.SealedResource, len(devs)) // sealed once, for the raw baseline
	for i, d := range devs {
		clients[i] = benchClient(srv.n.CA.Pool(), d.cert)
		for range 2 {
			bundle, docs, err := d.bundleTemplate(perBundle)
			if err != nil {
				return nil, err
			}
			bundles[i] = append(bundles[i], bundle)
			if rows[i] == nil {
				filled := make([][]byte, len(docs))
				for k, t := range docs {
					filled[k] = t.fill(&b.seq)
				}
				if rows[i], err = storedRows(ctx, srv.n, filled); err != nil {
					return nil, err
				}
				if sealed[i], err = sealRows(ctx, srv.n, rows[i]); err != nil {
					return nil, err
				}
			}
		}
	}
	defer closeClients(clients)
	next := make([]int, len(devs))
	fig, cnt, err := b.loadCounted(ctx, srv, "ingest-batch (Vitalgate)", "obs", len(devs), func(ctx context.Context, w int) (int, error) {
		body := bundles[w][next[w]%len(bundles[w])].fill(&b.seq)
		next[w]++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.url+"/fhir", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", simulator.ContentTypeFHIRJSON)
		resp, err := benchDo(clients[w], req, http.StatusOK)
		if err != nil {
			return 0, err
		}
		n := strings.Count(string(resp), `"status":"201`)
		if n != perBundle {
			return n, fmt.Errorf("batch-response accepted %d of %d entries", n, perBundle)
		}
		return n, nil
	})
	if err != nil {
		return nil, err
	}
	b.batch = perSecond(cnt.Observations, fig.Elapsed)
	raw, err := b.rawTable(ctx, srv)
	if err != nil {
		return nil, err
	}
	defer raw.close()
	rawBase := b.load(ctx, "ingest-batch baseline ("+raw.name()+")", "obs", len(devs), func(ctx context.Context, w int) (int, error) {
		rs, err := freshIDs(sealed[w])
		if err != nil {
			return 0, err
		}
		if err := raw.insert(ctx, rs); err != nil {
			return 0, err
		}
		return len(rs), nil
	})
	base := b.load(ctx, "ingest-batch baseline (CreateResources)", "obs", len(devs), func(ctx context.Context, w int) (int, error) {
		rs, err := sealRows(ctx, srv.n, rows[w])
		if err != nil {
			return 0, err
		}
		if err := srv.n.Store.CreateResources(ctx, rs); err != nil {
			return 0, err
		}
		return len(rs), nil
	})
	return []Row{{Scenario: "ingest-batch", Metric: fmt.Sprintf("observations/s, bundles of %d, %d devices", perBundle, len(devs)), Unit: "obs/s",
		Value: fig.UnitRate(), Baseline: rawBase.UnitRate(), BaselineName: raw.name(), Target: RatioAtLeast(0.5), Note: errorNote(fig)},
		storedObsRow("ingest-batch", fig, cnt),
		{Scenario: "ingest-batch", Metric: "observations/s, absolute", Unit: "obs/s", Value: fig.UnitRate(), Target: AtLeast(50000)},
		{Scenario: "ingest-batch", Metric: "observations/s against the store's own CreateResources", Unit: "obs/s",
			Value: fig.UnitRate(), Baseline: base.UnitRate(), BaselineName: "CreateResources of the sealed rows"},
		{Scenario: "ingest-batch", Metric: "p99 bundle latency", Unit: "ms", Value: ms(fig.P99), Baseline: ms(rawBase.P99), BaselineName: raw.name(), Lower: true},
	}, nil
}

// freshIDs returns rs under new ids (the sealed bytes unchanged), for the raw baseline.
func freshIDs(rs []vitalgate.SealedResource) ([]vitalgate.SealedResource, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]vitalgate.SealedResource, len(rs))
	for i, r := range rs {
		id, err := ingest.NewID(now, rand.Reader)
		if err != nil {
			return nil, err
		}
		out[i] = r
		out[i].ID, out[i].LastUpdated = id, now
	}
	return out, nil
}

// storedRow is an Observation as ingest stores it, before sealing: its stored JSON (with
// meta) and the resource ingest made of it (blind indexes, patient, effective time).
type storedRow struct {
	body []byte
	res  vitalgate.SealedResource
}

// sealer returns the ingest capability as far as preparing stored resources goes: what
// bench stores outside HTTP is prepared by ingest itself, so that its rows carry the same
// blind indexes.
func sealer(n *node.Node) *ingest.Service { return &ingest.Service{Vault: n.Vault} }

// storedRows prepares Observation documents the way ingest does (decode, meta, marshal,
// blind indexes), without validating them.
func storedRows(ctx context.Context, n *node.Node, docs [][]byte) ([]storedRow, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	ing := sealer(n)
	out := make([]storedRow, 0, len(docs))
	for _, doc := range docs {
		o, err := fhir.DecodeObservation(doc)
		if err != nil {
			return nil, err
		}
		id, err := ingest.NewID(now, rand.Reader)
		if err != nil {
			return nil, err
		}
		pid, _ := o.SubjectID()
		res, err := ing.Seal(ctx, o, vitalgate.Device{PatientIndex: n.Vault.PatientIndex(pid)}, id, now)
		if err != nil {
			return nil, err
		}
		body, err := n.Vault.Open(ctx, res)
		if err != nil {
			return nil, err
		}
		out = append(out, storedRow{body: body, res: res})
	}
	return out, nil
}

// sealRows seals prepared rows under fresh ids, as ingest does, into resources to store.
func sealRows(ctx context.Context, n *node.Node, rows []storedRow) ([]vitalgate.SealedResource, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	rs := make([]vitalgate.SealedResource, len(rows))
	for i, r := range rows {
		id, err := ingest.NewID(now, rand.Reader)
		if err != nil {
			return nil, err
		}
		sealed, err := n.Vault.Seal(ctx, r.res.PatientIndex, "Observation", id, 1, r.body)
		if err != nil {
			return nil, err
		}
		rs[i] = r.res
		rs[i].ID, rs[i].LastUpdated, rs[i].Body = id, now, sealed
	}
	return rs, nil
}
