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

// observationBodies returns rounds of generated Observations of a device, effective now and
// earlier (one round per second).
func (d *benchDevice) observationBodies(rounds int) ([][]byte, error) {
	now := time.Now()
	var out [][]byte
	for r := range rounds {
		docs, err := d.gen.Observations(d.id, d.patient, now.Add(-time.Duration(rounds-r)*time.Second))
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

// benchIngest measures single-Observation POSTs from every device over kept-alive mutual
// TLS, against a handler that reads and discards the body over the same TLS settings with
// the same clients.
func (b *benchRun) benchIngest(ctx context.Context) ([]Row, error) {
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	srv := b.srv
	clients := make([]*http.Client, len(devs))
	bodies := make([][][]byte, len(devs))
	for i, d := range devs {
		clients[i] = benchClient(srv.n.CA.Pool(), d.cert)
		if bodies[i], err = d.observationBodies(16); err != nil {
			return nil, err
		}
	}
	defer closeClients(clients)
	post := func(base string) Call {
		next := make([]int, len(devs))
		return func(ctx context.Context, w int) (int, error) {
			body := bodies[w][next[w]%len(bodies[w])]
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
	fig := b.load(ctx, "ingest (Vitalgate)", "obs", len(devs), post(srv.url))
	baseURL, stop, err := srv.startBaseline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	if err != nil {
		return nil, err
	}
	base := b.load(ctx, "ingest baseline (read+discard)", "obs", len(devs), post(baseURL))
	stop()
	const bn = "read+discard handler"
	rows := []Row{{Scenario: "ingest", Metric: fmt.Sprintf("accepted/s, %d devices", len(devs)), Unit: "obs/s",
		Value: fig.UnitRate(), Baseline: base.UnitRate(), BaselineName: bn, Target: RatioAtLeast(0.5), Note: errorNote(fig)}}
	return append(rows, latencyRows("ingest", bn, fig, &base, AtMost(25))...), nil
}

// benchIngestBatch measures Bundles of 100 Observations posted by every device, against the
// same rows sealed the same way and stored straight into the same store with
// CreateResources (no HTTP, no decoding, no validation, no audit entry).
func (b *benchRun) benchIngestBatch(ctx context.Context) ([]Row, error) {
	const perBundle = 100
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	srv := b.srv
	clients := make([]*http.Client, len(devs))
	bundles := make([][][]byte, len(devs))
	rows := make([][]storedRow, len(devs)) // the baseline's rows, per device
	for i, d := range devs {
		clients[i] = benchClient(srv.n.CA.Pool(), d.cert)
		for range 2 {
			docs, err := d.observationBodies((perBundle + 3) / 4)
			if err != nil {
				return nil, err
			}
			docs = docs[:perBundle]
			bundle, err := simulator.NewBundle("batch", docs, rand.Reader)
			if err != nil {
				return nil, err
			}
			bundles[i] = append(bundles[i], bundle)
			if rows[i] == nil {
				if rows[i], err = storedRows(ctx, srv.n, docs); err != nil {
					return nil, err
				}
			}
		}
	}
	defer closeClients(clients)
	next := make([]int, len(devs))
	fig := b.load(ctx, "ingest-batch (Vitalgate)", "obs", len(devs), func(ctx context.Context, w int) (int, error) {
		body := bundles[w][next[w]%len(bundles[w])]
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
		Value: fig.UnitRate(), Baseline: base.UnitRate(), BaselineName: "CreateResources of the sealed rows", Target: RatioAtLeast(0.5), Note: errorNote(fig)},
		{Scenario: "ingest-batch", Metric: "observations/s, absolute", Unit: "obs/s", Value: fig.UnitRate(), Target: AtLeast(50000)},
		{Scenario: "ingest-batch", Metric: "p99 bundle latency", Unit: "ms", Value: ms(fig.P99), Baseline: ms(base.P99), BaselineName: "CreateResources", Lower: true},
	}, nil
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
