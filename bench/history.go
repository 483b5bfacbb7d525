package bench

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// historyRounds is how many interleaved pairs of runs ingest-history measures: the figure
// is the median of its rounds on each store.
const historyRounds = 3

// benchIngestHistory measures whether the cost of ingest grows with stored history: the same
// load (single FHIR Observations that all carry a new identifier, then unique HL7 PCD-01
// messages) on two servers, one whose store starts empty and one whose store already holds
// --observations identified Observations for the same patients, in interleaved runs (empty,
// history; then history, empty; ...) so that both share the machine's drift. Each figure is
// the median over the rounds of the stored observations per second counted in the store.
func (b *benchRun) benchIngestHistory(ctx context.Context) ([]Row, error) {
	empty, err := b.newServer(ctx, "history-empty")
	if err != nil {
		return nil, err
	}
	full, err := b.newServer(ctx, "history-full")
	if err != nil {
		return nil, err
	}
	emptyDevs, err := b.enroll(ctx, empty)
	if err != nil {
		return nil, err
	}
	fullDevs, err := b.enroll(ctx, full)
	if err != nil {
		return nil, err
	}
	// The history: --observations spread over the devices' patients, one a minute back
	// from now, each with an identifier of its own (in the identifier index the resend
	// check seeks).
	var jobs []loadJob
	per, extra := b.opt.Observations/len(fullDevs), b.opt.Observations%len(fullDevs)
	for i, d := range fullDevs {
		c := per
		if i < extra {
			c++
		}
		jobs = append(jobs, loadJob{patient: d.patient, count: c})
	}
	if err := b.loadJobs(ctx, full.n, jobs, time.Now().UTC().Add(-time.Hour), true, "history"); err != nil {
		return nil, err
	}
	held, err := full.probe().counts(ctx, time.Time{}, false)
	if err != nil {
		return nil, err
	}

	type result struct{ rate, p99 []float64 }
	var fhirRes, hl7Res [2]result // [0] empty, [1] history
	servers := [2]*benchServer{empty, full}
	devs := [2][]*benchDevice{emptyDevs, fullDevs}
	names := [2]string{"empty store", fmt.Sprintf("%d stored", held.Observations)}
	for r := range historyRounds {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, k := range order {
			fmt.Fprintf(b.opt.Stderr, "   round %d/%d, %s:\n", r+1, historyRounds, names[k])
			fig, cnt, _, err := b.ingestRun(ctx, servers[k], devs[k], true, false)
			if err != nil {
				return nil, err
			}
			fhirRes[k].rate = append(fhirRes[k].rate, perSecond(cnt.Observations, fig.Elapsed))
			fhirRes[k].p99 = append(fhirRes[k].p99, ms(fig.P99))

			mdevs := b.mllpDevices(devs[k])
			unique, _ := b.uniquePCD01(mdevs)
			call, closeAll := b.mllpExchange(servers[k], mdevs, servers[k].mllpAddr, true, unique)
			hfig, hcnt, err := b.loadCounted(ctx, servers[k], "hl7, unique messages (Vitalgate)", "msgs", len(mdevs), call)
			closeAll()
			if err != nil {
				return nil, err
			}
			hl7Res[k].rate = append(hl7Res[k].rate, perSecond(hcnt.Observations, hfig.Elapsed))
			hl7Res[k].p99 = append(hl7Res[k].p99, ms(hfig.P99))
		}
	}
	endEmpty, err := empty.probe().counts(ctx, time.Time{}, false)
	if err != nil {
		return nil, err
	}
	endFull, err := full.probe().counts(ctx, time.Time{}, false)
	if err != nil {
		return nil, err
	}
	note := fmt.Sprintf("medians of %d interleaved runs on each store; rows counted in the store; the empty store held %d Observations at the end (its own runs), the other %d (%d loaded before)",
		historyRounds, endEmpty.Observations, endFull.Observations, held.Observations)
	bn := "same run, empty store"
	var rows []Row
	for _, x := range []struct {
		what string
		res  [2]result
	}{{"FHIR Observations, all identified", fhirRes}, {"HL7 PCD-01, unique messages", hl7Res}} {
		rows = append(rows,
			Row{Scenario: "ingest-history", Metric: fmt.Sprintf("stored obs/s, %s, %d stored for the same patients", x.what, held.Observations), Unit: "obs/s",
				Value: median(x.res[1].rate), Baseline: median(x.res[0].rate), BaselineName: bn, Target: RatioAtLeast(0.9), Note: note},
			Row{Scenario: "ingest-history", Metric: "p99 latency, " + x.what, Unit: "ms",
				Value: median(x.res[1].p99), Baseline: median(x.res[0].p99), BaselineName: bn, Lower: true})
	}
	return rows, nil
}

// median returns the median of vs (the mean of the middle two for an even count), 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
