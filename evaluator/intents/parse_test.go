package intents

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func readFixture(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u
}

func TestFromUnstructured(t *testing.T) {
	cases := map[string]struct {
		file        string
		want        *ClientIntents
		wantNotices []string
	}{
		"v1alpha2 plain, http and kafka calls": {
			file: "v1alpha2.yaml",
			want: &ClientIntents{
				Namespace: "shop", Name: "checkout", APIVersion: "k8s.otterize.com/v1alpha2",
				Client: Workload{Name: "checkout"},
				Targets: []Target{
					{Type: TargetWorkload, Name: "cart", Namespace: "shop", Raw: "cart"},
					{Type: TargetHTTP, Name: "payments", Namespace: "billing", Raw: "payments.billing"},
					{Type: TargetKafka, Name: "kafka", Namespace: "streaming", Raw: "kafka.streaming"},
				},
			},
		},
		"v1alpha3 services by prefix and by kind, kinds kept, database ignored": {
			file: "v1alpha3.yaml",
			want: &ClientIntents{
				Namespace: "shop", Name: "checkout", APIVersion: "k8s.otterize.com/v1alpha3",
				Client: Workload{Name: "checkout", Kind: "Deployment"},
				Targets: []Target{
					{Type: TargetService, Name: "redis", Namespace: "cache", Raw: "svc:redis.cache"},
					{Type: TargetService, Name: "inventory", Namespace: "shop", Raw: "inventory"},
					{Type: TargetKafka, Name: "ledger", Namespace: "shop", Kind: "StatefulSet", Raw: "ledger"},
					{Type: TargetDatabase, Name: "orders-db", Raw: "orders-db"},
				},
			},
			wantNotices: []string{
				`ClientIntents shop/checkout: spec.calls[3] (database "orders-db"): database targets are enforced by Otterize's database integration, not by NetworkPolicies; ignored`,
			},
		},
		"v1beta1 fully qualified name, internet and cloud calls": {
			file: "v1beta1.yaml",
			want: &ClientIntents{
				Namespace: "shop", Name: "checkout", APIVersion: "k8s.otterize.com/v1beta1",
				Client: Workload{Name: "checkout"},
				Targets: []Target{
					{Type: TargetWorkload, Name: "cart", Namespace: "shop", Raw: "cart.shop.svc.cluster.local"},
					{Type: TargetInternet, Raw: "internet", Internet: &Internet{
						Domains: []string{"api.stripe.com"},
						IPs:     []string{"203.0.113.7", "198.51.100.0/24"},
						Ports:   []int32{443},
					}},
					{Type: TargetCloud, Name: "arn:aws:s3:::receipts", Raw: "arn:aws:s3:::receipts"},
					{Type: TargetCloud, Name: "projects/shop/buckets/receipts", Raw: "projects/shop/buckets/receipts"},
					{Type: TargetCloud, Name: "/subscriptions/0000/resourceGroups/shop", Raw: "/subscriptions/0000/resourceGroups/shop"},
				},
			},
			wantNotices: []string{
				`ClientIntents shop/checkout: spec.calls[2] (aws "arn:aws:s3:::receipts"): cloud IAM targets do not produce NetworkPolicies; ignored`,
				`ClientIntents shop/checkout: spec.calls[3] (gcp "projects/shop/buckets/receipts"): cloud IAM targets do not produce NetworkPolicies; ignored`,
				`ClientIntents shop/checkout: spec.calls[4] (azure "/subscriptions/0000/resourceGroups/shop"): cloud IAM targets do not produce NetworkPolicies; ignored`,
			},
		},
		"v2alpha1 kubernetes, http, service and kafka targets": {
			file: "v2alpha1.yaml",
			want: &ClientIntents{
				Namespace: "shop", Name: "checkout", APIVersion: "k8s.otterize.com/v2alpha1",
				Client: Workload{Name: "checkout", Kind: "Deployment"},
				Targets: []Target{
					{Type: TargetWorkload, Name: "cart", Namespace: "shop", Kind: "Deployment", Raw: "cart"},
					{Type: TargetHTTP, Name: "payments", Namespace: "billing", Raw: "payments.billing"},
					{Type: TargetService, Name: "redis", Namespace: "cache", Raw: "redis.cache"},
					{Type: TargetKafka, Name: "kafka", Namespace: "streaming", Raw: "kafka.streaming"},
				},
			},
		},
		"v2beta1 service by kind, sql, cloud and internet targets": {
			file: "v2beta1.yaml",
			want: &ClientIntents{
				Namespace: "shop", Name: "checkout", APIVersion: "k8s.otterize.com/v2beta1",
				Client: Workload{Name: "checkout"},
				Targets: []Target{
					{Type: TargetService, Name: "inventory", Namespace: "warehouse", Raw: "inventory.warehouse"},
					{Type: TargetDatabase, Name: "orders-db", Raw: "orders-db"},
					{Type: TargetCloud, Name: "arn:aws:s3:::receipts", Raw: "arn:aws:s3:::receipts"},
					{Type: TargetCloud, Name: "projects/shop/buckets/receipts", Raw: "projects/shop/buckets/receipts"},
					{Type: TargetCloud, Name: "/subscriptions/0000/resourceGroups/shop", Raw: "/subscriptions/0000/resourceGroups/shop"},
					{Type: TargetInternet, Raw: "internet", Internet: &Internet{IPs: []string{"2001:db8::/64"}}},
				},
			},
			wantNotices: []string{
				`ClientIntents shop/checkout: spec.targets[1] (sql "orders-db"): database targets are enforced by Otterize's database integration, not by NetworkPolicies; ignored`,
				`ClientIntents shop/checkout: spec.targets[2] (aws "arn:aws:s3:::receipts"): cloud IAM targets do not produce NetworkPolicies; ignored`,
				`ClientIntents shop/checkout: spec.targets[3] (gcp "projects/shop/buckets/receipts"): cloud IAM targets do not produce NetworkPolicies; ignored`,
				`ClientIntents shop/checkout: spec.targets[4] (azure "/subscriptions/0000/resourceGroups/shop"): cloud IAM targets do not produce NetworkPolicies; ignored`,
			},
		},
		"shape wins over apiVersion; no namespace reads as default": {
			file: "v2beta1-with-v1-shape.yaml",
			want: &ClientIntents{
				Namespace: "default", Name: "legacy", APIVersion: "k8s.otterize.com/v2beta1",
				Client:  Workload{Name: "batch"},
				Targets: []Target{{Type: TargetWorkload, Name: "cart", Namespace: "shop", Raw: "cart.shop"}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, notices, err := FromUnstructured(readFixture(t, filepath.Join("testdata", "good", tc.file)))
			if err != nil {
				t.Fatalf("FromUnstructured: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("intents (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantNotices, notices); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromUnstructuredErrors(t *testing.T) {
	cases := map[string]struct {
		file string
		want []string // one per field error, in order
	}{
		"missing client name": {
			file: "missing-client-name.yaml",
			want: []string{"spec.workload.name: Required value: the client workload must be named"},
		},
		"missing client": {
			file: "missing-client.yaml",
			want: []string{"spec.service.name: Required value: the client workload must be named"},
		},
		"target without a known kind": {
			file: "target-without-kind.yaml",
			want: []string{"spec.targets[1]: Invalid value: must specify exactly one of kubernetes, service, kafka, sql, aws, gcp, azure, internet; unknown fields: kubernets"},
		},
		"target with two kinds": {
			file: "target-with-two-kinds.yaml",
			want: []string{"spec.targets[0]: Invalid value: must specify exactly one of kubernetes, service, kafka, sql, aws, gcp, azure, internet; found kubernetes, service"},
		},
		"non-string name": {
			file: "non-string-name.yaml",
			want: []string{"spec.targets[0].kubernetes.name: Invalid value: 42: must be a string"},
		},
		"unknown call type": {
			file: "unknown-call-type.yaml",
			want: []string{`spec.calls[0].type: Unsupported value: "grpc": supported values: "http", "kafka", "database", "aws", "gcp", "azure", "internet"`},
		},
		"internet call without addresses": {
			file: "internet-without-addresses.yaml",
			want: []string{
				"spec.calls[0].internet: Required value: must be set when type is internet",
				"spec.calls[1].internet: Required value: must list domains or ips",
			},
		},
		"internet target with bad addresses and ports": {
			file: "internet-bad-address.yaml",
			want: []string{
				`spec.targets[0].internet.ips[0]: Invalid value: "10.0.0.300": must be an IP address or a CIDR`,
				`spec.targets[0].internet.ips[1]: Invalid value: "10.0.0.0/33": must be an IP address or a CIDR`,
				"spec.targets[0].internet.ports[0]: Invalid value: 0: must be a port number between 1 and 65535",
			},
		},
		"v1 and v2 shapes mixed": {
			file: "mixed-shapes.yaml",
			want: []string{"spec: Forbidden: mixes the v1 shape (service, calls) with the v2 shape (workload, targets)"},
		},
		"no spec": {
			file: "no-spec.yaml",
			want: []string{"spec: Required value"},
		},
		"empty name or namespace part": {
			file: "empty-namespace-part.yaml",
			want: []string{
				`spec.calls[0].name: Invalid value: "cart.": must be a name or name.namespace`,
				`spec.calls[1].name: Invalid value: "": must be a name or name.namespace`,
			},
		},
		"every problem of one object": {
			file: "many-problems.yaml",
			want: []string{
				"metadata.name: Required value",
				`spec.workload: Invalid value: "checkout": must be an object`,
				`spec.targets[0].kubernetes.http: Invalid value: "/charge": must be a list`,
				`spec.targets[1]: Invalid value: "cart": must be an object`,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, notices, err := FromUnstructured(readFixture(t, filepath.Join("testdata", "bad", tc.file)))
			if got != nil || notices != nil {
				t.Errorf("got intents %+v and notices %q with an error; want neither", got, notices)
			}
			perr, ok := err.(*Error)
			if !ok {
				t.Fatalf("error = %v (%T), want *Error", err, err)
			}
			var msgs []string
			for _, f := range perr.Fields {
				msgs = append(msgs, f.Error())
			}
			if diff := cmp.Diff(tc.want, msgs); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorNamesObjectAndFields(t *testing.T) {
	_, _, err := FromUnstructured(readFixture(t, filepath.Join("testdata", "bad", "internet-without-addresses.yaml")))
	want := "ClientIntents shop/checkout: spec.calls[0].internet: Required value: must be set when type is internet; " +
		"spec.calls[1].internet: Required value: must list domains or ips"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

// Kubernetes decoders hand unstructured content integers as int64 rather than float64.
func TestFromUnstructuredInt64Ports(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "k8s.otterize.com/v2beta1",
		"kind":       "ClientIntents",
		"metadata":   map[string]any{"name": "c", "namespace": "n"},
		"spec": map[string]any{
			"workload": map[string]any{"name": "c"},
			"targets": []any{map[string]any{"internet": map[string]any{
				"domains": []any{"example.com"}, "ports": []any{int64(443), int64(70000)},
			}}},
		},
	}}
	_, _, err := FromUnstructured(u)
	want := "ClientIntents n/c: spec.targets[0].internet.ports[1]: Invalid value: 70000: must be a port number between 1 and 65535"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	u.Object["spec"].(map[string]any)["targets"].([]any)[0].(map[string]any)["internet"].(map[string]any)["ports"] = []any{int64(443)}
	got, _, err := FromUnstructured(u)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int32{443}, got.Targets[0].Internet.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
}
