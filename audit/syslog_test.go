package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/audit"
)

func TestSyslog(t *testing.T) {
	ts := time.Date(2025, 3, 14, 10, 26, 53, 589793238, time.FixedZone("CET", 3600))
	tests := []struct {
		name          string
		entry         audit.Entry
		hostname, app string
		want          string
	}{
		{"device create", audit.Entry{Time: ts, Action: "C", Type: "rest", Subtype: "create", Outcome: "0",
			AgentType: "device", AgentID: "pump-7", PatientIndex: "00ff", Resources: []string{"Observation/1", "Observation/2"},
			RequestID: "r1", Node: "n1"}, "vg1.example", "vitalgate",
			`<85>1 2025-03-14T09:26:53.589793Z vg1.example vitalgate - rest.create [vitalgate@32473 action="C" type="rest" ` +
				`subtype="create" outcome="0" agentType="device" agentId="pump-7" patientIndex="00ff" ` +
				`resource="Observation/1" resource="Observation/2" requestId="r1" node="n1"] C rest.create by device pump-7 outcome 0`},
		{"minor failure, search, emergency", audit.Entry{Time: ts.Truncate(time.Second), Action: "E", Type: "rest", Subtype: "search",
			Outcome: "4", OutcomeDesc: "scope denied", AgentType: "client", AgentID: "ehr", AgentRole: "clinician",
			Emergency: true, SourceIP: "2001:db8::1", Count: 3}, "h", "a",
			`<84>1 2025-03-14T09:26:53Z h a - rest.search [vitalgate@32473 action="E" type="rest" subtype="search" ` +
				`outcome="4" outcomeDesc="scope denied" agentType="client" agentId="ehr" agentRole="clinician" ` +
				`emergency="true" sourceIp="2001:db8::1" count="3"] E rest.search by client ehr outcome 4: scope denied`},
		{"escaping per RFC 5424 6.3.3", audit.Entry{Time: ts.Truncate(time.Second), Type: "authn", Outcome: "8",
			OutcomeDesc: `bad "secret" \ ]x[`}, "h", "a",
			`<83>1 2025-03-14T09:26:53Z h a - authn [vitalgate@32473 type="authn" outcome="8" ` +
				`outcomeDesc="bad \"secret\" \\ \]x["] authn outcome 8: bad "secret" \ ]x[`},
		{"log injection: control characters replaced", audit.Entry{Time: ts.Truncate(time.Second), Type: "x", Outcome: "12",
			AgentID: "a\nb\r\x00c\x85"}, "h", "a",
			`<82>1 2025-03-14T09:26:53Z h a - x [vitalgate@32473 type="x" outcome="12" agentId="a` + "\uFFFDb\uFFFD\uFFFDc\uFFFD" +
				`"] ` + "\uFEFF" + `x by a` + "\uFFFDb\uFFFD\uFFFDc\uFFFD" + ` outcome 12`},
		{"header fields: empty, spaces, too long, zero time", audit.Entry{Outcome: "0"}, "", "my app " + strings.Repeat("x", 60),
			`<85>1 - - my_app_` + strings.Repeat("x", 41) + ` - - [vitalgate@32473 outcome="0"] outcome 0`},
		{"non-ASCII message gets a BOM", audit.Entry{Time: ts.Truncate(time.Second), Type: "admin", Outcome: "0",
			AgentType: "operator", AgentID: "Zoë"}, "h", "a",
			`<85>1 2025-03-14T09:26:53Z h a - admin [vitalgate@32473 type="admin" outcome="0" agentType="operator" agentId="Zoë"] ` +
				"\uFEFF" + `admin by operator Zoë outcome 0`},
		{"unknown outcome is a warning; long MSGID cut", audit.Entry{Time: ts.Truncate(time.Second), Type: strings.Repeat("t", 40), Outcome: "?"}, "h", "a",
			`<84>1 2025-03-14T09:26:53Z h a - ` + strings.Repeat("t", 32) + ` [vitalgate@32473 type="` + strings.Repeat("t", 40) +
				`" outcome="?"] ` + strings.Repeat("t", 40) + ` outcome ?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := audit.Syslog(tt.entry, tt.hostname, tt.app)
			if got != tt.want {
				t.Errorf("Syslog =\n%q\nwant\n%q", got, tt.want)
			}
			if strings.ContainsAny(got, "\n\r\x00") {
				t.Errorf("line holds a line break or NUL")
			}
		})
	}
}
