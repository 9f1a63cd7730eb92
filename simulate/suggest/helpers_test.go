package suggest_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/demo"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// checkGolden compares got with testdata/<name>, or rewrites it under -update.
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

// demoInputs returns the demo's manifests as read (for their ClientIntents) and its
// simulation report with every targeted namespace enforced, as `shadowgate simulate` runs.
func demoInputs(t *testing.T) (*cluster.Objects, *simulate.Report) {
	t.Helper()
	dir := t.TempDir()
	if err := demo.WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	objs, err := cluster.LoadObjects(filepath.Join(dir, "cluster"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := cluster.Build(objs)
	if err != nil {
		t.Fatal(err)
	}
	return objs, simulateAll(t, snap, nil, demo.Flows())
}

// simulateAll judges every line of r. namespaces nil means every targeted namespace.
func simulateAll(t *testing.T, snap *cluster.Snapshot, opts *simulate.Options, r io.Reader) *simulate.Report {
	t.Helper()
	o := simulate.DefaultOptions()
	if opts != nil {
		o = *opts
	}
	if len(o.Compile.Namespaces) == 0 {
		o.Compile.Namespaces = compile.TargetedNamespaces(snap)
	}
	sim, err := simulate.New(snap, o)
	if err != nil {
		t.Fatal(err)
	}
	src := flows.NewReader("test flows", r)
	defer src.Close()
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sim.Observe(ev)
	}
	return sim.Report()
}

func stream(t *testing.T, emit func(io.Writer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := emit(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
