package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
)

// benchExport stores --observations observations on a server of its own and measures a
// FHIR Bulk Data export of all of them through the API (kick-off, polling, the NDJSON file
// downloaded), against the least work an export does: reading and opening the same rows
// in the server's process. It also samples the process's heap while the export runs: what
// it holds beyond the heap before must not grow with the size of the export (a run reads
// 500 rows and seals 1 MiB at a time).
func (b *benchRun) benchExport(ctx context.Context) ([]Row, error) {
	srv, err := b.newServer(ctx, "export")
	if err != nil {
		return nil, err
	}
	loadedAt := time.Now().UTC().Truncate(time.Second)
	if _, err := b.loadSearchData(ctx, srv.n, loadedAt); err != nil {
		return nil, err
	}
	token, err := b.ehrToken(ctx, srv)
	if err != nil {
		return nil, err
	}
	c := benchClient(srv.n.CA.Pool(), nil)
	defer c.CloseIdleConnections()

	// Baseline: every stored Observation read and opened, in the server's process.
	b.progress("   export baseline: reading and opening %d observations in process ...", b.opt.Observations)
	start := time.Now()
	opened := 0
	f := vitalgate.ResourceFilter{Type: "Observation", Site: vitalgate.DefaultSite, Limit: 500}
	for {
		var page []vitalgate.SealedResource
		if err := srv.n.Store.Resources(ctx, f, func(r vitalgate.SealedResource) error { page = append(page, r); return nil }); err != nil {
			return nil, err
		}
		for _, r := range page {
			if _, err := srv.n.Vault.Open(ctx, r); err != nil {
				return nil, err
			}
			opened++
		}
		if len(page) < f.Limit {
			break
		}
		f.After = page[len(page)-1].ID
	}
	baseSecs := time.Since(start).Seconds()

	// The export through the API, with the live heap (as the last collection found it)
	// sampled: garbage not yet collected is not held.
	runtime.GC()
	heapBefore := liveHeap()
	var (
		peak   = heapBefore
		mu     sync.Mutex
		sample = make(chan struct{})
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sample:
				return
			case <-t.C:
				h := liveHeap()
				mu.Lock()
				peak = max(peak, h)
				mu.Unlock()
			}
		}
	}()
	b.progress("   exporting %d observations through $export ...", opened)
	start = time.Now()
	n, bytes, err := b.exportAll(ctx, c, srv.url, token)
	secs := time.Since(start).Seconds()
	close(sample)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if n != opened {
		return nil, fmt.Errorf("the export held %d observations, the store %d", n, opened)
	}
	b.done("exported %d observations (%.0f MiB of NDJSON) in %.1f s", n, float64(bytes)/(1<<20), secs)
	growth := float64(peak-heapBefore) / (1 << 20)
	scale := fmt.Sprintf("%d stored observations", n)
	return []Row{
		{Scenario: "export", Metric: "observations/s exported (kick-off to file downloaded), " + scale, Unit: "obs/s",
			Value: float64(n) / secs, Baseline: float64(opened) / baseSecs, BaselineName: "the same rows read and opened in process"},
		{Scenario: "export", Metric: "live heap growth while exporting, " + scale, Unit: "MiB", Value: growth, Lower: true,
			Baseline: float64(bytes) / (1 << 20), BaselineName: "the export's size (NDJSON MiB)",
			Note: "the ratio falls as the export grows: the heap an export holds does not grow with it"},
	}, nil
}

// liveHeap is the heap the last garbage collection found live, in bytes.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// exportAll kicks off a Patient/$export of every Observation, polls it to its manifest and
// downloads its file, returning the resources and bytes it held.
func (b *benchRun) exportAll(ctx context.Context, c *http.Client, base string, token *benchToken) (int, int64, error) {
	do := func(method, url string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token.get())
		req.Header.Set("Prefer", "respond-async")
		return c.Do(req)
	}
	resp, err := do(http.MethodGet, base+"/fhir/Patient/$export?_type=Observation")
	if err != nil {
		return 0, 0, err
	}
	_ = resp.Body.Close()
	status := resp.Header.Get("Content-Location")
	if resp.StatusCode != http.StatusAccepted || status == "" {
		return 0, 0, fmt.Errorf("kick-off: %s", resp.Status)
	}
	var m struct {
		Output []struct {
			URL   string
			Count int
		}
	}
	for {
		resp, err := do(http.MethodGet, status)
		if err != nil {
			return 0, 0, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, &m); err != nil || len(m.Output) != 1 {
				return 0, 0, fmt.Errorf("manifest %s: %v", body, err)
			}
			break
		}
		if resp.StatusCode != http.StatusAccepted {
			return 0, 0, fmt.Errorf("status: %s %s", resp.Status, body)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	resp, err = do(http.MethodGet, m.Output[0].URL)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("file: %s", resp.Status)
	}
	lines, size := 0, int64(0)
	buf := make([]byte, 64<<10)
	for {
		k, err := resp.Body.Read(buf)
		size += int64(k)
		for _, c := range buf[:k] {
			if c == '\n' {
				lines++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
	}
	if lines != m.Output[0].Count {
		return 0, 0, fmt.Errorf("the file holds %d lines, the manifest says %d", lines, m.Output[0].Count)
	}
	return lines, size, nil
}
