package rollout

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

func intentsObject(ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion("k8s.otterize.com/v2beta1")
	u.SetKind("ClientIntents")
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// One team's broken ClientIntents must not stop the model: it is left out and named.
func TestBuildLenientLeavesOutRejectedObjects(t *testing.T) {
	good := intentsObject("shop", "checkout", map[string]any{
		"workload": map[string]any{"name": "checkout"},
		"targets":  []any{map[string]any{"kubernetes": map[string]any{"name": "cart"}}},
	})
	bad := intentsObject("shop", "typo", map[string]any{"workload": "not-an-object"})
	elsewhere := intentsObject("front", "also-bad", map[string]any{"targets": "nope"})
	o := &cluster.Objects{
		Namespaces:    []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, {ObjectMeta: metav1.ObjectMeta{Name: "front"}}},
		ClientIntents: []*unstructured.Unstructured{good, bad, elsewhere},
	}
	snap, excluded, err := buildLenient(o)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, ci := range snap.Intents {
		keys = append(keys, ci.Key())
	}
	if diff := cmp.Diff([]string{"shop/checkout"}, keys); diff != "" {
		t.Errorf("intents in the model (-want +got):\n%s", diff)
	}
	if len(excluded) != 2 || !strings.HasPrefix(excluded[0], "ClientIntents front/also-bad: ") || !strings.HasPrefix(excluded[1], "ClientIntents shop/typo: ") {
		t.Fatalf("excluded = %q, want both bad ClientIntents named with their errors", excluded)
	}
	s := &Snapshot{Snapshot: snap, Excluded: excluded}
	if got := s.excludedIn("shop"); len(got) != 1 || !strings.Contains(got[0], "shop/typo") {
		t.Errorf("excludedIn(shop) = %q", got)
	}
	if got := s.excludedIn("default"); len(got) != 0 {
		t.Errorf("excludedIn(default) = %q, want none", got)
	}
	if len(o.ClientIntents) != 3 {
		t.Error("buildLenient modified its input")
	}
}

// stubCache serves empty lists from synced informers.
type stubCache struct {
	cache.Cache
	lists atomic.Int32
}

func (c *stubCache) List(context.Context, client.ObjectList, ...client.ListOption) error {
	c.lists.Add(1)
	return nil
}

func (c *stubCache) WaitForCacheSync(context.Context) bool { return true }

// A burst of changes costs one rebuild, after the debounce delay on the injected clock.
func TestSnapshotterDebounces(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC))
	s := NewSnapshotter(&stubCache{}, meta.NewDefaultRESTMapper(nil), clk, 2*time.Second, logr.Discard())
	built := make(chan uint64, 10)
	s.Subscribe(func(snap *Snapshot) { built <- snap.Rev })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	waitTimer := func() {
		t.Helper()
		for i := 0; !clk.HasWaiters(); i++ {
			if i == 5000 {
				t.Fatal("the rebuild loop never waited on the clock")
			}
			time.Sleep(time.Millisecond)
		}
	}
	expect := func(rev uint64) {
		t.Helper()
		select {
		case got := <-built:
			if got != rev {
				t.Fatalf("rebuild %d, want %d", got, rev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no rebuild %d", rev)
		}
	}

	// The first build waits out the debounce too.
	waitTimer()
	for range 5 {
		s.Changed()
	}
	select {
	case rev := <-built:
		t.Fatalf("rebuild %d before the debounce delay passed", rev)
	default:
	}
	clk.Step(2 * time.Second)
	expect(1)

	for burst := uint64(2); burst <= 3; burst++ {
		for range 100 {
			s.Changed()
		}
		waitTimer()
		clk.Step(2 * time.Second)
		expect(burst)
	}
	if got := s.Current(); got == nil || got.Rev != 3 {
		t.Errorf("Current() = %+v, want rev 3", got)
	}
	select {
	case rev := <-built:
		t.Errorf("an extra rebuild %d", rev)
	default:
	}
}
