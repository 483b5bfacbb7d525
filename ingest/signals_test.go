package ingest_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/hl7v2"
)

type sink struct {
	mu   sync.Mutex
	sigs []detect.Signal
}

func (s *sink) Emit(sig detect.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sigs = append(s.sigs, sig)
}

// TestSignals: ingest reports an accepted message with its source, its clock skew and its
// readings, a refusal by its code and element, and an unknown HL7 patient identifier as a
// digest.
func TestSignals(t *testing.T) {
	e := mustEnv(t)
	sigs := &sink{}
	e.svc.Signals = sigs
	ctx := vitalgate.WithRequestInfo(context.Background(), vitalgate.RequestInfo{ID: "r", RemoteIP: "10.1.2.3"})
	if _, err := e.svc.CreateObservation(ctx, "dev-1", obs(t, e.pat["a"], e.now.Add(-time.Minute), nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateObservation(ctx, "dev-1", obs(t, e.pat["b"], e.now.Add(-time.Minute), nil)); err == nil {
		t.Fatal("another patient's observation was accepted")
	}
	_, _ = e.svc.ResolvePatient(ctx, "dev-1", "nobody-1", hl7v2.HD{UniversalID: "1.2.3.4", UniversalIDType: "ISO"})
	_, _ = e.svc.ResolvePatient(ctx, "dev-1", "nobody-2", hl7v2.HD{UniversalID: "1.2.3.4", UniversalIDType: "ISO"})

	want := []struct {
		kind  detect.Kind
		check func(s detect.Signal) bool
	}{
		{detect.KindAccepted, func(s detect.Signal) bool {
			return s.Source == "10.1.2.3" && s.Device == "dev-1" && s.Model == "Oximeter X" && s.Skew == -time.Minute // measured a minute ago
		}},
		{detect.KindValue, func(s detect.Signal) bool { return s.Code == "8867-4" && s.Value == 72 }},
		{detect.KindRefusal, func(s detect.Signal) bool {
			return s.Reason == "forbidden: Observation.subject" && s.Source == "10.1.2.3"
		}},
		{detect.KindPatientRefused, func(s detect.Signal) bool { return len(s.Subject) == 16 && !strings.Contains(s.Subject, "nobody") }},
		{detect.KindPatientRefused, func(s detect.Signal) bool { return len(s.Subject) == 16 }},
	}
	if len(sigs.sigs) != len(want) {
		t.Fatalf("got %d signals, want %d: %+v", len(sigs.sigs), len(want), sigs.sigs)
	}
	for i, w := range want {
		if s := sigs.sigs[i]; s.Kind != w.kind || !w.check(s) {
			t.Errorf("signal %d: %+v, want a %s", i, s, w.kind)
		}
	}
	if sigs.sigs[3].Subject == sigs.sigs[4].Subject {
		t.Error("two different identifiers have the same digest")
	}
}
