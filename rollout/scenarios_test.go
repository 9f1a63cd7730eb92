package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/shadowgate/shadowgate/cmd/shadowgate/cli"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
	"github.com/shadowgate/shadowgate/rollout"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

func automaticAt(schedule string, d time.Duration) rolloutSpec {
	return func(s *v1alpha1.NamespaceRolloutSpec) {
		s.Promotion = v1alpha1.PromotionSpec{Policy: v1alpha1.PromoteAutomatically, TimeZone: "UTC",
			Windows: []v1alpha1.PromotionWindow{{Schedule: schedule, Duration: metav1.Duration{Duration: d}}}}
	}
}

// A namespace that soaks clean on replayed flows becomes Ready outside its promotion
// window and stays in shadow; inside the window the controller promotes it by itself.
func TestSoakCleanPromotesAutomaticallyOnlyInsideWindow(t *testing.T) {
	sc := newScenario(t)
	sc.startController()
	sc.createRollout(automaticAt("0 9 * * *", 2*time.Hour))
	sc.soakClean() // 07:05, the window opens at 09:00

	ready := sc.waitPhase(v1alpha1.PhaseReady)
	if !ready.Status.Gate.Passed || ready.Status.ObservedConnections != 20 {
		t.Fatalf("gate %+v, %d connections; want a passing gate over 20 connections", ready.Status.Gate, ready.Status.ObservedConnections)
	}
	if want := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC); ready.Status.NextPromotionWindow == nil || !ready.Status.NextPromotionWindow.Time.Equal(want) {
		t.Errorf("nextPromotionWindow = %v, want %s", ready.Status.NextPromotionWindow, want)
	}
	sc.waitEvent("Normal Ready: the gate passes; waiting for a promotion window")
	sc.consistently("outside the window nothing is promoted", time.Second, func() error {
		if got := sc.get(); got.Spec.Mode != v1alpha1.Shadow || got.Status.Phase != v1alpha1.PhaseReady {
			return fmt.Errorf("spec.mode %s, phase %s", got.Spec.Mode, got.Status.Phase)
		}
		if n := len(sc.managed()); n != 0 {
			return fmt.Errorf("%d managed policies applied", n)
		}
		return nil
	})

	// Keep traffic flowing into the window's hour, then enter it.
	sc.covered(t0.Add(2*time.Hour+10*time.Minute), 40*time.Minute, 10)
	sc.step(time.Hour + 56*time.Minute) // 09:01
	got := sc.waitPhase(v1alpha1.PhaseEnforcing)
	lp := got.Status.LastPromotion
	if got.Spec.Mode != v1alpha1.Enforce || lp == nil || !lp.Automatic || lp.Forced || lp.By != controllerUser ||
		!strings.Contains(lp.Reason, `promotion window "0 9 * * *" is open`) {
		t.Fatalf("spec.mode %s, lastPromotion %+v; want an automatic, unforced promotion by %s inside the window", got.Spec.Mode, lp, controllerUser)
	}
	if n := len(sc.managed()); n != 3 {
		t.Errorf("%d managed policies, want 3", n)
	}
	sc.waitEvent("Normal AutomaticPromotion: automatic promotion: the gate passes")
	sc.waitEvent("Normal Promoted: namespace " + sc.shop + " enforced by " + controllerUser)
}

// promote refuses with the gate's reasons (exit 3) and records nothing; --force promotes,
// recording who (as the API server knows them) and why.
func TestPromoteRefusedThenForced(t *testing.T) {
	sc := newScenario(t)
	sc.startController()
	sc.createRollout()
	sc.covered(t0.Add(time.Minute), 50*time.Minute, 10)
	sc.uncovered(t0.Add(2*time.Minute), 30*time.Minute, 3)
	sc.step(65 * time.Minute)
	sc.eventually("the gate reports the uncovered edge", func() error {
		got := sc.get()
		if got.Status.UncoveredEdges != 1 || len(got.Status.TopUncoveredEdges) != 1 {
			return fmt.Errorf("%d uncovered edges: %+v", got.Status.UncoveredEdges, got.Status.TopUncoveredEdges)
		}
		return nil
	})

	code, _, stderr := sc.runCLI("promote", sc.shop, "--reason", "try")
	if code != cli.ExitFindings {
		t.Fatalf("promote with a failing gate: exit %d, want %d; stderr:\n%s", code, cli.ExitFindings, stderr)
	}
	for _, want := range []string{"refusing to promote", "1 uncovered edge, e.g. " + sc.front + "/debug→" + sc.shop + "/cart:8080/TCP", "[uncovered]", "--force"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if got := sc.get(); got.Spec.Mode != v1alpha1.Shadow || got.Annotations[v1alpha1.AnnotationModeRequest] != "" {
		t.Fatalf("a refused promotion changed the rollout: spec.mode %s, annotations %v", got.Spec.Mode, got.Annotations)
	}

	code, stdout, stderr := sc.runCLI("promote", sc.shop, "--force", "--reason", "change 1234")
	if code != cli.ExitOK {
		t.Fatalf("promote --force: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "requested by alice") {
		t.Errorf("stdout %q does not name the caller", stdout)
	}
	got := sc.waitPhase(v1alpha1.PhaseEnforcing)
	want := &v1alpha1.Transition{Time: metav1.NewTime(t0.Add(65 * time.Minute)), By: "alice", Reason: "change 1234", Forced: true}
	if diff := cmp.Diff(want, got.Status.LastPromotion); diff != "" {
		t.Errorf("lastPromotion (-want +got):\n%s", diff)
	}
	sc.waitEvent("Normal Promoted: namespace " + sc.shop + " enforced by alice (forced: the gate did not pass): change 1234")
}

// The policies the controller applies are exactly what `shadowgate compile` prints for
// the same cluster, plus the owner reference to the rollout.
func TestAppliedPoliciesEqualCompile(t *testing.T) {
	sc := newScenario(t)
	sc.startController()
	nsr := sc.createRollout()
	got := sc.promoteForced()

	// The same manifests, compiled offline.
	dir := t.TempDir()
	objs, err := decodeFile(filepath.Join("testdata", "shop", "cluster.yaml"), sc.rename)
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	writeFile(t, filepath.Join(dir, "cluster.yaml"), strings.Join(docs, "---\n"))
	snap, err := cluster.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := compile.Compile(snap, rollout.Default().CompileOptions(sc.shop, false))
	if err != nil {
		t.Fatal(err)
	}
	type policy struct {
		Labels, Annotations map[string]string
		Spec                networkingv1.NetworkPolicySpec
	}
	want := map[string]policy{}
	var wantNames []string
	for _, p := range res.Policies {
		want[p.Name] = policy{p.Labels, p.Annotations, p.Spec}
		wantNames = append(wantNames, p.Name)
	}
	live := map[string]policy{}
	for name, p := range sc.managed() {
		live[name] = policy{p.Labels, p.Annotations, p.Spec}
		if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != nsr.UID || p.OwnerReferences[0].Kind != "NamespaceRollout" {
			t.Errorf("policy %s: owner references %+v, want the rollout", name, p.OwnerReferences)
		}
		if !managedBy(p.ManagedFields, rollout.FieldManager) {
			t.Errorf("policy %s: no managedFields entry of field manager %q", name, rollout.FieldManager)
		}
	}
	if diff := cmp.Diff(want, live); diff != "" {
		t.Errorf("applied policies differ from shadowgate compile (-compile +applied):\n%s", diff)
	}
	sort.Strings(wantNames)
	if diff := cmp.Diff(wantNames, got.Status.Applied.Names); diff != "" {
		t.Errorf("status.applied.names (-want +got):\n%s", diff)
	}
	if got.Status.Applied.Generation != got.Generation || got.Status.Applied.Hash == "" {
		t.Errorf("status.applied = %+v, want generation %d and a hash", got.Status.Applied, got.Generation)
	}
	if c := findCondition(got, v1alpha1.ConditionEnforced); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Enforced condition %+v, want True", c)
	}
}

// rollback removes every managed policy within seconds and records who and why.
func TestRollbackRemovesAllManagedPolicies(t *testing.T) {
	sc := newScenario(t)
	sc.startController()
	sc.createRollout()
	sc.promoteForced()
	if n := len(sc.managed()); n == 0 {
		t.Fatal("no managed policies after promotion")
	}

	start := time.Now()
	code, stdout, stderr := sc.runCLI("rollback", sc.shop, "--reason", "checkout errors")
	if code != cli.ExitOK {
		t.Fatalf("rollback: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "rollback of namespace "+sc.shop+" requested by alice") {
		t.Errorf("stdout %q", stdout)
	}
	sc.eventually("every managed policy is gone", func() error {
		if m := sc.managed(); len(m) > 0 {
			return fmt.Errorf("%d left", len(m))
		}
		return nil
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("rollback took %s, want seconds", took)
	}
	t.Logf("rollback took effect in %s", time.Since(start).Round(time.Millisecond))
	got := sc.waitPhase(v1alpha1.PhaseRolledBack)
	want := &v1alpha1.Transition{Time: metav1.NewTime(t0), By: "alice", Reason: "checkout errors"}
	if diff := cmp.Diff(want, got.Status.LastRollback); diff != "" {
		t.Errorf("lastRollback (-want +got):\n%s", diff)
	}
	if got.Status.Mode != v1alpha1.Shadow || got.Status.Applied != nil {
		t.Errorf("status.mode %s, applied %+v; want Shadow and nothing applied", got.Status.Mode, got.Status.Applied)
	}
	sc.waitEvent("Normal RolledBack: namespace " + sc.shop + " returned to shadow by alice: checkout errors; 3 policies removed")

	code, stdout, _ = sc.runCLI("status", sc.shop)
	if code != cli.ExitOK || !strings.Contains(stdout, "Last rollback:") || !strings.Contains(stdout, "checkout errors") {
		t.Errorf("status: exit %d:\n%s", code, stdout)
	}
}

// A managed policy deleted or edited by hand is put back, with a Warning.
func TestManagedPolicyDeletedOrEditedIsRestored(t *testing.T) {
	sc := newScenario(t)
	sc.startController()
	sc.createRollout()
	sc.promoteForced()
	before := sc.managed()

	cases := map[string]struct {
		policy string
		tamper func(*networkingv1.NetworkPolicy) error
	}{
		"deleted": {"shadowgate-allow-cart", func(p *networkingv1.NetworkPolicy) error {
			return sc.s.admin.Delete(sc.ctx(), p)
		}},
		"ingress rules replaced": {"shadowgate-allow-checkout", func(p *networkingv1.NetworkPolicy) error {
			p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
			return sc.s.admin.Update(sc.ctx(), p)
		}},
		"default deny turned into allow-all": {compile.DefaultDenyName, func(p *networkingv1.NetworkPolicy) error {
			p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptrIntOrString(8080)}}}}
			return sc.s.admin.Update(sc.ctx(), p)
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := before[tc.policy]
			if err := tc.tamper(&p); err != nil {
				t.Fatal(err)
			}
			sc.eventually(tc.policy+" restored", func() error {
				cur, ok := sc.managed()[tc.policy]
				if !ok {
					return errors.New("missing")
				}
				if diff := cmp.Diff(before[tc.policy].Spec, cur.Spec); diff != "" {
					return fmt.Errorf("spec differs (-before +now):\n%s", diff)
				}
				return nil
			})
		})
	}
	sc.waitEvent("Warning DriftCorrected: managed NetworkPolicies changed outside shadowgate were put back")
	if got := sc.get(); got.Status.Phase != v1alpha1.PhaseEnforcing {
		t.Errorf("phase %s after drift, want Enforcing", got.Status.Phase)
	}
}

// Policies shadowgate did not create are never written or deleted: not a team's own
// policy, not one that merely carries the managed-by label (say, `shadowgate compile`
// output applied by hand), not one whose name a compiled policy wants.
func TestUnmanagedPoliciesAreUntouched(t *testing.T) {
	sc := newScenario(t)
	tcp := corev1.ProtocolTCP
	unmanaged := []*networkingv1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "team-allow-monitoring", Namespace: sc.shop},
			Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptrIntOrString(9090)}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "hand-applied", Namespace: sc.shop,
			Labels: map[string]string{compile.ManagedByLabel: compile.ManagedByValue}}},
	}
	for _, p := range unmanaged {
		if err := sc.s.admin.Create(sc.ctx(), p); err != nil {
			t.Fatal(err)
		}
	}
	versions := func() map[string]string {
		out := map[string]string{}
		for _, p := range unmanaged {
			var cur networkingv1.NetworkPolicy
			if err := sc.s.admin.Get(sc.ctx(), client.ObjectKeyFromObject(p), &cur); err != nil {
				t.Fatalf("%s: %v", p.Name, err)
			}
			out[p.Name] = cur.ResourceVersion
		}
		return out
	}
	want := versions()

	sc.startController()
	sc.createRollout()
	sc.promoteForced()
	if code, _, stderr := sc.runCLI("rollback", sc.shop); code != cli.ExitOK {
		t.Fatalf("rollback: exit %d: %s", code, stderr)
	}
	sc.waitPhase(v1alpha1.PhaseRolledBack)
	if diff := cmp.Diff(want, versions()); diff != "" {
		t.Errorf("unmanaged policies were written (resourceVersions -before +after):\n%s", diff)
	}

	// A policy of someone else's holding a name the compiler wants blocks enforcement
	// rather than being taken over.
	squatter := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "shadowgate-allow-cart", Namespace: sc.shop}}
	if err := sc.s.admin.Create(sc.ctx(), squatter); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := sc.runCLI("promote", sc.shop, "--force"); code != cli.ExitOK {
		t.Fatalf("promote: exit %d: %s", code, stderr)
	}
	got := sc.waitPhase(v1alpha1.PhaseBlocked)
	if c := findCondition(got, v1alpha1.ConditionEnforced); c == nil || c.Reason != "NameConflict" || !strings.Contains(c.Message, "shadowgate-allow-cart") {
		t.Errorf("Enforced condition %+v, want NameConflict naming shadowgate-allow-cart", c)
	}
	var cur networkingv1.NetworkPolicy
	if err := sc.s.admin.Get(sc.ctx(), client.ObjectKeyFromObject(squatter), &cur); err != nil {
		t.Fatal(err)
	}
	if len(cur.OwnerReferences) != 0 || len(cur.Labels) != 0 {
		t.Errorf("the conflicting policy was taken over: %+v", cur.ObjectMeta)
	}
	if n := len(sc.managed()); n != 1 { // hand-applied, still there
		t.Errorf("%d policies with the managed-by label, want only hand-applied", n)
	}
	sc.waitEvent("Warning ApplyFailed: NetworkPolicies shadowgate-allow-cart exist and are not managed by this rollout")
}

// A storm of policy drops into the enforced namespace rolls it back by itself, with a
// Warning, and spec.mode says so.
func TestDropStormRollsBackAutomatically(t *testing.T) {
	sc := newScenario(t)
	sc.startController()
	sc.createRollout()
	sc.promoteForced()

	// Drops that are not policy drops, and fewer policy drops than the threshold, do not.
	sc.drops(t0.Add(time.Second), time.Second, 4)
	sc.consistently("4 drops stay under the threshold of 5", 500*time.Millisecond, func() error {
		if got := sc.get(); got.Status.Phase != v1alpha1.PhaseEnforcing {
			return fmt.Errorf("phase %s", got.Status.Phase)
		}
		return nil
	})
	start := time.Now()
	sc.drops(t0.Add(10*time.Second), time.Second, 1)
	got := sc.waitPhase(v1alpha1.PhaseRolledBack)
	t.Logf("automatic rollback took effect in %s", time.Since(start).Round(time.Millisecond))
	lr := got.Status.LastRollback
	if got.Spec.Mode != v1alpha1.Shadow || lr == nil || !lr.Automatic || lr.By != controllerUser ||
		!strings.Contains(lr.Reason, "5 policy drops within 1m0s") || !strings.Contains(lr.Reason, sc.front+"/debug → "+sc.shop+"/cart-7c9d8f6b5-x2k4p:8080/TCP POLICY_DENIED") {
		t.Fatalf("spec.mode %s, lastRollback %+v; want an automatic rollback by the controller naming the drops", got.Spec.Mode, lr)
	}
	if n := len(sc.managed()); n != 0 {
		t.Errorf("%d managed policies left", n)
	}
	sc.waitEvent("Warning AutomaticRollback: automatic rollback: 5 policy drops within 1m0s")

	// The drops were judged as uncovered connections: the soak does not pass again until
	// someone covers them.
	sc.eventually("the dropped edge is uncovered", func() error {
		if g := sc.get(); g.Status.UncoveredEdges != 1 {
			return fmt.Errorf("%d uncovered edges", g.Status.UncoveredEdges)
		}
		return nil
	})
}

// A controller stopped mid-soak and started again resumes the soak from its Secret; the
// downtime is a gap.
func TestRestartResumesSoakWithGap(t *testing.T) {
	sc := newScenario(t)
	sc.startController()
	sc.createRollout()
	sc.covered(t0.Add(time.Minute), 20*time.Minute, 10)
	sc.step(20 * time.Minute)
	sc.stopController() // saves the stores, as on SIGTERM

	var sec corev1.Secret
	if err := sc.s.admin.Get(sc.ctx(), client.ObjectKey{Namespace: controllerNamespace, Name: rollout.SoakSecretName(sc.shop)}, &sec); err != nil {
		t.Fatalf("soak Secret: %v", err)
	}
	if n := len(sec.Data[rollout.SoakSecretKey]); n == 0 || n > rollout.MaxSoakSnapshotBytes {
		t.Fatalf("soak snapshot is %d bytes", n)
	}
	t.Logf("soak Secret holds a %d-byte snapshot", len(sec.Data[rollout.SoakSecretKey]))

	sc.step(25 * time.Minute) // the downtime
	sc.startController()
	sc.waitEvent("Normal SoakResumed: soak of namespace " + sc.shop + " resumed from its Secret; 25m0s of downtime recorded as a gap")
	sc.covered(t0.Add(46*time.Minute), 10*time.Minute, 5)
	sc.step(20 * time.Minute) // 07:05: past the one-hour window
	var got *v1alpha1.NamespaceRollout
	sc.eventually("the gate judges the whole hour", func() error {
		got = sc.get()
		if got.Status.ObservedConnections != 30 || got.Status.Gate == nil || !got.Status.Gate.EvaluatedAt.Time.Equal(t0.Add(65*time.Minute)) {
			st := &sc.ctrl.c.Ingest.Stats
			return fmt.Errorf("%d connections (want 20 before the restart and 10 after) at %v; ingest after restart: %d flows, %d observed",
				got.Status.ObservedConnections, got.Status.Gate, st.Flows.Load(), st.Observed.Load())
		}
		return nil
	})
	if got.Status.Phase != v1alpha1.PhaseShadow {
		t.Errorf("phase %s, want Shadow: the downtime fails the gate", got.Status.Phase)
	}
	want := []v1alpha1.Gap{{Start: metav1.NewTime(t0.Add(20 * time.Minute)), End: ptrTime(t0.Add(45 * time.Minute)),
		Reason: string(soak.GapShadowgateDown), Message: "not running since the snapshot at 2026-03-02T06:20:00Z"}}
	if diff := cmp.Diff(want, got.Status.Gaps); diff != "" {
		t.Errorf("status.gaps (-want +got):\n%s", diff)
	}
	if got.Status.SoakStart == nil || !got.Status.SoakStart.Time.Equal(t0) {
		t.Errorf("soakStart %v, want %s: the soak resumes, it does not restart", got.Status.SoakStart, t0)
	}
	var gapReason *v1alpha1.GateReason
	for i, r := range got.Status.Gate.Reasons {
		if r.Code == soak.CodeGap {
			gapReason = &got.Status.Gate.Reasons[i]
		}
	}
	if gapReason == nil || !strings.Contains(gapReason.Message, "ingestion gap of 25m") {
		t.Errorf("gate reasons %+v, want the 25m gap over the 10m limit", got.Status.Gate.Reasons)
	}
}

// The controller needs nothing beyond deploy/rbac (every scenario runs it as its
// ServiceAccount and fails on any 403) and gets nothing beyond it either.
func TestRBACGrantsNothingMore(t *testing.T) {
	s := requireEnvtest(t)
	cs, err := kubernetes.NewForConfig(s.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		"write own policies":                 {authorizationv1.ResourceAttributes{Namespace: "any", Verb: "patch", Group: "networking.k8s.io", Resource: "networkpolicies"}, true},
		"write the soak Secrets":             {authorizationv1.ResourceAttributes{Namespace: controllerNamespace, Verb: "patch", Resource: "secrets"}, true},
		"read Secrets elsewhere":             {authorizationv1.ResourceAttributes{Namespace: "default", Verb: "get", Resource: "secrets"}, false},
		"list Secrets in its namespace":      {authorizationv1.ResourceAttributes{Namespace: controllerNamespace, Verb: "list", Resource: "secrets"}, false},
		"leases elsewhere":                   {authorizationv1.ResourceAttributes{Namespace: "kube-system", Verb: "update", Group: "coordination.k8s.io", Resource: "leases"}, false},
		"write pods":                         {authorizationv1.ResourceAttributes{Namespace: "default", Verb: "create", Resource: "pods"}, false},
		"delete namespaces":                  {authorizationv1.ResourceAttributes{Verb: "delete", Resource: "namespaces"}, false},
		"write ClientIntents":                {authorizationv1.ResourceAttributes{Namespace: "default", Verb: "update", Group: "k8s.otterize.com", Resource: "clientintents"}, false},
		"delete rollouts":                    {authorizationv1.ResourceAttributes{Verb: "delete", Group: "shadowgate.dev", Resource: "namespacerollouts"}, false},
		"create rollouts":                    {authorizationv1.ResourceAttributes{Verb: "create", Group: "shadowgate.dev", Resource: "namespacerollouts"}, false},
		"escalate through RBAC":              {authorizationv1.ResourceAttributes{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}, false},
		"read ConfigMaps":                    {authorizationv1.ResourceAttributes{Namespace: controllerNamespace, Verb: "get", Resource: "configmaps"}, false},
		"impersonate":                        {authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users"}, false},
		"read the rollouts' status":          {authorizationv1.ResourceAttributes{Verb: "update", Group: "shadowgate.dev", Resource: "namespacerollouts", Subresource: "status"}, true},
		"watch ClientIntents in any version": {authorizationv1.ResourceAttributes{Verb: "watch", Group: "k8s.otterize.com", Resource: "clientintents"}, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := tc.attrs
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: controllerUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + controllerNamespace, "system:authenticated"},
				ResourceAttributes: &a,
			}}
			got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed != tc.want {
				t.Errorf("allowed = %t, want %t (%s)", got.Status.Allowed, tc.want, got.Status.Reason)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func findCondition(nsr *v1alpha1.NamespaceRollout, typ string) *metav1.Condition {
	for i := range nsr.Status.Conditions {
		if nsr.Status.Conditions[i].Type == typ {
			return &nsr.Status.Conditions[i]
		}
	}
	return nil
}

func managedBy(fields []metav1.ManagedFieldsEntry, manager string) bool {
	for _, f := range fields {
		if f.Manager == manager && f.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

func ptrIntOrString(port int) *intstr.IntOrString {
	v := intstr.FromInt32(int32(port))
	return &v
}

func ptrTime(t time.Time) *metav1.Time {
	v := metav1.NewTime(t)
	return &v
}

// Writing the intent an uncovered edge lacks makes the soak clean at once: the stored
// edges are re-judged against the new policies, the soak does not start over.
func TestAddingTheMissingIntentCleansTheSoak(t *testing.T) {
	sc := newScenario(t)
	sc.startController()
	sc.createRollout()
	sc.covered(t0.Add(time.Minute), 50*time.Minute, 10)
	sc.uncovered(t0.Add(2*time.Minute), 30*time.Minute, 3)
	sc.step(65 * time.Minute)
	sc.eventually("the uncovered edge fails the gate", func() error {
		if g := sc.get(); g.Status.UncoveredEdges != 1 || g.Status.Phase != v1alpha1.PhaseShadow {
			return fmt.Errorf("phase %s, %d uncovered edges", g.Status.Phase, g.Status.UncoveredEdges)
		}
		return nil
	})

	intent := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "k8s.otterize.com/v1alpha2", "kind": "ClientIntents",
		"metadata": map[string]any{"name": "debug", "namespace": sc.front},
		"spec": map[string]any{"service": map[string]any{"name": "debug"},
			"calls": []any{map[string]any{"name": "cart." + sc.shop}}},
	}}
	if err := sc.s.admin.Create(sc.ctx(), intent); err != nil {
		t.Fatal(err)
	}
	got := sc.waitPhase(v1alpha1.PhaseReady)
	if got.Status.UncoveredEdges != 0 || !got.Status.SoakStart.Time.Equal(t0) || got.Status.ObservedConnections != 23 {
		t.Errorf("%d uncovered edges, soak start %v, %d connections; want 0, %s, 23", got.Status.UncoveredEdges, got.Status.SoakStart, got.Status.ObservedConnections, t0)
	}
}

// shadowgate init relies on the CRD's defaults; status shows them, as a table and as the
// object, and --wait returns once the condition holds.
func TestInitAndStatus(t *testing.T) {
	sc := newScenario(t)
	code, stdout, stderr := sc.runCLI("init", sc.shop)
	if code != cli.ExitOK || !strings.Contains(stdout, "namespacerollout "+sc.shop+" created") {
		t.Fatalf("init: exit %d: %s%s", code, stdout, stderr)
	}
	want := v1alpha1.NamespaceRolloutSpec{
		Namespace: sc.shop, Mode: v1alpha1.Shadow,
		Soak:      v1alpha1.SoakSpec{Window: &metav1.Duration{Duration: 168 * time.Hour}, MinConnections: ptr.To[int64](1000), MaxGap: &metav1.Duration{Duration: time.Hour}},
		Promotion: v1alpha1.PromotionSpec{Policy: v1alpha1.PromoteManually, TimeZone: "UTC"},
		Rollback:  v1alpha1.RollbackSpec{Policy: v1alpha1.RollBackAutomatically, Drops: 10, Period: &metav1.Duration{Duration: time.Minute}},
	}
	if diff := cmp.Diff(want, sc.get().Spec); diff != "" {
		t.Errorf("spec after init (-want +got):\n%s", diff)
	}
	if code, stdout, _ := sc.runCLI("init", sc.shop); code != cli.ExitOK || !strings.Contains(stdout, "already exists") {
		t.Errorf("second init: exit %d: %s", code, stdout)
	}
	if code, _, stderr := sc.runCLI("init", "no-such-namespace"); code != cli.ExitBadInput || !strings.Contains(stderr, "does not exist") {
		t.Errorf("init of a missing namespace: exit %d: %s", code, stderr)
	}

	sc.startController()
	sc.eventually("the controller reports", func() error {
		if sc.get().Status.Phase == "" {
			return errors.New("no phase yet")
		}
		return nil
	})
	code, stdout, _ = sc.runCLI("status")
	if code != cli.ExitOK || !strings.Contains(stdout, "NAMESPACE") || !regexpMatch(`(?m)^`+sc.shop+`\s+Shadow\s+Shadow\s+fail\s+\S+/7d \(\d+%\)\s+0\s+0\s+-$`, stdout) {
		t.Errorf("status: exit %d:\n%s", code, stdout)
	}
	for _, format := range []string{"json", "yaml"} {
		code, stdout, _ := sc.runCLI("status", sc.shop, "-o", format)
		var got v1alpha1.NamespaceRollout
		if code != cli.ExitOK {
			t.Errorf("status -o %s: exit %d", format, code)
		} else if err := yaml.Unmarshal([]byte(stdout), &got); err != nil || got.Kind != "NamespaceRollout" || got.Spec.Namespace != sc.shop {
			t.Errorf("status -o %s does not read back as the rollout (%v):\n%s", format, err, stdout)
		}
	}
	code, stdout, _ = sc.runCLI("status", sc.shop)
	for _, want := range []string{"Phase:         Shadow", "The gate does not pass:", "only 0 connections observed, need 1000 [connections]", "Rollback:      Automatic on 10 policy drops within 1m0s"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status %s lacks %q:\n%s", sc.shop, want, stdout)
		}
	}
	if code, _, stderr := sc.runCLI("status", sc.shop, "--wait", "--for=ready", "--timeout", "300ms"); code != cli.ExitFindings || !strings.Contains(stderr, "timed out") {
		t.Errorf("status --wait on a failing gate: exit %d: %s", code, stderr)
	}
	if _, _, stderr := sc.runCLI("promote", sc.shop, "--force"); stderr != "" {
		t.Fatalf("promote: %s", stderr)
	}
	if code, stdout, stderr := sc.runCLI("status", sc.shop, "--wait", "--for=enforcing", "--timeout", "20s"); code != cli.ExitOK || !strings.Contains(stdout, "Phase:         Enforcing") {
		t.Errorf("status --wait --for=enforcing: exit %d: %s%s", code, stdout, stderr)
	}
}

// The schema rejects what the controller could not honour.
func TestCRDValidation(t *testing.T) {
	s := requireEnvtest(t)
	valid := func() *v1alpha1.NamespaceRollout {
		return &v1alpha1.NamespaceRollout{ObjectMeta: metav1.ObjectMeta{Name: "valid-ns"}, Spec: v1alpha1.NamespaceRolloutSpec{Namespace: "valid-ns"}}
	}
	cases := map[string]struct {
		edit func(*v1alpha1.NamespaceRollout)
		want string // substring of the API server's error
	}{
		"named after another namespace": {func(n *v1alpha1.NamespaceRollout) { n.Name = "other" }, "metadata.name must equal spec.namespace"},
		"soak window not in hours":      {func(n *v1alpha1.NamespaceRollout) { n.Spec.Soak.Window = &metav1.Duration{Duration: 90 * time.Minute} }, "window must be a whole number of hours"},
		"automatic without a window": {func(n *v1alpha1.NamespaceRollout) {
			n.Spec.Promotion.Policy = v1alpha1.PromoteAutomatically
		}, "automatic promotion needs at least one window"},
		"window over a week": {func(n *v1alpha1.NamespaceRollout) {
			n.Spec.Promotion.Windows = []v1alpha1.PromotionWindow{{Schedule: "@daily", Duration: metav1.Duration{Duration: 200 * time.Hour}}}
		}, "at most 168h"},
		"unknown mode":     {func(n *v1alpha1.NamespaceRollout) { n.Spec.Mode = "Audit" }, `Unsupported value: "Audit"`},
		"zero drops":       {func(n *v1alpha1.NamespaceRollout) { n.Spec.Rollback.Drops = -1 }, "spec.rollback.drops"},
		"bad namespace":    {func(n *v1alpha1.NamespaceRollout) { n.Name, n.Spec.Namespace = "Bad_NS", "Bad_NS" }, ""},
		"negative minimum": {func(n *v1alpha1.NamespaceRollout) { n.Spec.Soak.MinConnections = ptr.To[int64](-5) }, "spec.soak.minConnections"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n := valid()
			tc.edit(n)
			err := s.admin.Create(context.Background(), n, client.DryRunAll)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	n := valid()
	if err := s.admin.Create(context.Background(), n, client.DryRunAll); err != nil {
		t.Fatalf("a valid rollout is rejected: %v", err)
	}
	n = valid()
	if err := s.admin.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.admin.Delete(context.Background(), n) })
	n.Spec.Namespace = "moved"
	if err := s.admin.Update(context.Background(), n); err == nil || !strings.Contains(err.Error(), "namespace is immutable") {
		t.Errorf("moving a rollout to another namespace: %v", err)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// While enforcing, a new intent is compiled and applied without anyone asking.
func TestEnforcedNamespaceFollowsIntentChanges(t *testing.T) {
	sc := newScenario(t)
	sc.startController()
	sc.createRollout()
	before := sc.promoteForced().Status.Applied.Hash

	intent := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "k8s.otterize.com/v2alpha1", "kind": "ClientIntents",
		"metadata": map[string]any{"name": "debug", "namespace": sc.front},
		"spec": map[string]any{"workload": map[string]any{"name": "debug", "kind": "Pod"},
			"targets": []any{map[string]any{"kubernetes": map[string]any{"name": "cart." + sc.shop}}}},
	}}
	if err := sc.s.admin.Create(sc.ctx(), intent); err != nil {
		t.Fatal(err)
	}
	sc.eventually("the cart policy admits debug", func() error {
		p, ok := sc.managed()["shadowgate-allow-cart"]
		if !ok {
			return errors.New("shadowgate-allow-cart is missing")
		}
		if n := len(p.Spec.Ingress); n != 2 {
			return fmt.Errorf("%d ingress rules, want checkout's and debug's", n)
		}
		return nil
	})
	got := sc.waitPhase(v1alpha1.PhaseEnforcing)
	if got.Status.Applied.Hash == before {
		t.Errorf("status.applied.hash still %s after the intents changed", before)
	}
	sc.waitEvent("Normal PoliciesApplied: compiled policies changed")
}

// A node's traffic to a workload's pods on other nodes is judged by their policies for the
// whole soak: while an existing policy admits the nodes' addresses it is covered, and
// once that policy is deleted it is uncovered at once, although the same node's traffic
// to the workload's pod on it (the kubelet's probes, always admitted) keeps the edge it
// once shared with it covered.
func TestCrossNodeTrafficStaysJudgedByPolicies(t *testing.T) {
	sc := newScenario(t)
	sc.createFile(filepath.Join("testdata", "crossnode", "objects.yaml"))
	sc.startController()
	sc.createRollout()
	sc.covered(t0.Add(time.Minute), 50*time.Minute, 10)
	fromNode2 := func(label string) hubbletest.Endpoint {
		return hubbletest.Endpoint{IP: "192.168.0.2", Labels: []string{label}}
	}
	cartOnNode2 := sc.endpoint(sc.shop, "cart-7c9d8f6b5-m3n5b", "10.0.1.20")
	sc.send(append(
		// Observed at node-2, into its own cart pod: a probe.
		hubbletest.Series(5, t0.Add(2*time.Minute), 5*time.Minute, hubbletest.FlowSpec{UUID: "probe", Node: "node-2",
			Source: fromNode2("reserved:host"), Destination: cartOnNode2, DestPort: 8080, TCPFlagsSYN: true}),
		// Observed at node-1, from node-2: cross-node, admitted by allow-nodes.
		hubbletest.Series(5, t0.Add(3*time.Minute), 5*time.Minute, hubbletest.FlowSpec{UUID: "cross", Node: "node-1",
			Source: fromNode2("reserved:remote-node"), Destination: sc.cart(), DestPort: 8080, TCPFlagsSYN: true})...,
	)...)
	sc.step(65 * time.Minute)
	if got := sc.waitPhase(v1alpha1.PhaseReady); got.Status.UncoveredEdges != 0 {
		t.Fatalf("%d uncovered edges while allow-nodes admits the nodes", got.Status.UncoveredEdges)
	}

	allow := &networkingv1.NetworkPolicy{}
	if err := sc.s.admin.Get(sc.ctx(), client.ObjectKey{Namespace: sc.shop, Name: "allow-nodes"}, allow); err != nil {
		t.Fatal(err)
	}
	if err := sc.s.admin.Delete(sc.ctx(), allow); err != nil {
		t.Fatal(err)
	}
	sc.eventually("the cross-node edge fails the gate", func() error {
		if g := sc.get(); g.Status.UncoveredEdges != 1 || g.Status.Phase == v1alpha1.PhaseReady {
			return fmt.Errorf("phase %s, %d uncovered edges", g.Status.Phase, g.Status.UncoveredEdges)
		}
		return nil
	})
}
