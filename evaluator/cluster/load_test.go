package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestLoadGood(t *testing.T) {
	s, err := Load(filepath.Join("testdata", "good"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checkGolden(t, filepath.Join("testdata", "good.golden.json"), summary(s))
}

// errorLines splits a Load error into its ObjectErrors' messages.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not a joined error", err)
	}
	var out []string
	for _, e := range joined.Unwrap() {
		var oe *ObjectError
		if !errors.As(e, &oe) {
			t.Errorf("%v (%T) is not an *ObjectError", e, e)
		}
		out = append(out, e.Error())
	}
	return out
}

func TestLoadBad(t *testing.T) {
	cases := map[string][]string{
		"yaml-syntax.yaml": {
			`testdata/bad/yaml-syntax.yaml: document 2 (line 10): invalid YAML: did not find expected ',' or '}'`,
		},
		"duplicate-key.yaml": {
			`testdata/bad/duplicate-key.yaml: document 1 (line 5): invalid YAML: key "name" already set in map`,
		},
		"missing-kind.yaml": {
			`testdata/bad/missing-kind.yaml: document 1 (line 1): nameless-kind: kind: Required value`,
			`testdata/bad/missing-kind.yaml: document 2 (line 5): Pod no-version: apiVersion: Required value`,
		},
		"duplicate-object.yaml": {
			`testdata/bad/duplicate-object.yaml: document 2 (line 10): Service dup/cart: duplicate object: first defined in testdata/bad/duplicate-object.yaml: document 1 (line 1)`,
		},
		"type-error.yaml": {
			`testdata/bad/type-error.yaml: document 1 (line 20): Deployment shop/cart: spec.template.spec.containers[1].ports[0].containerPort: Invalid value: cannot decode string into int32`,
		},
		"unknown-field.yaml": {
			`testdata/bad/unknown-field.yaml: document 1 (line 7): NetworkPolicy shop/typo: unknown field "spec.podSelecor"`,
		},
		"np-peers.yaml": {
			`testdata/bad/np-peers.yaml: document 1 (line 10): NetworkPolicy shop/peers: spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer`,
			`testdata/bad/np-peers.yaml: document 1 (line 12): NetworkPolicy shop/peers: spec.ingress[0].from[1]: Required value: must specify a peer`,
		},
		"np-cidr.yaml": {
			`testdata/bad/np-cidr.yaml: document 1 (line 11): NetworkPolicy shop/cidrs: spec.egress[0].to[0].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
			"testdata/bad/np-cidr.yaml: document 1 (line 14): NetworkPolicy shop/cidrs: spec.egress[0].to[1].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`",
			"testdata/bad/np-cidr.yaml: document 1 (line 14): NetworkPolicy shop/cidrs: spec.egress[0].to[1].ipBlock.except[1]: Invalid value: \"10.0.0.0/16\": must be a strict subset of `cidr`",
			`testdata/bad/np-cidr.yaml: document 1 (line 14): NetworkPolicy shop/cidrs: spec.egress[0].to[1].ipBlock.except[2]: Invalid value: "010.0.1.0/24": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
			`testdata/bad/np-cidr.yaml: document 1 (line 16): NetworkPolicy shop/cidrs: spec.egress[0].to[2].ipBlock.cidr: Required value`,
		},
		"np-ports.yaml": {
			"testdata/bad/np-ports.yaml: document 1 (line 10): NetworkPolicy shop/ports: spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
			"testdata/bad/np-ports.yaml: document 1 (line 11): NetworkPolicy shop/ports: spec.ingress[0].ports[1].endPort: Invalid value: 80: must be greater than or equal to `port`",
			`testdata/bad/np-ports.yaml: document 1 (line 12): NetworkPolicy shop/ports: spec.ingress[0].ports[2].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"`,
			`testdata/bad/np-ports.yaml: document 1 (line 13): NetworkPolicy shop/ports: spec.ingress[0].ports[3].port: Invalid value: 70000: must be between 1 and 65535, inclusive`,
			`testdata/bad/np-ports.yaml: document 1 (line 14): NetworkPolicy shop/ports: spec.ingress[0].ports[4].port: Invalid value: "8080": must contain at least one letter (a-z)`,
			"testdata/bad/np-ports.yaml: document 1 (line 15): NetworkPolicy shop/ports: spec.ingress[0].ports[5].endPort: Invalid value: 100: may not be specified when `port` is not specified",
		},
		"np-selectors.yaml": {
			`testdata/bad/np-selectors.yaml: document 1 (line 9): NetworkPolicy shop/selectors: spec.podSelector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator`,
			"testdata/bad/np-selectors.yaml: document 1 (line 14): NetworkPolicy shop/selectors: spec.egress[0].to[0].namespaceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
			"testdata/bad/np-selectors.yaml: document 1 (line 15): NetworkPolicy shop/selectors: spec.egress[0].to[0].namespaceSelector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
			`testdata/bad/np-selectors.yaml: document 1 (line 17): NetworkPolicy shop/selectors: spec.egress[0].to[0].podSelector.matchLabels: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		},
		"np-policy-types.yaml": {
			`testdata/bad/np-policy-types.yaml: document 1 (line 8): NetworkPolicy shop/types: spec.policyTypes[1]: Unsupported value: "Both": supported values: "Ingress", "Egress"`,
		},
		"intents.yaml": {
			`testdata/bad/intents.yaml: document 1 (line 13): ClientIntents shop/checkout: spec.targets[0]: Invalid value: must specify exactly one of kubernetes, service, kafka, sql, aws, gcp, azure, internet; found kubernetes, service`,
			`testdata/bad/intents.yaml: document 1 (line 16): ClientIntents shop/checkout: spec.targets[1].internet.ips[0]: Invalid value: "not-an-ip": must be an IP address or a CIDR`,
		},
		"not-an-object.yaml": {
			`testdata/bad/not-an-object.yaml: document 1 (line 1): a document must be a Kubernetes object, not a list`,
		},
		"separator.yaml": {
			`testdata/bad/separator.yaml: document 2 (line 5): invalid document separator "--- apiVersion: v1": only a comment may follow "---"`,
		},
		"syntax.json": {
			`testdata/bad/syntax.json: document 1 (line 4): invalid JSON: invalid character '}' looking for beginning of object key string`,
		},
		"pod-ips.yaml": {
			`testdata/bad/pod-ips.yaml: document 1 (line 9): Pod shop/ips: status.podIP: Invalid value: "10.0.0.256": must be a valid IP address`,
			`testdata/bad/pod-ips.yaml: document 1 (line 12): Pod shop/ips: status.podIPs[1].ip: Invalid value: "fd00::zz": must be a valid IP address`,
		},
		"selector-mismatch.yaml": {
			"testdata/bad/selector-mismatch.yaml: document 1 (line 11): Deployment shop/web: spec.template.metadata.labels: Invalid value: {\"app\":\"website\"}: `selector` does not match template `labels`",
		},
		"list-items.yaml": {
			`testdata/bad/list-items.yaml: document 1 (line 4): Pod a: apiVersion: Required value`,
			`testdata/bad/list-items.yaml: document 1 (line 6): items[1]: a list item must be a Kubernetes object, not a number`,
			`testdata/bad/list-items.yaml: document 1 (line 9): Pod: metadata.name: Required value`,
		},
	}
	for file, want := range cases {
		t.Run(file, func(t *testing.T) {
			s, err := Load(filepath.Join("testdata", "bad", file))
			if s != nil {
				t.Errorf("Load returned a snapshot with an error")
			}
			if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}

	// Every bad fixture has a case, so none goes untested.
	entries, err := os.ReadDir(filepath.Join("testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := cases[e.Name()]; !ok {
			t.Errorf("testdata/bad/%s has no test case", e.Name())
		}
	}
}

// Loading everything at once reports every problem of every file, sorted, and
// nothing else: no snapshot is half-built from the good files.
func TestLoadCollectsAllErrorsSorted(t *testing.T) {
	goodAndBad := []string{filepath.Join("testdata", "good"), filepath.Join("testdata", "bad")}
	s, err := Load(goodAndBad...)
	if s != nil {
		t.Fatal("Load returned a snapshot with errors")
	}
	var want []string
	entries, _ := os.ReadDir(filepath.Join("testdata", "bad"))
	for _, e := range entries {
		_, err := Load(filepath.Join("testdata", "bad", e.Name()))
		want = append(want, errorLines(t, err)...)
	}
	got := errorLines(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestLoadObjectsSourcesAndDefaults(t *testing.T) {
	o, err := LoadObjects(filepath.Join("testdata", "good"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		ref  ObjectRef
		want Source
	}{
		"document after an empty one": {
			ref:  ObjectRef{Kind: "Namespace", Name: "billing"},
			want: Source{File: "testdata/good/namespaces.yaml", Document: 2, Line: 13},
		},
		"item of a nested list": {
			ref:  ObjectRef{Kind: "Service", Namespace: "shop", Name: "cart"},
			want: Source{File: "testdata/good/shop.yaml", Document: 1, Line: 67},
		},
		"second value of a JSON stream": {
			ref:  ObjectRef{Kind: "Pod", Namespace: "billing", Name: "ledger-6f4c8b7d5-q9w8e"},
			want: Source{File: "testdata/good/pods.json", Document: 2, Line: 27},
		},
		"object without namespace placed in default": {
			ref:  ObjectRef{Kind: "Deployment", Namespace: "default", Name: "web.v2"},
			want: Source{File: "testdata/good/apps/nested/web.yaml", Document: 1, Line: 2},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, o.Sources[tc.ref]); diff != "" {
				t.Errorf("source of %s (-want +got):\n%s", tc.ref, diff)
			}
		})
	}
	var namespaces []string
	for _, d := range o.Deployments {
		namespaces = append(namespaces, d.Namespace+"/"+d.Name)
	}
	if diff := cmp.Diff([]string{"default/web.v2", "shop/cart"}, namespaces); diff != "" {
		t.Errorf("deployments (-want +got):\n%s", diff)
	}
	wantWarning := `testdata/good/apps/nested/web.yaml: 1 namespaced object(s) without metadata.namespace placed in namespace "default", as kubectl would`
	if !slices.Contains(o.Warnings, wantWarning) {
		t.Errorf("warnings %q lack %q", o.Warnings, wantWarning)
	}
}

var cmpSortStrings = cmp.Transformer("sorted", func(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
})

func TestLoadPaths(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ns := func(name string) string { return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n" }
	a := write("a.YAML", ns("a"))
	write("sub/b.yml", ns("b"))
	write("notes.txt", ns("not-read"))
	explicit := write("explicit.txt", ns("explicit"))

	cases := map[string]struct {
		paths   []string
		want    []string
		wantErr string
	}{
		"directory: manifest extensions in any case, other files skipped": {
			paths: []string{dir},
			want:  []string{"a", "b"},
		},
		"a file named explicitly is read whatever its extension": {
			paths: []string{explicit},
			want:  []string{"explicit"},
		},
		"a file reached twice is read once": {
			paths: []string{a, dir},
			want:  []string{"a", "b"},
		},
		"missing path": {
			paths:   []string{filepath.Join(dir, "absent.yaml")},
			wantErr: filepath.Join(dir, "absent.yaml") + ": stat " + filepath.Join(dir, "absent.yaml") + ": no such file or directory",
		},
		"no paths": {
			wantErr: "no manifest paths given",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Load(tc.paths...)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for name, n := range s.Namespaces {
				if !n.Synthesized {
					got = append(got, name)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpSortStrings); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{
		"cluster/ns.yaml":     {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n")},
		"cluster/bad.yaml":    {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [x\n")},
		"cluster/.git/x.yaml": {Data: []byte("not: [yaml")},
		"other/pod.yaml":      {Data: []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: shop\n")},
	}
	_, err := LoadFS(fsys, ".")
	if diff := cmp.Diff([]string{"cluster/bad.yaml: document 1 (line 4): invalid YAML: did not find expected ',' or ']'"}, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	delete(fsys, "cluster/bad.yaml")
	s, err := LoadFS(fsys, "cluster", "other/pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Pod("shop", "p"); p == nil || p.Origin != "other/pod.yaml: document 1 (line 1)" {
		t.Errorf("pod shop/p = %+v, want it read from other/pod.yaml", p)
	}
	if ns := s.Namespaces["shop"]; ns == nil || ns.Synthesized {
		t.Errorf("namespace shop = %+v, want it read from cluster/ns.yaml", ns)
	}
}

// Problems in a document do not hide the problems of the documents after it.
func TestLoadKeepsGoingAfterABadDocument(t *testing.T) {
	dir := t.TempDir()
	content := strings.Join([]string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nstatus: {podIP: nope}",
		"this: [is broken",
		"apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\nspec: {clusterIP: 300.1.1.1}",
	}, "\n---\n")
	p := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	want := []string{
		p + `: document 1 (line 4): Pod x/a: status.podIP: Invalid value: "nope": must be a valid IP address`,
		p + `: document 2 (line 6): invalid YAML: did not find expected ',' or ']'`,
		p + `: document 3 (line 11): Service x/s: spec.clusterIP: Invalid value: "300.1.1.1": must be a valid IP address or "None"`,
	}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}
