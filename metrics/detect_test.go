package metrics_test

import (
	"testing"

	"github.com/vitalgate/vitalgate/metrics"
)

func TestDetectionCounters(t *testing.T) {
	m := metrics.New(nil)
	d := metrics.NewDetection()
	m.Registry.MustRegister(d)
	d.Signal("auth-failure")
	d.Alert("credential-stuffing-token", "high")
	d.Alert("credential-stuffing-token", "high")
	d.Quarantined()
	d.Dropped()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mm := range f.GetMetric() {
			if c := mm.GetCounter(); c != nil {
				got[f.GetName()] += c.GetValue()
			}
		}
	}
	for name, want := range map[string]float64{"vitalgate_alerts_total": 2, "vitalgate_quarantines_total": 1,
		"vitalgate_detect_signals_total": 1, "vitalgate_detect_signals_dropped_total": 1} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}
