package guard

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Networks is an allow-list of networks (CIDR prefixes). The zero value (no prefix)
// allows every address: an allow-list is configured or not at all.
type Networks struct {
	prefixes []netip.Prefix
}

// ParseNetworks reads a comma-separated list of CIDR prefixes ("10.20.0.0/16,
// 2001:db8::/32"); a bare address is a prefix of its full length. An empty list is the
// zero Networks (allows all). Errors name the entry.
func ParseNetworks(list string) (Networks, error) {
	var n Networks
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return Networks{}, fmt.Errorf("%q is not a network in CIDR form (e.g. 10.20.0.0/16)", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Zone() != "" {
			return Networks{}, fmt.Errorf("%q: a network has no zone", f)
		}
		n.prefixes = append(n.prefixes, netip.PrefixFrom(p.Addr().Unmap(), min(p.Bits(), p.Addr().Unmap().BitLen())).Masked())
	}
	return n, nil
}

// Empty reports whether the list holds no network (and so allows every address).
func (n Networks) Empty() bool { return len(n.prefixes) == 0 }

// String returns the list in the form ParseNetworks reads.
func (n Networks) String() string {
	s := make([]string, len(n.prefixes))
	for i, p := range n.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Allows reports whether the address ip (as net.SplitHostPort leaves it; an IPv4-mapped
// IPv6 address counts as IPv4) is in one of the networks; an empty list allows all, and an
// address that does not parse is never allowed by a list.
func (n Networks) Allows(ip string) bool {
	if n.Empty() {
		return true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range n.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// NetworkListener closes, at accept and before any TLS handshake, every connection whose
// source address is not on the allow-list, and returns the others.
type NetworkListener struct {
	net.Listener
	allow    Networks
	rejected func(ip string)
}

// NewNetworkListener wraps ln with the allow-list; rejected, if not nil, is called with the
// address of each connection it closes (logging, metrics). An empty list returns ln itself.
func NewNetworkListener(ln net.Listener, allow Networks, rejected func(ip string)) net.Listener {
	if allow.Empty() {
		return ln
	}
	return &NetworkListener{Listener: ln, allow: allow, rejected: rejected}
}

// Accept returns the next connection from an allowed network.
func (l *NetworkListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		if l.allow.Allows(ip) {
			return c, nil
		}
		_ = c.Close()
		if l.rejected != nil {
			l.rejected(ip)
		}
	}
}

// Set adds the networks of a comma-separated list (flag.Value; a repeated flag adds to the
// list).
func (n *Networks) Set(list string) error {
	more, err := ParseNetworks(list)
	if err != nil {
		return err
	}
	n.prefixes = append(n.prefixes, more.prefixes...)
	return nil
}

// ModelNetworks maps device models to the networks their devices may connect from. As a
// flag.Value it reads MODEL=CIDR[,CIDR...]; a repeated model adds to its list.
type ModelNetworks map[string]Networks

// Set reads MODEL=CIDR[,CIDR...].
func (m ModelNetworks) Set(v string) error {
	model, list, ok := strings.Cut(v, "=")
	model = strings.TrimSpace(model)
	if !ok || model == "" || strings.TrimSpace(list) == "" {
		return fmt.Errorf("%q is not MODEL=CIDR[,CIDR...] (e.g. VM-100=10.20.0.0/16)", v)
	}
	n := m[model]
	if err := n.Set(list); err != nil {
		return err
	}
	m[model] = n
	return nil
}

// String returns the lists as MODEL=LIST, separated by spaces, by model.
func (m ModelNetworks) String() string {
	models := make([]string, 0, len(m))
	for k := range m {
		models = append(models, k)
	}
	slices.Sort(models)
	for i, k := range models {
		models[i] = k + "=" + m[k].String()
	}
	return strings.Join(models, " ")
}
