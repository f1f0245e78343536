package processors

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
)

// localOnly lets tests deliver to httptest servers on 127.0.0.1: the
// default policy refuses loopback, which is the point of it.
var localOnly = DestinationPolicy{AllowPrivate: true}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 7; j >= 0; j-- {
			if i*8+(7-j) >= bits {
				b[i] |= 1 << j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Every blocked range is refused at both its ends, and IPv4 ranges also
// when wrapped in IPv6 (mapped, NAT64, 6to4).
func TestDestinationPolicyRefusesEveryBlockedRange(t *testing.T) {
	var p DestinationPolicy
	for _, b := range blockedRanges {
		for _, ip := range []netip.Addr{b.prefix.Addr(), lastAddr(b.prefix)} {
			forms := []netip.Addr{ip}
			if ip.Is4() {
				v4 := ip.As4()
				forms = append(forms,
					netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}),
					netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}),
					netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: v4[0], 3: v4[1], 4: v4[2], 5: v4[3]}),
				)
			}
			for _, f := range forms {
				t.Run(b.prefix.String()+"/"+f.String(), func(t *testing.T) {
					err := p.Check(f)
					if !errors.Is(err, ErrDestinationRefused) {
						t.Fatalf("Check(%s) = %v, want ErrDestinationRefused (%s)", f, err, b.why)
					}
					if v, c := Classify(0, err); v != Permanent || c != ClassDestinationRefused {
						t.Fatalf("Classify = %v %v, want permanent %s", v, c, ClassDestinationRefused)
					}
				})
			}
		}
	}
}

// An endpoint URL naming a refused address literally is refused at
// registration; a host name is left to the dialer.
func TestDestinationPolicyCheckURL(t *testing.T) {
	allow := DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")}}
	for _, tt := range []struct {
		url    string
		policy DestinationPolicy
		ok     bool
	}{
		{"http://127.0.0.1:8080/hook", DestinationPolicy{}, false},
		{"https://[::1]/hook", DestinationPolicy{}, false},
		{"https://[fe80::1%25eth0]/hook", DestinationPolicy{}, false},
		{"http://169.254.169.254/latest/meta-data/", DestinationPolicy{}, false},
		{"http://[::ffff:0:7f00:1]/", DestinationPolicy{}, false},
		{"http://10.1.2.3/hook", allow, true},
		{"http://10.9.9.9/hook", allow, false},
		{"http://127.0.0.1/hook", DestinationPolicy{AllowPrivate: true}, true},
		{"https://8.8.8.8/hook", DestinationPolicy{}, true},
		{"https://localhost/hook", DestinationPolicy{}, true}, // judged when dialed
		{"https://hooks.example.com/in", DestinationPolicy{}, true},
		{"::not a url", DestinationPolicy{}, true}, // left to validation
	} {
		t.Run(tt.url, func(t *testing.T) {
			err := tt.policy.CheckURL(tt.url)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrDestinationRefused)) {
				t.Fatalf("CheckURL(%s) = %v, want ok %v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestDestinationPolicyTable(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("fd00:1::/32")}
	tests := []struct {
		addr   string
		policy DestinationPolicy
		ok     bool
	}{
		{"127.0.0.1:80", DestinationPolicy{}, false},
		{"127.1.2.3:443", DestinationPolicy{}, false},
		{"[::1]:80", DestinationPolicy{}, false},
		{"10.0.0.1:80", DestinationPolicy{}, false},
		{"172.16.0.1:80", DestinationPolicy{}, false},
		{"172.31.255.255:80", DestinationPolicy{}, false},
		{"192.168.1.1:80", DestinationPolicy{}, false},
		{"169.254.169.254:80", DestinationPolicy{}, false},
		{"100.64.0.1:80", DestinationPolicy{}, false},
		{"100.127.255.254:80", DestinationPolicy{}, false},
		{"224.0.0.1:80", DestinationPolicy{}, false},
		{"239.255.255.250:1900", DestinationPolicy{}, false},
		{"255.255.255.255:80", DestinationPolicy{}, false},
		{"0.0.0.0:80", DestinationPolicy{}, false},
		{"[::]:80", DestinationPolicy{}, false},
		{"[fc00::1]:80", DestinationPolicy{}, false},
		{"[fd12:3456::1]:80", DestinationPolicy{}, false},
		{"[fe80::1]:80", DestinationPolicy{}, false},
		{"[fe80::1%eth0]:80", DestinationPolicy{}, false},
		{"[ff02::1]:80", DestinationPolicy{}, false},
		{"[::ffff:127.0.0.1]:80", DestinationPolicy{}, false},
		{"[::ffff:169.254.169.254]:80", DestinationPolicy{}, false},
		{"[::ffff:10.0.0.1]:80", DestinationPolicy{}, false},
		{"[64:ff9b::a9fe:a9fe]:80", DestinationPolicy{}, false}, // NAT64 of 169.254.169.254
		{"[2002:7f00:1::]:80", DestinationPolicy{}, false},      // 6to4 of 127.0.0.1
		{"[::127.0.0.1]:80", DestinationPolicy{}, false},
		{"[::ffff:0:7f00:1]:80", DestinationPolicy{}, false},    // IPv4-translated 127.0.0.1
		{"[::ffff:0:a9fe:a9fe]:80", DestinationPolicy{}, false}, // IPv4-translated 169.254.169.254
		{"[5f00::1]:80", DestinationPolicy{}, false},            // SRv6 SIDs
		{"[3fff::1]:80", DestinationPolicy{}, false},            // documentation
		{"[3fff:fff:ffff::1]:80", DestinationPolicy{}, false},   // documentation, last /20 address space
		{"[100:0:0:1::1]:80", DestinationPolicy{}, false},       // dummy prefix
		{"[::ffff:0:808:808]:443", DestinationPolicy{}, false},  // IPv4-translated: never a public destination
		{"not-an-address:80", DestinationPolicy{}, false},
		// public addresses pass
		{"8.8.8.8:443", DestinationPolicy{}, true},
		{"1.1.1.1:80", DestinationPolicy{}, true},
		{"100.63.255.255:80", DestinationPolicy{}, true},
		{"100.128.0.0:80", DestinationPolicy{}, true},
		{"172.32.0.1:80", DestinationPolicy{}, true},
		{"[2606:4700:4700::1111]:443", DestinationPolicy{}, true},
		{"[::ffff:8.8.8.8]:443", DestinationPolicy{}, true},
		{"[64:ff9b::808:808]:443", DestinationPolicy{}, true},
		// the allowlist admits what it lists, and only that
		{"10.1.2.3:80", DestinationPolicy{Allow: allow}, true},
		{"[::ffff:10.1.2.3]:80", DestinationPolicy{Allow: allow}, true},
		{"10.1.3.1:80", DestinationPolicy{Allow: allow}, false},
		{"[fd00:1::5]:80", DestinationPolicy{Allow: allow}, true},
		{"[fd00:2::5]:80", DestinationPolicy{Allow: allow}, false},
		{"127.0.0.1:80", DestinationPolicy{Allow: allow}, false},
		{"127.0.0.1:80", DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, true},
		// development mode admits everything
		{"127.0.0.1:80", DestinationPolicy{AllowPrivate: true}, true},
		{"169.254.169.254:80", DestinationPolicy{AllowPrivate: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := tt.policy.Control("tcp", tt.addr, nil)
			if tt.ok && err != nil {
				t.Fatalf("Control(%s) = %v, want allowed", tt.addr, err)
			}
			if !tt.ok && !errors.Is(err, ErrDestinationRefused) {
				t.Fatalf("Control(%s) = %v, want ErrDestinationRefused", tt.addr, err)
			}
		})
	}
}

// The sender refuses a loopback receiver by default, whether the URL names
// the address or a host name that resolves to it, without sending anything;
// the allowlist and development mode let it through.
func TestSenderDestinationPolicy(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent))
	port := rc.URL[strings.LastIndex(rc.URL, ":")+1:]
	secret := newSecret(t)
	tests := []struct {
		name   string
		url    string
		policy DestinationPolicy
		ok     bool
	}{
		{"default refuses 127.0.0.1", "http://127.0.0.1:" + port + "/hook", DestinationPolicy{}, false},
		{"default refuses localhost", "http://localhost:" + port + "/hook", DestinationPolicy{}, false},
		{"allowlist admits 127.0.0.0/8", "http://127.0.0.1:" + port + "/hook", DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, true},
		{"allowlist of another range", "http://127.0.0.1:" + port + "/hook", DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, false},
		{"allow private", "http://localhost:" + port + "/hook", DestinationPolicy{AllowPrivate: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rc.requests())
			s := NewSender(SenderOptions{Destinations: tt.policy})
			defer s.Close()
			ep := endpoints.Endpoint{ID: "ep_ssrf", URL: tt.url, Secrets: []string{secret}, Enabled: true}
			res := s.Send(context.Background(), ep, "evt_1", time.Now(), []byte(`{}`))
			if tt.ok {
				if res.Verdict != Delivered {
					t.Fatalf("Send = %+v, want delivered", res)
				}
				return
			}
			if res.Verdict != Permanent || res.Class != ClassDestinationRefused || !errors.Is(res.Err, ErrDestinationRefused) {
				t.Fatalf("Send = %+v (err %v), want permanent %s", res, res.Err, ClassDestinationRefused)
			}
			if got := len(rc.requests()); got != before {
				t.Fatalf("receiver got %d requests, want none", got-before)
			}
		})
	}
}
