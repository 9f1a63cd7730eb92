package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/demo"
	"github.com/shadowgate/shadowgate/simulate/suggest"
)

// maxReportBytes bounds a report read from a file or a daemon.
const maxReportBytes = 256 << 20

func newSuggestCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "suggest",
		Short: "Print the ClientIntents that would cover the uncovered edges",
		Long: `suggest writes, for every client workload with uncovered edges, the ClientIntents its team
would write: one object per client, extending the client's existing ClientIntents (every
existing target kept, the object's namespace/name kept, so that 'simulate --intents DIR'
replaces it) or a new object named after the client.

Input: an offline simulation (--cluster and --flows, the same flags as simulate; neither for the
built-in demo), a saved report (--report FILE, from 'simulate -o json'), or a running daemon
(--url http://host:port, which reads its /report). With --report or --url, --cluster gives the
existing ClientIntents to merge with; without it new objects are named <client>-suggested.

Output: a multi-document YAML stream, or with -o DIR (--output-dir) one file per client named
<namespace>.<client>.yaml. Edges that ClientIntents cannot cover (callers from outside the
cluster, nodes) are explained on standard error with the setting that admits them instead.

Exit codes: 0 done (whether or not something was uncovered), 2 bad input, 1 internal error
(including a daemon that cannot be reached).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := reportInputsFrom(v)
			if err != nil {
				return err
			}
			so := suggest.Options{APIVersion: v.GetString("api-version")}
			if err := so.Validate(); err != nil {
				return badInput(fmt.Errorf("--api-version: %w", err))
			}
			rep, known, err := in.load(cmd.Context(), cmd)
			if err != nil {
				return err
			}
			res, err := suggest.Suggest(rep, known, so)
			if err != nil {
				return badInput(err)
			}
			dir := v.GetString("output-dir")
			if dir != "" {
				if err := res.WriteDir(dir); err != nil {
					return err
				}
				for _, s := range res.Intents {
					fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", filepath.Join(dir, s.File))
				}
			} else if err := res.WriteStream(cmd.OutOrStdout()); err != nil {
				return err
			}
			if len(res.Intents) == 0 && len(res.Notes) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "Nothing to suggest: no edge would be dropped.")
			}
			return res.WriteNotes(cmd.ErrOrStderr())
		},
	}
	addReportInputFlags(cmd.Flags())
	cmd.Flags().String("api-version", suggest.DefaultAPIVersion, "ClientIntents version of new objects: "+strings.Join(suggest.APIVersions, " | ")+
		" (an extended object keeps its own)")
	// Not "output": simulate's -o is a format, and the two share configuration keys.
	cmd.Flags().StringP("output-dir", "o", "", "write one file per client workload into this directory instead of a stream to standard output")
	return cmd
}

// addReportInputFlags declares the inputs suggest and report share: simulate's flags, or
// a saved report, or a daemon.
func addReportInputFlags(fs *pflag.FlagSet) {
	addClusterFlags(fs)
	addEnforceFlags(fs)
	addFlowFlags(fs)
	fs.String("report", "", "a saved report (shadowgate simulate -o json), '-' for stdin, instead of simulating")
	fs.String("url", "", "a running daemon (http://host:port) whose /report to read, instead of simulating")
	fs.Duration("timeout", 30*time.Second, "how long to wait for --url")
}

// reportInputs are the parsed input flags of suggest and report.
type reportInputs struct {
	o       Options
	report  string
	url     string
	timeout time.Duration
}

func reportInputsFrom(v *viper.Viper) (*reportInputs, error) {
	in := &reportInputs{o: optionsFrom(v), report: v.GetString("report"), url: v.GetString("url"), timeout: v.GetDuration("timeout")}
	var errs []error
	if err := in.o.Validate(); err != nil {
		errs = append(errs, err)
	}
	n := 0
	for _, set := range []bool{in.o.Flows != "", in.report != "", in.url != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("--flows, --report and --url are exclusive: give one input"))
	}
	if in.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s: must be positive", in.timeout))
	}
	if len(in.o.Intents) > 0 && len(in.o.Cluster) == 0 && (in.report != "" || in.url != "") {
		errs = append(errs, errors.New("--intents overlays --cluster: give --cluster too"))
	}
	if len(errs) > 0 {
		return nil, badInput(errors.Join(errs...))
	}
	return in, nil
}

// load returns the report and what is known of the cluster's ClientIntents (nil when
// nothing is: a report or daemon without --cluster).
func (in *reportInputs) load(ctx context.Context, cmd *cobra.Command) (*simulate.Report, *suggest.Cluster, error) {
	if in.report == "" && in.url == "" {
		return in.simulate(ctx, cmd)
	}
	var rep *simulate.Report
	var err error
	if in.report != "" {
		rep, err = readReportFile(cmd, in.report)
	} else {
		rep, err = fetchReport(ctx, in.url, in.timeout)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(in.o.Cluster) == 0 {
		return rep, nil, nil
	}
	objs, err := loadObjects(in.o.Cluster, in.o.Intents)
	if err != nil {
		return nil, nil, err
	}
	if _, err := cluster.Build(objs); err != nil {
		return nil, nil, badInput(err)
	}
	return rep, suggest.FromObjects(objs), nil
}

// simulate runs the offline simulation as `simulate` does, keeping the manifests as read
// so that the suggestions extend the ClientIntents as their teams wrote them.
func (in *reportInputs) simulate(ctx context.Context, cmd *cobra.Command) (*simulate.Report, *suggest.Cluster, error) {
	o := in.o
	var objs *cluster.Objects
	var src flowSource
	switch {
	case len(o.Cluster) == 0 && o.Flows == "":
		var err error
		if objs, err = demoObjects(o.Intents); err != nil {
			return nil, nil, err
		}
		src = flows.NewReader("demo flows", demo.Flows())
	case len(o.Cluster) == 0 || o.Flows == "":
		return nil, nil, badInput(errors.New("give both --cluster and --flows, or --report, or --url (or nothing, for the built-in demo)"))
	default:
		var err error
		if objs, err = loadObjects(o.Cluster, o.Intents); err != nil {
			return nil, nil, err
		}
		if o.Flows == "-" {
			src = flows.NewReader("stdin", cmd.InOrStdin())
		} else {
			fs, err := flows.OpenFile(o.Flows)
			if err != nil {
				return nil, nil, badInput(err)
			}
			src = fs
		}
	}
	defer src.Close()
	snap, err := cluster.Build(objs)
	if err != nil {
		return nil, nil, badInput(err)
	}
	sim, err := simulate.New(snap, o.simulateOptions(snap, true))
	if err != nil {
		return nil, nil, badInput(err)
	}
	if err := drain(ctx, src, func(ev flows.Event) { sim.Observe(ev) }); err != nil {
		return nil, nil, err
	}
	rep := sim.Report()
	if err := strictCheck(o, rep.Flows); err != nil {
		return nil, nil, err
	}
	return rep, suggest.FromObjects(objs), nil
}

// loadObjects reads the cluster manifests and overlays the --intents ClientIntents by
// namespace/name, as simulate does.
func loadObjects(clusterPaths, intentPaths []string) (*cluster.Objects, error) {
	objs, err := cluster.LoadObjects(clusterPaths...)
	if err != nil {
		return nil, badInput(err)
	}
	if len(intentPaths) == 0 {
		return objs, nil
	}
	extra, err := cluster.LoadObjects(intentPaths...)
	if err != nil {
		return nil, badInput(err)
	}
	key := func(u *unstructured.Unstructured) string {
		ns := u.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		return ns + "/" + u.GetName()
	}
	replaced := map[string]*unstructured.Unstructured{}
	for _, u := range extra.ClientIntents {
		replaced[key(u)] = u
	}
	kept := objs.ClientIntents[:0:0]
	for _, u := range objs.ClientIntents {
		if replaced[key(u)] == nil {
			kept = append(kept, u)
		}
	}
	objs.ClientIntents = append(kept, extra.ClientIntents...)
	if objs.Sources == nil {
		objs.Sources = map[cluster.ObjectRef]cluster.Source{}
	}
	for ref, s := range extra.Sources {
		if ref.Kind == "ClientIntents" {
			objs.Sources[ref] = s
		}
	}
	return objs, nil
}

// demoObjects are the demo's manifests as read. The demo embeds them; writing them out
// and reading them back goes through the same loader as any cluster.
func demoObjects(intentPaths []string) (*cluster.Objects, error) {
	dir, err := os.MkdirTemp("", "shadowgate-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := demo.WriteTo(dir); err != nil {
		return nil, err
	}
	return loadObjects([]string{filepath.Join(dir, "cluster")}, intentPaths)
}

// readReportFile reads a saved report; "-" is standard input.
func readReportFile(cmd *cobra.Command, path string) (*simulate.Report, error) {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = cmd.InOrStdin(), "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, badInput(err)
		}
		defer f.Close()
		r = f
	}
	rep, err := decodeReport(name, r)
	if err != nil {
		return nil, badInput(err)
	}
	return rep, nil
}

// fetchReport reads a daemon's report: base URLs (no path) mean its /report.
func fetchReport(ctx context.Context, raw string, timeout time.Duration) (*simulate.Report, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, badInput(fmt.Errorf("--url %q: want http://host:port or a report URL", raw))
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/report"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, badInput(fmt.Errorf("--url %q: %w", raw, err))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	rep, err := decodeReport("GET "+u.String(), resp.Body)
	if err != nil {
		// The daemon answered, but not with a report: its answer is the bad input.
		return nil, badInput(err)
	}
	return rep, nil
}

// decodeReport reads one report JSON object. Unknown fields are fine (newer producers add
// them); a document without the report's edge lists is not a report.
func decodeReport(name string, r io.Reader) (*simulate.Report, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxReportBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxReportBytes>>20)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("%s: not a report: %s", name, jsonError(data, err))
	}
	if _, ok := keys["uncovered"]; !ok {
		if _, ok := keys["edges"]; !ok {
			return nil, fmt.Errorf("%s: not a report: no \"uncovered\" or \"edges\" field (want the output of 'shadowgate simulate -o json')", name)
		}
	}
	var rep simulate.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("%s: %s", name, jsonError(data, err))
	}
	return &rep, nil
}

// jsonError locates a decoding error by line and column.
func jsonError(data []byte, err error) string {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 {
		return err.Error()
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	// Offset counts the bytes read up to and including the one that failed (for a type
	// error, the end of the value).
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n')) - 1
	if typ != nil {
		return fmt.Sprintf("line %d: field %s: cannot use JSON %s as %s", line, typ.Field, typ.Value, typ.Type)
	}
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}
