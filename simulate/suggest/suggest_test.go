package suggest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/suggest"
)

func wl(ns, name, kind string) simulate.Peer {
	return simulate.Peer{Namespace: ns, Workload: name, Kind: kind}
}

var (
	external = simulate.Peer{Kind: simulate.KindExternal, CIDR: "198.51.100.0/24"}
	node     = simulate.Peer{Kind: simulate.KindNode, Node: "node-b"}
	seenAt   = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
)

func edge(src, dst simulate.Peer, proto string, port int32) simulate.Edge {
	return simulate.Edge{Source: src, Destination: dst, Protocol: proto, Port: port, Count: 2,
		FirstSeen: seenAt, LastSeen: seenAt.Add(time.Hour), Status: simulate.StatusWouldDrop, Reason: "no ClientIntents cover this call"}
}

// loadIntents reads the ClientIntents documents of testdata/existing/<name>.
func loadIntents(t *testing.T, name string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "existing", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m != nil {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
	return out
}

// summary is what a case checks: each object's identity and every entry of its target
// list, and each note.
type summary struct {
	Objects []objectSummary
	Notes   []string
}

type objectSummary struct {
	Object, APIVersion, Extends, File string
	Client                            string
	Entries                           []string
	Added                             []string
}

func summarize(t *testing.T, r *suggest.Result) summary {
	t.Helper()
	var s summary
	for _, in := range r.Intents {
		o := objectSummary{Object: in.Key(), APIVersion: in.APIVersion, Extends: in.Extends, File: in.File, Client: in.Client.Name + "/" + in.Client.Kind}
		for _, k := range []string{"targets", "calls"} {
			l, _, _ := unstructured.NestedSlice(in.Object.Object, "spec", k)
			for _, e := range l {
				b, err := json.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				o.Entries = append(o.Entries, string(b))
			}
		}
		for _, a := range in.Added {
			o.Added = append(o.Added, a.Target)
		}
		s.Objects = append(s.Objects, o)
	}
	for _, n := range r.Notes {
		s.Notes = append(s.Notes, string(n.Kind)+": "+n.Edge.Source.String()+" -> "+n.Edge.Destination.String())
	}
	return s
}

func TestSuggest(t *testing.T) {
	shop := func(n string) simulate.Peer { return wl("shop", n, "Deployment") }
	cases := map[string]struct {
		edges    []simulate.Edge
		existing string // testdata/existing file; "" for no cluster
		noMerge  bool
		opts     suggest.Options
		want     summary
	}{
		"a client without intents gets a new object named after it": {
			edges:    []simulate.Edge{edge(shop("web"), shop("api"), "TCP", 8080), edge(shop("web"), wl("data", "db", "StatefulSet"), "TCP", 5432)},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{{
				Object: "shop/web", APIVersion: "k8s.otterize.com/v2beta1", File: "shop.web.yaml", Client: "web/Deployment",
				Entries: []string{`{"kubernetes":{"kind":"Deployment","name":"api"}}`, `{"kubernetes":{"kind":"StatefulSet","name":"db.data"}}`},
				Added:   []string{"api", "db.data"},
			}}},
		},
		"several ports to one server make one target": {
			edges:    []simulate.Edge{edge(shop("web"), shop("api"), "TCP", 8080), edge(shop("web"), shop("api"), "TCP", 9090)},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{{
				Object: "shop/web", APIVersion: "k8s.otterize.com/v2beta1", File: "shop.web.yaml", Client: "web/Deployment",
				Entries: []string{`{"kubernetes":{"kind":"Deployment","name":"api"}}`}, Added: []string{"api"},
			}}},
		},
		"v1alpha3 new objects use calls": {
			edges:    []simulate.Edge{edge(shop("web"), wl("data", "db", "StatefulSet"), "TCP", 5432)},
			existing: "good.yaml",
			opts:     suggest.Options{APIVersion: "v1alpha3"},
			want: summary{Objects: []objectSummary{{
				Object: "shop/web", APIVersion: "k8s.otterize.com/v1alpha3", File: "shop.web.yaml", Client: "web/Deployment",
				Entries: []string{`{"kind":"StatefulSet","name":"db.data"}`}, Added: []string{"db.data"},
			}}},
		},
		"an existing object is extended in its own version, its targets kept verbatim": {
			edges:    []simulate.Edge{edge(shop("checkout"), wl("payments", "ledger", "Deployment"), "TCP", 8080)},
			existing: "good.yaml",
			opts:     suggest.Options{APIVersion: "v1alpha3"},
			want: summary{Objects: []objectSummary{{
				Object: "shop/checkout", APIVersion: "k8s.otterize.com/v2beta1", Extends: "shop/checkout", File: "shop.checkout.yaml", Client: "checkout/Deployment",
				Entries: []string{
					`{"kubernetes":{"http":[{"methods":["POST"],"path":"/v1/charges"}],"kind":"Deployment","name":"payment.payments"}}`,
					`{"service":{"name":"cart"}}`,
					`{"kubernetes":{"kind":"Deployment","name":"ledger.payments"}}`,
				},
				Added: []string{"ledger.payments"},
			}}},
		},
		"a Service target does not make a workload target redundant": {
			// cart is declared as a Service: only its Service ports are admitted.
			edges:    []simulate.Edge{edge(shop("checkout"), shop("cart"), "TCP", 9090)},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{{
				Object: "shop/checkout", APIVersion: "k8s.otterize.com/v2beta1", Extends: "shop/checkout", File: "shop.checkout.yaml", Client: "checkout/Deployment",
				Entries: []string{
					`{"kubernetes":{"http":[{"methods":["POST"],"path":"/v1/charges"}],"kind":"Deployment","name":"payment.payments"}}`,
					`{"service":{"name":"cart"}}`,
					`{"kubernetes":{"kind":"Deployment","name":"cart"}}`,
				},
				Added: []string{"cart"},
			}}},
		},
		"a v1alpha2 object gets calls without a kind, which it cannot say": {
			edges:    []simulate.Edge{edge(wl("payments", "payment", "Deployment"), wl("kafka", "kafka", "StatefulSet"), "TCP", 9092)},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{{
				Object: "payments/payment", APIVersion: "k8s.otterize.com/v1alpha2", Extends: "payments/payment", File: "payments.payment.yaml", Client: "payment/",
				Entries: []string{`{"name":"ledger"}`, `{"name":"kafka.kafka"}`}, Added: []string{"kafka.kafka"},
			}}},
		},
		"server-owned metadata is dropped from an object read back from a cluster": {
			edges:    []simulate.Edge{edge(wl("payments", "ledger", "Deployment"), wl("data", "postgres", "StatefulSet"), "TCP", 5432)},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{{
				Object: "payments/ledger-intents", APIVersion: "k8s.otterize.com/v2beta1", Extends: "payments/ledger-intents", File: "payments.ledger.yaml", Client: "ledger/Deployment",
				Entries: []string{`{"internet":{"ips":["203.0.113.0/24"]}}`, `{"kubernetes":{"kind":"StatefulSet","name":"postgres.data"}}`}, Added: []string{"postgres.data"},
			}}},
		},
		"a target in the client's second object is not repeated": {
			edges:    []simulate.Edge{edge(shop("frontend"), shop("search"), "TCP", 8080), edge(shop("frontend"), shop("reviews"), "TCP", 8080)},
			existing: "good.yaml",
			want: summary{
				Objects: []objectSummary{{
					Object: "shop/frontend", APIVersion: "k8s.otterize.com/v2beta1", Extends: "shop/frontend", File: "shop.frontend.yaml", Client: "frontend/Deployment",
					Entries: []string{`{"kubernetes":{"name":"catalog"}}`, `{"kubernetes":{"kind":"Deployment","name":"reviews"}}`}, Added: []string{"reviews"},
				}},
				Notes: []string{"already-declared: shop/frontend -> shop/search"},
			},
		},
		"the client's name held by another client's object": {
			edges:    []simulate.Edge{edge(wl("shop", "cart", "StatefulSet"), wl("data", "redis", "StatefulSet"), "TCP", 6379)},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{{
				Object: "shop/cart-statefulset", APIVersion: "k8s.otterize.com/v2beta1", File: "shop.cart.yaml", Client: "cart/StatefulSet",
				Entries: []string{`{"kubernetes":{"kind":"StatefulSet","name":"redis.data"}}`}, Added: []string{"redis.data"},
			}}},
		},
		"one kind-less object stands for two workloads of one name": {
			edges: []simulate.Edge{
				edge(wl("jobs", "report", "CronJob"), wl("data", "postgres", "StatefulSet"), "TCP", 5432),
				edge(wl("jobs", "report", "Deployment"), wl("data", "redis", "StatefulSet"), "TCP", 6379),
			},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{{
				Object: "jobs/report", APIVersion: "k8s.otterize.com/v1alpha3", Extends: "jobs/report", File: "jobs.report.yaml", Client: "report/",
				Entries: []string{`{"kind":"StatefulSet","name":"postgres.data"}`, `{"kind":"StatefulSet","name":"redis.data"}`}, Added: []string{"redis.data"},
			}}, Notes: []string{"already-declared: jobs/report -> data/postgres"}},
		},
		"callers from outside and from nodes, egress to nodes: notes, no intents": {
			edges: []simulate.Edge{
				edge(external, shop("frontend"), "TCP", 443),
				edge(node, shop("frontend"), "TCP", 8080),
				edge(shop("frontend"), node, "TCP", 10250),
			},
			existing: "good.yaml",
			want: summary{Notes: []string{
				"external-source: external 198.51.100.0/24 -> shop/frontend",
				"node-source: node node-b -> shop/frontend",
				"node-destination: shop/frontend -> node node-b",
			}},
		},
		"egress to the internet: TCP ports apart, other protocols on any port": {
			edges: []simulate.Edge{
				edge(shop("web"), simulate.Peer{Kind: simulate.KindExternal, CIDR: "203.0.113.0/24"}, "TCP", 443),
				edge(shop("web"), simulate.Peer{Kind: simulate.KindExternal, CIDR: "192.0.2.0/24"}, "TCP", 443),
				edge(shop("web"), simulate.Peer{Kind: simulate.KindExternal, CIDR: "192.0.2.0/24"}, "UDP", 123),
			},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{{
				Object: "shop/web", APIVersion: "k8s.otterize.com/v2beta1", File: "shop.web.yaml", Client: "web/Deployment",
				Entries: []string{`{"internet":{"ips":["192.0.2.0/24"]}}`, `{"internet":{"ips":["192.0.2.0/24","203.0.113.0/24"],"ports":[443]}}`},
				Added:   []string{"internet 192.0.2.0/24", "internet 192.0.2.0/24,203.0.113.0/24 port 443"},
			}}},
		},
		"egress to an outside address the report does not name": {
			edges:    []simulate.Edge{edge(shop("web"), simulate.Peer{Kind: simulate.KindExternal}, "TCP", 443)},
			existing: "good.yaml",
			want:     summary{Notes: []string{"no-address: shop/web -> external "}},
		},
		"same-named clients, unknown cluster": {
			edges: []simulate.Edge{
				edge(wl("shop", "web", "Deployment"), shop("api"), "TCP", 8080),
				edge(wl("shop", "web", "StatefulSet"), shop("api"), "TCP", 8080),
			},
			noMerge: true,
			want: summary{Objects: []objectSummary{
				{Object: "shop/web-suggested", APIVersion: "k8s.otterize.com/v2beta1", File: "shop.web-suggested.yaml", Client: "web/Deployment", Entries: []string{`{"kubernetes":{"kind":"Deployment","name":"api"}}`}, Added: []string{"api"}},
				{Object: "shop/web-statefulset-suggested", APIVersion: "k8s.otterize.com/v2beta1", File: "shop.web-statefulset-suggested.yaml", Client: "web/StatefulSet", Entries: []string{`{"kubernetes":{"kind":"Deployment","name":"api"}}`}, Added: []string{"api"}},
			}},
		},
		"an internet target already declared": {
			edges:    []simulate.Edge{edge(wl("payments", "ledger", "Deployment"), simulate.Peer{Kind: simulate.KindExternal, CIDR: "203.0.113.0/24"}, "TCP", 443)},
			existing: "good.yaml",
			want:     summary{Notes: []string{"already-declared: payments/ledger -> external 203.0.113.0/24"}},
		},
		"without the cluster's intents, new objects only": {
			edges:   []simulate.Edge{edge(shop("checkout"), wl("payments", "ledger", "Deployment"), "TCP", 8080)},
			noMerge: true,
			want: summary{Objects: []objectSummary{{
				Object: "shop/checkout-suggested", APIVersion: "k8s.otterize.com/v2beta1", File: "shop.checkout.yaml", Client: "checkout/Deployment",
				Entries: []string{`{"kubernetes":{"kind":"Deployment","name":"ledger.payments"}}`}, Added: []string{"ledger.payments"},
			}}},
		},
		"identity names become valid object names": {
			edges:    []simulate.Edge{edge(wl("shop", "Web_V2", ""), shop("api"), "TCP", 8080)},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{{
				Object: "shop/web-v2", APIVersion: "k8s.otterize.com/v2beta1", File: "shop.Web_V2.yaml", Client: "Web_V2/",
				Entries: []string{`{"kubernetes":{"kind":"Deployment","name":"api"}}`}, Added: []string{"api"},
			}}},
		},
		"sorted by namespace and client, whatever the report's order": {
			edges: []simulate.Edge{
				edge(wl("zeta", "b", "Deployment"), wl("zeta", "a", "Deployment"), "TCP", 80),
				edge(wl("alpha", "b", "Deployment"), wl("zeta", "a", "Deployment"), "TCP", 80),
				edge(wl("alpha", "a", "Deployment"), wl("zeta", "a", "Deployment"), "TCP", 80),
			},
			existing: "good.yaml",
			want: summary{Objects: []objectSummary{
				{Object: "alpha/a", APIVersion: "k8s.otterize.com/v2beta1", File: "alpha.a.yaml", Client: "a/Deployment", Entries: []string{`{"kubernetes":{"kind":"Deployment","name":"a.zeta"}}`}, Added: []string{"a.zeta"}},
				{Object: "alpha/b", APIVersion: "k8s.otterize.com/v2beta1", File: "alpha.b.yaml", Client: "b/Deployment", Entries: []string{`{"kubernetes":{"kind":"Deployment","name":"a.zeta"}}`}, Added: []string{"a.zeta"}},
				{Object: "zeta/b", APIVersion: "k8s.otterize.com/v2beta1", File: "zeta.b.yaml", Client: "b/Deployment", Entries: []string{`{"kubernetes":{"kind":"Deployment","name":"a"}}`}, Added: []string{"a"}},
			}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var c *suggest.Cluster
			if !tc.noMerge {
				c = &suggest.Cluster{Intents: loadIntents(t, tc.existing)}
			}
			res, err := suggest.Suggest(&simulate.Report{Uncovered: tc.edges}, c, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summarize(t, res)); diff != "" {
				t.Errorf("suggestions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSuggestErrors(t *testing.T) {
	cases := map[string]struct {
		rep     *simulate.Report
		cluster *suggest.Cluster
		opts    suggest.Options
		want    []string // substrings
	}{
		"nil report": {want: []string{"nil report"}},
		"unknown api version": {
			rep: &simulate.Report{}, opts: suggest.Options{APIVersion: "v9"},
			want: []string{`"v9"`, "v1alpha3, v1beta1, v2alpha1, v2beta1"},
		},
		"broken existing ClientIntents name each object and field": {
			rep: &simulate.Report{}, cluster: &suggest.Cluster{Intents: loadIntents(t, "bad.yaml")},
			want: []string{"ClientIntents shop/nameless: spec.workload.name", "ClientIntents shop/two-kinds: spec.targets[0]"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := suggest.Suggest(tc.rep, tc.cluster, tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// The YAML of a suggestion is a manifest that reads back as the same object, and the
// object applies to its namespace whatever the kubectl context.
func TestYAMLReadsBack(t *testing.T) {
	res, err := suggest.Suggest(&simulate.Report{Uncovered: []simulate.Edge{
		edge(wl("payments", "ledger", "Deployment"), wl("data", "postgres", "StatefulSet"), "TCP", 5432),
		edge(wl("default", "legacy", "Deployment"), wl("data", "postgres", "StatefulSet"), "TCP", 5432),
	}}, &suggest.Cluster{Intents: loadIntents(t, "good.yaml")}, suggest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range res.Intents {
		y, err := in.YAML()
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := yaml.Unmarshal(y, &back); err != nil {
			t.Fatalf("%s: %v\n%s", in.Key(), err, y)
		}
		if diff := cmp.Diff(in.Object.Object, back); diff != "" {
			t.Errorf("%s does not read back (-object +yaml):\n%s", in.Key(), diff)
		}
		if ns, _, _ := unstructured.NestedString(back, "metadata", "namespace"); ns != in.Namespace {
			t.Errorf("%s: metadata.namespace = %q", in.Key(), ns)
		}
		for _, f := range []string{"uid", "resourceVersion", "managedFields", "creationTimestamp", "finalizers"} {
			if _, ok, _ := unstructured.NestedFieldNoCopy(back, "metadata", f); ok {
				t.Errorf("%s: metadata.%s kept", in.Key(), f)
			}
		}
		if _, ok, _ := unstructured.NestedFieldNoCopy(back, "status"); ok {
			t.Errorf("%s: status kept", in.Key())
		}
	}
}

func TestNotesGolden(t *testing.T) {
	res, err := suggest.Suggest(&simulate.Report{Uncovered: []simulate.Edge{
		edge(external, wl("shop", "frontend", "Deployment"), "TCP", 443),
		edge(simulate.Peer{Kind: simulate.KindExternal, CIDR: "192.0.2.0/24"}, wl("shop", "frontend", "Deployment"), "TCP", 443),
		edge(node, wl("shop", "frontend", "Deployment"), "TCP", 8080),
		edge(wl("shop", "frontend", "Deployment"), node, "TCP", 10250),
		edge(wl("shop", "frontend", "Deployment"), simulate.Peer{Kind: simulate.KindExternal}, "UDP", 123),
		edge(wl("shop", "frontend", "Deployment"), wl("shop", "search", "Deployment"), "TCP", 8080),
		edge(wl("shop", "web", "Deployment"), wl("shop", "api", "Deployment"), "TCP", 8080),
	}}, nil, suggest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "notes.golden", stream(t, res.WriteNotes))

	res, err = suggest.Suggest(&simulate.Report{}, nil, suggest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := stream(t, res.WriteNotes); len(got) != 0 {
		t.Errorf("nothing to suggest, yet notes:\n%s", got)
	}
}

func TestWriteDir(t *testing.T) {
	res, err := suggest.Suggest(&simulate.Report{Uncovered: []simulate.Edge{
		edge(wl("shop", "web", "Deployment"), wl("shop", "api", "Deployment"), "TCP", 8080),
		edge(wl("shop", "web", "StatefulSet"), wl("shop", "api", "Deployment"), "TCP", 8080),
	}}, &suggest.Cluster{}, suggest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := res.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	// Two workloads named web: the files take the object names.
	want := []string{"shop.web-statefulset.yaml", "shop.web.yaml"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	var stream strings.Builder
	if err := res.WriteStream(&stream); err != nil {
		t.Fatal(err)
	}
	for _, in := range res.Intents {
		b, err := os.ReadFile(filepath.Join(dir, in.File))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stream.String(), "---\n"+string(b)) {
			t.Errorf("%s is not the stream's document:\n%s", in.File, b)
		}
	}
	if err := res.WriteDir(filepath.Join(dir, "shop.web.yaml")); err == nil {
		t.Error("writing under a file: no error")
	}
}
