package metrics

import "github.com/prometheus/client_golang/prometheus"

// Detection are the counters of the detection capability (package detect): signals by
// kind, signals dropped because the engine fell behind, alerts by rule and severity, and
// automatic quarantines. It is a prometheus.Collector: register it in a Metrics registry.
// Labels carry rule ids and signal kinds only, never a device, client or address.
type Detection struct {
	signals     *prometheus.CounterVec
	dropped     prometheus.Counter
	alerts      *prometheus.CounterVec
	quarantines prometheus.Counter
}

// NewDetection returns the detection counters, unregistered.
func NewDetection() *Detection {
	return &Detection{
		signals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vitalgate_detect_signals_total", Help: "Detection signals evaluated, by kind.",
		}, []string{"kind"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vitalgate_detect_signals_dropped_total", Help: "Detection signals dropped because the engine's queue was full.",
		}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vitalgate_alerts_total", Help: "Security alerts raised, by rule and severity.",
		}, []string{"rule", "severity"}),
		quarantines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vitalgate_quarantines_total", Help: "Devices quarantined automatically on a high-severity alert.",
		}),
	}
}

// Signal counts an evaluated signal.
func (d *Detection) Signal(kind string) { d.signals.WithLabelValues(kind).Inc() }

// Dropped counts a dropped signal.
func (d *Detection) Dropped() { d.dropped.Inc() }

// Alert counts a raised alert.
func (d *Detection) Alert(rule, severity string) { d.alerts.WithLabelValues(rule, severity).Inc() }

// Quarantined counts an automatic quarantine.
func (d *Detection) Quarantined() { d.quarantines.Inc() }

// Describe implements prometheus.Collector.
func (d *Detection) Describe(ch chan<- *prometheus.Desc) {
	d.signals.Describe(ch)
	d.dropped.Describe(ch)
	d.alerts.Describe(ch)
	d.quarantines.Describe(ch)
}

// Collect implements prometheus.Collector.
func (d *Detection) Collect(ch chan<- prometheus.Metric) {
	d.signals.Collect(ch)
	d.dropped.Collect(ch)
	d.alerts.Collect(ch)
	d.quarantines.Collect(ch)
}
