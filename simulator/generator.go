package simulator

import (
	cryptorand "crypto/rand"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Device kinds: the value of [DeviceConfig.Kind].
const (
	KindMonitor       = "monitor"        // heart rate, SpO2, respiratory rate, blood pressure
	KindThermometer   = "thermometer"    // body temperature
	KindScale         = "scale"          // body weight
	KindPulseOximeter = "pulse-oximeter" // SpO2 and pulse rate
)

// Vital names one vital sign a simulated device measures.
type Vital string

// The vital signs the simulator produces, with their codes and UCUM units.
const (
	HeartRate        Vital = "heart-rate"        // LOINC 8867-4, /min
	OxygenSaturation Vital = "oxygen-saturation" // LOINC 59408-5 and 2708-6, MDC 150456, %
	RespiratoryRate  Vital = "respiratory-rate"  // LOINC 9279-1, /min
	BloodPressure    Vital = "blood-pressure"    // LOINC 85354-9 panel: 8480-6 and 8462-4, mm[Hg]
	BodyTemperature  Vital = "body-temperature"  // LOINC 8310-5, Cel
	BodyWeight       Vital = "body-weight"       // LOINC 29463-7, kg
	PulseRate        Vital = "pulse-rate"        // LOINC 8889-8 (by pulse oximetry), MDC 149530, /min
)

// kindVitals lists, in sending order, the vitals each device kind measures.
var kindVitals = map[string][]Vital{
	KindMonitor:       {HeartRate, OxygenSaturation, RespiratoryRate, BloodPressure},
	KindThermometer:   {BodyTemperature},
	KindScale:         {BodyWeight},
	KindPulseOximeter: {OxygenSaturation, PulseRate},
}

// Kinds returns the known device kinds, sorted.
func Kinds() []string {
	kinds := make([]string, 0, len(kindVitals))
	for k := range kindVitals {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// KindVitals returns the vitals a device of the given kind measures, in the order it sends
// them, or nil for an unknown kind.
func KindVitals(kind string) []Vital {
	return slices.Clone(kindVitals[kind])
}

// Reading is one measurement produced by a [Generator].
type Reading struct {
	Vital Vital
	// Value is the measured value in the vital's UCUM unit; for BloodPressure it is the
	// systolic pressure.
	Value float64
	// Diastolic is the diastolic pressure; set only for BloodPressure.
	Diastolic float64
}

// walkSpec describes a mean-reverting random walk: a per-device baseline drawn from
// [baseLo, baseHi], a change of at most ±step per reading (random drift plus a pull back
// towards the baseline), values rounded to decimals and kept
// within [lo, hi] (and, when band > 0, within baseline ± band).
type walkSpec struct {
	lo, hi         float64
	baseLo, baseHi float64
	step           float64
	band           float64
	decimals       int
}

// walkSpecs holds the plausible ranges. They stay well inside what the server accepts as
// physiologically plausible for a resting adult.
var walkSpecs = map[string]walkSpec{
	"hr":    {lo: 60, hi: 90, baseLo: 65, baseHi: 85, step: 2},
	"spo2":  {lo: 95, hi: 99, baseLo: 96, baseHi: 98, step: 1},
	"rr":    {lo: 12, hi: 20, baseLo: 13, baseHi: 18, step: 1},
	"sys":   {lo: 110, hi: 130, baseLo: 114, baseHi: 126, step: 3},
	"dia":   {lo: 70, hi: 85, baseLo: 73, baseHi: 82, step: 2},
	"temp":  {lo: 36.4, hi: 37.4, baseLo: 36.6, baseHi: 37.1, step: 0.1, decimals: 1},
	"wt":    {lo: 40, hi: 150, baseLo: 55, baseHi: 100, step: 0.1, band: 1.5, decimals: 1},
	"pulse": {lo: 60, hi: 90, baseLo: 65, baseHi: 85, step: 2},
}

// walk is the state of one random walk.
type walk struct {
	spec     walkSpec
	lo, hi   float64
	baseline float64
	cur      float64
}

func newWalk(spec walkSpec, rng *rand.Rand) *walk {
	w := &walk{spec: spec, lo: spec.lo, hi: spec.hi}
	w.baseline = spec.baseLo + rng.Float64()*(spec.baseHi-spec.baseLo)
	if spec.band > 0 {
		w.lo = max(w.lo, roundTo(w.baseline-spec.band, spec.decimals))
		w.hi = min(w.hi, roundTo(w.baseline+spec.band, spec.decimals))
	}
	w.cur = w.baseline
	return w
}

// next advances the walk and returns the rounded value, always within [lo, hi].
func (w *walk) next(rng *rand.Rand) float64 {
	drift := (rng.Float64()*2 - 1) * w.spec.step
	pull := 0.15 * (w.baseline - w.cur)
	step := min(max(drift+pull, -w.spec.step), w.spec.step)
	w.cur = min(max(w.cur+step, w.lo), w.hi)
	return min(max(roundTo(w.cur, w.spec.decimals), w.lo), w.hi)
}

func roundTo(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// Generator produces realistic vital-sign readings for one device: each vital follows a
// mean-reverting random walk around a baseline drawn once per generator, always within
// plausible physiological ranges. A Generator is not safe for concurrent use.
type Generator struct {
	kind   string
	vitals []Vital
	rng    *rand.Rand
	walks  map[string]*walk
}

// NewGenerator returns a generator for a device kind (see [Kinds]), seeded with 32 bytes
// read from seed (crypto/rand.Reader for unpredictable values, a fixed reader for
// reproducible ones); a nil seed means crypto/rand.Reader.
func NewGenerator(kind string, seed io.Reader) (*Generator, error) {
	if seed == nil {
		seed = cryptorand.Reader
	}
	vitals, ok := kindVitals[kind]
	if !ok && kind != KindBloodGas { // a blood gas analyzer draws lab results (lab.go), no vitals

		return nil, fmt.Errorf("simulator: unknown device kind %q (want one of %v)", kind, Kinds())
	}
	var s [32]byte
	if _, err := io.ReadFull(seed, s[:]); err != nil {
		return nil, fmt.Errorf("simulator: seeding generator: %w", err)
	}
	g := &Generator{
		kind:   kind,
		vitals: vitals,
		rng:    rand.New(rand.NewChaCha8(s)), // #nosec G404 -- simulated vital values, not security
		walks:  make(map[string]*walk),
	}
	for _, v := range vitals {
		for _, name := range walkNames(v) {
			g.walks[name] = newWalk(walkSpecs[name], g.rng)
		}
	}
	return g, nil
}

// walkNames returns the walks behind a vital.
func walkNames(v Vital) []string {
	switch v {
	case HeartRate:
		return []string{"hr"}
	case OxygenSaturation:
		return []string{"spo2"}
	case RespiratoryRate:
		return []string{"rr"}
	case BloodPressure:
		return []string{"sys", "dia"}
	case BodyTemperature:
		return []string{"temp"}
	case BodyWeight:
		return []string{"wt"}
	case PulseRate:
		return []string{"pulse"}
	}
	return nil
}

// Kind returns the device kind the generator simulates.
func (g *Generator) Kind() string { return g.kind }

// Vitals returns the vitals the generator produces, in order.
func (g *Generator) Vitals() []Vital { return slices.Clone(g.vitals) }

// Next returns one round of readings: one per vital of the device kind, in order.
func (g *Generator) Next() []Reading {
	out := make([]Reading, 0, len(g.vitals))
	for _, v := range g.vitals {
		r := Reading{Vital: v}
		switch v {
		case BloodPressure:
			r.Value = g.walks["sys"].next(g.rng)
			r.Diastolic = g.walks["dia"].next(g.rng)
		default:
			r.Value = g.walks[walkNames(v)[0]].next(g.rng)
		}
		out = append(out, r)
	}
	return out
}

// Observations returns one round of readings as FHIR R4 Observation JSON documents, one per
// vital, for the given device and patient, effective at the given time.
func (g *Generator) Observations(deviceID, patientID string, at time.Time) ([][]byte, error) {
	readings := g.Next()
	out := make([][]byte, 0, len(readings))
	for _, r := range readings {
		b, err := NewObservation(r, deviceID, patientID, at)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
