package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/demo"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// TestReloadLive: a reload that changes only ClientIntents updates the simulator in
// place, one that changes what is enforced rebuilds it, and either way the stored edges
// are judged again at once.
func TestReloadLive(t *testing.T) {
	snap, err := demo.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	opts := simulate.DefaultOptions()
	opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
	sim, err := simulate.New(snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	live, _, err := simulate.NewLive(sim, soak.DefaultOptions(), simulate.LiveConfig{Gate: soak.DefaultGateConfig(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	src := flows.NewReader("demo", demo.Flows())
	defer src.Close()
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		live.Observe("demo", ev)
	}
	uncovered := func() int { return len(live.Report().Uncovered) }
	before := uncovered()

	var log strings.Builder
	logf := func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }

	// The checkout team's ClientIntents disappear: their calls are uncovered at once.
	var key string
	for _, ci := range snap.Intents {
		if ci.Client.Name == "checkout" {
			key = ci.Key()
		}
	}
	if key == "" {
		t.Fatal("the demo has no ClientIntents for checkout")
	}
	without, _ := compile.ReplaceIntents(snap, nil, []string{key})
	if err := reloadLive(live, without, opts, logf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "in place") {
		t.Errorf("log = %q, want an update in place", log.String())
	}
	if got := uncovered(); got <= before {
		t.Errorf("uncovered edges after removing %s: %d, want more than %d", key, got, before)
	}

	// Back, with one namespace fewer enforced: a new simulator, same edges as at first
	// in the namespaces still enforced.
	log.Reset()
	fewer := opts
	fewer.Compile.Namespaces = opts.Compile.Namespaces[1:]
	if err := reloadLive(live, snap, fewer, logf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "recompiled") {
		t.Errorf("log = %q, want a rebuild", log.String())
	}
	log.Reset()
	if err := reloadLive(live, snap, opts, logf); err != nil {
		t.Fatal(err)
	}
	if got := uncovered(); got != before {
		t.Errorf("uncovered edges after restoring everything: %d, want %d", got, before)
	}
}
