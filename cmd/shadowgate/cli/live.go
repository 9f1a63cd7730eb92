package cli

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/alerts"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/hubble"
	"github.com/shadowgate/shadowgate/flows/mapper"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// LiveOptions configure the long-running simulate: where flows come from, where the soak
// state lives, what the gate demands, and where it serves.
type LiveOptions struct {
	Hubble         hubble.Config
	Mapper         string // network-mapper GraphQL URL
	Follow         bool
	Listen         string
	State          string
	SaveInterval   time.Duration
	ReloadInterval time.Duration
	SummaryEvery   time.Duration
	Gate           soak.GateConfig
}

// Live reports whether the options ask for a long-running simulate.
func (o LiveOptions) Live() bool { return o.Hubble.Address != "" || o.Mapper != "" || o.Follow }

// addSourceFlags adds the live flow-source flags, shared by simulate and the controller.
func addSourceFlags(fs *pflag.FlagSet) {
	fs.String("hubble", "", "follow a Hubble Relay (or agent) at ADDR over gRPC; plaintext unless TLS flags are given")
	fs.Bool("hubble-tls", false, "use TLS to Hubble (implied by the other --hubble-tls-* flags)")
	fs.String("hubble-tls-ca-file", "", "CA bundle that signs the Hubble server certificate")
	fs.String("hubble-tls-cert-file", "", "client certificate for mTLS to Hubble")
	fs.String("hubble-tls-key-file", "", "client key for mTLS to Hubble")
	fs.String("hubble-tls-server-name", "", "server name to verify in the Hubble certificate (e.g. *.hubble-relay.cilium.io)")
	fs.String("mapper", "", "poll the Otterize network-mapper GraphQL API at URL (e.g. "+mapper.DefaultURL(mapper.DefaultNamespace)+")")
}

func addLiveFlags(fs *pflag.FlagSet) {
	addSourceFlags(fs)
	fs.Bool("follow", false, "keep reading --flows as it grows, like tail -F")
	fs.String("listen", ":8080", "serve /report, /metrics, /healthz, /readyz and /ui on ADDR (long-running mode)")
	fs.String("state", "", "persist the soak store to FILE (restored on start; written periodically and on exit)")
	fs.Duration("save-interval", time.Minute, "how often the soak store is written to --state")
	fs.Duration("reload-interval", 30*time.Second, "how often --cluster and --intents are checked for changes")
	fs.Duration("summary-interval", 10*time.Second, "how often the summary is refreshed (a screen on a terminal, log lines otherwise)")
	addGateFlags(fs)
}

func addGateFlags(fs *pflag.FlagSet) {
	d := soak.DefaultGateConfig()
	fs.Duration("window", soak.DefaultOptions().Window, "soak window the gate judges")
	fs.Int64("min-connections", d.MinConnections, "connections a namespace must have received in the window")
	fs.Duration("max-gap", d.MaxGap, "largest total (and single) ingestion gap the window may contain")
	fs.Uint64("lost-events-threshold", d.LostEventsThreshold, "lost flows the window may contain")
}

func gateFrom(v *viper.Viper) soak.GateConfig {
	g := soak.DefaultGateConfig()
	g.Window = v.GetDuration("window")
	g.MinConnections = v.GetInt64("min-connections")
	g.MaxGap = v.GetDuration("max-gap")
	g.LostEventsThreshold = v.GetUint64("lost-events-threshold")
	return g
}

func liveOptionsFrom(v *viper.Viper) LiveOptions {
	h := hubble.Default()
	h.Address = v.GetString("hubble")
	h.TLS = v.GetBool("hubble-tls")
	h.CAFile = v.GetString("hubble-tls-ca-file")
	h.CertFile = v.GetString("hubble-tls-cert-file")
	h.KeyFile = v.GetString("hubble-tls-key-file")
	h.ServerName = v.GetString("hubble-tls-server-name")
	return LiveOptions{
		Hubble: h, Mapper: v.GetString("mapper"), Follow: v.GetBool("follow"),
		Listen: v.GetString("listen"), State: v.GetString("state"),
		SaveInterval: v.GetDuration("save-interval"), ReloadInterval: v.GetDuration("reload-interval"),
		SummaryEvery: v.GetDuration("summary-interval"), Gate: gateFrom(v),
	}
}

// Validate reports every bad field at once.
func (o LiveOptions) Validate(opts Options) error {
	var errs []error
	if o.Hubble.Address != "" {
		if err := o.Hubble.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--hubble: %w", err))
		}
	}
	if o.Follow && (opts.Flows == "" || opts.Flows == "-") {
		errs = append(errs, errors.New("--follow needs --flows FILE"))
	}
	if o.Follow && (o.Hubble.Address != "" || o.Mapper != "") {
		errs = append(errs, errors.New("--follow replays a file: it does not mix with --hubble or --mapper"))
	}
	if !o.Follow && opts.Flows != "" && (o.Hubble.Address != "" || o.Mapper != "") {
		errs = append(errs, errors.New("--flows is for offline runs (or --follow); live sources are --hubble and --mapper"))
	}
	if len(opts.Cluster) == 0 {
		errs = append(errs, errors.New("long-running simulate needs --cluster"))
	}
	for name, d := range map[string]time.Duration{"--save-interval": o.SaveInterval, "--reload-interval": o.ReloadInterval, "--summary-interval": o.SummaryEvery} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", name, d))
		}
	}
	if err := o.Gate.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return badInput(errors.Join(errs...))
}

// runLive is the long-running simulate: judge flows as they come, keep the soak window,
// serve the report, and stop cleanly (exit 0) on SIGINT/SIGTERM after saving the state.
func runLive(ctx context.Context, cmd *cobra.Command, o Options, lo LiveOptions) error {
	clk := clock.RealClock{}
	snap, digest, err := loadSnapshotDigest(o)
	if err != nil {
		return err
	}
	sim, err := simulate.New(snap, o.simulateOptions(snap, true))
	if err != nil {
		return badInput(err)
	}
	storeOpts := soak.DefaultOptions()
	if lo.Gate.Window > storeOpts.Window {
		storeOpts.Window = lo.Gate.Window
	}
	m := alerts.New(0)
	live, warnings, err := simulate.NewLive(sim, storeOpts, simulate.LiveConfig{Gate: lo.Gate, StatePath: lo.State, Clock: clk, Metrics: m})
	if err != nil {
		return badInput(err)
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s %s\n", clk.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
	for _, w := range warnings {
		logf("warning: %s", w)
	}
	sources, closeSources, err := openLiveSources(o, lo, clk)
	if err != nil {
		return err
	}
	defer closeSources()

	var ready atomic.Bool
	srv, addr, err := serve(lo.Listen, live, m, &ready)
	if err != nil {
		return err
	}
	defer srv.Close()
	logf("serving /report, /metrics, /healthz, /readyz on %s", addr)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- live.Run(runCtx, sources...) }()
	ready.Store(true)

	save := clk.NewTicker(lo.SaveInterval)
	defer save.Stop()
	reload := clk.NewTicker(lo.ReloadInterval)
	defer reload.Stop()
	summary := clk.NewTicker(lo.SummaryEvery)
	defer summary.Stop()
	tty := isTerminal(cmd.OutOrStdout())
	var runErr error
	finished := false
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case runErr = <-done:
			// Every source ended, or a signal cancelled them first.
			finished = true
			break loop
		case <-save.C():
			if err := live.Save(); err != nil {
				logf("error: saving state: %v", err)
			}
		case <-reload.C():
			next, d, err := loadSnapshotDigest(o)
			switch {
			case err != nil:
				live.SnapshotFailed(err)
				logf("error: reloading the cluster snapshot (evaluation continues on the last good one; the soak records a gap): %v", err)
			case d != digest:
				if err := reloadLive(live, next, o.simulateOptions(next, true), logf); err != nil {
					continue
				}
				digest = d
			}
		case <-summary.C():
			writeSummary(cmd.OutOrStdout(), live.Report(), tty)
		}
	}
	cancel()
	if !finished {
		runErr = <-done
	}
	if runErr != nil && ctx.Err() == nil {
		logf("sources: %v", runErr)
	}
	if err := live.Save(); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	if lo.State != "" {
		logf("state saved to %s", lo.State)
	}
	writeSummary(cmd.OutOrStdout(), live.Report(), false)
	return nil
}

func openLiveSources(o Options, lo LiveOptions, clk clock.Clock) ([]simulate.NamedSource, func(), error) {
	var out []simulate.NamedSource
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			_ = c()
		}
	}
	if lo.Follow {
		src, err := flows.OpenFileFollow(o.Flows, flows.FollowOptions{Clock: clk})
		if err != nil {
			return nil, nil, badInput(err)
		}
		closers = append(closers, src.Close)
		out = append(out, simulate.NamedSource{Name: "file", Source: src})
	}
	if lo.Hubble.Address != "" {
		src, err := hubble.New(lo.Hubble, clk)
		if err != nil {
			closeAll()
			return nil, nil, badInput(fmt.Errorf("--hubble: %w", err))
		}
		closers = append(closers, src.Close)
		out = append(out, simulate.NamedSource{Name: hubble.SourceName, Source: src})
	}
	if lo.Mapper != "" {
		cfg := mapper.Default()
		cfg.URL = lo.Mapper
		src, err := mapper.New(cfg, mapper.WithClock(clk))
		if err != nil {
			closeAll()
			return nil, nil, badInput(fmt.Errorf("--mapper: %w", err))
		}
		closers = append(closers, src.Close)
		out = append(out, simulate.NamedSource{Name: mapper.SourceName, Source: src})
	}
	return out, closeAll, nil
}

// reloadLive moves live to a changed snapshot: in place when it can (only the changed
// ClientIntents recompiled, only the changed pods, namespaces and policies handed to the
// engines), else with a new simulator. Either way every stored edge is re-judged. An
// error has been logged and recorded as a snapshot gap.
func reloadLive(live *simulate.Live, next *cluster.Snapshot, opts simulate.Options, logf func(string, ...any)) error {
	r, err := live.Update(next, opts)
	if err == nil {
		logf("cluster snapshot changed: updated the policy sets in place and re-judged the %d of %d stored edges it could affect in %s",
			r.Rejudged, r.Stored, r.Took.Round(time.Millisecond))
		return nil
	}
	if !errors.Is(err, simulate.ErrRebuild) {
		logf("warning: updating the simulator in place: %v; rebuilding it", err)
	}
	nsim, err := simulate.New(next, opts)
	if err != nil {
		live.SnapshotFailed(err)
		logf("error: compiling the new snapshot: %v", err)
		return err
	}
	took := live.Swap(nsim)
	logf("cluster snapshot changed: recompiled and re-judged every stored edge in %s", took.Round(time.Millisecond))
	return nil
}

// loadSnapshotDigest loads the snapshot and fingerprints its files, so a reload only
// recompiles when something changed.
func loadSnapshotDigest(o Options) (*cluster.Snapshot, string, error) {
	h := sha256.New()
	for _, root := range append(append([]string{}, o.Cluster...), o.Intents...) {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00%d\n", path, info.Size(), info.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return nil, "", badInput(err)
		}
	}
	snap, err := loadSnapshot(o)
	if err != nil {
		return nil, "", err
	}
	return snap, fmt.Sprintf("%x", h.Sum(nil)), nil
}

func serve(addr string, live *simulate.Live, m *alerts.Metrics, ready *atomic.Bool) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", badInput(fmt.Errorf("--listen %s: %w", addr, err))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = writeJSON(w, live.Report())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	registerUI(mux)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

// writeSummary prints the namespaces' soak state: a refreshed screen on a terminal, one
// log line per namespace otherwise.
func writeSummary(w io.Writer, r *simulate.LiveReport, tty bool) {
	gates := map[string]soak.Result{}
	for _, g := range r.Gates {
		gates[g.Namespace] = g
	}
	if !tty {
		for _, s := range r.Soak {
			g := gates[s.Namespace]
			state := "pass"
			if !g.Pass {
				codes := make([]string, 0, len(g.Reasons))
				for _, reason := range g.Reasons {
					codes = append(codes, reason.Code)
				}
				state = "blocked(" + strings.Join(codes, ",") + ")"
			}
			fmt.Fprintf(w, "%s namespace=%s connections=%d uncovered=%d gaps=%.0fs lost=%d gate=%s\n",
				r.GeneratedAt.Format(time.RFC3339), s.Namespace, s.Connections, s.UncoveredEdges, s.GapSeconds, s.LostEvents, state)
		}
		return
	}
	fmt.Fprint(w, "\033[H\033[2J")
	fmt.Fprintf(w, "shadowgate — %s — flows read %d, evaluated %d\n\n", r.GeneratedAt.Format(time.RFC3339), r.Flows.Read, r.Flows.Evaluated)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tCONNECTIONS\tUNCOVERED\tCOVERAGE\tGAPS\tGATE")
	for _, s := range r.Soak {
		g := gates[s.Namespace]
		state := "pass"
		if !g.Pass && len(g.Reasons) > 0 {
			state = g.Reasons[0].Message
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f%%\t%s\t%s\n", s.Namespace, s.Connections, s.UncoveredEdges,
			100*s.CoveredSeconds/max(1, s.TrackedSeconds), time.Duration(s.GapSeconds*float64(time.Second)).Round(time.Second), state)
	}
	tw.Flush()
	for _, src := range r.Sources {
		fmt.Fprintf(w, "\nsource %s: %s since %s %s", src.Name, src.State, src.Since.Format(time.RFC3339), src.Message)
	}
	fmt.Fprintln(w)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func newGateCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gate NAMESPACE",
		Short: "Is NAMESPACE safe to enforce? Prints the gate result and its reasons",
		Long: `gate reads the soak state of a long-running simulate (--state FILE, or --url of its
/report) and judges NAMESPACE: it passes only if, over the window, nothing would have been
dropped, enough connections were seen, ingestion gaps and lost flows stayed under their limits,
and the namespace has been tracked for the whole window. Missing or unreadable data never
passes.

Exit codes: 0 passes, 3 blocked (or no usable data), 2 bad input, 1 internal error.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			state, url, format := v.GetString("state"), v.GetString("url"), v.GetString("output")
			if (state == "") == (url == "") {
				return badInput(errors.New("give exactly one of --state FILE or --url URL"))
			}
			if format != "text" && format != "json" {
				return badInput(fmt.Errorf("-o %q: must be text or json", format))
			}
			cfg := gateFrom(v)
			if err := cfg.Validate(); err != nil {
				return badInput(err)
			}
			var res soak.Result
			var err error
			if state != "" {
				res, err = gateFromState(state, args[0], cfg)
			} else {
				res, err = gateFromURL(cmd.Context(), url, args[0])
			}
			if err != nil {
				res = soak.Result{Namespace: args[0], Reasons: []soak.Reason{{Code: "no-data", Message: err.Error()}}}
			}
			if format == "json" {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				writeGate(cmd.OutOrStdout(), res)
			}
			if !res.Pass {
				return errFindings
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.String("state", "", "soak state file written by a long-running simulate (--state)")
	fs.String("url", "", "base URL of a running simulate (its /report is read)")
	fs.StringP("output", "o", "text", "output format: text | json")
	addGateFlags(fs)
	return cmd
}

// gateFromState judges from a state file, read-only: unlike the daemon, the gate command
// never moves a file aside.
func gateFromState(path, ns string, cfg soak.GateConfig) (soak.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return soak.Result{}, fmt.Errorf("state %s: %w", path, err)
	}
	defer f.Close()
	opts := soak.DefaultOptions()
	if cfg.Window > opts.Window {
		opts.Window = cfg.Window
	}
	st, err := soak.Load(f, opts, clock.RealClock{})
	if err != nil {
		return soak.Result{}, fmt.Errorf("state %s: %w", path, err)
	}
	return st.Gate(ns, time.Now(), cfg)
}

func gateFromURL(ctx context.Context, base, ns string) (soak.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/report", nil)
	if err != nil {
		return soak.Result{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return soak.Result{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return soak.Result{}, fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	var r simulate.LiveReport
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return soak.Result{}, fmt.Errorf("%s: %w", req.URL, err)
	}
	for _, g := range r.Gates {
		if g.Namespace == ns {
			return g, nil
		}
	}
	return soak.Result{}, fmt.Errorf("namespace %s is not governed by the simulate at %s", ns, base)
}

func writeGate(w io.Writer, r soak.Result) {
	if r.Pass {
		fmt.Fprintf(w, "%s: PASS — safe to enforce\n", r.Namespace)
	} else {
		fmt.Fprintf(w, "%s: BLOCKED\n", r.Namespace)
	}
	for _, reason := range r.Reasons {
		fmt.Fprintf(w, "  - [%s] %s\n", reason.Code, reason.Message)
	}
}

func newConfigCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration (flags, SHADOWGATE_* environment, --config file)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			settings := map[string]any{}
			cmd.Flags().VisitAll(func(f *pflag.Flag) {
				if f.Name != "help" {
					settings[f.Name] = v.Get(f.Name)
				}
			})
			keys := make([]string, 0, len(settings))
			for k := range settings {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				b, err := json.Marshal(settings[k])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", k, b)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	addClusterFlags(fs)
	addEnforceFlags(fs)
	addFlowFlags(fs)
	addLiveFlags(fs)
	fs.StringP("output", "o", "table", "output format of simulate")
	return cmd
}
