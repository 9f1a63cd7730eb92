package ui_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	demopkg "github.com/shadowgate/shadowgate/simulate/demo"
	"github.com/shadowgate/shadowgate/simulate/suggest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// demo is the demo's report and suggestions, computed once: the simulation of a day of
// flows is the slowest part of these tests, and every test only reads the result.
var demo struct {
	once sync.Once
	rep  *simulate.Report
	sug  *suggest.Result
	err  error
}

// demoReport simulates the demo as `shadowgate report` does and suggests with its
// ClientIntents.
func demoReport(t testing.TB) (*simulate.Report, *suggest.Result) {
	t.Helper()
	demo.once.Do(func() { demo.rep, demo.sug, demo.err = simulateDemo() })
	if demo.err != nil {
		t.Fatal(demo.err)
	}
	return demo.rep, demo.sug
}

func simulateDemo() (*simulate.Report, *suggest.Result, error) {
	dir, err := os.MkdirTemp("", "shadowgate-ui-demo-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	if err := demopkg.WriteTo(dir); err != nil {
		return nil, nil, err
	}
	objs, err := cluster.LoadObjects(filepath.Join(dir, "cluster"))
	if err != nil {
		return nil, nil, err
	}
	snap, err := cluster.Build(objs)
	if err != nil {
		return nil, nil, err
	}
	o := simulate.DefaultOptions()
	o.Compile.Namespaces = compile.TargetedNamespaces(snap)
	sim, err := simulate.New(snap, o)
	if err != nil {
		return nil, nil, err
	}
	src := flows.NewReader("demo", demopkg.Flows())
	defer src.Close()
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		sim.Observe(ev)
	}
	rep := sim.Report()
	res, err := suggest.Suggest(rep, suggest.FromObjects(objs), suggest.Options{})
	return rep, res, err
}

// bigReport is a synthetic report of a large cluster, shaped like one: edge namespaces
// call team namespaces, teams call a few other teams and the shared platform namespaces
// (auth, databases, queues), and some calls are uncovered. Namespaces hold 4 to 30
// workloads, workloads in all. Deterministic.
func bigReport(workloads int) *simulate.Report {
	r := rand.New(rand.NewPCG(500, 1))
	type ns struct {
		name  string
		peers []simulate.Peer
	}
	var all []*ns
	total := 0
	for i := 0; total < workloads; i++ {
		name := fmt.Sprintf("team-%02d", i)
		switch {
		case i < 3:
			name = fmt.Sprintf("edge-%d", i)
		case i%9 == 4:
			name = fmt.Sprintf("platform-%d", i/9)
		}
		n := &ns{name: name}
		for j := 0; j < 4+r.IntN(27) && total < workloads; j++ {
			n.peers = append(n.peers, simulate.Peer{Namespace: name, Workload: fmt.Sprintf("%s-svc-%02d", name, j), Kind: "Deployment"})
			total++
		}
		all = append(all, n)
	}
	var platform, teams []*ns
	for _, n := range all {
		switch {
		case strings.HasPrefix(n.name, "platform-"):
			platform = append(platform, n)
		case strings.HasPrefix(n.name, "team-"):
			teams = append(teams, n)
		}
	}
	pick := func(n *ns) simulate.Peer { return n.peers[r.IntN(len(n.peers))] }
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	rep := &simulate.Report{Flows: simulate.FlowCounts{Read: 1e6, Evaluated: 9e5}}
	seen := map[string]bool{}
	// A few percent uncovered, as a cluster whose teams mostly wrote their intents.
	status := func() simulate.EdgeStatus {
		switch n := r.IntN(100); {
		case n < 4:
			return simulate.StatusWouldDrop
		case n < 6:
			return simulate.StatusDenied
		case n < 16:
			return simulate.StatusOpen
		}
		return simulate.StatusCovered
	}
	add := func(src, dst simulate.Peer) {
		e := simulate.Edge{Source: src, Destination: dst, Protocol: "TCP", Port: int32(8000 + r.IntN(4)*10), Status: status()}
		k := suggest.EdgeKey(e)
		if seen[k] || src == dst {
			return
		}
		seen[k] = true
		e.Count, e.FirstSeen, e.LastSeen = int64(1+r.IntN(5000)), at, at.Add(time.Duration(r.IntN(86400))*time.Second)
		rep.Edges = append(rep.Edges, e)
		if e.Status == simulate.StatusWouldDrop {
			e.Reason = "no ClientIntents cover this call"
			rep.Uncovered = append(rep.Uncovered, e)
		}
	}
	for ti, n := range all {
		for _, src := range n.peers {
			switch {
			case strings.HasPrefix(n.name, "edge-"):
				add(src, pick(teams[r.IntN(len(teams))]))
			case strings.HasPrefix(n.name, "team-"):
				add(src, pick(n)) // within the team
				if later := teams[min(len(teams)-1, indexOf(teams, n)+1+r.IntN(3)):]; len(later) > 0 && later[0] != n {
					add(src, pick(later[r.IntN(len(later))]))
				}
				add(src, pick(platform[r.IntN(len(platform))]))
			default: // platform: databases behind the auth service
				if ti%2 == 0 {
					add(src, pick(n))
				}
			}
		}
	}
	for i := 0; i < 20; i++ {
		dst := pick(all[r.IntN(3)])
		add(simulate.Peer{Kind: simulate.KindExternal, CIDR: fmt.Sprintf("198.51.%d.0/24", i)}, dst)
	}
	var peers []simulate.Peer
	for _, n := range all {
		peers = append(peers, n.peers...)
	}
	nsSeen := map[string]bool{}
	for _, p := range peers {
		if !nsSeen[p.Namespace] {
			nsSeen[p.Namespace] = true
			rep.Enforced = append(rep.Enforced, p.Namespace)
			rep.Namespaces = append(rep.Namespaces, simulate.NamespaceReport{Namespace: p.Namespace, Enforced: true, Connections: int64(r.IntN(10000))})
		}
	}
	return rep
}

func indexOf[T comparable](l []T, x T) int {
	for i, y := range l {
		if y == x {
			return i
		}
	}
	return -1
}
