package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/audit"
)

// TestEntrySite: an entry's site is part of its canonical encoding (last, so that older
// entries keep their bytes and leaf hashes), decodes back, and is the AuditEvent's meta.tag.
func TestEntrySite(t *testing.T) {
	e := audit.Entry{Time: time.Unix(0, 0), Action: "R", Type: "rest", Outcome: "0", AgentType: "client", AgentID: "ehr", Node: "n1"}
	without := e.Marshal()
	e.Site = "st-marys"
	with := e.Marshal()
	if !strings.HasSuffix(string(with), `,"node":"n1","site":"st-marys"}`) || string(with[:len(without)-1]) != string(without[:len(without)-1]) {
		t.Fatalf("encoding with a site: %s (without: %s)", with, without)
	}
	got, err := audit.UnmarshalEntry(with)
	if err != nil || got.Site != "st-marys" {
		t.Fatalf("UnmarshalEntry = %+v, %v", got, err)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
	ev, err := got.FHIR(7)
	if err != nil || !strings.Contains(string(ev), `"meta":{"tag":[{"code":"st-marys","system":"urn:vitalgate:site"}]}`) {
		t.Errorf("AuditEvent: %s %v", ev, err)
	}
	if ev, _ := (audit.Entry{Time: time.Unix(0, 0), Action: "R", Type: "rest", Outcome: "0", AgentType: "client", AgentID: "x"}).FHIR(1); strings.Contains(string(ev), "meta") {
		t.Errorf("an entry of no site has a site tag: %s", ev)
	}
}
