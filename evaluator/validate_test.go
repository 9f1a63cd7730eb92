package evaluator

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
)

func readPolicies(t *testing.T, path string) []*networkingv1.NetworkPolicy {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parsePolicies(t, string(src))
}

func TestValidateGood(t *testing.T) {
	policies := readPolicies(t, "testdata/validate/good.yaml")
	if len(policies) == 0 {
		t.Fatal("no policies in good.yaml")
	}
	if err := Validate(policies); err != nil {
		t.Errorf("Validate(good.yaml) = %v, want nil", err)
	}
}

func TestValidateBad(t *testing.T) {
	err := Validate(readPolicies(t, "testdata/validate/bad.yaml"))
	if err == nil {
		t.Fatal("Validate(bad.yaml) = nil, want errors")
	}
	golden(t, "validate/bad.golden", err.Error()+"\n")
}

func TestValidateErrors(t *testing.T) {
	policies := parsePolicies(t, `
metadata: {namespace: shop, name: a}
spec: {podSelector: {}}
---
metadata: {namespace: shop, name: b}
spec: {podSelector: {}}
---
metadata: {namespace: shop, name: a}
spec: {podSelector: {}}
`)
	cases := map[string]struct {
		policies []*networkingv1.NetworkPolicy
		want     []PolicyError // Err compared by message
		is       error
	}{
		"no policies": {},
		"distinct names": {
			policies: policies[:2],
		},
		"duplicate names are reported at the second occurrence": {
			policies: policies,
			want: []PolicyError{{Input: 2, Policy: PolicyRef{"shop", "a"}, Field: "metadata.name",
				Err: errors.New("duplicate NetworkPolicy: also policies[0]")}},
			is: ErrDuplicatePolicy,
		},
		"nil policy": {
			policies: []*networkingv1.NetworkPolicy{policies[0], nil},
			want:     []PolicyError{{Input: 1, Err: errors.New("nil NetworkPolicy")}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := Validate(tc.policies)
			var got []PolicyError
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var pe *PolicyError
					if !errors.As(e, &pe) {
						t.Fatalf("error %v is not a *PolicyError", e)
					}
					got = append(got, *pe)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b error) bool { return a.Error() == b.Error() })); diff != "" {
				t.Errorf("Validate errors (-want +got):\n%s", diff)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
		})
	}
}
