package metrics_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/metrics"
)

// gathered returns the update metrics of m as "name{label=value,...}" -> value.
func gathered(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "vitalgate_update_") {
			continue
		}
		for _, x := range mf.GetMetric() {
			var ls []string
			for _, l := range x.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = x.GetGauge().GetValue()
		}
	}
	return out
}

// TestPatchLatency: the figures are exported per model and version (no other labels but
// the share), times only once reached, and a failed read is a metric of its own.
func TestPatchLatency(t *testing.T) {
	mv := "model=VM-100,version=2.0.0"
	tests := []struct {
		name    string
		figures []metrics.PatchLatency
		err     error
		want    map[string]float64
	}{
		{"halfway", []metrics.PatchLatency{{Model: "VM-100", Version: "2.0.0", Targeted: 10, Installed: 6, Failed: 1, Behind: 4,
			To50: 90 * time.Second, To90: -1, To100: -1, FailureRate: 0.125}}, nil, map[string]float64{
			"vitalgate_update_devices_targeted{" + mv + "}":                                    10,
			"vitalgate_update_devices_installed{" + mv + "}":                                   6,
			"vitalgate_update_devices_failed{" + mv + "}":                                      1,
			"vitalgate_update_devices_behind{" + mv + "}":                                      4,
			"vitalgate_update_failure_ratio{" + mv + "}":                                       0.125,
			"vitalgate_update_time_to_installed_seconds{model=VM-100,share=0.5,version=2.0.0}": 90,
			"vitalgate_update_metrics_errors{}":                                                0,
		}},
		{"unreadable", nil, errors.New("database busy"), map[string]float64{"vitalgate_update_metrics_errors{}": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New(nil)
			m.RegisterPatchLatency(func(context.Context) ([]metrics.PatchLatency, error) { return tt.figures, tt.err })
			got := gathered(t, m)
			if !maps.Equal(got, tt.want) {
				t.Fatalf("metrics\n%v\nwant\n%v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(tt.want)))
			}
		})
	}
}
