package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// nodeConfigTests are the subtests of vitalgate.NodeConfigStore.
func (s *suite) nodeConfigTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"NodeConfig/RecordReplace", s.testNodeConfigRecordReplace},
		{"NodeConfig/Invalid", s.testNodeConfigInvalid},
	}
}

// sampleNodeConfig returns a configuration with every kind of field set.
func sampleNodeConfig(node string, at time.Time) vitalgate.NodeConfig {
	return vitalgate.NodeConfig{
		Node: node, RecordedAt: at, Version: "v1.2.3", GoVersion: "go1.26", FIPS140: true, Store: "sqlite",
		Listeners: []vitalgate.NodeListener{{Name: "https", Addr: "127.0.0.1:8443", Protocol: "HTTPS", ClientAuth: "per route"}},
		TLS: vitalgate.NodeTLS{MinVersion: "TLS 1.3", Versions: []string{"TLS 1.3"},
			CipherSuites: []string{"TLS_AES_128_GCM_SHA256"}, Curves: []string{"X25519MLKEM768"}, ClientCerts: "verified when given"},
		Tokens:   vitalgate.NodeTokens{AccessTokenTTL: 5 * time.Minute, EmergencyTTL: 2 * time.Minute},
		Limits:   vitalgate.NodeLimits{MaxBodyBytes: 1 << 20, RatePerCaller: 50.5, HandshakeTimeout: 5 * time.Second},
		Audit:    vitalgate.NodeAudit{CheckpointInterval: 2 * time.Second, SyslogAddr: "siem:6514", SyslogCustomCA: true},
		Routes:   []vitalgate.NodeRoute{{Method: "GET", Pattern: "/healthz", Auth: "public", Permission: "public"}},
		Registry: vitalgate.NodeRegistry{CertValidity: 90 * 24 * time.Hour, MaxStaleness: time.Second},
	}
}

// testNodeConfigRecordReplace: every field round-trips; a node's new record replaces its
// old one; records come back ordered by node name.
func (s *suite) testNodeConfigRecordReplace(t *testing.T) {
	st := s.store(t)
	cs, err := st.NodeConfigs(ctxT(t))
	must(t, "NodeConfigs", err)
	if len(cs) != 0 {
		t.Fatalf("empty store: NodeConfigs = %v", cs)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	b := sampleNodeConfig("node-b", at)
	a := sampleNodeConfig("node-a", at.Add(time.Second))
	must(t, "RecordNodeConfig", st.RecordNodeConfig(ctxT(t), b))
	must(t, "RecordNodeConfig", st.RecordNodeConfig(ctxT(t), a))
	cs, err = st.NodeConfigs(ctxT(t))
	must(t, "NodeConfigs", err)
	if want := []vitalgate.NodeConfig{a, b}; !reflect.DeepEqual(cs, want) {
		t.Fatalf("NodeConfigs =\n%+v\nwant\n%+v", cs, want)
	}
	b2 := b
	b2.RecordedAt = at.Add(time.Minute)
	b2.TLS.MinVersion, b2.TLS.Versions = "TLS 1.2", []string{"TLS 1.2", "TLS 1.3"}
	must(t, "RecordNodeConfig", st.RecordNodeConfig(ctxT(t), b2))
	cs, err = st.NodeConfigs(ctxT(t))
	must(t, "NodeConfigs", err)
	if want := []vitalgate.NodeConfig{a, b2}; !reflect.DeepEqual(cs, want) {
		t.Fatalf("after node-b restarted: NodeConfigs =\n%+v\nwant\n%+v", cs, want)
	}
}

// testNodeConfigInvalid: a record without a node name or time is refused with EINVALID.
func (s *suite) testNodeConfigInvalid(t *testing.T) {
	st := s.store(t)
	for name, c := range map[string]vitalgate.NodeConfig{
		"no node": sampleNodeConfig("", time.Now()),
		"no time": sampleNodeConfig("node-a", time.Time{}),
	} {
		if err := st.RecordNodeConfig(ctxT(t), c); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			t.Errorf("%s: RecordNodeConfig = %v, want EINVALID", name, err)
		}
	}
	cs, err := st.NodeConfigs(ctxT(t))
	must(t, "NodeConfigs", err)
	if len(cs) != 0 {
		t.Fatalf("refused records were stored: %v", cs)
	}
}
