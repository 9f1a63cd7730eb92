package simulate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/evaluator/intents"
	"github.com/shadowgate/shadowgate/flows/hubble"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
)

// TestLiveUpdateIntentAdded is TestLiveHubbleSoakThenIntentAdded with the reload applied
// in place: the missing intent arrives through Live.Update, the stored edge is re-judged
// at once, and the simulator is the same one, updated.
func TestLiveUpdateIntentAdded(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	snap := loadTestSnapshot(t)
	l := newLive(t, snap, clk, "")
	sim := l.sim

	web := hubbletest.Endpoint{Namespace: "web", Pod: "web-0", IP: "10.1.1.10"}
	api := hubbletest.Endpoint{Namespace: "api", Pod: "api-0", IP: "10.1.2.10"}
	batch := hubbletest.Endpoint{Namespace: "api", Pod: "batch-0", IP: "10.1.2.20"}
	covered := hubbletest.Series(20, t0.Add(time.Minute), time.Minute, specs(1, t0, web, api, "web")[0])
	uncovered := hubbletest.Series(3, t0.Add(90*time.Second), 5*time.Minute, specs(1, t0, batch, api, "batch")[0])
	srv := hubbletest.Start(t, hubbletest.Steady(append(covered, uncovered...)))

	cfg := hubble.Default()
	cfg.Address = srv.Addr()
	src, err := hubble.New(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, NamedSource{Name: "hubble", Source: src}) }()
	waitFor(t, "23 evaluated flows", func() bool { return l.Report().Flows.Evaluated == 23 })

	clk.SetTime(t0.Add(61 * time.Minute))
	if diff := cmp.Diff([]string{"uncovered"}, gateCodes(t, l, "api")); diff != "" {
		t.Fatalf("gate reasons before the intent (-want +got):\n%s", diff)
	}

	batchIntents := &intents.ClientIntents{Namespace: "api", Name: "batch", Client: intents.Workload{Name: "batch-0", Kind: "Pod"},
		Targets: []intents.Target{{Type: intents.TargetWorkload, Name: "api-0", Namespace: "api", Kind: "Pod", Raw: "api-0"}}}
	next, _ := compile.ReplaceIntents(snap, []*intents.ClientIntents{batchIntents}, nil)
	opts := DefaultOptions()
	opts.Compile.Namespaces = []string{"api"}
	other := opts
	other.Compile.Namespaces = []string{"api", "web"}
	if _, err := l.Update(next, other); !errors.Is(err, ErrRebuild) {
		t.Fatalf("Update with other namespaces: %v, want ErrRebuild", err)
	}
	if _, err := l.Update(next, opts); err != nil {
		t.Fatal(err)
	}
	if l.sim != sim {
		t.Error("Update replaced the simulator")
	}
	if codes := gateCodes(t, l, "api"); len(codes) != 0 {
		t.Fatalf("gate after the intent was added: %v, want pass", codes)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
}
