package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PatchLatency are the patch-latency figures of one model's current rollout (package
// rollout computes them; FDA premarket guidance §V.A.6). Times are from the rollout's start;
// a negative time has not been reached yet and is not exported.
type PatchLatency struct {
	Model, Version                      string
	Targeted, Installed, Failed, Behind int
	To50, To90, To100                   time.Duration
	FailureRate                         float64
}

// patchCollector exports PatchLatency figures read at scrape time. Its only labels are the
// model and the version (and the share of devices for the times): never a device.
type patchCollector struct {
	read                                       func(context.Context) ([]PatchLatency, error)
	targeted, installed, failed, behind, ratio *prometheus.Desc
	toInstalled, scrapeErrors                  *prometheus.Desc
}

// RegisterPatchLatency registers the update rollout metrics, read from read at every
// scrape (within 5 s):
//
//	vitalgate_update_devices_targeted{model,version}    devices in the rollout's groups
//	vitalgate_update_devices_installed{model,version}   of them, installed and not failed
//	vitalgate_update_devices_failed{model,version}      failed, rolled back or failed the health gate
//	vitalgate_update_devices_behind{model,version}      targeted devices not running the version
//	vitalgate_update_failure_ratio{model,version}       failed over the devices that reported
//	vitalgate_update_time_to_installed_seconds{model,version,share="0.5|0.9|1"}
//	vitalgate_update_metrics_errors                     1 when the figures could not be read
func (m *Metrics) RegisterPatchLatency(read func(context.Context) ([]PatchLatency, error)) {
	labels := []string{"model", "version"}
	c := &patchCollector{read: read,
		targeted:  prometheus.NewDesc("vitalgate_update_devices_targeted", "Devices in the groups of the model's current rollout.", labels, nil),
		installed: prometheus.NewDesc("vitalgate_update_devices_installed", "Targeted devices that reported the version installed and have not failed.", labels, nil),
		failed:    prometheus.NewDesc("vitalgate_update_devices_failed", "Targeted devices that failed, rolled back or failed the health gate.", labels, nil),
		behind:    prometheus.NewDesc("vitalgate_update_devices_behind", "Targeted devices that do not run the version yet.", labels, nil),
		ratio:     prometheus.NewDesc("vitalgate_update_failure_ratio", "Failed devices over the devices that reported anything.", labels, nil),
		toInstalled: prometheus.NewDesc("vitalgate_update_time_to_installed_seconds",
			"Time from the rollout's start until this share of its targeted devices had installed (exported once reached).", append(labels, "share"), nil),
		scrapeErrors: prometheus.NewDesc("vitalgate_update_metrics_errors", "1 when the rollout figures could not be read at this scrape.", nil, nil),
	}
	m.Registry.MustRegister(c)
}

// Describe sends the descriptors of the update metrics.
func (c *patchCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.targeted, c.installed, c.failed, c.behind, c.ratio, c.toInstalled, c.scrapeErrors} {
		ch <- d
	}
}

// Collect reads the figures and sends them.
func (c *patchCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ls, err := c.read(ctx)
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeErrors, prometheus.GaugeValue, failed)
	for _, l := range ls {
		g := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{l.Model, l.Version}, extra...)...)
		}
		g(c.targeted, float64(l.Targeted))
		g(c.installed, float64(l.Installed))
		g(c.failed, float64(l.Failed))
		g(c.behind, float64(l.Behind))
		g(c.ratio, l.FailureRate)
		for _, t := range []struct {
			share string
			d     time.Duration
		}{{"0.5", l.To50}, {"0.9", l.To90}, {"1", l.To100}} {
			if t.d >= 0 {
				g(c.toInstalled, t.d.Seconds(), t.share)
			}
		}
	}
}
