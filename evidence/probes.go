package evidence

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/assess"
)

// Status is the live state of a control on this deployment.
type Status string

// Statuses, from good to missing.
const (
	StatusEnforced  Status = "enforced"  // in force on every recorded node
	StatusAttention Status = "attention" // in force, but a setting or date needs the operator's look
	StatusUnknown   Status = "unknown"   // no node has recorded its configuration yet: serve once
	StatusNotRun    Status = "not-run"   // evidence that comes with the report (e.g. --assess) was not given
	StatusPartial   Status = "partial"   // of a requirement: its built controls are in force, but some of its controls are gaps
	StatusGap       Status = "gap"       // not built: the row is a gap, not a claim
)

// Finding is a control's live state: its status and what was found, in plain sentences.
type Finding struct {
	Status Status   `json:"status"`
	Facts  []string `json:"facts"`
}

// probe computes a control's live state from the gathered state.
type probe func(s *State) Finding

// probes holds the live-state check of every control that is built, by control id. A
// control added to catalogue.json adds its probe here (the tests insist).
var probes = map[string]probe{
	"unique-identities":      probeIdentities,
	"device-mtls":            probeDeviceMTLS,
	"device-enrollment":      probeEnrollment,
	"client-authentication":  probeClientAuth,
	"deny-by-default":        probeRoutes,
	"scopes-care-teams":      probeScopes,
	"emergency-access":       probeEmergency,
	"bulk-export":            probeRoutePermission("bulk export routes", "bulk:export"),
	"subscriptions":          probeRoutePermission("subscription routes", "subscription:manage"),
	"token-lifetime":         probeTokens,
	"people-mfa":             probePeople,
	"console-sessions":       probeConsoleSessions,
	"tls":                    probeTLS,
	"transmission-integrity": probeAEAD,
	"encryption-at-rest":     probeAtRest,
	"key-management":         probeKeys,
	"fips-mode":              probeFIPS,
	"patient-erasure":        probeErasure,
	"site-isolation":         probeSites,
	"blind-indexes":          probeBlindIndexes,
	"stored-data-integrity":  probeStoredIntegrity,
	"input-validation":       probeInputLimits,
	"code-integrity":         probeCode,
	"audit-log":              probeAudit,
	"audit-forwarding":       probeForwarding,
	"overload-protection":    probeLimits,
	"durability":             probeDurability,
	"backup-restore":         probeBackups,
	"sbom":                   probeSBOM,
	"update-rollout":         probeRollouts,
	"vulnerability-posture":  probePosture,
	"detection":              probeDetection,
	"alert-forwarding":       probeAlertForwarding,
	"authenticated-updates":  probeReleases,
	"outside-in-assessment":  probeAssessment,
}

// perNode states a setting of every recorded node: one fact when all agree, one per node
// otherwise. With no node recorded it returns StatusUnknown.
func perNode(s *State, label string, value func(vitalgate.NodeConfig) string) ([]string, bool) {
	if len(s.Nodes) == 0 {
		return []string{"no node has recorded its configuration: run `vitalgate serve` once"}, false
	}
	vals := map[string][]string{}
	for _, n := range s.Nodes {
		v := value(n)
		vals[v] = append(vals[v], n.Node)
	}
	if len(vals) == 1 {
		for v := range vals {
			return []string{fmt.Sprintf("%s: %s (%s)", label, v, plural(len(s.Nodes), "node"))}, true
		}
	}
	keys := make([]string, 0, len(vals))
	for v := range vals {
		keys = append(keys, v)
	}
	sort.Strings(keys)
	var out []string
	for _, v := range keys {
		out = append(out, fmt.Sprintf("%s: %s on %s", label, v, strings.Join(vals[v], ", ")))
	}
	return out, true
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// days renders a duration in days, hours, minutes or seconds, whichever reads best.
func days(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%g min", d.Minutes())
	}
	return d.String()
}

func nodeFinding(facts []string, ok bool, attention bool) Finding {
	switch {
	case !ok:
		return Finding{Status: StatusUnknown, Facts: facts}
	case attention:
		return Finding{Status: StatusAttention, Facts: facts}
	}
	return Finding{Status: StatusEnforced, Facts: facts}
}

func probeIdentities(s *State) Finding {
	return Finding{Status: StatusEnforced, Facts: []string{
		"devices: " + counts(s.Devices), "API clients: " + counts(s.Clients),
	}}
}

// counts renders a map of counts sorted by key.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func probeDeviceMTLS(s *State) Finding {
	facts, ok := perNode(s, "client certificates", func(n vitalgate.NodeConfig) string { return n.TLS.ClientCerts })
	f2, _ := perNode(s, "revocation reaches every node within", func(n vitalgate.NodeConfig) string { return days(n.Registry.MaxStaleness) })
	facts = append(facts, f2...)
	attention := false
	if s.CA != nil {
		facts = append(facts, fmt.Sprintf("device CA %q valid until %s", s.CA.Subject, s.CA.NotAfter.Format(time.DateOnly)))
		if s.CA.DaysLeft < 90 {
			attention = true
			facts = append(facts, "the device CA expires within 90 days")
		}
	}
	return nodeFinding(facts, ok, attention)
}

func probeEnrollment(s *State) Finding {
	facts, ok := perNode(s, "device certificate validity", func(n vitalgate.NodeConfig) string { return days(n.Registry.CertValidity) })
	f2, _ := perNode(s, "replaced certificate overlap", func(n vitalgate.NodeConfig) string { return days(n.Registry.ReenrollOverlap) })
	facts = append(facts, f2...)
	facts = append(facts, fmt.Sprintf("devices awaiting enrollment: %d", s.Devices["pending-enrollment"]))
	return nodeFinding(facts, ok, false)
}

func probeClientAuth(s *State) Finding {
	facts, ok := perNode(s, "failed authentications allowed per client and address per minute", func(n vitalgate.NodeConfig) string {
		return fmt.Sprint(n.Limits.AuthFailuresPerMinute)
	})
	facts = append(facts, fmt.Sprintf("clients authenticating with private_key_jwt: %d; disabled clients: %d", s.Clients["key-authenticated"], s.Clients["disabled"]))
	return nodeFinding(facts, ok, false)
}

func probeRoutes(s *State) Finding {
	facts, ok := perNode(s, "HTTPS routes by authentication", func(n vitalgate.NodeConfig) string {
		m := map[string]int{}
		for _, r := range n.Routes {
			m[r.Auth]++
		}
		return counts(m)
	})
	f2, _ := perNode(s, "public routes", func(n vitalgate.NodeConfig) string {
		var pub []string
		for _, r := range n.Routes {
			if r.Auth == "public" {
				pub = append(pub, r.Method+" "+r.Pattern)
			}
		}
		return strings.Join(pub, ", ")
	})
	return nodeFinding(append(facts, f2...), ok, false)
}

// probeRoutePermission states, per node, the routes that require permission perm: a
// capability whose routes a node serves is there only behind its permission.
func probeRoutePermission(label, perm string) probe {
	return func(s *State) Finding {
		facts, ok := perNode(s, label+" (permission "+perm+")", func(n vitalgate.NodeConfig) string {
			var rs []string
			for _, r := range n.Routes {
				if r.Permission == perm {
					rs = append(rs, r.Method+" "+r.Pattern)
				}
			}
			if len(rs) == 0 {
				return "none (node started before this capability)"
			}
			return strings.Join(rs, ", ")
		})
		return nodeFinding(facts, ok, false)
	}
}

func probeScopes(s *State) Finding {
	return Finding{Status: StatusEnforced, Facts: []string{"clients by role: " + counts(withoutKeys(s.Clients, "disabled", "key-authenticated"))}}
}

func withoutKeys(m map[string]int, drop ...string) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if !slices.Contains(drop, k) {
			out[k] = v
		}
	}
	return out
}

func probeEmergency(s *State) Finding {
	facts, ok := perNode(s, "emergency token lifetime", func(n vitalgate.NodeConfig) string { return days(n.Tokens.EmergencyTTL) })
	return nodeFinding(facts, ok, false)
}

func probeTokens(s *State) Finding {
	facts, ok := perNode(s, "access token lifetime", func(n vitalgate.NodeConfig) string { return days(n.Tokens.AccessTokenTTL) })
	return nodeFinding(facts, ok, false)
}

func probePeople(s *State) Finding {
	n := s.Users[string(vitalgate.RoleAdmin)] + s.Users[string(vitalgate.RoleClinician)] + s.Users[string(vitalgate.RoleAuditor)]
	return Finding{Status: StatusEnforced, Facts: []string{fmt.Sprintf("console users: %d (admin %d, clinician %d, auditor %d; disabled %d, setup pending %d)",
		n, s.Users[string(vitalgate.RoleAdmin)], s.Users[string(vitalgate.RoleClinician)], s.Users[string(vitalgate.RoleAuditor)],
		s.Users["disabled"], s.Users["setup-pending"]),
		"every console sign-in takes the password and a TOTP code (RFC 6238, HMAC-SHA-256), each code good once"}}
}

func probeConsoleSessions(s *State) Finding {
	facts, ok := perNode(s, "console idle timeout", func(n vitalgate.NodeConfig) string {
		if n.Tokens.ConsoleIdle == 0 {
			return "not recorded (node started before the console)"
		}
		return n.Tokens.ConsoleIdle.String() + ", absolute " + n.Tokens.ConsoleLifetime.String()
	})
	attention := slices.ContainsFunc(s.Nodes, func(n vitalgate.NodeConfig) bool { return n.Tokens.ConsoleIdle > 30*time.Minute })
	if attention {
		facts = append(facts, "a node lets console sessions idle longer than 30 minutes (--console-idle)")
	}
	return nodeFinding(facts, ok, attention)
}

func allowsTLS12(n vitalgate.NodeConfig) bool { return slices.Contains(n.TLS.Versions, "TLS 1.2") }

func probeTLS(s *State) Finding {
	facts, ok := perNode(s, "TLS versions", func(n vitalgate.NodeConfig) string { return strings.Join(n.TLS.Versions, ", ") })
	f2, _ := perNode(s, "cipher suites", func(n vitalgate.NodeConfig) string { return strings.Join(n.TLS.CipherSuites, ", ") })
	f3, _ := perNode(s, "key exchange groups", func(n vitalgate.NodeConfig) string { return strings.Join(n.TLS.Curves, ", ") })
	facts = append(append(facts, f2...), f3...)
	attention := slices.ContainsFunc(s.Nodes, allowsTLS12)
	if attention {
		facts = append(facts, "TLS 1.2 is allowed by configuration (--tls12): ECDHE with AEAD suites only, but below the TLS 1.3 default")
	}
	if s.Server != nil {
		facts = append(facts, fmt.Sprintf("server certificate %q (%s) valid until %s", s.Server.Subject, s.Server.KeyAlg, s.Server.NotAfter.Format(time.DateOnly)))
		if s.Server.DaysLeft < 30 {
			attention = true
			facts = append(facts, "the server certificate expires within 30 days")
		}
	}
	return nodeFinding(facts, ok, attention)
}

// aead reports whether a cipher suite name is an AEAD suite.
func aead(name string) bool {
	return strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")
}

func probeAEAD(s *State) Finding {
	facts, ok := perNode(s, "every offered suite is AEAD", func(n vitalgate.NodeConfig) string {
		for _, c := range n.TLS.CipherSuites {
			if !aead(c) {
				return "NO: " + c
			}
		}
		return "yes"
	})
	bad := slices.ContainsFunc(s.Nodes, func(n vitalgate.NodeConfig) bool { return !slices.ContainsFunc(n.TLS.CipherSuites, aead) })
	return nodeFinding(facts, ok, bad)
}

// keyringFiles returns the key-encryption key files, oldest first.
func keyringFiles(s *State) []KeyFile {
	var out []KeyFile
	for _, k := range s.Keys {
		if strings.Contains(k.Name, "/kek-") {
			out = append(out, k)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Written.Before(out[j].Written) })
	return out
}

func probeAtRest(s *State) Finding {
	keks := keyringFiles(s)
	if len(keks) == 0 {
		return Finding{Status: StatusAttention, Facts: []string{"no key-encryption key found in the keyring"}}
	}
	cur := keks[len(keks)-1]
	facts := []string{
		fmt.Sprintf("key-encryption keys: %d; newest %s written %s", len(keks), cur.Name, cur.Written.Format(time.DateOnly)),
	}
	if len(keks) > 1 {
		facts = append(facts, "last rotation: "+cur.Written.Format(time.DateOnly))
	} else {
		facts = append(facts, "never rotated (`vitalgate keys rotate`)")
	}
	return Finding{Status: StatusEnforced, Facts: facts}
}

func probeKeys(s *State) Finding {
	var facts []string
	for _, k := range s.Keys {
		facts = append(facts, fmt.Sprintf("%s written %s", k.Name, k.Written.Format(time.DateOnly)))
	}
	attention := false
	for _, c := range []*CertInfo{s.CA, s.Server} {
		if c != nil {
			facts = append(facts, fmt.Sprintf("certificate %q: %s to %s, %s", c.Subject, c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly), c.SigAlg))
			if c.DaysLeft < 30 {
				attention = true
				facts = append(facts, fmt.Sprintf("certificate %q expires within 30 days", c.Subject))
			}
		}
	}
	return Finding{Status: map[bool]Status{false: StatusEnforced, true: StatusAttention}[attention], Facts: facts}
}

func probeFIPS(s *State) Finding {
	facts, ok := perNode(s, "FIPS 140-3 mode (crypto/fips140.Enabled)", func(n vitalgate.NodeConfig) string {
		return map[bool]string{true: "on", false: "off"}[n.FIPS140]
	})
	if s.CryptoMode != "" {
		facts = append(facts, "data dir record and the reporting process: "+s.CryptoMode)
	}
	off := slices.ContainsFunc(s.Nodes, func(n vitalgate.NodeConfig) bool { return !n.FIPS140 })
	if off {
		facts = append(facts, "nodes without FIPS mode still use only approved algorithms for TLS, sealing and signatures, outside the validated module boundary (run with GODEBUG=fips140=on)")
	}
	return nodeFinding(facts, ok, off)
}

// probeErasure states the KEKs erasures retired and whether a file of one is still in this
// data dir's keys/ (it should have been destroyed: attention).
func probeErasure(s *State) Finding {
	facts := []string{"an erasure needs two admins (permission patient:erase; the requester cannot approve) and is blocked by a legal hold",
		fmt.Sprintf("key-encryption keys retired by erasures: %d", len(s.RetiredKEKs))}
	left := false
	for _, r := range s.RetiredKEKs {
		name := "keys/" + r.KEK + ".key"
		if r.Keyring != "" {
			name = "keys/sites/" + r.Keyring + "/" + r.KEK + ".key"
		}
		if slices.ContainsFunc(s.Keys, func(k KeyFile) bool { return k.Name == name }) {
			left = true
			facts = append(facts, "retired "+name+" is still in this data dir: copy the newer key here, then it is deleted (or delete it)")
		}
	}
	return Finding{Status: map[bool]Status{false: StatusEnforced, true: StatusAttention}[left], Facts: facts}
}

// probeSites states the sites, which have their own key-encryption key and which are
// erased; an erased site with an active device needs attention (its erasure was cut short).
func probeSites(s *State) Finding {
	own, erased := 0, 0
	for _, st := range s.Sites {
		if st.OwnKeys {
			own++
		}
		if st.Erased {
			erased++
		}
	}
	facts := []string{fmt.Sprintf("%s, %d with its own key-encryption key, %d erased", plural(len(s.Sites), "site"), own, erased),
		"every token, device and person acts within one site; a record of another site reads as not found and the attempt is audited in that site's trail"}
	if s.ErasedSiteDevices > 0 {
		facts = append(facts, fmt.Sprintf("%s of erased sites still active: run `vitalgate site erase` again or revoke them", plural(s.ErasedSiteDevices, "device")))
		return Finding{Status: StatusAttention, Facts: facts}
	}
	return Finding{Status: StatusEnforced, Facts: facts}
}

func probeBlindIndexes(s *State) Finding {
	return Finding{Status: StatusEnforced, Facts: []string{"an index key is in the keyring: " + yes(slices.ContainsFunc(s.Keys, func(k KeyFile) bool { return strings.HasSuffix(k.Name, "/index.key") }))}}
}

func yes(b bool) string { return map[bool]string{true: "yes", false: "NO"}[b] }

func probeStoredIntegrity(s *State) Finding {
	return Finding{Status: StatusEnforced, Facts: []string{"every stored resource is AES-256-GCM sealed with its row bound as associated data; a failed open is an error, never data"}}
}

func probeInputLimits(s *State) Finding {
	facts, ok := perNode(s, "request limits", func(n vitalgate.NodeConfig) string {
		l := n.Limits
		return fmt.Sprintf("body %d bytes, %d Bundle entries, JSON depth %d, headers %d bytes, readings back-dated at most %s",
			l.MaxBodyBytes, l.MaxBundleEntries, l.MaxJSONDepth, l.MaxHeaderBytes, days(l.MaxBackdate))
	})
	return nodeFinding(facts, ok, false)
}

func probeCode(s *State) Finding {
	facts, ok := perNode(s, "binary", func(n vitalgate.NodeConfig) string { return n.Version + " built with " + n.GoVersion })
	return nodeFinding(facts, ok, false)
}

func probeAudit(s *State) Finding {
	a := s.Audit
	facts := []string{fmt.Sprintf("entries: %d; signed checkpoints: %d", a.Entries, a.Checkpoints)}
	if a.LatestCheckpoint != nil {
		facts = append(facts, fmt.Sprintf("latest checkpoint: size %d at %s", a.LatestCheckpoint.Size, a.LatestCheckpoint.CreatedAt.Format(time.RFC3339)))
	}
	f2, _ := perNode(s, "checkpoint interval", func(n vitalgate.NodeConfig) string { return days(n.Audit.CheckpointInterval) })
	facts = append(facts, f2...)
	st := StatusEnforced
	switch v := a.Verification; {
	case v == nil:
		facts = append(facts, "verification: not run with this report (use --audit-verify)")
	case v.OK:
		facts = append(facts, fmt.Sprintf("verification: OK, %d entries and %d checkpoints verify with key %s; %d entries not yet under a checkpoint", v.Entries, v.Checkpoints, v.Key, v.Unsigned))
	default:
		st = StatusAttention
		facts = append(facts, "verification: FAILED: "+v.Error)
	}
	return Finding{Status: st, Facts: facts}
}

func probeForwarding(s *State) Finding {
	facts, ok := perNode(s, "syslog forwarding", func(n vitalgate.NodeConfig) string {
		if n.Audit.SyslogAddr == "" {
			return "off"
		}
		if n.Audit.SyslogCustomCA {
			return "to " + n.Audit.SyslogAddr + " over TLS (collector checked against a given CA)"
		}
		return "to " + n.Audit.SyslogAddr + " over TLS (collector checked against the system roots)"
	})
	off := slices.ContainsFunc(s.Nodes, func(n vitalgate.NodeConfig) bool { return n.Audit.SyslogAddr == "" })
	if off {
		facts = append(facts, "a node does not forward its audit log: start serve with --syslog-addr to send it to a collector")
	}
	return nodeFinding(facts, ok, off)
}

func probeLimits(s *State) Finding {
	facts, ok := perNode(s, "rates", func(n vitalgate.NodeConfig) string {
		l := n.Limits
		return fmt.Sprintf("%g/s (burst %d) per caller, %g/s (burst %d) per address, %d requests in flight per caller, %d writes in flight",
			l.RatePerCaller, l.BurstPerCaller, l.RatePerIP, l.BurstPerIP, l.MaxInFlightPerCaller, l.MaxInFlightWrites)
	})
	f2, _ := perNode(s, "connections", func(n vitalgate.NodeConfig) string {
		l := n.Limits
		return fmt.Sprintf("%d open (%d per address); TLS handshakes within %s, %d at once (%d per address)",
			l.MaxConns, l.MaxConnsPerIP, days(l.HandshakeTimeout), l.MaxHandshakes, l.MaxHandshakesPerIP)
	})
	f3, _ := perNode(s, "timeouts", func(n vitalgate.NodeConfig) string {
		l := n.Limits
		return fmt.Sprintf("header %s, read %s, write %s, idle %s", days(l.ReadHeaderTimeout), days(l.ReadTimeout), days(l.WriteTimeout), days(l.IdleTimeout))
	})
	return nodeFinding(append(append(facts, f2...), f3...), ok, false)
}

func probeDurability(s *State) Finding {
	facts, ok := perNode(s, "store", func(n vitalgate.NodeConfig) string { return n.Store })
	return nodeFinding(append(facts, "nodes recorded: "+fmt.Sprint(len(s.Nodes))), ok, false)
}

// maxBackupAge and maxVerifyAge are how old the last backup and the last verified backup
// may be before the row asks for the operator's attention.
const (
	maxBackupAge = 7 * 24 * time.Hour
	maxVerifyAge = 92 * 24 * time.Hour
)

func probeBackups(s *State) Finding {
	f := probeBackupRecords(s)
	if n := len(s.AuditSegments); n > 0 {
		last, keep := s.AuditSegments[n-1], s.AuditSegments[0].KeepUntil
		for _, g := range s.AuditSegments {
			if g.KeepUntil.After(keep) {
				keep = g.KeepUntil
			}
		}
		f.Facts = append(f.Facts, fmt.Sprintf("audit archive: audit entries 0 to %d are archived in %d sealed segments (their leaf hashes stay in the live log, which verifies whole); the latest keep-until date of a segment is %s",
			last.To-1, n, keep.UTC().Format(time.DateOnly)))
	} else {
		f.Facts = append(f.Facts, "audit archive: no entry archived, the whole audit log is live (`vitalgate audit archive` moves old entries into sealed segments kept 6 years by default)")
	}
	return f
}

// probeBackupRecords is the last backup and the last verified backup.
func probeBackupRecords(s *State) Finding {
	b := s.Backups
	if b == nil || b.LastBackup == nil {
		return Finding{Status: StatusAttention, Facts: []string{"no backup of this data dir is recorded: take one with `vitalgate backup` and check it with `vitalgate restore --verify-only --record`"}}
	}
	f := Finding{Status: StatusEnforced}
	lb := b.LastBackup
	f.Facts = append(f.Facts, fmt.Sprintf("last backup %s at %s: %s store, %d audit entries, %d bytes, %s", lb.ID, lb.At.UTC().Format(time.RFC3339), lb.Store, lb.Entries, lb.Bytes, lb.Cipher))
	if s.GeneratedAt.Sub(lb.At) > maxBackupAge {
		f.Status = StatusAttention
		f.Facts = append(f.Facts, fmt.Sprintf("the last backup is older than %d days", int(maxBackupAge.Hours()/24)))
	}
	v := b.LastVerified
	switch {
	case v == nil:
		f.Status = StatusAttention
		f.Facts = append(f.Facts, "no backup has been verified by a restore: run `vitalgate restore --verify-only --in FILE --recovery-key KEY --record DIR`")
	case !v.OK:
		f.Status = StatusAttention
		f.Facts = append(f.Facts, fmt.Sprintf("the last verification (%s, backup %s) FAILED: %s", v.At.UTC().Format(time.RFC3339), v.ID, v.Problem))
	default:
		f.Facts = append(f.Facts, fmt.Sprintf("last verified backup %s (taken %s) restored and checked at %s: %d audit entries verify, %d tables match the signed manifest, in %.1f s",
			v.ID, v.BackupAt.UTC().Format(time.RFC3339), v.At.UTC().Format(time.RFC3339), v.Entries, v.Tables, v.Seconds))
		if s.GeneratedAt.Sub(v.At) > maxVerifyAge {
			f.Status = StatusAttention
			f.Facts = append(f.Facts, fmt.Sprintf("the last verification is older than %d days: run a restore drill", int(maxVerifyAge.Hours()/24)))
		}
	}
	return f
}

func probeSBOM(s *State) Finding {
	if len(s.SBOM) == 0 {
		return Finding{Status: StatusAttention, Facts: []string{"this binary carries no module information: no SBOM"}}
	}
	return Finding{Status: StatusEnforced, Facts: []string{fmt.Sprintf("%d components, listed in the SBOM section", len(s.SBOM))}}
}

func probeReleases(s *State) Finding {
	if len(s.Releases) == 0 {
		return Finding{Status: StatusEnforced, Facts: []string{"no release published yet: devices are offered nothing"}}
	}
	f := Finding{Status: StatusEnforced}
	for _, r := range s.Releases {
		f.Facts = append(f.Facts, fmt.Sprintf("%s: %d releases live (signed to their threshold), %d waiting for signatures", r.Model, r.Live, r.Pending))
	}
	return f
}

func probeRollouts(s *State) Finding {
	if len(s.Rollouts) == 0 {
		return Finding{Status: StatusEnforced, Facts: []string{"no rollout yet: no release is offered to any device"}}
	}
	f := Finding{Status: StatusEnforced}
	for _, r := range s.Rollouts {
		kind := ""
		if r.Critical {
			kind = " (critical)"
		}
		f.Facts = append(f.Facts, fmt.Sprintf("%s %s%s: %s; %d of %d devices installed, %d failed", r.Model, r.Version, kind, r.State, r.Installed, r.Targeted, r.Failed))
		if r.State == string(vitalgate.RolloutPaused) {
			f.Status = StatusAttention
		}
	}
	return f
}

// probePosture states the SBOM coverage of the fleet and the open vulnerabilities, known
// exploited first; attention while a known-exploited one is open on a device, a device runs
// a version without an SBOM, devices are enrolled but no advisory has been imported, or this
// server's own SBOM has an open finding.
func probePosture(s *State) Finding {
	p := s.Posture
	if p == nil {
		return Finding{Status: StatusNotRun, Facts: []string{"the store keeps no vulnerability posture"}}
	}
	f := Finding{Status: StatusEnforced, Facts: []string{
		fmt.Sprintf("SBOM coverage: %d of %d models have an SBOM for every version in the field; %d of %d devices run a version with an SBOM",
			p.ModelsWithSBOM, p.Models, p.DevicesWithSBOM, p.Devices),
		fmt.Sprintf("imported: %d OSV advisories, %d KEV catalog entries", p.Advisories, p.KEVEntries),
		fmt.Sprintf("open on devices: %d known exploited (KEV) vulnerabilities; %s on %s", p.OpenKEV, plural(p.OpenFindings, "finding"), plural(p.DevicesAffected, "device")),
		fmt.Sprintf("this server's own SBOM: %s open", plural(p.ServerOpen, "finding")),
	}}
	if p.OpenKEV > 0 || p.DevicesWithSBOM < p.Devices || (p.Devices > 0 && p.Advisories == 0) || p.ServerOpen > 0 {
		f.Status = StatusAttention
	}
	return f
}

func probeAssessment(s *State) Finding {
	a := s.Assessment
	if a == nil {
		return Finding{Status: StatusNotRun, Facts: []string{"no assessment given with this report (run `vitalgate assess --json` and pass it with --assess)"}}
	}
	m := map[string]int{}
	for _, f := range a.Findings {
		m[f.Severity.String()]++
	}
	st := StatusEnforced
	if a.Count(assess.High) > 0 {
		st = StatusAttention
	}
	return Finding{Status: st, Facts: []string{fmt.Sprintf("assessment of %s started %s: findings %s", a.Target, a.Started.UTC().Format(time.RFC3339), counts(m))}}
}

// probeAlertForwarding states, per node, where alerts are forwarded and from which networks
// connections are accepted. Not forwarding, and accepting from any network, are facts, not
// faults: a deployment chooses them.
func probeAlertForwarding(s *State) Finding {
	forward, ok := perNode(s, "alerts forwarded", func(n vitalgate.NodeConfig) string {
		var to []string
		if n.Audit.SyslogAddr != "" {
			to = append(to, "to syslog "+n.Audit.SyslogAddr)
		}
		if n.Detection != nil && n.Detection.Webhook != "" {
			to = append(to, "to the signed webhook at "+n.Detection.Webhook)
		}
		if len(to) == 0 {
			return "nowhere (stored, audited and logged only)"
		}
		return strings.Join(to, " and ")
	})
	if !ok {
		return Finding{Status: StatusUnknown, Facts: forward}
	}
	nets, _ := perNode(s, "connections accepted", func(n vitalgate.NodeConfig) string {
		from := "from any network"
		for _, l := range n.Listeners {
			if l.Name == "https" && l.AllowNetworks != "" {
				from = "only from " + l.AllowNetworks + " (checked before TLS)"
			}
		}
		if len(n.Registry.ModelNetworks) > 0 {
			models := make([]string, 0, len(n.Registry.ModelNetworks))
			for m, list := range n.Registry.ModelNetworks {
				models = append(models, m+" from "+list)
			}
			sort.Strings(models)
			from += "; devices of " + strings.Join(models, ", ") + " only (checked at the handshake)"
		}
		return from
	})
	return Finding{Status: StatusEnforced, Facts: append(forward, nets...)}
}

// probeDetection states the rules every node evaluates, whether it quarantines by itself,
// and the alerts and quarantined devices. Open high-severity alerts need the operator.
func probeDetection(s *State) Finding {
	facts, ok := perNode(s, "detection rules", func(n vitalgate.NodeConfig) string {
		d := n.Detection
		if d == nil {
			return "not recorded (a version without detection served last)"
		}
		file := "the shipped rules"
		if d.RulesFile != "" {
			file = d.RulesFile
		}
		q := "alerts only"
		if d.AutoQuarantine {
			q = "automatic quarantine on high-severity identity, authentication and protocol alerts"
		}
		return fmt.Sprintf("%s, version %d, %d rules in force; %s", file, d.RulesVersion, d.Rules, q)
	})
	if !ok {
		return Finding{Status: StatusUnknown, Facts: facts}
	}
	f := Finding{Status: StatusEnforced, Facts: facts}
	if a := s.Alerts; a != nil {
		f.Facts = append(f.Facts, fmt.Sprintf("alerts: %d open (%d of high severity), %d acknowledged, %d resolved",
			a.ByStatus[string(vitalgate.AlertOpen)], a.OpenHigh, a.ByStatus[string(vitalgate.AlertAcknowledged)], a.ByStatus[string(vitalgate.AlertResolved)]))
		if a.OpenHigh > 0 {
			f.Status = StatusAttention
		}
	}
	if n := s.Devices[string(vitalgate.DeviceQuarantined)]; n > 0 {
		f.Facts = append(f.Facts, fmt.Sprintf("%s quarantined", plural(n, "device")))
	}
	for _, n := range s.Nodes {
		if n.Detection == nil {
			f.Status = StatusAttention
		}
	}
	return f
}
