package compile

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestPolicyName(t *testing.T) {
	long := strings.Repeat("a", 300)
	cases := map[string]struct {
		prefix, text string
		want         string
	}{
		"object name passes through":              {prefix: allowPrefix, text: "cart", want: "shadowgate-allow-cart"},
		"dotted object name passes":               {prefix: allowPrefix, text: "cart.v2", want: "shadowgate-allow-cart.v2"},
		"annotation name is lowercased":           {prefix: allowPrefix, text: "Cart", want: "shadowgate-allow-cart"},
		"invalid characters become dashes":        {prefix: egressPrefix, text: "team/cart_api", want: "shadowgate-egress-team-cart-api"},
		"labels are trimmed to alphanumeric ends": {prefix: allowPrefix, text: "cart.-v2-.", want: "shadowgate-allow-cart.v2"},
		"long names are cut and end in a hash of the whole": {
			prefix: allowPrefix, text: long,
			want: "shadowgate-allow-" + long[:truncatedNameKeepsLen-len("shadowgate-allow-")] + "-" + shortHash("shadowgate-allow-"+long),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := policyName(tc.prefix, tc.text)
			if got != tc.want {
				t.Errorf("policyName(%q, %q) = %q, want %q", tc.prefix, tc.text, got, tc.want)
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("policyName(%q, %q) = %q: not a DNS-1123 subdomain: %v", tc.prefix, tc.text, got, errs)
			}
		})
	}
}

func TestWithSuffix(t *testing.T) {
	cases := map[string]struct {
		name, suffix, want string
	}{
		"short name":               {name: "shadowgate-allow-cart", suffix: "0123abcd", want: "shadowgate-allow-cart-0123abcd"},
		"long name is cut to fit":  {name: strings.Repeat("a", 250), suffix: "0123abcd", want: strings.Repeat("a", 244) + "-0123abcd"},
		"cut never ends on a dash": {name: strings.Repeat("a", 243) + "-b.cdefghij", suffix: "0123abcd", want: strings.Repeat("a", 243) + "-0123abcd"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := withSuffix(tc.name, tc.suffix)
			if got != tc.want {
				t.Errorf("withSuffix = %q, want %q", got, tc.want)
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("withSuffix = %q: not a DNS-1123 subdomain: %v", got, errs)
			}
		})
	}
}
