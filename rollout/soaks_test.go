package rollout

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-logr/logr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/simulate/soak"
)

// A namespace at the default edge cap, seen over a whole week, still fits in its Secret:
// the controller refuses to write a snapshot over MaxSoakSnapshotBytes, so the cap and the
// limit must agree. Names are random so gzip gets no help from patterns.
func TestSoakSnapshotAtTheEdgeCapFitsInASecret(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store to the cap")
	}
	cfg := Default()
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0.Add(cfg.SoakHistory))
	s := NewSoaks(cfg, clk, nil, nil, logrDiscard(), nil)
	st, err := soak.New(s.storeOptions(), clk)
	if err != nil {
		t.Fatal(err)
	}
	st.Track("shop", t0)
	rnd := rand.New(rand.NewPCG(1, 2))
	name := func() string { return fmt.Sprintf("%x-%x", rnd.Uint64(), rnd.Uint32()) }
	servers := make([]string, 40)
	for i := range servers {
		servers[i] = name()
	}
	for i := 0; i < cfg.MaxEdgesPerNamespace; i++ {
		k := soak.EdgeKey{
			Source:      soak.Peer{Namespace: name()[:12], Workload: name(), Kind: "Deployment"},
			Destination: soak.Peer{Namespace: "shop", Workload: servers[rnd.IntN(len(servers))], Kind: "Deployment"},
			Protocol:    "TCP", Port: int32(1024 + rnd.IntN(60000)),
		}
		for h := 0; h < 24; h++ {
			at := t0.Add(time.Duration(rnd.Int64N(int64(cfg.SoakHistory))))
			st.Observe(k, at, soak.Verdict{Namespace: "shop", Uncovered: rnd.IntN(10) == 0, Reason: "no ClientIntents cover this call"})
		}
	}
	var b bytes.Buffer
	if err := st.Save(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d edges over %s: %d bytes (%.1f bytes/edge), limit %d", cfg.MaxEdgesPerNamespace, cfg.SoakHistory, b.Len(),
		float64(b.Len())/float64(cfg.MaxEdgesPerNamespace), MaxSoakSnapshotBytes)
	if b.Len() > MaxSoakSnapshotBytes {
		t.Errorf("snapshot of %d bytes exceeds the %d a Secret may hold: lower the default --max-edges-per-namespace", b.Len(), MaxSoakSnapshotBytes)
	}
}

func logrDiscard() logr.Logger { return logr.Discard() }
