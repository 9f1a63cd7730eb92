package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/evaluator/intents"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/demo"
)

func newSimulateCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Report the connections that enforcement would drop",
		Long: `simulate evaluates observed flows against the cluster's current NetworkPolicies and
against the policies enforcement would apply (compiled from ClientIntents), and reports the
connections the current set allows but the enforced set would deny.

With neither --cluster nor --flows it runs on the built-in demo shop.
By default every namespace that some ClientIntents target is enforced.

With --hubble, --mapper or --follow it runs until SIGINT/SIGTERM: it keeps each governed
namespace's edges over the soak window (--state persists them across restarts), serves
/report (this report plus gate results), /metrics, /healthz, /readyz and /ui on --listen, and
prints a refreshed summary.

Exit codes: 0 nothing would be dropped (long-running: stopped cleanly), 3 something would,
2 bad input, 1 internal error.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := optionsFrom(v)
			if err := o.Validate("table", "json"); err != nil {
				return err
			}
			if lo := liveOptionsFrom(v); lo.Live() {
				if err := lo.Validate(o); err != nil {
					return err
				}
				return runLive(cmd.Context(), cmd, o, lo)
			}
			return runSimulate(cmd.Context(), cmd, o)
		},
	}
	addClusterFlags(cmd.Flags())
	addEnforceFlags(cmd.Flags())
	addFlowFlags(cmd.Flags())
	addLiveFlags(cmd.Flags())
	cmd.Flags().StringP("output", "o", "table", "output format: table | json")
	return cmd
}

func runSimulate(ctx context.Context, cmd *cobra.Command, o Options) error {
	snap, src, counted, size, err := openCounted(cmd, o)
	if err != nil {
		return err
	}
	defer src.Close()
	if r, ok := src.(interface{ ReuseFlows() }); ok {
		// Observe keeps nothing of a Flow past its line (edges, counts and resolved pods
		// hold interned strings and cluster objects): one Flow serves the whole file.
		r.ReuseFlows()
	}
	reportSnapshot(cmd, o, snap)
	sim, err := simulate.New(snap, o.simulateOptions(snap, true))
	if err != nil {
		return badInput(err)
	}
	var bar *progress
	if counted.r != nil {
		bar = startProgress(cmd.ErrOrStderr(), o.Quiet, size, counted, 200*time.Millisecond)
	}
	err = drain(ctx, src, func(ev flows.Event) { sim.Observe(ev); bar.add() })
	bar.done()
	if err != nil {
		return err
	}
	rep := sim.Report()
	out := cmd.OutOrStdout()
	switch o.Output {
	case "json":
		if err := writeJSON(out, rep); err != nil {
			return err
		}
	default:
		if err := simulate.WriteTableStyled(out, rep, simulate.TableStyle{Color: useColor(out)}); err != nil {
			return err
		}
	}
	if err := strictCheck(o, rep.Flows); err != nil {
		return err
	}
	if rep.WouldDrop() {
		return errFindings
	}
	return nil
}

// strictCheck turns malformed and unresolvable flow lines into bad input under --strict.
func strictCheck(o Options, c simulate.FlowCounts) error {
	if !o.Strict {
		return nil
	}
	var bad int64
	for _, n := range c.Malformed {
		bad += n
	}
	bad += c.Skipped[simulate.SkipUnresolvedSource] + c.Skipped[simulate.SkipUnresolvedDest]
	if bad == 0 {
		return nil
	}
	msg := fmt.Sprintf("--strict: %d malformed or unresolvable flow lines", bad)
	if len(c.MalformedLines) > 0 {
		l := c.MalformedLines[0]
		msg += fmt.Sprintf(" (first: line %d: %s", l.Line, l.Reason)
		if l.Detail != "" {
			msg += ": " + l.Detail
		}
		msg += ")"
	}
	return badInput(errors.New(msg))
}

// reportSnapshot tells, with --verbose, what the snapshot held and what the loader warned
// about; --quiet or not, those are never errors.
func reportSnapshot(cmd *cobra.Command, o Options, snap *cluster.Snapshot) {
	if !o.Verbose || o.Quiet {
		return
	}
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "snapshot: %d namespaces, %d pods, %d workloads, %d services, %d NetworkPolicies, %d ClientIntents\n",
		len(snap.Namespaces), len(snap.Pods), len(snap.Workloads), len(snap.Services), len(snap.NetworkPolicies), len(snap.Intents))
	kinds := make([]string, 0, len(snap.Ignored))
	for k := range snap.Ignored {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "snapshot: ignored %d %s\n", snap.Ignored[k], k)
	}
	for _, warn := range snap.Warnings {
		fmt.Fprintln(w, "snapshot warning:", warn)
	}
}

func newEvaluateCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evaluate",
		Short: "Print the verdict on every flow line (JSON lines)",
		Long: `evaluate prints one JSON object per input flow line, in input order, with the verdict under
the policy set in force: the snapshot's NetworkPolicies plus, for each enforced namespace, the
compiled policies. With no --enforce it is plain NetworkPolicy evaluation of the snapshot.

Exit codes: 0 done, 2 bad input (or, with --strict, malformed flows), 1 internal error.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := optionsFrom(v)
			if err := o.Validate("jsonl"); err != nil {
				return err
			}
			if len(o.Cluster) == 0 || o.Flows == "" {
				return badInput(errors.New("evaluate needs --cluster and --flows"))
			}
			return runEvaluate(cmd.Context(), cmd, o)
		},
	}
	addClusterFlags(cmd.Flags())
	addEnforceFlags(cmd.Flags())
	addFlowFlags(cmd.Flags())
	cmd.Flags().StringP("output", "o", "jsonl", "output format: jsonl")
	return cmd
}

func runEvaluate(ctx context.Context, cmd *cobra.Command, o Options) error {
	snap, src, err := openInputs(cmd, o)
	if err != nil {
		return err
	}
	defer src.Close()
	sim, err := simulate.New(snap, o.simulateOptions(snap, false))
	if err != nil {
		return badInput(err)
	}
	w := newJSONLines(cmd.OutOrStdout())
	var werr error
	err = drain(ctx, src, func(ev flows.Event) {
		if werr != nil {
			return
		}
		werr = w.write(simulate.LineResult(ev, sim.Observe(ev)))
	})
	if err == nil {
		err = werr
	}
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		return err
	}
	return strictCheck(o, sim.Report().Flows)
}

func newCompileCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compile",
		Short: "Print the NetworkPolicies enforcement would apply",
		Long: `compile prints exactly the NetworkPolicies the controller would apply for the enforced
namespaces (by default every namespace some ClientIntents target): one allow policy per server
workload, a default-deny, allowances for external traffic and always-allowed peers, and egress
policies with --egress. Warnings go to standard error.

Exit codes: 0 done, 2 bad input, 1 internal error.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := optionsFrom(v)
			if err := o.Validate("yaml", "json"); err != nil {
				return err
			}
			if len(o.Cluster) == 0 {
				return badInput(errors.New("compile needs --cluster"))
			}
			snap, err := loadSnapshot(o)
			if err != nil {
				return err
			}
			co := o.compileOptions(snap, true)
			if err := co.Validate(); err != nil {
				return badInput(err)
			}
			res, err := compile.Compile(snap, co)
			if err != nil {
				return badInput(err)
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w.String())
			}
			return writePolicies(cmd.OutOrStdout(), o.Output, res.Policies)
		},
	}
	addClusterFlags(cmd.Flags())
	addEnforceFlags(cmd.Flags())
	cmd.Flags().StringP("output", "o", "yaml", "output format: yaml | json")
	return cmd
}

func newDemoCmd(_ *viper.Viper) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Write the built-in demo (cluster manifests and Hubble flows) to a directory",
		Long: `demo writes the embedded demo shop to DIR: DIR/cluster/*.yaml and DIR/flows.jsonl, the
inputs 'shadowgate simulate' uses when given none, so they can be inspected and edited.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return badInput(errors.New("demo needs -o DIR"))
			}
			if err := demo.WriteTo(dir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s/cluster and %s/flows.jsonl\nrun: shadowgate simulate --cluster %s/cluster --flows %s/flows.jsonl\n", dir, dir, dir, dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write into")
	return cmd
}

// openInputs loads the snapshot and opens the flow source; with neither given, the demo.
func openInputs(cmd *cobra.Command, o Options) (*cluster.Snapshot, flowSource, error) {
	if len(o.Cluster) == 0 && o.Flows == "" {
		snap, err := demo.Snapshot()
		if err != nil {
			return nil, nil, err
		}
		if len(o.Intents) > 0 {
			if err := overlayIntents(snap, o.Intents); err != nil {
				return nil, nil, err
			}
		}
		return snap, flows.NewReader("demo flows", demo.Flows()), nil
	}
	if len(o.Cluster) == 0 || o.Flows == "" {
		return nil, nil, badInput(errors.New("give both --cluster and --flows (or neither, for the built-in demo)"))
	}
	snap, err := loadSnapshot(o)
	if err != nil {
		return nil, nil, err
	}
	if o.Flows == "-" {
		return snap, flows.NewReader("stdin", cmd.InOrStdin()), nil
	}
	src, err := flows.OpenFile(o.Flows)
	if err != nil {
		return nil, nil, badInput(err)
	}
	return snap, src, nil
}

// openCounted opens the flows file behind a byte counter, for the progress line; other
// inputs (stdin, the demo) go through openInputs.
func openCounted(cmd *cobra.Command, o Options) (*cluster.Snapshot, flowSource, *countingReader, int64, error) {
	if o.Flows == "" || o.Flows == "-" || len(o.Cluster) == 0 {
		snap, src, err := openInputs(cmd, o)
		return snap, src, &countingReader{r: nil}, 0, err
	}
	snap, err := loadSnapshot(o)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	f, err := os.Open(o.Flows)
	if err != nil {
		return nil, nil, nil, 0, badInput(err)
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s: is a directory, want a file of Hubble flows", o.Flows)
		}
		return nil, nil, nil, 0, badInput(err)
	}
	cr := &countingReader{r: f}
	open := flows.NewReader
	if fi.Mode().IsRegular() {
		// The counter hides the file's type: a regular file never waits for a writer, so
		// it is read and parsed on the caller's goroutine, without a hand-off per batch.
		open = flows.NewPromptReader
	}
	return snap, closingSource{open(o.Flows, cr), f}, cr, fi.Size(), nil
}

// runSimulate opts the file's source in to ReuseFlows through this.
var _ interface{ ReuseFlows() } = closingSource{}

// closingSource closes the file under a reader-backed source.
type closingSource struct {
	*flows.FileSource
	f *os.File
}

func (c closingSource) Close() error {
	err := c.FileSource.Close()
	if ferr := c.f.Close(); err == nil {
		err = ferr
	}
	return err
}

type flowSource interface {
	flows.Source
	Close() error
}

func loadSnapshot(o Options) (*cluster.Snapshot, error) {
	snap, err := cluster.Load(o.Cluster...)
	if err != nil {
		return nil, badInput(err)
	}
	if len(o.Intents) > 0 {
		if err := overlayIntents(snap, o.Intents); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// overlayIntents loads ClientIntents from paths; each replaces the snapshot's ClientIntents
// of the same namespace/name, the rest are added. Other kinds in paths are ignored.
func overlayIntents(snap *cluster.Snapshot, paths []string) error {
	extra, err := cluster.Load(paths...)
	if err != nil {
		return badInput(err)
	}
	byKey := map[string]*intents.ClientIntents{}
	for _, ci := range snap.Intents {
		byKey[ci.Key()] = ci
	}
	for _, ci := range extra.Intents {
		byKey[ci.Key()] = ci
	}
	snap.Intents = snap.Intents[:0]
	for _, ci := range byKey {
		snap.Intents = append(snap.Intents, ci)
	}
	sort.Slice(snap.Intents, func(i, j int) bool { return snap.Intents[i].Key() < snap.Intents[j].Key() })
	return nil
}

// drain reads src to the end, handing every event to fn. A read error (not a malformed
// line, which is an event) is bad input.
func drain(ctx context.Context, src flows.Source, fn func(flows.Event)) error {
	for {
		ev, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			return badInput(err)
		}
		fn(ev)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writePolicies(w io.Writer, format string, ps []*networkingv1.NetworkPolicy) error {
	items := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		m, err := manifest(p)
		if err != nil {
			return err
		}
		items = append(items, m)
	}
	if format == "json" {
		return writeJSON(w, map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	}
	for _, m := range items {
		b, err := yaml.Marshal(m)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "---\n%s", b); err != nil {
			return err
		}
	}
	return nil
}

// manifest renders a policy as kubectl would want to apply it: with apiVersion and kind,
// without the zero creationTimestamp the typed struct would print.
func manifest(p *networkingv1.NetworkPolicy) (map[string]any, error) {
	cp := p.DeepCopy()
	cp.APIVersion, cp.Kind = "networking.k8s.io/v1", "NetworkPolicy"
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cp)
	if err != nil {
		return nil, err
	}
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(m, "status")
	return m, nil
}
