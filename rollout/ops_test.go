package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
)

var opsNow = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func fakeClient(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(objs...).WithStatusSubresource(&v1alpha1.NamespaceRollout{}).Build()
}

func rolloutWith(spec v1alpha1.Mode, status v1alpha1.Mode, gate *v1alpha1.GateStatus) *v1alpha1.NamespaceRollout {
	return &v1alpha1.NamespaceRollout{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec:       v1alpha1.NamespaceRolloutSpec{Namespace: "shop", Mode: spec},
		Status:     v1alpha1.NamespaceRolloutStatus{Mode: status, Gate: gate},
	}
}

func requestOf(t *testing.T, nsr *v1alpha1.NamespaceRollout) *v1alpha1.ModeRequest {
	t.Helper()
	raw, ok := nsr.Annotations[v1alpha1.AnnotationModeRequest]
	if !ok {
		return nil
	}
	var r v1alpha1.ModeRequest
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestPromote(t *testing.T) {
	failing := &v1alpha1.GateStatus{Passed: false, Reasons: []v1alpha1.GateReason{{Code: "uncovered", Message: "1 uncovered edge"}}}
	passing := &v1alpha1.GateStatus{Passed: true}
	cases := map[string]struct {
		nsr     *v1alpha1.NamespaceRollout
		force   bool
		wantErr error // matched with errors.As / errors.Is
		want    *v1alpha1.ModeRequest
	}{
		"gate passes": {
			nsr:  rolloutWith(v1alpha1.Shadow, v1alpha1.Shadow, passing),
			want: &v1alpha1.ModeRequest{Mode: v1alpha1.Enforce, By: "alice", Reason: "ready", Time: metav1.NewTime(opsNow)},
		},
		"gate fails": {
			nsr:     rolloutWith(v1alpha1.Shadow, v1alpha1.Shadow, failing),
			wantErr: &GateError{},
		},
		"gate never evaluated": {
			nsr:     rolloutWith(v1alpha1.Shadow, v1alpha1.Shadow, nil),
			wantErr: &GateError{},
		},
		"gate fails, forced": {
			nsr: rolloutWith(v1alpha1.Shadow, v1alpha1.Shadow, failing), force: true,
			want: &v1alpha1.ModeRequest{Mode: v1alpha1.Enforce, By: "alice", Reason: "ready", Force: true, Time: metav1.NewTime(opsNow)},
		},
		"blocked request, now forced": {
			nsr: rolloutWith(v1alpha1.Enforce, v1alpha1.Shadow, failing), force: true,
			want: &v1alpha1.ModeRequest{Mode: v1alpha1.Enforce, By: "alice", Reason: "ready", Force: true, Time: metav1.NewTime(opsNow)},
		},
		"already enforced": {
			nsr: rolloutWith(v1alpha1.Enforce, v1alpha1.Enforce, failing),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := fakeClient(tc.nsr)
			_, err := Promote(context.Background(), c, "shop", "alice", "ready", tc.force, opsNow)
			var ge *GateError
			switch {
			case tc.wantErr != nil && !errors.As(err, &ge):
				t.Fatalf("err = %v, want a GateError", err)
			case tc.wantErr == nil && err != nil:
				t.Fatal(err)
			}
			got, err := Get(context.Background(), c, "shop")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, requestOf(t, got)); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			wantMode := tc.nsr.Spec.Mode
			if tc.want != nil {
				wantMode = tc.want.Mode
			}
			if got.Spec.Mode != wantMode {
				t.Errorf("spec.mode = %s, want %s", got.Spec.Mode, wantMode)
			}
		})
	}
}

func TestGateErrorListsReasons(t *testing.T) {
	err := &GateError{Namespace: "shop", Reasons: []v1alpha1.GateReason{{Code: "uncovered", Message: "1 uncovered edge"}, {Code: "tracking", Message: "tracked for 1h of 7d"}}}
	want := "the gate of namespace shop does not pass\n  - 1 uncovered edge [uncovered]\n  - tracked for 1h of 7d [tracking]"
	if err.Error() != want {
		t.Errorf("got %q\nwant %q", err.Error(), want)
	}
}

func TestRollbackAndNotFound(t *testing.T) {
	c := fakeClient(rolloutWith(v1alpha1.Enforce, v1alpha1.Enforce, nil))
	if _, err := Rollback(context.Background(), c, "shop", "bob", "errors", opsNow); err != nil {
		t.Fatal(err)
	}
	got, _ := Get(context.Background(), c, "shop")
	want := &v1alpha1.ModeRequest{Mode: v1alpha1.Shadow, By: "bob", Reason: "errors", Time: metav1.NewTime(opsNow)}
	if diff := cmp.Diff(want, requestOf(t, got)); diff != "" || got.Spec.Mode != v1alpha1.Shadow {
		t.Errorf("spec.mode %s, request (-want +got):\n%s", got.Spec.Mode, diff)
	}
	if _, err := Rollback(context.Background(), c, "nowhere", "bob", "", opsNow); !errors.Is(err, ErrNotFound) {
		t.Errorf("rollback of an ungoverned namespace: %v, want ErrNotFound", err)
	}
}

func TestInit(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
	c := fakeClient(ns)
	min := int64(50)
	nsr, created, err := Init(context.Background(), c, "shop", InitOptions{SoakWindow: 24 * time.Hour, MinConnections: &min,
		Windows: []v1alpha1.PromotionWindow{{Schedule: "0 9 * * 1-5", Duration: metav1.Duration{Duration: 2 * time.Hour}}}, TimeZone: "Europe/Paris"})
	if err != nil || !created {
		t.Fatalf("created %t, %v", created, err)
	}
	want := v1alpha1.NamespaceRolloutSpec{Namespace: "shop", Mode: v1alpha1.Shadow,
		Soak: v1alpha1.SoakSpec{Window: &metav1.Duration{Duration: 24 * time.Hour}, MinConnections: &min},
		Promotion: v1alpha1.PromotionSpec{Policy: v1alpha1.PromoteAutomatically, TimeZone: "Europe/Paris",
			Windows: []v1alpha1.PromotionWindow{{Schedule: "0 9 * * 1-5", Duration: metav1.Duration{Duration: 2 * time.Hour}}}}}
	if diff := cmp.Diff(want, nsr.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if _, created, err := Init(context.Background(), c, "shop", InitOptions{Egress: true}); err != nil || created {
		t.Errorf("second init: created %t, %v; want the existing rollout", created, err)
	}
	if _, _, err := Init(context.Background(), c, "nowhere", InitOptions{}); err == nil {
		t.Error("init of a namespace that does not exist succeeded")
	}
	if _, _, err := Init(context.Background(), c, "shop", InitOptions{Windows: []v1alpha1.PromotionWindow{{Schedule: "@every 1h", Duration: metav1.Duration{Duration: time.Hour}}}}); err == nil {
		t.Error("init with an unusable window succeeded")
	}
}

func TestWait(t *testing.T) {
	enforcing := rolloutWith(v1alpha1.Enforce, v1alpha1.Enforce, nil)
	enforcing.Status.Phase = v1alpha1.PhaseEnforcing
	stale := enforcing.DeepCopy()
	stale.Generation, stale.Status.ObservedGeneration = 3, 2

	t.Run("met", func(t *testing.T) {
		clk := clocktesting.NewFakeClock(opsNow)
		got, err := Wait(context.Background(), fakeClient(enforcing), "shop", ForEnforcing, time.Minute, time.Second, clk)
		if err != nil || got.Status.Phase != v1alpha1.PhaseEnforcing {
			t.Fatalf("%v, %v", got, err)
		}
	})
	t.Run("times out on a status older than the spec", func(t *testing.T) {
		clk := clocktesting.NewFakeClock(opsNow)
		done := make(chan error, 1)
		go func() {
			_, err := Wait(context.Background(), fakeClient(stale), "shop", ForEnforcing, 10*time.Second, time.Second, clk)
			done <- err
		}()
		for i := 0; i < 100; i++ {
			select {
			case err := <-done:
				if !errors.Is(err, ErrWaitTimeout) {
					t.Fatalf("err = %v, want ErrWaitTimeout", err)
				}
				return
			default:
			}
			if clk.HasWaiters() {
				clk.Step(time.Second)
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatal("Wait did not time out after 100 steps")
	})
}
