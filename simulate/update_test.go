package simulate

import (
	"errors"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// TestLiveUpdateIntentAdded is TestLiveHubbleSoakThenIntentAdded with the reload applied
// in place: the missing intent arrives through Live.Update, the stored edge is re-judged
// at once, and the simulator is the same one, updated.
func TestLiveUpdateIntentAdded(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	snap := loadTestSnapshot(t)
	l := newLive(t, snap, clk, "")
	sim := l.sim
	stop := soakWithUncoveredBatch(t, l, clk)
	defer stop()

	next, _ := compile.ReplaceIntents(snap, []*intents.ClientIntents{batchIntents()}, nil)
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
}
