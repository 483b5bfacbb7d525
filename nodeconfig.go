package vitalgate

import (
	"context"
	"encoding/json"
	"time"
)

// NodeConfig is the effective configuration one node served with: what `serve` actually
// applied after defaults and flags, recorded in the store at every start so that the
// evidence report can state the live settings of every node of a deployment. It holds
// settings only, never a secret, key or connection string.
type NodeConfig struct {
	Node       string    `json:"node"`        // the node's name: HOST/ADDR, as in the audit log
	RecordedAt time.Time `json:"recorded_at"` // when serve recorded it (UTC)
	Version    string    `json:"version"`     // the binary's main module version
	GoVersion  string    `json:"go_version"`  // the Go toolchain that built it
	FIPS140    bool      `json:"fips140"`     // crypto/fips140.Enabled() in the serving process
	Store      string    `json:"store"`       // store driver: "sqlite" or "postgres"

	Listeners []NodeListener `json:"listeners"`
	TLS       NodeTLS        `json:"tls"`
	Tokens    NodeTokens     `json:"tokens"`
	Limits    NodeLimits     `json:"limits"`
	Audit     NodeAudit      `json:"audit"`
	Routes    []NodeRoute    `json:"routes"`
	Registry  NodeRegistry   `json:"registry"`
	// Detection is the detection configuration (nil: recorded by a version without it).
	Detection *NodeDetection `json:"detection,omitempty"`
}

// NodeDetection is the detection configuration a node serves with.
type NodeDetection struct {
	RulesVersion   int    `json:"rules_version"`     // the rule set's version
	Rules          int    `json:"rules"`             // rules in force (not disabled)
	RulesFile      string `json:"rules_file"`        // "" for the shipped rules
	AutoQuarantine bool   `json:"auto_quarantine"`   // serve --detect-quarantine
	Webhook        string `json:"webhook,omitempty"` // the alert webhook's HOST[:PORT] (serve --alert-webhook), "" for none
}

// NodeListener is one network interface a node listens on.
type NodeListener struct {
	Name     string `json:"name"`     // "https", "mllp", "metrics"
	Addr     string `json:"addr"`     // the address listened on
	Protocol string `json:"protocol"` // e.g. "HTTPS (TLS)", "HL7 v2 MLLP over TLS", "HTTP (loopback)"
	// ClientAuth says how callers authenticate at this interface, e.g. "device certificate
	// required at the handshake".
	ClientAuth string `json:"client_auth"`
	// AllowNetworks are the networks (CIDR, comma-separated) connections are accepted from,
	// checked before TLS (serve --allow-networks); "" for any.
	AllowNetworks string `json:"allow_networks,omitempty"`
}

// NodeTLS is the TLS configuration of the HTTPS (and MLLP) listeners.
type NodeTLS struct {
	MinVersion   string   `json:"min_version"`   // "TLS 1.3" or "TLS 1.2"
	Versions     []string `json:"versions"`      // every version offered
	CipherSuites []string `json:"cipher_suites"` // every suite offered (TLS 1.3 and, when allowed, TLS 1.2)
	Curves       []string `json:"curves"`        // key-exchange groups, in preference order
	// ClientCerts is the client-certificate policy at the TLS layer, e.g.
	// "verified against the built-in CA when given; required by device routes and MLLP".
	ClientCerts string `json:"client_certs"`
}

// NodeTokens are the lifetimes of what the node issues.
type NodeTokens struct {
	AccessTokenTTL time.Duration `json:"access_token_ttl"` // OAuth2 access tokens
	EmergencyTTL   time.Duration `json:"emergency_ttl"`    // emergency-access ("break glass") tokens
	// ConsoleIdle and ConsoleLifetime end a web console session after this long without a
	// request, and this long after sign-in (zero in configurations recorded before the
	// console).
	ConsoleIdle     time.Duration `json:"console_idle,omitempty"`
	ConsoleLifetime time.Duration `json:"console_lifetime,omitempty"`
}

// NodeLimits are the resource limits and timeouts of the node.
type NodeLimits struct {
	MaxBodyBytes          int64         `json:"max_body_bytes"`
	MaxBundleEntries      int           `json:"max_bundle_entries"`
	MaxJSONDepth          int           `json:"max_json_depth"`
	MaxHeaderBytes        int           `json:"max_header_bytes"`
	ReadHeaderTimeout     time.Duration `json:"read_header_timeout"`
	ReadTimeout           time.Duration `json:"read_timeout"`
	WriteTimeout          time.Duration `json:"write_timeout"`
	IdleTimeout           time.Duration `json:"idle_timeout"`
	MaxConns              int           `json:"max_conns"`
	MaxConnsPerIP         int           `json:"max_conns_per_ip"`
	HandshakeTimeout      time.Duration `json:"handshake_timeout"`
	MaxHandshakes         int           `json:"max_handshakes"`
	MaxHandshakesPerIP    int           `json:"max_handshakes_per_ip"`
	MaxInFlightPerCaller  int           `json:"max_in_flight_per_caller"`
	MaxInFlightWrites     int           `json:"max_in_flight_writes"`
	RatePerCaller         float64       `json:"rate_per_caller"`
	BurstPerCaller        int           `json:"burst_per_caller"`
	RatePerIP             float64       `json:"rate_per_ip"`
	BurstPerIP            int           `json:"burst_per_ip"`
	AuthFailuresPerMinute int           `json:"auth_failures_per_minute"`
	MaxBackdate           time.Duration `json:"max_backdate"`
}

// NodeAudit is how the node keeps and forwards its audit log.
type NodeAudit struct {
	CheckpointInterval time.Duration `json:"checkpoint_interval"`        // how often a checkpoint is signed
	SyslogAddr         string        `json:"syslog_addr,omitempty"`      // forwarding target over TLS ("" for none)
	SyslogCustomCA     bool          `json:"syslog_custom_ca,omitempty"` // the collector is checked against a given CA, not the system roots
}

// NodeRoute is one HTTPS endpoint as the node registered it: how its caller authenticates
// and which permission it must hold.
type NodeRoute struct {
	Method     string `json:"method"`
	Pattern    string `json:"pattern"`
	Auth       string `json:"auth"`
	Permission string `json:"permission"`
}

// NodeRegistry are the device registry settings that bear on security.
type NodeRegistry struct {
	CertValidity    time.Duration `json:"cert_validity"`    // validity of device certificates issued through EST
	ReenrollOverlap time.Duration `json:"reenroll_overlap"` // how long a replaced certificate stays usable
	MaxStaleness    time.Duration `json:"max_staleness"`    // how late a revocation may reach another node
	// ModelNetworks are, per device model, the networks its devices may connect from
	// (serve --model-networks), checked at the handshake.
	ModelNetworks map[string]string `json:"model_networks,omitempty"`
}

// NodeConfigStore keeps the latest effective configuration of every node.
type NodeConfigStore interface {
	// RecordNodeConfig stores c as the configuration of c.Node, replacing the node's previous
	// record. Returns EINVALID when c.Node is empty or c.RecordedAt is zero.
	RecordNodeConfig(ctx context.Context, c NodeConfig) error
	// NodeConfigs returns the latest record of every node, ordered by node name.
	NodeConfigs(ctx context.Context) ([]NodeConfig, error)
}

// CheckNodeConfig returns EINVALID for a record no store may keep: no node name or no time.
func CheckNodeConfig(c NodeConfig) error {
	switch {
	case c.Node == "":
		return Errorf(EINVALID, "node configuration: the node name is empty")
	case c.RecordedAt.IsZero():
		return Errorf(EINVALID, "node configuration of %s: no recording time", c.Node)
	}
	return nil
}

// EncodeNodeConfig checks c (CheckNodeConfig) and returns the JSON text both stores keep, with
// RecordedAt in UTC.
func EncodeNodeConfig(c NodeConfig) ([]byte, error) {
	if err := CheckNodeConfig(c); err != nil {
		return nil, err
	}
	c.RecordedAt = c.RecordedAt.UTC()
	data, err := json.Marshal(c)
	if err != nil {
		return nil, Internal(err, "encode node configuration")
	}
	return data, nil
}

// DecodeNodeConfig reads a record EncodeNodeConfig wrote. A record that is not one is an
// internal error: the stores write nothing else into that column.
func DecodeNodeConfig(data []byte) (NodeConfig, error) {
	var c NodeConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return NodeConfig{}, Internal(err, "decode node configuration")
	}
	c.RecordedAt = c.RecordedAt.UTC()
	return c, nil
}
