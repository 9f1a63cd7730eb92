package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
)

// The operations behind `shadowgate promote / rollback / init / status`. They work through
// any client (any kubeconfig and context), write only spec.mode and the request
// annotation, and leave the rest to the controller.

// ErrNotFound is returned when a namespace has no NamespaceRollout.
var ErrNotFound = errors.New("no NamespaceRollout")

// GateError is a promotion refused because the gate does not pass.
type GateError struct {
	Namespace string
	// Reasons are the gate's, as the controller last reported them.
	Reasons []v1alpha1.GateReason
}

func (e *GateError) Error() string {
	msg := fmt.Sprintf("the gate of namespace %s does not pass", e.Namespace)
	if len(e.Reasons) == 0 {
		return msg + " (the controller has not evaluated it yet)"
	}
	for _, r := range e.Reasons {
		msg += "\n  - " + r.Message + " [" + r.Code + "]"
	}
	return msg
}

// Get returns namespace's NamespaceRollout; the error wraps ErrNotFound when there is none.
func Get(ctx context.Context, c client.Client, namespace string) (*v1alpha1.NamespaceRollout, error) {
	var nsr v1alpha1.NamespaceRollout
	if err := c.Get(ctx, types.NamespacedName{Name: namespace}, &nsr); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w for namespace %s (create one with `shadowgate init %s`)", ErrNotFound, namespace, namespace)
		}
		return nil, fmt.Errorf("get NamespaceRollout %s: %w", namespace, err)
	}
	return &nsr, nil
}

// Promote asks for enforcement of namespace on behalf of by, for reason. Unless force is
// set it refuses with a *GateError when the gate the controller last evaluated does not
// pass. Promoting an enforced namespace changes nothing.
func Promote(ctx context.Context, c client.Client, namespace, by, reason string, force bool, now time.Time) (*v1alpha1.NamespaceRollout, error) {
	return setMode(ctx, c, namespace, v1alpha1.ModeRequest{Mode: v1alpha1.Enforce, By: by, Reason: reason, Force: force, Time: metav1.NewTime(now)},
		func(nsr *v1alpha1.NamespaceRollout) error {
			if force || (nsr.Status.Gate != nil && nsr.Status.Gate.Passed) {
				return nil
			}
			e := &GateError{Namespace: namespace}
			if nsr.Status.Gate != nil {
				e.Reasons = nsr.Status.Gate.Reasons
			}
			return e
		})
}

// Rollback asks for namespace to return to shadow mode.
func Rollback(ctx context.Context, c client.Client, namespace, by, reason string, now time.Time) (*v1alpha1.NamespaceRollout, error) {
	return setMode(ctx, c, namespace, v1alpha1.ModeRequest{Mode: v1alpha1.Shadow, By: by, Reason: reason, Time: metav1.NewTime(now)}, nil)
}

// setMode writes spec.mode and the request annotation in one merge patch guarded by the
// resourceVersion it read, retrying on conflicts with the controller's own writes.
func setMode(ctx context.Context, c client.Client, namespace string, req v1alpha1.ModeRequest, check func(*v1alpha1.NamespaceRollout) error) (*v1alpha1.NamespaceRollout, error) {
	var out *v1alpha1.NamespaceRollout
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		nsr, err := Get(ctx, c, namespace)
		if err != nil {
			return err
		}
		out = nsr
		if nsr.Spec.Mode == req.Mode && nsr.Status.Mode == req.Mode {
			return nil
		}
		if check != nil {
			if err := check(nsr); err != nil {
				return err
			}
		}
		raw, err := json.Marshal(req)
		if err != nil {
			return err
		}
		orig := nsr.DeepCopy()
		if nsr.Annotations == nil {
			nsr.Annotations = map[string]string{}
		}
		nsr.Annotations[v1alpha1.AnnotationModeRequest] = string(raw)
		nsr.Spec.Mode = req.Mode
		return c.Patch(ctx, nsr, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	})
	return out, err
}

// InitOptions are the settings `shadowgate init` lets one choose; everything else takes
// the CRD's defaults.
type InitOptions struct {
	Egress         bool
	SoakWindow     time.Duration // 0: the CRD's default
	MinConnections *int64
	// Windows make promotion automatic inside them.
	Windows  []v1alpha1.PromotionWindow
	TimeZone string
}

// Init creates namespace's NamespaceRollout. It fails when the namespace does not exist;
// an existing rollout is returned unchanged with created false.
func Init(ctx context.Context, c client.Client, namespace string, o InitOptions) (nsr *v1alpha1.NamespaceRollout, created bool, err error) {
	var ns corev1.Namespace
	if err := c.Get(ctx, types.NamespacedName{Name: namespace}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("namespace %s does not exist", namespace)
		}
		return nil, false, fmt.Errorf("get namespace %s: %w", namespace, err)
	}
	nsr = &v1alpha1.NamespaceRollout{
		ObjectMeta: metav1.ObjectMeta{Name: namespace},
		Spec:       v1alpha1.NamespaceRolloutSpec{Namespace: namespace, Mode: v1alpha1.Shadow, Egress: o.Egress},
	}
	if o.SoakWindow > 0 {
		nsr.Spec.Soak.Window = &metav1.Duration{Duration: o.SoakWindow}
	}
	if o.MinConnections != nil {
		nsr.Spec.Soak.MinConnections = o.MinConnections
	}
	if len(o.Windows) > 0 {
		nsr.Spec.Promotion = v1alpha1.PromotionSpec{Policy: v1alpha1.PromoteAutomatically, Windows: o.Windows, TimeZone: o.TimeZone}
		if _, err := ParseWindows(nsr.Spec.Promotion); err != nil {
			return nil, false, err
		}
	}
	if err := c.Create(ctx, nsr); err != nil {
		if apierrors.IsAlreadyExists(err) {
			existing, gerr := Get(ctx, c, namespace)
			if gerr != nil {
				return nil, false, gerr
			}
			return existing, false, nil
		}
		return nil, false, fmt.Errorf("create NamespaceRollout %s: %w", namespace, err)
	}
	return nsr, true, nil
}

// Condition is what Wait waits for.
type Condition string

const (
	// ForEnforcing: the policies are applied (phase Enforcing).
	ForEnforcing Condition = "enforcing"
	// ForReady: the gate passes (GatePassed is True).
	ForReady Condition = "ready"
)

// Met reports whether nsr satisfies cond, as of the controller's last report on the
// current generation.
func (cond Condition) Met(nsr *v1alpha1.NamespaceRollout) bool {
	if nsr.Status.ObservedGeneration < nsr.Generation {
		return false
	}
	switch cond {
	case ForEnforcing:
		return nsr.Status.Phase == v1alpha1.PhaseEnforcing
	case ForReady:
		return meta.IsStatusConditionTrue(nsr.Status.Conditions, v1alpha1.ConditionGatePassed)
	}
	return false
}

// ErrWaitTimeout is returned by Wait when the condition was not met in time.
var ErrWaitTimeout = errors.New("timed out")

// Wait polls namespace's rollout every interval until cond is met, ctx ends, or timeout
// passes on clk; it returns the last rollout read.
func Wait(ctx context.Context, c client.Client, namespace string, cond Condition, timeout, interval time.Duration, clk clock.WithTicker) (*v1alpha1.NamespaceRollout, error) {
	deadline := clk.Now().Add(timeout)
	t := clk.NewTicker(interval)
	defer t.Stop()
	for {
		nsr, err := Get(ctx, c, namespace)
		if err != nil {
			return nil, err
		}
		if cond.Met(nsr) {
			return nsr, nil
		}
		if !clk.Now().Before(deadline) {
			return nsr, fmt.Errorf("%w after %s waiting for namespace %s to be %s (phase %s)", ErrWaitTimeout, timeout, namespace, cond, nsr.Status.Phase)
		}
		select {
		case <-ctx.Done():
			return nsr, ctx.Err()
		case <-t.C():
		}
	}
}
