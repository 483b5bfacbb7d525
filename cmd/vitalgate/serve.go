package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/bulk"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/ingest"
	vgnode "github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/registry"
)

func (m *Main) runServe(ctx context.Context, args []string) error {
	opt := vgnode.Options{HTTP: httpapi.DefaultConfig()}
	cfg := &opt.HTTP
	fs := m.flags("serve", "serve --data DIR [--addr 127.0.0.1:8443] [flags]")
	dir := fs.String("data", "", "data directory created by `vitalgate init`")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "HTTPS listen address")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "base URL clients use to reach this server (token issuer and audience); default https://ADDR")
	fs.BoolVar(&cfg.AllowTLS12, "tls12", cfg.AllowTLS12, "also offer TLS 1.2 (ECDHE+AEAD suites only); default is TLS 1.3 only")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body", cfg.MaxBodyBytes, "request body limit in bytes")
	fs.IntVar(&cfg.MaxBundleEntries, "max-bundle-entries", cfg.MaxBundleEntries, "Bundle entries limit")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "grace for in-flight requests on shutdown")
	fs.Float64Var(&cfg.RatePerCaller, "rate-per-caller", cfg.RatePerCaller, "sustained requests per second of one device or client")
	fs.IntVar(&cfg.BurstPerCaller, "burst-per-caller", cfg.BurstPerCaller, "burst above the per-caller rate")
	fs.Float64Var(&cfg.RatePerIP, "rate-per-ip", cfg.RatePerIP, "requests per second from one address before authentication")
	fs.IntVar(&cfg.BurstPerIP, "burst-per-ip", cfg.BurstPerIP, "burst above the per-address rate")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "connections open at once")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", cfg.MaxConnsPerIP, "connections open at once from one address")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "time a connection has to finish its TLS handshake (HTTPS and MLLP)")
	fs.IntVar(&cfg.MaxHandshakes, "max-handshakes", cfg.MaxHandshakes, "connections in TLS handshake at once (HTTPS; MLLP uses the smaller of this and 128); at the limit the oldest is closed")
	fs.IntVar(&cfg.MaxHandshakesPerIP, "max-handshakes-per-ip", cfg.MaxHandshakesPerIP, "connections in TLS handshake at once from one address (HTTPS and MLLP); at the limit that address's oldest is closed")
	fs.IntVar(&cfg.MaxInFlightPerCaller, "max-inflight-per-caller", cfg.MaxInFlightPerCaller, "concurrent requests of one device or client")
	fs.IntVar(&cfg.MaxInFlightWrites, "max-inflight-writes", cfg.MaxInFlightWrites, "writes in progress before new ones get 503 (load shedding)")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "time for the TLS handshake and request headers")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "keep-alive idle time")
	fs.DurationVar(&opt.ConsoleIdle, "console-idle", auth.DefaultIdleTimeout, "idle timeout of web console sessions (automatic logoff), 1s to 12h")
	fs.DurationVar(&cfg.EmergencyTTL, "emergency-ttl", cfg.EmergencyTTL, "life of an emergency-access (break glass) token, 10s to 5m")
	opt.Registry = registry.DefaultConfig()
	fs.DurationVar(&opt.Registry.ReenrollOverlap, "reenroll-overlap", opt.Registry.ReenrollOverlap, "how long a certificate replaced by simplereenroll stays usable (0: revoked at once)")
	fs.DurationVar(&opt.Registry.AssignmentGrace, "assignment-grace", opt.Registry.AssignmentGrace, "how long after a device's reassignment readings it measured before it are still accepted")
	fs.DurationVar(&opt.Registry.ClockSkew, "clock-skew", opt.Registry.ClockSkew, "how much earlier than a device's first assignment a reading may be dated (device clocks run behind)")
	fs.Func("subscription-allow", "allow subscriptions to notify this endpoint address HOST:PORT (repeat, or separate with commas); none: subscriptions are refused", func(v string) error {
		for a := range strings.SplitSeq(v, ",") {
			if _, _, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil {
				return fmt.Errorf("%q is not HOST:PORT", a)
			}
			opt.SubscriptionAllow = append(opt.SubscriptionAllow, strings.ToLower(strings.TrimSpace(a)))
		}
		return nil
	})
	fs.StringVar(&opt.SubscriptionCA, "subscription-ca", "", "PEM file of the CA that signed the subscription endpoints' certificates (default: the system roots)")
	fs.DurationVar(&opt.ExportRetention, "export-retention", bulk.DefaultRetention, "how long bulk export ($export) files are kept before they are deleted")
	fs.DurationVar(&opt.MaxBackdate, "max-backdate", ingest.DefaultMaxBackdate, "oldest effective time a device may give a reading, counted back from now")
	fs.IntVar(&opt.MaxStringBytes, "max-string-bytes", fhir.DefaultMaxStringBytes, "longest string element a device may send (the narrative has its own bound)")
	opt.Authorities = hl7v2.AuthorityTable{}
	fs.BoolVar(&opt.Detect.AutoQuarantine, "detect-quarantine", false, "quarantine a device by itself on a high-severity identity, authentication or protocol alert (never on a clinical-value rule)")
	fs.StringVar(&opt.Detect.RulesFile, "detect-rules", "", "detection rules file (JSON, docs/detection.md; default: the shipped rules)")
	fs.StringVar(&opt.Detect.WebhookURL, "alert-webhook", "", "POST every alert, signed with HMAC-SHA-256, to this https:// URL (retried until it answers 2xx)")
	fs.StringVar(&opt.Detect.WebhookSecretFile, "alert-webhook-secret-file", "", "file holding the alert webhook's HMAC secret (at least 32 bytes)")
	fs.StringVar(&opt.Detect.WebhookCA, "alert-webhook-ca", "", "PEM file of the CA that signed the alert webhook's certificate (default: the system roots)")
	fs.BoolVar(&opt.LabAcceptUnknownCodes, "lab-accept-unknown-codes", false, "accept HL7 lab results whose LOINC code is not in the analyte table (stored as measured, without unit or range checks)")
	fs.Var(opt.Authorities, "hl7-authority", "HL7 v2 assigning authority namespace and the FHIR identifier system it stands for, NAMESPACE=SYSTEM (repeatable)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&opt.MLLPAddr, "mllp-addr", "", "also accept HL7 v2 (IHE PCD-01) over MLLP with TLS on this address, e.g. 127.0.0.1:2575")
	fs.StringVar(&opt.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics on this loopback address, e.g. 127.0.0.1:9464")
	fs.StringVar(&opt.SyslogAddr, "syslog-addr", "", "forward the audit log to this syslog collector over TLS (RFC 5425), e.g. siem.example.org:6514")
	opt.ModelNetworks = guard.ModelNetworks{}
	fs.Var(&opt.AllowNetworks, "allow-networks", "accept HTTPS and MLLP connections only from these networks, CIDR,CIDR... (repeatable); any other is closed before TLS (default: any)")
	fs.Var(opt.ModelNetworks, "model-networks", "devices of a model may connect only from these networks, MODEL=CIDR,CIDR... (repeatable), checked at the TLS handshake")
	fs.StringVar(&opt.SyslogCA, "syslog-ca", "", "PEM file of the CA that signed the syslog collector's certificate (default: the system roots)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	opt.Logger = slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: lvl}))
	opt.Ready = m.Ready
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Serve(ctx, opt)
}
