package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/simulate/bench"
)

func newBenchCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate cluster-scale workloads and measure shadowgate against them",
		Long: `bench generates deterministic clusters, ClientIntents and Hubble flows of a given size
(profile S, M or L) and measures shadowgate against them. BENCHMARKS.md records the figures.`,
		Args: exactArgs(0),
	}
	cmd.AddCommand(newBenchGenCmd(v), newBenchRunCmd(v))
	return cmd
}

// benchOptions is the configuration of the bench commands.
type benchOptions struct {
	Profile   string // --profile: S, M or L
	Seed      uint64 // --seed
	Flows     int    // --flows: lines to write or replay; -1 for the profile's default
	Dir       string // gen -o: directory to write into
	Output    string // run -o: table or json
	FlowsFile string // run --flows-file
	Scaling   bool   // run --scaling
	HotPath   int    // run --hot-path-ops
	// run --memory-profile and --memory-edges: the daemon state measured in a child
	// process ("" and 0 for the defaults, L and 1,000,000).
	MemoryProfile string
	MemoryEdges   int
}

func addBenchFlags(cmd *cobra.Command, defaultProfile string) {
	cmd.Flags().String("profile", defaultProfile, "cluster size: S (500 pods), M (20,000 pods) or L (100,000 pods)")
	cmd.Flags().Uint64("seed", 1, "generator seed: the same profile and seed give the same bytes")
	cmd.Flags().Int("flows", -1, "flow lines (default: the profile's, 10,000,000 for M when generating, at most 1,000,000 when running)")
}

func benchOptionsFrom(v *viper.Viper) benchOptions {
	return benchOptions{
		Profile:   v.GetString("profile"),
		Seed:      v.GetUint64("seed"),
		Flows:     v.GetInt("flows"),
		Dir:       v.GetString("output"),
		Output:    v.GetString("output"),
		FlowsFile: v.GetString("flows-file"),
		Scaling:   v.GetBool("scaling"),
		HotPath:   v.GetInt("hot-path-ops"),

		MemoryProfile: v.GetString("memory-profile"),
		MemoryEdges:   v.GetInt("memory-edges"),
	}
}

// validate reports every bad field at once; outputs lists the formats the command takes
// (none for gen, whose -o is a directory).
func (o benchOptions) validate(outputs ...string) (bench.Profile, error) {
	var errs []error
	p, err := bench.ProfileByName(o.Profile)
	if err != nil {
		errs = append(errs, fmt.Errorf("--profile: %w", err))
	}
	if o.Flows < -1 {
		errs = append(errs, fmt.Errorf("--flows %d: must be at least 0", o.Flows))
	}
	if o.HotPath < 0 {
		errs = append(errs, fmt.Errorf("--hot-path-ops %d: must be at least 1", o.HotPath))
	}
	if o.MemoryProfile != "" {
		if _, err := bench.ProfileByName(o.MemoryProfile); err != nil {
			errs = append(errs, fmt.Errorf("--memory-profile: %w", err))
		}
	}
	if o.MemoryEdges < 0 {
		errs = append(errs, fmt.Errorf("--memory-edges %d: must be at least 1", o.MemoryEdges))
	}
	if len(outputs) > 0 && !contains(outputs, o.Output) {
		errs = append(errs, fmt.Errorf("-o %q: must be one of table, json", o.Output))
	}
	if len(outputs) == 0 && o.Dir == "" {
		errs = append(errs, errors.New("bench gen needs -o DIR"))
	}
	if len(errs) > 0 {
		return bench.Profile{}, badInput(errors.Join(errs...))
	}
	return p, nil
}

func newBenchGenCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Write a generated cluster, its ClientIntents and Hubble flows to a directory",
		Long: `gen writes DIR/cluster/*.yaml (namespaces, workloads, pods, Services, NetworkPolicies and
ClientIntents) and DIR/flows.jsonl (Hubble jsonpb lines, streamed, so any --flows fits in memory).
The same profile and seed always give the same bytes.

Exit codes: 0 done, 2 bad input, 1 internal error (cannot write).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := benchOptionsFrom(v)
			p, err := o.validate()
			if err != nil {
				return err
			}
			n := o.Flows
			if n < 0 {
				n = p.Flows
			}
			w := bench.Generate(p, o.Seed)
			if err := w.WriteDir(o.Dir, n); err != nil {
				return err
			}
			cluster, flows := filepath.Join(o.Dir, bench.ClusterDir), filepath.Join(o.Dir, bench.FlowsFile)
			fmt.Fprintf(cmd.OutOrStdout(), "wrote profile %s (seed %d): %s and %s (%d lines)\nrun: shadowgate simulate --cluster %s --flows %s\n",
				p.Name, o.Seed, cluster, flows, n, cluster, flows)
			return nil
		},
	}
	addBenchFlags(cmd, "S")
	cmd.Flags().StringP("output", "o", "", "directory to write into (created if needed)")
	return cmd
}

func newBenchRunCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Measure shadowgate on a generated cluster and print the figures",
		Long: `run generates a profile in memory and measures: the full compile, an end-to-end replay of a
flow file on one core, the verdict hot path, the Oracle on the same connections (which must agree),
incremental pod, policy and intent updates, gRPC ingest from a test server in a child process
(the CPU counted is shadowgate's), peak RSS, and memory in a child process. With --scaling it also
replays profiles S, M and L to compare the cost per flow, and profile M with a tenth and ten times
its policies to compare it against the number of policies. Each figure is printed with its target
from issue 7.

Figures are CPU time where the platform reports it: on a shared machine wall time measures the
neighbours too. The load average at start and end is printed with them.

Exit codes: 0 measured (whatever the figures), 2 bad input, 1 internal error.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := benchOptionsFrom(v)
			p, err := o.validate("table", "json")
			if err != nil {
				return err
			}
			ro := bench.DefaultRunOptions(p)
			ro.Seed, ro.FlowsFile, ro.Scaling, ro.Clock = o.Seed, o.FlowsFile, o.Scaling, clock.RealClock{}
			if o.Flows > 0 {
				ro.Flows = o.Flows
			}
			if o.HotPath > 0 {
				ro.HotPathOps = o.HotPath
			}
			if o.MemoryProfile != "" {
				ro.MemoryProfile, _ = bench.ProfileByName(o.MemoryProfile) // validated
			}
			if o.MemoryEdges > 0 {
				ro.MemoryEdges = o.MemoryEdges
			}
			ro.Log = cmd.ErrOrStderr()
			if o.FlowsFile != "" {
				if _, err := os.Stat(o.FlowsFile); err != nil {
					return badInput(fmt.Errorf("--flows-file: %w", err))
				}
			}
			res, err := bench.Run(cmd.Context(), ro)
			if err != nil {
				return err
			}
			return writeBench(cmd.OutOrStdout(), o.Output, res)
		},
	}
	addBenchFlags(cmd, "M")
	cmd.Flags().StringP("output", "o", "table", "output format: table | json")
	cmd.Flags().String("flows-file", "", "replay this file (from bench gen, same profile and seed) instead of generating one")
	cmd.Flags().Bool("scaling", false, "also compare the cost per flow from profile S to L, and against the number of policies")
	cmd.Flags().Int("hot-path-ops", 0, "verdicts the hot-path measurement takes (default 10,000,000)")
	cmd.Flags().String("memory-profile", "", "profile whose daemon state the memory row measures, in a child process (default L)")
	cmd.Flags().Int("memory-edges", 0, "distinct edges the memory row stores (default 1,000,000)")
	return cmd
}

func writeBench(w io.Writer, format string, res *bench.Results) error {
	if format == "json" {
		return writeJSON(w, res)
	}
	return res.WriteTable(w)
}
