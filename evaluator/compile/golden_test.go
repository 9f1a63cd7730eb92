package compile

import (
	"flag"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// monitoring is the always-allow entry the shop scenarios run with: Prometheus scrapes
// every enforced pod.
var monitoring = AlwaysAllow{
	Name:              "monitoring",
	NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
	PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
}

// TestGolden compiles the manifest fixtures and compares the output, warnings included,
// byte for byte with testdata/*.golden.yaml. Run with -update to rewrite them, then
// review the diff.
func TestGolden(t *testing.T) {
	cases := map[string]struct {
		fixture string
		opts    Options
		golden  string
	}{
		"shop: targeted namespaces, ingress only, external only-if-blocked": {
			fixture: "testdata/shop",
			opts:    Options{AlwaysAllow: []AlwaysAllow{monitoring}},
			golden:  "testdata/shop.golden.yaml",
		},
		"shop: with egress": {
			fixture: "testdata/shop",
			opts:    Options{Egress: true, AlwaysAllow: []AlwaysAllow{monitoring}},
			golden:  "testdata/shop-egress.golden.yaml",
		},
		"shop: external always": {
			fixture: "testdata/shop",
			opts:    Options{External: ExternalAlways},
			golden:  "testdata/shop-external-always.golden.yaml",
		},
		"shop: external off": {
			fixture: "testdata/shop",
			opts:    Options{External: ExternalOff},
			golden:  "testdata/shop-external-off.golden.yaml",
		},
		"shop: only the shop namespace, with egress to the others": {
			fixture: "testdata/shop",
			opts:    Options{Namespaces: []string{"shop"}, Egress: true},
			golden:  "testdata/shop-only.golden.yaml",
		},
		"broken: every warning": {
			fixture: "testdata/broken",
			opts:    Options{Egress: true, External: ExternalAlways},
			golden:  "testdata/broken.golden.yaml",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := cluster.Load(tc.fixture)
			if err != nil {
				t.Fatalf("load %s: %v", tc.fixture, err)
			}
			res, err := Compile(s, tc.opts)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, err := res.Manifests()
			if err != nil {
				t.Fatalf("Manifests: %v", err)
			}
			if *update {
				if err := os.WriteFile(tc.golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(tc.golden)
			if err != nil {
				t.Fatalf("%v (run go test ./evaluator/compile -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.golden, diff)
			}
			checkValid(t, res.Policies)
			assertConnectivity(t, s, tc.opts, res)

			// The golden file is what a user applies: it must load back, through the
			// loader's own API-server validation, into exactly the compiled policies.
			back, err := cluster.Load(tc.golden)
			if err != nil {
				t.Fatalf("load %s back: %v", tc.golden, err)
			}
			if diff := cmp.Diff(res.Policies, back.NetworkPolicies); diff != "" {
				t.Errorf("%s loaded back (-compiled +loaded):\n%s", tc.golden, diff)
			}
		})
	}
}
