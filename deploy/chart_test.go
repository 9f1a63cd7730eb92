package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The chart's copies of deploy/crds, deploy/rbac/role.yaml and the alert rules are made
// by `make chart-sync`; a stale copy would ship rules nobody tested.
func TestChartCopiesAreInSync(t *testing.T) {
	crds, err := filepath.Glob(filepath.Join("crds", "*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("deploy/crds: %v (%d files)", err, len(crds))
	}
	pairs := map[string]string{
		filepath.Join("rbac", "role.yaml"):                              filepath.Join(chartDir, "files", "rbac", "role.yaml"),
		filepath.Join("..", "alerts", "rules", "shadowgate.rules.yaml"): filepath.Join(chartDir, "files", "shadowgate.rules.yaml"),
	}
	for _, f := range crds {
		pairs[f] = filepath.Join(chartDir, "crds", filepath.Base(f))
	}
	copies, err := filepath.Glob(filepath.Join(chartDir, "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range copies {
		if _, err := os.Stat(filepath.Join("crds", filepath.Base(c))); err != nil {
			t.Errorf("%s has no source in deploy/crds: run `make chart-sync`", c)
		}
	}
	for src, dst := range pairs {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Errorf("%s: %v: run `make chart-sync`", dst, err)
			continue
		}
		if !bytes.Equal(want, got) {
			t.Errorf("%s differs from %s: run `make chart-sync`", dst, src)
		}
	}
}

func TestHelmLint(t *testing.T) {
	cases := map[string][]string{"defaults": nil}
	for name, f := range valuesFiles(t, ".good.yaml") {
		cases[name] = []string{f}
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir, "--namespace", releaseNamespace, "--kube-version", kubeVersion}
			for _, f := range files {
				args = append(args, "--values", f)
			}
			if _, err := helmRun(t, args...); err != nil {
				t.Error(err)
			}
		})
	}
}

// deploy/install.yaml is the chart rendered with its defaults after the namespace: what
// `kubectl apply -f` installs must be what `helm install` would.
func TestInstallManifestIsTheChartWithDefaults(t *testing.T) {
	ns, err := os.ReadFile("namespace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := render(t, defaultRelease())
	if err != nil {
		t.Fatal(err)
	}
	want := append(ns, out...)
	checkGolden(t, "install.yaml", want, "make manifests")
}

// Every good values file renders to its golden file, so a template change shows as a diff
// in review.
func TestRenderGolden(t *testing.T) {
	for name, f := range valuesFiles(t, ".good.yaml") {
		t.Run(name, func(t *testing.T) {
			out, err := render(t, release{name: releaseName, namespace: releaseNamespace, valuesFiles: []string{f}, skipCRDs: true})
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "golden", name+".yaml"), out, "go test ./deploy -update")
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte, fix string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run `%s`", err, fix)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s is stale: run `%s` (-want +got):\n%s", path, fix, diff)
	}
}

// Each bad values file fails the install with the schema's error, which the file's first
// line ("# want: ...") quotes.
func TestValuesSchemaRejects(t *testing.T) {
	for name, f := range valuesFiles(t, ".bad.yaml") {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(raw), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok || want == "" {
				t.Fatalf(`%s: the first line must be "# want: <the expected error>"`, f)
			}
			_, err = render(t, release{name: releaseName, namespace: releaseNamespace, valuesFiles: []string{f}})
			if err == nil {
				t.Fatalf("%s rendered; want the schema to reject it with %q", f, want)
			}
			if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") || !strings.Contains(err.Error(), want) {
				t.Errorf("error does not quote the schema's %q:\n%v", want, err)
			}
		})
	}
}

// policyRules reads the rules of the kind (ClusterRole or Role) in path.
func policyRules(t *testing.T, path, kind string) []rbacv1.PolicyRule {
	t.Helper()
	var rules []rbacv1.PolicyRule
	n := 0
	for _, o := range decodeFile(t, path) {
		if o.GetKind() != kind {
			continue
		}
		n++
		switch kind {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			into(t, o, &r)
			rules = r.Rules
		case "Role":
			var r rbacv1.Role
			into(t, o, &r)
			rules = r.Rules
		}
	}
	if n != 1 {
		t.Fatalf("%s: %d %ss, want 1", path, n, kind)
	}
	return rules
}

// The chart grants exactly the rules controller-gen generated from the code's markers, in
// whatever release and namespace it is installed, and binds them to the ServiceAccount
// the Deployment runs as.
func TestRBACIsTheGeneratedRBAC(t *testing.T) {
	generated := filepath.Join("rbac", "role.yaml")
	cases := map[string]struct {
		r              release
		wantController string
	}{
		"defaults":                  {r: defaultRelease(), wantController: "shadowgate-controller"},
		"another release namespace": {r: release{name: "netpol", namespace: "platform"}, wantController: "netpol-shadowgate-controller"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := render(t, tc.r)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := decode(out)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			rendered := filepath.Join(dir, "rendered.yaml")
			if err := os.WriteFile(rendered, out, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, kind := range []string{"ClusterRole", "Role"} {
				if diff := cmp.Diff(policyRules(t, generated, kind), policyRules(t, rendered, kind)); diff != "" {
					t.Errorf("%s rules differ from deploy/rbac/role.yaml (-want +got):\n%s", kind, diff)
				}
			}

			var role rbacv1.Role
			into(t, find(t, objs, "Role", tc.wantController), &role)
			if role.Namespace != tc.r.namespace {
				t.Errorf("Role in namespace %q, want the release's %q", role.Namespace, tc.r.namespace)
			}
			sa := find(t, objs, "ServiceAccount", tc.wantController)
			wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.GetName(), Namespace: tc.r.namespace}}
			var crb rbacv1.ClusterRoleBinding
			into(t, find(t, objs, "ClusterRoleBinding", tc.wantController), &crb)
			if diff := cmp.Diff(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: tc.wantController}, crb.RoleRef); diff != "" {
				t.Errorf("ClusterRoleBinding roleRef (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantSubjects, crb.Subjects); diff != "" {
				t.Errorf("ClusterRoleBinding subjects (-want +got):\n%s", diff)
			}
			var rb rbacv1.RoleBinding
			into(t, find(t, objs, "RoleBinding", tc.wantController), &rb)
			if diff := cmp.Diff(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: tc.wantController}, rb.RoleRef); diff != "" {
				t.Errorf("RoleBinding roleRef (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantSubjects, rb.Subjects); diff != "" {
				t.Errorf("RoleBinding subjects (-want +got):\n%s", diff)
			}
			if rb.Namespace != tc.r.namespace {
				t.Errorf("RoleBinding in namespace %q, want %q", rb.Namespace, tc.r.namespace)
			}
			var d appsv1.Deployment
			into(t, find(t, objs, "Deployment", tc.wantController), &d)
			if d.Spec.Template.Spec.ServiceAccountName != sa.GetName() {
				t.Errorf("Deployment runs as %q, want the chart's ServiceAccount %q", d.Spec.Template.Spec.ServiceAccountName, sa.GetName())
			}
		})
	}
}

// With its defaults the chart renders the identity deploy/rbac declares, so the plain
// manifests, the envtest suites and a Helm install all mean the same controller.
func TestDefaultIdentityMatchesDeployRBAC(t *testing.T) {
	objs := mustRender(t, defaultRelease())
	type id struct{ Kind, Namespace, Name string }
	var want, got []id
	for _, f := range []string{"serviceaccount.yaml", "bindings.yaml", "role.yaml"} {
		for _, o := range decodeFile(t, filepath.Join("rbac", f)) {
			want = append(want, id{o.GetKind(), o.GetNamespace(), o.GetName()})
		}
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding":
			got = append(got, id{o.GetKind(), o.GetNamespace(), o.GetName()})
		}
	}
	less := func(a, b id) bool { return a.Kind+a.Namespace+a.Name < b.Kind+b.Namespace+b.Name }
	sort.Slice(want, func(i, j int) bool { return less(want[i], want[j]) })
	sort.Slice(got, func(i, j int) bool { return less(got[i], got[j]) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RBAC objects (-deploy/rbac +chart):\n%s", diff)
	}
}

// The prometheus-operator objects are off by default and, when on, embed exactly the rules
// promtool tests and scrape the Service the chart renders.
func TestPrometheusOperatorObjects(t *testing.T) {
	if objs := mustRender(t, defaultRelease()); len(kinds(objs, "PrometheusRule", "ServiceMonitor")) != 0 {
		t.Errorf("defaults render %v; want no prometheus-operator objects", kinds(objs, "PrometheusRule", "ServiceMonitor"))
	}
	objs := mustRender(t, release{name: releaseName, namespace: releaseNamespace,
		set: []string{"metrics.prometheusRule.enabled=true", "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.labels.release=prometheus"}})

	raw, err := os.ReadFile(filepath.Join("..", "alerts", "rules", "shadowgate.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var wantSpec map[string]any
	if err := yaml.Unmarshal(raw, &wantSpec); err != nil {
		t.Fatalf("alerts/rules/shadowgate.rules.yaml: %v", err)
	}
	rule := find(t, objs, "PrometheusRule", "")
	if diff := cmp.Diff(wantSpec, rule.Object["spec"]); diff != "" {
		t.Errorf("PrometheusRule spec differs from alerts/rules/shadowgate.rules.yaml (-want +got):\n%s", diff)
	}
	if got := rule.GetLabels()["release"]; got != "prometheus" {
		t.Errorf("PrometheusRule label release=%q, want the value's prometheus", got)
	}

	var svc corev1.Service
	into(t, find(t, objs, "Service", ""), &svc)
	sm := find(t, objs, "ServiceMonitor", "")
	selector, _, _ := unstructured.NestedMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range selector {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v; the metrics Service has %s=%q", k, v, k, svc.Labels[k])
		}
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != svc.Spec.Ports[0].Name {
		t.Errorf("ServiceMonitor endpoints %v; want the Service's port %q", endpoints, svc.Spec.Ports[0].Name)
	}
}

func kinds(objs []*unstructured.Unstructured, want ...string) []string {
	var out []string
	for _, o := range objs {
		for _, k := range want {
			if o.GetKind() == k {
				out = append(out, k+"/"+o.GetName())
			}
		}
	}
	return out
}
