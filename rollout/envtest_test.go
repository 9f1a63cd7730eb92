package rollout_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/spf13/viper"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/shadowgate/shadowgate/cmd/shadowgate/cli"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows/hubble"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
	"github.com/shadowgate/shadowgate/rollout"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
	"github.com/shadowgate/shadowgate/simulate"
)

// The envtest suite runs the controller against a real kube-apiserver and etcd (built by
// `make envtest`; KUBEBUILDER_ASSETS points at them) and a real Hubble observer server on
// loopback. The controller always runs as its ServiceAccount, impersonated, bound to
// exactly the roles in deploy/rbac: every scenario also checks that the API server never
// refused it anything.
//
// Scenarios run one after another (each starts its own controller, and NamespaceRollouts
// are cluster-scoped), each in namespaces of its own: envtest has no namespace controller,
// so a deleted namespace would never go away.

const (
	controllerNamespace = "shadowgate-system"
	controllerUser      = "system:serviceaccount:shadowgate-system:shadowgate-controller"
	// waitFor bounds every wait on the controller.
	waitFor = 20 * time.Second
	poll    = 50 * time.Millisecond
)

// t0 is a Monday, 06:00 UTC: the scenarios' promotion window opens at 09:00.
var t0 = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

type suite struct {
	env        *envtest.Environment
	admin      client.Client
	kubeconfig string // the admin's, for the CLI
	err        error
}

var (
	envOnce sync.Once
	shared  suite
	seq     atomic.Int32
)

func TestMain(m *testing.M) {
	// Parts of controller-runtime log through its global logger; each controller gets a
	// per-test logger of its own.
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	if shared.env != nil {
		if err := shared.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}
	if shared.kubeconfig != "" {
		os.RemoveAll(filepath.Dir(shared.kubeconfig))
	}
	os.Exit(code)
}

// requireEnvtest starts the control plane once. Without KUBEBUILDER_ASSETS the envtest
// scenarios fail under CI (a skipped suite must not pass for a tested one) and are skipped
// elsewhere.
func requireEnvtest(t *testing.T) *suite {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		msg := "KUBEBUILDER_ASSETS is not set: run `make envtest` and set KUBEBUILDER_ASSETS=$PWD/bin/envtest (make test does both)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	envOnce.Do(func() { shared.err = shared.start() })
	if shared.err != nil {
		t.Fatalf("envtest: %v", shared.err)
	}
	return &shared
}

func (s *suite) start() error {
	s.env = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "deploy", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := s.env.Start()
	if err != nil {
		return err
	}
	s.admin, err = client.New(cfg, client.Options{Scheme: rollout.Scheme()})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := s.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controllerNamespace}}); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join("..", "deploy", "rbac", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("deploy/rbac: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		objs, err := decodeFile(f, nil)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := s.admin.Create(ctx, o); err != nil {
				return fmt.Errorf("%s: create %s %s: %w", f, o.GetKind(), o.GetName(), err)
			}
		}
	}
	user, err := s.env.AddUser(envtest.User{Name: "alice", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := kubeconfigFor(user.Config(), "alice")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "shadowgate-envtest-")
	if err != nil {
		return err
	}
	s.kubeconfig = filepath.Join(dir, "kubeconfig")
	return os.WriteFile(s.kubeconfig, kc, 0o600)
}

// kubeconfigFor writes cfg as a kubeconfig whose context and user are named user.
func kubeconfigFor(cfg *rest.Config, user string) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: user}
	kc.CurrentContext = "envtest"
	return clientcmd.Write(*kc)
}

// decodeFile reads the YAML documents of path as unstructured objects, after replacing
// each key of rename (a whole word) by its value.
func decodeFile(path string, rename map[string]string) ([]*unstructured.Unstructured, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for from, to := range rename {
		raw = regexp.MustCompile(`\b`+regexp.QuoteMeta(from)+`\b`).ReplaceAll(raw, []byte(to))
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// forbidden counts the API server's 403 answers to the controller.
type forbidden struct {
	mu   sync.Mutex
	seen []string
}

func (f *forbidden) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(r)
		if err == nil && resp.StatusCode == http.StatusForbidden {
			f.mu.Lock()
			f.seen = append(f.seen, r.Method+" "+r.URL.Path)
			f.mu.Unlock()
		}
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// scenario is one test's world: its namespaces and objects, a Hubble server, the fake
// clock and a controller running as its ServiceAccount.
type scenario struct {
	t      *testing.T
	s      *suite
	shop   string // the governed namespace
	front  string // its callers'
	rename map[string]string
	clock  *clocktesting.FakeClock
	hubble *hubbletest.Server
	ctrl   *runningController
	denied *forbidden
}

type runningController struct {
	c      *rollout.Controller
	cancel context.CancelFunc
	done   chan error
	src    *hubble.Source
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	s := requireEnvtest(t)
	n := seq.Add(1)
	sc := &scenario{t: t, s: s, shop: fmt.Sprintf("shop-%d", n), front: fmt.Sprintf("front-%d", n),
		clock: clocktesting.NewFakeClock(t0), denied: &forbidden{}}
	sc.rename = map[string]string{"shop": sc.shop, "front": sc.front}
	sc.hubble = hubbletest.Start(t, hubbletest.Scenario{Nodes: []string{"node-1", "node-2"}})
	sc.createCluster()
	t.Cleanup(func() {
		sc.stopController()
		// Rollouts are cluster-scoped: the next scenario's controller must not find this
		// one's.
		var list v1alpha1.NamespaceRolloutList
		if err := s.admin.List(context.Background(), &list); err == nil {
			for i := range list.Items {
				_ = s.admin.Delete(context.Background(), &list.Items[i])
			}
		}
		sc.denied.mu.Lock()
		defer sc.denied.mu.Unlock()
		if len(sc.denied.seen) > 0 {
			t.Errorf("the API server refused the controller %d requests with the RBAC of deploy/rbac, e.g. %s",
				len(sc.denied.seen), sc.denied.seen[0])
		}
	})
	return sc
}

func (sc *scenario) ctx() context.Context { return context.Background() }

// createCluster creates testdata/shop/cluster.yaml in the scenario's namespaces.
func (sc *scenario) createCluster() { sc.createFile(filepath.Join("testdata", "shop", "cluster.yaml")) }

// createFile creates the objects of a manifest file in the scenario's namespaces,
// statuses included (envtest runs no kubelet to set them).
func (sc *scenario) createFile(path string) {
	sc.t.Helper()
	objs, err := decodeFile(path, sc.rename)
	if err != nil {
		sc.t.Fatal(err)
	}
	for _, o := range objs {
		status, hasStatus := o.Object["status"]
		if err := sc.s.admin.Create(sc.ctx(), o); err != nil {
			sc.t.Fatalf("create %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		if hasStatus {
			o.Object["status"] = status
			if err := sc.s.admin.Status().Update(sc.ctx(), o); err != nil {
				sc.t.Fatalf("status of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
		}
	}
}

// startController starts a controller as the ServiceAccount, following the scenario's
// Hubble server.
func (sc *scenario) startController() {
	sc.t.Helper()
	cfg := rest.CopyConfig(sc.s.env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: controllerUser,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + controllerNamespace, "system:authenticated"}}
	cfg.WrapTransport = sc.denied.wrap

	hc := hubble.Default()
	hc.Address = sc.hubble.Addr()
	// Everything the source times runs on the fake clock, which the scenarios move by
	// hours: no stall detection, no status polling, no keepalive pings.
	hc.StallTimeout, hc.ServerStatusInterval, hc.KeepaliveTime = 0, 0, 0
	src, err := hubble.New(hc, sc.clock)
	if err != nil {
		sc.t.Fatal(err)
	}
	rc := rollout.Default()
	rc.Namespace = controllerNamespace
	rc.MetricsBindAddress, rc.HealthProbeBindAddress = "0", "0"
	rc.Debounce = 0
	rc.Resync = 100 * time.Millisecond
	rc.SaveInterval = 10 * time.Minute
	rc.SoakHistory = 2 * time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	c, err := rollout.New(ctx, rollout.Options{Config: rc, RESTConfig: cfg, Clock: sc.clock,
		Sources: []simulate.NamedSource{{Name: hubble.SourceName, Source: src}},
		Log:     testr.NewWithOptions(sc.t, testr.Options{Verbosity: 0}), SkipNameValidation: true})
	if err != nil {
		cancel()
		sc.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	sc.ctrl = &runningController{c: c, cancel: cancel, done: done, src: src}
	// Flows are only delivered to a connected stream: wait for it.
	sc.eventually("the controller follows the Hubble server", func() error {
		if st := sc.hubble.Stats(); st.Streams == 0 {
			return errors.New("no GetFlows stream yet")
		}
		return nil
	})
}

// stopController stops the controller as SIGTERM would: it saves the soak stores.
func (sc *scenario) stopController() {
	if sc.ctrl == nil {
		return
	}
	sc.ctrl.cancel()
	select {
	case err := <-sc.ctrl.done:
		if err != nil {
			sc.t.Errorf("controller: %v", err)
		}
	case <-time.After(waitFor):
		sc.t.Errorf("controller did not stop within %s", waitFor)
	}
	sc.ctrl.src.Close()
	sc.ctrl = nil
}

// eventually polls fn until it returns nil, failing the test after waitFor.
func (sc *scenario) eventually(what string, fn func() error) {
	sc.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			sc.t.Fatalf("%s: not within %s: %v", what, waitFor, err)
		}
		time.Sleep(poll)
	}
}

// consistently checks fn stays nil for d: for "must not happen" claims, after the
// controller has had many resyncs to do it.
func (sc *scenario) consistently(what string, d time.Duration, fn func() error) {
	sc.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := fn(); err != nil {
			sc.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(poll)
	}
}

type rolloutSpec func(*v1alpha1.NamespaceRolloutSpec)

// createRollout creates the shop namespace's rollout: a 1h soak, 10 connections, manual
// promotion, automatic rollback on 5 drops within a minute, then changed by opts.
func (sc *scenario) createRollout(opts ...rolloutSpec) *v1alpha1.NamespaceRollout {
	sc.t.Helper()
	nsr := &v1alpha1.NamespaceRollout{
		ObjectMeta: metav1.ObjectMeta{Name: sc.shop},
		Spec: v1alpha1.NamespaceRolloutSpec{
			Namespace: sc.shop,
			Mode:      v1alpha1.Shadow,
			Soak:      v1alpha1.SoakSpec{Window: &metav1.Duration{Duration: time.Hour}, MinConnections: ptr.To[int64](10), MaxGap: &metav1.Duration{Duration: 10 * time.Minute}},
			Rollback:  v1alpha1.RollbackSpec{Policy: v1alpha1.RollBackAutomatically, Drops: 5, Period: &metav1.Duration{Duration: time.Minute}},
		},
	}
	for _, o := range opts {
		o(&nsr.Spec)
	}
	if err := sc.s.admin.Create(sc.ctx(), nsr); err != nil {
		sc.t.Fatal(err)
	}
	sc.eventually("the soak starts", func() error {
		got := sc.get()
		if got.Status.SoakStart == nil {
			return errors.New("status.soakStart unset")
		}
		return nil
	})
	return nsr
}

func (sc *scenario) get() *v1alpha1.NamespaceRollout {
	sc.t.Helper()
	var nsr v1alpha1.NamespaceRollout
	if err := sc.s.admin.Get(sc.ctx(), client.ObjectKey{Name: sc.shop}, &nsr); err != nil {
		sc.t.Fatal(err)
	}
	return &nsr
}

// waitPhase waits for the rollout to reach phase.
func (sc *scenario) waitPhase(phase v1alpha1.Phase) *v1alpha1.NamespaceRollout {
	sc.t.Helper()
	var got *v1alpha1.NamespaceRollout
	sc.eventually("phase "+string(phase), func() error {
		got = sc.get()
		if got.Status.Phase != phase || got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("phase %q (generation %d observed %d); gate %+v", got.Status.Phase, got.Generation, got.Status.ObservedGeneration, got.Status.Gate)
		}
		return nil
	})
	return got
}

// managed lists the policies in shop that carry the managed-by label.
func (sc *scenario) managed() map[string]networkingv1.NetworkPolicy {
	sc.t.Helper()
	var list networkingv1.NetworkPolicyList
	if err := sc.s.admin.List(sc.ctx(), &list, client.InNamespace(sc.shop), client.MatchingLabels{compile.ManagedByLabel: compile.ManagedByValue}); err != nil {
		sc.t.Fatal(err)
	}
	out := map[string]networkingv1.NetworkPolicy{}
	for _, p := range list.Items {
		out[p.Name] = p
	}
	return out
}

// events returns the Events about the rollout, as "Type Reason: note".
func (sc *scenario) events() []string {
	sc.t.Helper()
	var list eventsv1.EventList
	if err := sc.s.admin.List(sc.ctx(), &list, client.InNamespace(metav1.NamespaceDefault)); err != nil {
		sc.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "NamespaceRollout" && e.Regarding.Name == sc.shop {
			out = append(out, e.Type+" "+e.Reason+": "+e.Note)
		}
	}
	return out
}

// waitEvent waits for an Event whose "Type Reason: note" starts with prefix.
func (sc *scenario) waitEvent(prefix string) string {
	sc.t.Helper()
	var hit string
	sc.eventually("event "+prefix, func() error {
		evs := sc.events()
		for _, e := range evs {
			if strings.HasPrefix(e, prefix) {
				hit = e
				return nil
			}
		}
		return fmt.Errorf("events so far: %q", evs)
	})
	return hit
}

// Traffic. The pods' addresses are those of testdata/shop/cluster.yaml.
func (sc *scenario) endpoint(ns, pod, ip string) hubbletest.Endpoint {
	return hubbletest.Endpoint{Namespace: ns, Pod: pod, IP: ip}
}

func (sc *scenario) web() hubbletest.Endpoint {
	return sc.endpoint(sc.front, "web-6b7c8d9f4-a1s2d", "10.0.2.10")
}
func (sc *scenario) debug() hubbletest.Endpoint { return sc.endpoint(sc.front, "debug", "10.0.2.99") }
func (sc *scenario) checkout() hubbletest.Endpoint {
	return sc.endpoint(sc.shop, "checkout-5f6d7c8b9-q7w8e", "10.0.1.11")
}
func (sc *scenario) cart() hubbletest.Endpoint {
	return sc.endpoint(sc.shop, "cart-7c9d8f6b5-x2k4p", "10.0.1.10")
}

// covered sends n connections each of web→checkout and checkout→cart, spread over
// [from, from+span), and waits until the controller has observed them.
func (sc *scenario) covered(from time.Time, span time.Duration, n int) {
	sc.t.Helper()
	every := span / time.Duration(n)
	sc.send(append(
		hubbletest.Series(n, from, every, hubbletest.FlowSpec{UUID: fmt.Sprintf("web-%d", from.Unix()), Node: "node-1", Source: sc.web(), Destination: sc.checkout(), DestPort: 8080, TCPFlagsSYN: true}),
		hubbletest.Series(n, from, every, hubbletest.FlowSpec{UUID: fmt.Sprintf("checkout-%d", from.Unix()), Node: "node-1", Source: sc.checkout(), Destination: sc.cart(), DestPort: 8080, TCPFlagsSYN: true})...,
	)...)
}

// uncovered sends n connections debug→cart, which no intent covers.
func (sc *scenario) uncovered(from time.Time, span time.Duration, n int) {
	sc.t.Helper()
	sc.send(hubbletest.Series(n, from, span/time.Duration(n), hubbletest.FlowSpec{UUID: fmt.Sprintf("debug-%d", from.Unix()), Node: "node-1",
		Source: sc.debug(), Destination: sc.cart(), DestPort: 8080, TCPFlagsSYN: true})...)
}

// drops sends n flows of debug→cart dropped by policy at cart's ingress.
func (sc *scenario) drops(from time.Time, every time.Duration, n int) {
	sc.t.Helper()
	sc.send(hubbletest.Series(n, from, every, hubbletest.FlowSpec{UUID: fmt.Sprintf("drop-%d", from.UnixNano()), Node: "node-1",
		Source: sc.debug(), Destination: sc.cart(), DestPort: 8080, TCPFlagsSYN: true,
		Verdict: flowpb.Verdict_DROPPED, DropReason: flowpb.DropReason_POLICY_DENIED})...)
}

// send publishes flows and waits until ingestion has read them all.
func (sc *scenario) send(fs ...*flowpb.Flow) {
	sc.t.Helper()
	before := sc.ctrl.c.Ingest.Stats.Flows.Load()
	sc.hubble.Append(fs...)
	want := before + int64(len(fs))
	sc.eventually("ingestion reads the flows", func() error {
		if got := sc.ctrl.c.Ingest.Stats.Flows.Load(); got < want {
			return fmt.Errorf("%d of %d flows read", got, want)
		}
		return nil
	})
}

// step moves the fake clock, as time passing would.
func (sc *scenario) step(d time.Duration) { sc.clock.Step(d) }

// soakClean runs the standard clean soak: covered traffic over the first 50 minutes,
// then the clock past the one-hour window.
func (sc *scenario) soakClean() {
	sc.t.Helper()
	sc.covered(t0.Add(time.Minute), 50*time.Minute, 10)
	sc.step(65 * time.Minute)
}

// runCLI runs shadowgate in-process against the envtest API server as alice.
func (sc *scenario) runCLI(args ...string) (code int, stdout, stderr string) {
	sc.t.Helper()
	cmd := cli.New(viper.New())
	var out, errb bytes.Buffer
	cmd.SetArgs(append(args, "--kubeconfig", sc.s.kubeconfig))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.ExecuteContext(context.Background())
	if err != nil && !cli.Silent(err) {
		errb.WriteString(err.Error())
	}
	return cli.Code(err), out.String(), errb.String()
}

// promoteForced promotes past the gate and waits for enforcement.
func (sc *scenario) promoteForced() *v1alpha1.NamespaceRollout {
	sc.t.Helper()
	if code, _, stderr := sc.runCLI("promote", sc.shop, "--force", "--reason", "change 1234"); code != cli.ExitOK {
		sc.t.Fatalf("promote --force: exit %d: %s", code, stderr)
	}
	return sc.waitPhase(v1alpha1.PhaseEnforcing)
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
