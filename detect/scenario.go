package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Attack names of the scenario generator.
const (
	AttackCredentialStuffing = "credential-stuffing-token" // #nosec G101 -- an attack's name, not a credential: failed token requests for many clients from one address
	AttackStolenCertificate  = "stolen-certificate"        // an enrolled device's certificate used from a foreign network
	AttackRogueNewDevice     = "rogue-new-device"          // a new device of a known model first seen from a network none of its peers use
	AttackValueFlood         = "value-flood"               // a device flooding physiologically implausible heart rates
	AttackCredentialStuffEST = "credential-stuffing-est"   // #nosec G101 -- an attack's name: failed EST enrollments for guessed device ids from one address
	AttackScopeProbing       = "scope-probing"             // an authenticated EHR client asking for scopes and routes beyond its role
	AttackPatientEnumeration = "patient-enumeration"       // a device naming many unknown patients in HL7 PID-3
	AttackImpersonation      = "device-impersonation"      // a device naming another device in HL7 OBX-18 (or MSH-3)
	AttackSlowDrift          = "slow-drift"                // a device's heart rate drifting slowly to implausible values
	AttackMessageFlood       = "message-flood"             // a device sending 40 messages a second
	AttackClockAhead         = "clock-ahead"               // a device's messages dated minutes ahead (forged or prepared in advance)
	AttackReplay             = "replay"                    // a device's captured messages sent again, many times
)

// attackByDevice reports whether an attack is made with one of the scenario's devices (or
// a new one), which the scenario must then name.
func attackByDevice(name string) bool {
	switch name {
	case AttackCredentialStuffing, AttackCredentialStuffEST, AttackScopeProbing:
		return false
	}
	return true
}

// Attack is one attack mixed into a scenario, At after its start.
type Attack struct {
	Name   string        `json:"name"`
	At     time.Duration `json:"at"`
	Device string        `json:"device,omitempty"` // the device it uses (stolen certificate, value flood)
}

// Scenario describes simulated traffic: Devices devices of Models models, each sending a
// message with a heart rate and an oxygen saturation every Interval for Duration, from its
// ward's network; a few legitimate failures (a client with an expired secret, refused
// messages); and the Attacks. The same Seed gives the same traffic.
type Scenario struct {
	Seed     uint64
	Start    time.Time
	Duration time.Duration
	Interval time.Duration
	Devices  int
	Models   int
	Attacks  []Attack
}

// Labelled is a generated signal and the attack it belongs to ("" for normal traffic).
type Labelled struct {
	Signal
	Attack string
}

// StandardAttacks returns every attack the generator knows, in AttackNames order, the
// first at from and each 10 minutes after the one before, each with a device of its own
// (DeviceName(7+4i), a new "rogue-i" for rogue-new-device, none for an attack by an address
// or a client): the mix `vitalgate bench --scenario detect` and the labelled replay test
// use.
func StandardAttacks(from time.Duration) []Attack {
	var out []Attack
	for i, name := range AttackNames {
		a := Attack{Name: name, At: from + time.Duration(i)*10*time.Minute}
		switch {
		case name == AttackRogueNewDevice:
			a.Device = fmt.Sprintf("rogue-%d", i)
		case attackByDevice(name):
			a.Device = DeviceName(7 + 4*i)
		}
		out = append(out, a)
	}
	return out
}

// DeviceName is the id of the scenario's i-th device.
func DeviceName(i int) string { return fmt.Sprintf("sim-%03d", i) }

// Generate returns the scenario's signals in event-time order.
func Generate(sc Scenario) []Labelled {
	rng := rand.New(rand.NewPCG(sc.Seed, sc.Seed^0x9e3779b97f4a7c15)) // #nosec G404 -- simulated traffic, not security
	if sc.Models < 1 {
		sc.Models = 1
	}
	var out []Labelled
	add := func(l Labelled) { out = append(out, l) }
	devs := make([]simDevice, sc.Devices)
	for i := range devs {
		ward := i % 5
		devs[i] = simDevice{id: DeviceName(i), model: fmt.Sprintf("model-%d", i%sc.Models),
			ip: fmt.Sprintf("10.20.%d.%d", ward, 10+i/5), hr: 60 + rng.Float64()*30, spo2: 95 + rng.Float64()*4,
			offset: time.Duration(rng.Int64N(int64(sc.Interval))), clock: time.Duration(rng.NormFloat64() * float64(5*time.Second))}
	}
	// A drifting device sends only its drifting series while it drifts.
	quiet := map[string][2]time.Duration{}
	for _, a := range sc.Attacks {
		if a.Name == AttackSlowDrift {
			quiet[a.Device] = [2]time.Duration{a.At - 10*time.Minute, a.At + 10*time.Minute}
		}
	}
	for i := range devs {
		d := &devs[i]
		// It connects (a TLS handshake, its model's TLS stack) before its first message and
		// again every two hours or so.
		for t := d.offset; t < sc.Duration; t += 2*time.Hour + time.Duration(rng.Int64N(int64(20*time.Minute))) {
			add(Labelled{Signal: Signal{Kind: KindHandshake, At: sc.Start.Add(t - time.Second), Source: d.ip, Device: d.id, Model: d.model,
				Fingerprint: fingerprintOf(d.model)}})
		}
		for t := d.offset; t < sc.Duration; t += sc.Interval {
			if q, ok := quiet[d.id]; ok && t >= q[0] && t < q[1] {
				continue
			}
			at := sc.Start.Add(t)
			d.hr = math.Max(45, math.Min(120, d.hr+rng.NormFloat64()*2))
			d.spo2 = math.Max(90, math.Min(100, d.spo2+rng.NormFloat64()*0.5))
			if rng.IntN(200) == 0 { // a legitimately refused message now and then
				add(Labelled{Signal: Signal{Kind: KindRefusal, At: at, Source: d.ip, Device: d.id, Model: d.model, Reason: "unprocessable: Observation.effectiveDateTime"}})
				continue
			}
			// Device clocks are a few seconds off; a reading is sent a moment after it was taken.
			add(Labelled{Signal: Signal{Kind: KindAccepted, At: at, Source: d.ip, Device: d.id, Model: d.model,
				Skew: d.clock - time.Duration(rng.Int64N(int64(2*time.Second)))}})
			if rng.IntN(100) == 0 { // an acknowledgement lost: the device sends the message again
				add(Labelled{Signal: Signal{Kind: KindResend, At: at.Add(30 * time.Second), Source: d.ip, Device: d.id, Model: d.model}})
			}
			add(Labelled{Signal: Signal{Kind: KindValue, At: at, Device: d.id, Model: d.model, Code: "8867-4", Value: math.Round(d.hr*10) / 10}})
			add(Labelled{Signal: Signal{Kind: KindValue, At: at, Device: d.id, Model: d.model, Code: "59408-5", Value: math.Round(d.spo2)}})
		}
	}
	// A client whose secret expired retries every ten minutes all day.
	for t := time.Duration(0); t < sc.Duration; t += 10 * time.Minute {
		add(Labelled{Signal: Signal{Kind: KindAuthFailure, At: sc.Start.Add(t), Source: "10.30.0.5", Client: "ehr-stale", Reason: "unauthorized"}})
	}
	// Every few hours, honest mistakes: a technician mistypes an enrollment secret twice, an
	// EHR asks once for a scope its role lacks, a gateway relays a message naming one of its
	// devices wrongly in OBX-18, and a device names a patient not admitted yet.
	for t := time.Duration(rng.Int64N(int64(time.Hour))); t < sc.Duration; t += 3*time.Hour + time.Duration(rng.Int64N(int64(time.Hour))) {
		at := sc.Start.Add(t)
		d := devs[rng.IntN(len(devs))]
		for i := range 2 {
			add(Labelled{Signal: Signal{Kind: KindEnrollFailure, At: at.Add(time.Duration(i) * 30 * time.Second), Source: "10.40.0.8", Device: d.id, Reason: "unauthorized: enrollment secret"}})
		}
		add(Labelled{Signal: Signal{Kind: KindScopeEscalation, At: at.Add(time.Minute), Source: "10.30.0.6", Client: "ehr-main", Reason: vitalgateForbidden}})
		add(Labelled{Signal: Signal{Kind: KindRefusal, At: at.Add(2 * time.Minute), Source: d.ip, Device: d.id, Model: d.model, Reason: "forbidden: OBX-18"}})
		add(Labelled{Signal: Signal{Kind: KindPatientRefused, At: at.Add(3 * time.Minute), Source: d.ip, Device: d.id, Model: d.model,
			Reason: "forbidden: PID-3", Subject: fmt.Sprintf("%016x", rng.Uint64())}})
	}
	for _, a := range sc.Attacks {
		at := sc.Start.Add(a.At)
		switch a.Name {
		case AttackCredentialStuffing:
			for i := range 300 {
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindAuthFailure, At: at.Add(time.Duration(i) * 300 * time.Millisecond),
					Source: "203.0.113.7", Client: fmt.Sprintf("guess-%d", rng.IntN(50)), Reason: "unauthorized"}})
			}
		case AttackStolenCertificate:
			add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindHandshake, At: at, Source: "198.51.100.23",
				Device: a.Device, Model: modelOf(devs, a.Device), Fingerprint: attackerFingerprint}})
			for i := range 5 {
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindAccepted, At: at.Add(time.Duration(i) * 10 * time.Second),
					Source: "198.51.100.23", Device: a.Device, Model: modelOf(devs, a.Device)}})
			}
		case AttackRogueNewDevice:
			add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindHandshake, At: at, Source: "192.0.2.50", Device: a.Device,
				Model: "model-0", Fingerprint: attackerFingerprint}})
			add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindAccepted, At: at, Source: "192.0.2.50", Device: a.Device, Model: "model-0"}})
		case AttackValueFlood:
			src := ipOf(devs, a.Device)
			for i := range 60 {
				t := at.Add(time.Duration(i) * time.Second)
				v := 40.0
				if i%2 == 1 {
					v = 210
				}
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindAccepted, At: t, Source: src, Device: a.Device, Model: modelOf(devs, a.Device)}})
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindValue, At: t, Device: a.Device, Model: modelOf(devs, a.Device), Code: "8867-4", Value: v}})
			}
		case AttackCredentialStuffEST:
			for i := range 200 {
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindEnrollFailure, At: at.Add(time.Duration(i) * 400 * time.Millisecond),
					Source: "203.0.113.8", Device: DeviceName(rng.IntN(1000)), Reason: "unauthorized: enrollment secret"}})
			}
		case AttackScopeProbing:
			for i := range 12 {
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindScopeEscalation, At: at.Add(time.Duration(i) * 5 * time.Second),
					Source: "10.30.0.9", Client: "ehr-compromised", Reason: vitalgateForbidden}})
			}
		case AttackPatientEnumeration:
			d := find(devs, a.Device)
			for i := range 30 {
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindPatientRefused, At: at.Add(time.Duration(i) * 2 * time.Second),
					Source: d.ip, Device: d.id, Model: d.model, Reason: "forbidden: PID-3", Subject: fmt.Sprintf("%016x", rng.Uint64())}})
			}
		case AttackImpersonation:
			d := find(devs, a.Device)
			for i := range 6 {
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindRefusal, At: at.Add(time.Duration(i) * 5 * time.Second),
					Source: d.ip, Device: d.id, Model: d.model, Reason: fmt.Sprintf("forbidden: OBX[%d]-18", 2+i%3)}})
			}
		case AttackMessageFlood:
			d := find(devs, a.Device)
			for i := range 2400 {
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindAccepted, At: at.Add(time.Duration(i) * 25 * time.Millisecond),
					Source: d.ip, Device: d.id, Model: d.model, Skew: d.clock}})
			}
		case AttackClockAhead:
			d := find(devs, a.Device)
			for i := range 6 {
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindAccepted, At: at.Add(time.Duration(i) * 10 * time.Second),
					Source: d.ip, Device: d.id, Model: d.model, Skew: 3*time.Minute + time.Duration(i)*time.Second}})
			}
		case AttackReplay:
			d := find(devs, a.Device)
			for i := range 120 {
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindResend, At: at.Add(time.Duration(i) * 500 * time.Millisecond),
					Source: d.ip, Device: d.id, Model: d.model}})
			}
		case AttackSlowDrift:
			// From ten minutes before At the heart rate climbs 0.1 /min per second (far slower
			// than any jump rule) and passes 220 /min at At, one reading every 10 s.
			d := find(devs, a.Device)
			for i := -60; i < 60; i++ {
				t := at.Add(time.Duration(i) * 10 * time.Second)
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindAccepted, At: t, Source: d.ip, Device: d.id, Model: d.model}})
				add(Labelled{Attack: a.Name, Signal: Signal{Kind: KindValue, At: t, Device: d.id, Model: d.model, Code: "8867-4", Value: 221 + float64(i)}})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// fingerprintOf is the TLS hello fingerprint of a model's devices (one TLS stack each);
// attackerFingerprint is another stack's.
func fingerprintOf(model string) string {
	return fmt.Sprintf("%032x", []byte(model)[:min(len(model), 16)])
}

const attackerFingerprint = "0123456789abcdef0123456789abcdef"

// vitalgateForbidden is the reason of a scope-escalation signal (the error code).
const vitalgateForbidden = "forbidden"

type simDevice struct {
	id, model, ip string
	hr, spo2      float64
	offset        time.Duration
	clock         time.Duration // how far its clock is ahead
}

func find(devs []simDevice, id string) simDevice {
	for _, d := range devs {
		if d.id == id {
			return d
		}
	}
	return simDevice{}
}

func modelOf(devs []simDevice, id string) string { return find(devs, id).model }

func ipOf(devs []simDevice, id string) string { return find(devs, id).ip }
