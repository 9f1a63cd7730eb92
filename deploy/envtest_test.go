package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows/hubble"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
	"github.com/shadowgate/shadowgate/rollout"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
	"github.com/shadowgate/shadowgate/simulate"
)

const (
	// waitFor bounds every wait on the API server and the controller.
	waitFor = 20 * time.Second
	poll    = 50 * time.Millisecond
	// The Hubble Relay name Cilium's generated certificates carry.
	relayServerName = "*.hubble-relay.cilium.io"
)

// requireEnvtest fails under CI without the envtest control plane (a skipped test must not
// pass for a tested one) and skips elsewhere.
func requireEnvtest(t *testing.T) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		msg := "KUBEBUILDER_ASSETS is not set: run `make envtest` and set KUBEBUILDER_ASSETS=$PWD/bin/envtest (make test does both)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// apiRecorder records the API server's refusals (403) and warnings (Pod Security
// admission's among them) to one client.
type apiRecorder struct {
	mu        sync.Mutex
	forbidden []string
	warnings  []string
}

func (r *apiRecorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusForbidden {
			r.mu.Lock()
			r.forbidden = append(r.forbidden, req.Method+" "+req.URL.Path)
			r.mu.Unlock()
		}
		return resp, err
	})
}

func (r *apiRecorder) HandleWarningHeader(_ int, _ string, text string) {
	r.mu.Lock()
	r.warnings = append(r.warnings, text)
	r.mu.Unlock()
}

func (r *apiRecorder) seen() (forbidden, warnings []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.forbidden...), append([]string(nil), r.warnings...)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, waitFor, err)
		}
		time.Sleep(poll)
	}
}

// TestInstallOnAPIServer installs the rendered chart on a real kube-apiserver: the CRDs
// created for real, then every object. It then runs the controller as the chart's Pod
// would: as the chart's ServiceAccount with exactly the chart's RBAC, with the chart's
// flags, reading the Hubble client certificate from the Secret the chart mounts, over
// mutual TLS to a real Hubble server on loopback. It applies the examples and checks the
// controller reconciles them, enforces a namespace and keeps its Lease and soak Secrets,
// without the API server refusing it anything.
func TestInstallOnAPIServer(t *testing.T) {
	requireEnvtest(t)
	ctrllog.SetLogger(logr.Discard())
	ctx := context.Background()

	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	adminRec := &apiRecorder{}
	adminCfg := rest.CopyConfig(cfg)
	adminCfg.WarningHandler = adminRec
	admin, err := client.New(adminCfg, client.Options{Scheme: rollout.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	// What `helm install --create-namespace` or `kubectl apply -f install.yaml` creates.
	r := release{name: releaseName, namespace: releaseNamespace, valuesFiles: []string{filepath.Join("testdata", "values", "mtls.good.yaml")}}
	objs := append(decodeFile(t, "namespace.yaml"), mustRender(t, r)...)
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("create CRD %s: %v", o.GetName(), err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		into(t, o, &crd)
		crds = append(crds, &crd)
	}
	if len(crds) != 2 {
		t.Fatalf("the chart rendered %d CRDs, want NamespaceRollout's and ClientIntents'", len(crds))
	}
	if err := envtest.WaitForCRDs(cfg, crds, envtest.CRDInstallOptions{MaxTime: waitFor, PollInterval: poll}); err != nil {
		t.Fatalf("CRDs not served: %v", err)
	}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			continue
		}
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("create %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	if _, warnings := adminRec.seen(); len(warnings) > 0 {
		t.Errorf("the API server warned about the chart's objects (Pod Security %q included): %q",
			"restricted", warnings)
	}

	// The Hubble Relay: a real observer server on loopback that requires a client
	// certificate signed by the CA, as Cilium's relay does.
	ca := hubbletest.NewCA(t, "hubble-ca.cilium.io")
	serverKP := ca.IssueServer(t, relayServerName)
	clientKP := ca.IssueClient(t, "shadowgate.hubble-grpc.cilium.io")
	relay := hubbletest.Start(t, hubbletest.Scenario{Nodes: []string{"node-1"}},
		hubbletest.WithTLS(serverKP.TLS), hubbletest.WithClientCAs(ca.Pool()))

	deployment := find(t, objs, "Deployment", "")
	var dep = deploymentOf(t, deployment)
	podSpec := dep.Spec.Template.Spec
	for _, v := range podSpec.Volumes {
		if v.Secret != nil {
			// Cilium issues this Secret; the operator copies it into the release namespace.
			secret := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: v.Secret.SecretName, Namespace: r.namespace},
				Type:       corev1.SecretTypeTLS,
				Data:       map[string][]byte{"ca.crt": ca.CertPEM, "tls.crt": clientKP.CertPEM, "tls.key": clientKP.KeyPEM},
			}
			if err := admin.Create(ctx, secret); err != nil {
				t.Fatal(err)
			}
		}
	}
	args := kubeletMounts(t, admin, r.namespace, podSpec)
	flags := parseControllerArgs(t, args)
	hc := hubble.Default()
	// The relay's Service name does not resolve here; everything else is the chart's.
	hc.Address = relay.Addr()
	hc.TLS = flags.Bool("hubble-tls")
	hc.CAFile, hc.CertFile, hc.KeyFile = flags.String("hubble-tls-ca-file"), flags.String("hubble-tls-cert-file"), flags.String("hubble-tls-key-file")
	hc.ServerName = flags.String("hubble-tls-server-name")
	if !hc.TLS || hc.CertFile == "" || hc.ServerName != relayServerName {
		t.Fatalf("the chart's flags do not ask for mutual TLS to %s: %q", relayServerName, args)
	}
	src, err := hubble.New(hc, clock.RealClock{})
	if err != nil {
		t.Fatalf("Hubble source from the chart's flags: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })

	controllerCfg := flags.Config()
	// Nothing listens on fixed ports on a shared machine.
	controllerCfg.MetricsBindAddress, controllerCfg.HealthProbeBindAddress = "0", "0"
	controllerCfg.Resync = 200 * time.Millisecond
	controllerCfg.Debounce = 0

	// The demo shop's namespaces and the examples.
	for _, ns := range []string{"shop", "payments", "monitoring"} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	examples, err := filepath.Glob(filepath.Join("examples", "*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("deploy/examples: %v (%d files)", err, len(examples))
	}
	for _, f := range examples {
		for _, o := range decodeFile(t, f) {
			if err := admin.Create(ctx, o); err != nil {
				t.Fatalf("%s: create %s %s/%s: %v", f, o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
		}
	}

	// The controller, as the Pod's ServiceAccount.
	sa := find(t, objs, "ServiceAccount", podSpec.ServiceAccountName)
	ctrlRec := &apiRecorder{}
	saCfg := rest.CopyConfig(cfg)
	saCfg.Impersonate = rest.ImpersonationConfig{
		UserName: fmt.Sprintf("system:serviceaccount:%s:%s", sa.GetNamespace(), sa.GetName()),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.GetNamespace(), "system:authenticated"},
	}
	saCfg.WrapTransport = ctrlRec.wrap
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := rollout.New(runCtx, rollout.Options{Config: controllerCfg, RESTConfig: saCfg,
		Sources: []simulate.NamedSource{{Name: hubble.SourceName, Source: src}},
		Log:     testr.NewWithOptions(t, testr.Options{Verbosity: 0}), SkipNameValidation: true})
	if err != nil {
		t.Fatalf("controller from the chart's flags: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Start(runCtx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(waitFor):
			t.Errorf("controller did not stop within %s", waitFor)
		}
	}
	t.Cleanup(stop)

	eventually(t, "the controller follows Hubble Relay over mutual TLS", func() error {
		if st := relay.Stats(); st.Streams == 0 {
			return errors.New("no GetFlows stream yet")
		}
		return nil
	})
	eventually(t, "the controller holds the chart's Lease", func() error {
		var lease coordinationv1.Lease
		if err := admin.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: flags.String("leader-election-id")}, &lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return errors.New("no holder")
		}
		return nil
	})
	for _, name := range []string{"shop", "payments"} {
		eventually(t, "the example rollout "+name+" is reconciled", func() error {
			var nsr v1alpha1.NamespaceRollout
			if err := admin.Get(ctx, client.ObjectKey{Name: name}, &nsr); err != nil {
				return err
			}
			if nsr.Status.ObservedGeneration != nsr.Generation || nsr.Status.Phase != v1alpha1.PhaseShadow {
				return fmt.Errorf("observedGeneration %d of %d, phase %q; want phase Shadow",
					nsr.Status.ObservedGeneration, nsr.Generation, nsr.Status.Phase)
			}
			if cond := meta(nsr.Status.Conditions, v1alpha1.ConditionSpecValid); cond == nil || cond.Status != metav1.ConditionTrue {
				return fmt.Errorf("condition %s: %+v", v1alpha1.ConditionSpecValid, cond)
			}
			return nil
		})
	}

	// Forcing enforcement makes the controller write NetworkPolicies and events.
	if _, err := rollout.Promote(ctx, admin, "shop", "chart-test", "the chart's RBAC must allow enforcement", true, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "shop is enforced with the compiled policies", func() error {
		var nsr v1alpha1.NamespaceRollout
		if err := admin.Get(ctx, client.ObjectKey{Name: "shop"}, &nsr); err != nil {
			return err
		}
		if nsr.Status.Phase != v1alpha1.PhaseEnforcing {
			return fmt.Errorf("phase %q", nsr.Status.Phase)
		}
		var nps networkingv1.NetworkPolicyList
		if err := admin.List(ctx, &nps, client.InNamespace("shop"), client.MatchingLabels{compile.ManagedByLabel: compile.ManagedByValue}); err != nil {
			return err
		}
		if len(nps.Items) == 0 {
			return errors.New("no managed NetworkPolicies in shop")
		}
		return nil
	})

	// SIGTERM saves the soak stores into the release namespace.
	stop()
	var secret corev1.Secret
	if err := admin.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: rollout.SoakSecretName("shop")}, &secret); err != nil {
		t.Errorf("soak Secret after shutdown: %v", err)
	}

	forbidden, warnings := ctrlRec.seen()
	if len(forbidden) > 0 {
		t.Errorf("the API server refused the controller %d requests with the chart's RBAC: %q", len(forbidden), forbidden)
	}
	if len(warnings) > 0 {
		t.Logf("API warnings to the controller: %q", warnings)
	}
}

func meta(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// kubeletMounts does the kubelet's part for the controller container: it writes each
// Secret volume's items from the API server into a directory and returns the container's
// args with the mount paths pointing there.
func kubeletMounts(t *testing.T, admin client.Client, namespace string, pod corev1.PodSpec) []string {
	t.Helper()
	dirs := map[string]string{}
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		var s corev1.Secret
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: v.Secret.SecretName}, &s); err != nil {
			t.Fatalf("volume %s: %v", v.Name, err)
		}
		dir := filepath.Join(t.TempDir(), v.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, item := range v.Secret.Items {
			data, ok := s.Data[item.Key]
			if !ok {
				t.Fatalf("volume %s: Secret %s has no key %s", v.Name, s.Name, item.Key)
			}
			if err := os.WriteFile(filepath.Join(dir, item.Path), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		dirs[v.Name] = dir
	}
	c := pod.Containers[0]
	args := append([]string(nil), c.Args...)
	for _, m := range c.VolumeMounts {
		dir, ok := dirs[m.Name]
		if !ok {
			continue
		}
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], m.MountPath+"/", dir+"/")
		}
	}
	return args
}

func deploymentOf(t *testing.T, u *unstructured.Unstructured) appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	into(t, u, &d)
	return d
}
