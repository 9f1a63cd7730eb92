package deploy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var update = flag.Bool("update", false, "rewrite deploy/install.yaml and testdata/golden from the chart")

const (
	chartDir = "chart/shadowgate"
	// kubeVersion is the version helm renders for (the envtest control plane's): a helm
	// built from source otherwise assumes v1.20, which the chart's kubeVersion refuses.
	// The Makefile's KUBE_VERSION is the same.
	kubeVersion = "1.37.2"
	// The release the documented install and deploy/install.yaml use.
	releaseName      = "shadowgate"
	releaseNamespace = "shadowgate-system"
)

// helmBinary finds helm: $HELM (make test sets it), else bin/helm (make helm builds it),
// else PATH. Without it the chart tests fail under CI, where a skipped test must not pass
// for a tested one, and are skipped elsewhere.
func helmBinary(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("HELM"), filepath.Join("..", "bin", "helm")}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			abs, err := filepath.Abs(c)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	msg := "helm not found ($HELM, bin/helm, PATH): run `make helm` (make test does)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// helmRun runs helm with args, returning its standard output, or an error carrying its
// standard error.
func helmRun(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	// Keep helm away from the user's repositories, plugins and cache.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes(), nil
}

// release is what a chart is rendered as.
type release struct {
	name, namespace string
	valuesFiles     []string
	set             []string
	// skipCRDs leaves out the CRDs, which the goldens need not repeat.
	skipCRDs bool
}

func defaultRelease() release { return release{name: releaseName, namespace: releaseNamespace} }

// render renders the chart with its CRDs, as `helm install` would apply it.
func render(t *testing.T, r release) ([]byte, error) {
	t.Helper()
	args := []string{"template", r.name, chartDir, "--namespace", r.namespace, "--kube-version", kubeVersion}
	if !r.skipCRDs {
		args = append(args, "--include-crds")
	}
	for _, f := range r.valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range r.set {
		args = append(args, "--set", s)
	}
	return helmRun(t, args...)
}

func mustRender(t *testing.T, r release) []*unstructured.Unstructured {
	t.Helper()
	out, err := render(t, r)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatalf("rendered chart: %v", err)
	}
	return objs
}

// decode reads YAML documents as objects, skipping empty ones.
func decode(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return objs
}

// find returns the one object of kind named name, failing the test otherwise.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			if found != nil {
				t.Fatalf("more than one %s %q rendered", kind, name)
			}
			found = o
		}
	}
	if found == nil {
		t.Fatalf("no %s %q rendered", kind, name)
	}
	return found
}

var runtimeConverter = runtime.DefaultUnstructuredConverter

// into converts an object into a typed one, failing on fields the type does not have.
func into(t *testing.T, u *unstructured.Unstructured, typed any) {
	t.Helper()
	if err := runtimeConverter.FromUnstructuredWithValidation(u.Object, typed, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// valuesFiles returns the values files testdata/values/*suffix by name.
func valuesFiles(t *testing.T, suffix string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "values", "*"+suffix))
	if err != nil || len(files) == 0 {
		t.Fatalf("testdata/values/*%s: %v (%d files)", suffix, err, len(files))
	}
	out := map[string]string{}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), suffix)] = f
	}
	return out
}
