package evaluator

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// TestIPIndex checks address classes against the blocks themselves at every boundary
// (a prefix's first and last address and their neighbours), at the ends of both
// families, and at random addresses.
func TestIPIndex(t *testing.T) {
	cases := map[string][]networkingv1.IPBlock{
		"no blocks":                     nil,
		"everything":                    {{CIDR: "0.0.0.0/0"}, {CIDR: "::/0"}},
		"single host":                   {{CIDR: "10.0.0.1/32"}},
		"except at the start of a cidr": {{CIDR: "10.0.0.0/24", Except: []string{"10.0.0.0/28"}}},
		"except at the end of a cidr":   {{CIDR: "10.0.0.0/24", Except: []string{"10.0.0.240/28"}}},
		"nested and overlapping blocks": {
			{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16", "10.1.2.0/24"}},
			{CIDR: "10.1.0.0/16"},
			{CIDR: "10.1.2.3/32"},
		},
		"adjacent blocks": {{CIDR: "10.0.0.0/25"}, {CIDR: "10.0.0.128/25"}},
		"top of both families": {
			{CIDR: "255.255.255.0/24", Except: []string{"255.255.255.255/32"}},
			{CIDR: "ffff::/16", Except: []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"}},
		},
		"host bits in the cidr":           {{CIDR: "10.0.0.77/24"}},
		"IPv4-mapped cidr stays IPv6":     {{CIDR: "::ffff:10.0.0.0/120"}},
		"except outside its cidr ignored": {{CIDR: "10.0.0.0/24", Except: []string{"192.168.0.0/16"}}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			var blocks []ipBlock
			for i := range raw {
				b, ok := parseIPBlock(&raw[i])
				if !ok {
					t.Fatalf("block %d does not parse", i)
				}
				blocks = append(blocks, b)
			}
			x := newIPIndex(blocks)
			probes := []netip.Addr{
				netip.IPv4Unspecified(), netip.MustParseAddr("255.255.255.255"),
				netip.IPv6Unspecified(), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
				netip.MustParseAddr("::ffff:10.0.0.1"),
			}
			for _, b := range blocks {
				for _, p := range append([]netip.Prefix{b.cidr}, b.except...) {
					first, last := p.Masked().Addr(), lastAddr(p)
					probes = append(probes, first, first.Prev(), first.Next(), last, last.Prev(), last.Next())
				}
			}
			for range 200 {
				var a4 [4]byte
				var a16 [16]byte
				for i := range a4 {
					a4[i] = byte(r.IntN(256))
				}
				for i := range a16 {
					a16[i] = byte(r.IntN(256))
				}
				probes = append(probes, netip.AddrFrom4(a4), netip.AddrFrom16(a16))
			}
			for _, ip := range probes {
				c := x.classOf(ip)
				for bi, b := range blocks {
					if got, want := x.contains(c, bi), ip.IsValid() && b.contains(ip); got != want {
						t.Errorf("%v (class %d) in block %d %s: got %v, want %v", ip, c, bi, b.key(), got, want)
					}
				}
			}
		})
	}
}

func TestLastAddr(t *testing.T) {
	cases := map[string]struct{ prefix, want string }{
		"IPv4 /24":           {"10.0.0.0/24", "10.0.0.255"},
		"IPv4 unaligned /28": {"10.0.0.77/28", "10.0.0.79"},
		"IPv4 /32":           {"10.0.0.1/32", "10.0.0.1"},
		"IPv4 /0":            {"0.0.0.0/0", "255.255.255.255"},
		"IPv6 /64":           {"fd00::/64", "fd00::ffff:ffff:ffff:ffff"},
		"IPv6 /0":            {"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		"IPv6 /128":          {"fd00::1/128", "fd00::1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := lastAddr(netip.MustParsePrefix(tc.prefix)); got != netip.MustParseAddr(tc.want) {
				t.Errorf("lastAddr(%s) = %s, want %s", tc.prefix, got, tc.want)
			}
		})
	}
}
