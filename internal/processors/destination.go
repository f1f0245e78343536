package processors

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"syscall"
)

// ErrDestinationRefused is the error of a request whose destination address
// the DestinationPolicy refuses. Classify makes it a permanent failure of
// class ClassDestinationRefused: the address will not become acceptable by
// retrying.
var ErrDestinationRefused = errors.New("destination refused")

// blockedRange is an address range no webhook may reach unless allowed.
type blockedRange struct {
	prefix netip.Prefix
	why    string
}

// blockedRanges are the special-purpose ranges of the IANA IPv4 and IPv6
// registries that lead into the sender's own host or network rather than to
// someone's public endpoint, plus multicast and reserved space.
var blockedRanges = func() []blockedRange {
	list := []struct{ cidr, why string }{
		{"0.0.0.0/8", "unspecified (this network)"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "carrier-grade NAT (shared address space)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local (cloud metadata lives here)"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.0.2.0/24", "documentation (TEST-NET-1)"},
		{"192.88.99.0/24", "6to4 relay anycast"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation (TEST-NET-2)"},
		{"203.0.113.0/24", "documentation (TEST-NET-3)"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"}, // includes 255.255.255.255, broadcast
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible IPv6 (deprecated)"},
		{"::ffff:0:0:0/96", "IPv4-translated IPv6 (SIIT)"},
		{"64:ff9b:1::/48", "local-use NAT64"},
		{"100::/64", "discard-only"},
		{"100:0:0:1::/64", "dummy IPv6 prefix"},
		{"2001::/23", "IETF protocol assignments (Teredo, ORCHID, ...)"},
		{"2001:db8::/32", "documentation"},
		{"3fff::/20", "documentation"},
		{"5f00::/16", "SRv6 segment identifiers"},
		{"fc00::/7", "unique local (private)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local (deprecated)"},
		{"ff00::/8", "multicast"},
	}
	out := make([]blockedRange, len(list))
	for i, b := range list {
		out[i] = blockedRange{netip.MustParsePrefix(b.cidr), b.why}
	}
	return out
}()

// Blocked reports whether ip is in a range webhooks must not reach by
// default, and which. IPv4 addresses embedded in IPv6 (IPv4-mapped, NAT64
// 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address they carry,
// so wrapping an address in IPv6 does not get around the check.
func Blocked(ip netip.Addr) (why string, blocked bool) {
	ip = ip.WithZone("")
	if v4, ok := embeddedIPv4(ip); ok {
		if why, blocked := Blocked(v4); blocked {
			return why + " (embedded in IPv6 " + ip.String() + ")", true
		}
		if ip.Is4In6() {
			return "", false
		}
	}
	for _, b := range blockedRanges {
		if b.prefix.Contains(ip) {
			return b.why, true
		}
	}
	return "", false
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address an IPv6 address stands for, if any.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	switch {
	case !ip.Is6():
		return netip.Addr{}, false
	case ip.Is4In6():
		return ip.Unmap(), true
	case nat64Prefix.Contains(ip):
		b := ip.As16()
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		b := ip.As16()
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// DestinationPolicy decides which addresses the sender may connect to. The
// zero value is the safe default: every public address, nothing Blocked.
type DestinationPolicy struct {
	// AllowPrivate turns the check off, for local development against
	// receivers on localhost or a private network.
	AllowPrivate bool
	// Allow lists ranges that are reachable although Blocked (an internal
	// receiver on 10.1.2.0/24, say).
	Allow []netip.Prefix
}

// Check returns nil if ip may be dialed, else an error wrapping
// ErrDestinationRefused that says why.
func (p DestinationPolicy) Check(ip netip.Addr) error {
	if p.AllowPrivate {
		return nil
	}
	ip = ip.WithZone("")
	why, blocked := Blocked(ip)
	if !blocked {
		return nil
	}
	for _, a := range p.Allow {
		if a.Contains(ip) || (ip.Is4In6() && a.Contains(ip.Unmap())) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is %s; allow it with allow_destinations, or allow_private_destinations for local development", ErrDestinationRefused, ip, why)
}

// CheckURL refuses an endpoint URL whose host is a literal IP address that
// Check refuses, with an error wrapping ErrDestinationRefused: no delivery
// to it could succeed, so it is better refused when the endpoint is
// registered than dead-lettered later. A host name is judged when dialed
// (Control), since what it resolves to can change; a URL that does not
// parse is left to endpoint validation.
func (p DestinationPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return nil
	}
	return p.Check(ip)
}

// Control is a net.Dialer Control function. It runs after name resolution,
// on the address about to be connected, for every address tried: a name
// that resolves (or re-resolves, DNS rebinding) to a blocked address is
// refused however it got there.
func (p DestinationPolicy) Control(network, address string, _ syscall.RawConn) error {
	if p.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address we cannot read is not one we can vouch for.
		return fmt.Errorf("%w: cannot parse dialed address %q (%s): %v", ErrDestinationRefused, address, network, err)
	}
	return p.Check(ap.Addr())
}
