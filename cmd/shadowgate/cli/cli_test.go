package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/viper"

	"github.com/shadowgate/shadowgate/simulate"
)

// run executes the command tree in-process with its own configuration, as main does.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := New(viper.New())
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(stdin))
	err := cmd.ExecuteContext(context.Background())
	if err != nil && !Silent(err) {
		errb.WriteString(err.Error())
	}
	return Code(err), out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	cases := map[string]struct {
		args    []string
		want    int
		wantErr string // substring of stderr
		wantOut string // substring of stdout
	}{
		"simulate, everything covered": {
			args: []string{"simulate", "--cluster", "testdata/cluster", "--flows", "testdata/flows-covered.jsonl"},
			want: ExitOK, wantOut: "Nothing would be dropped.",
		},
		"simulate, an uncovered caller": {
			args: []string{"simulate", "--cluster", "testdata/cluster", "--flows", "testdata/flows-uncovered.jsonl"},
			want: ExitFindings, wantOut: "app/stranger-0",
		},
		"simulate, malformed line is counted": {
			args: []string{"simulate", "--cluster", "testdata/cluster", "--flows", "testdata/flows-malformed.jsonl"},
			want: ExitOK, wantOut: "malformed: invalid-json=1",
		},
		"simulate --strict, malformed line is bad input": {
			args: []string{"simulate", "--strict", "--cluster", "testdata/cluster", "--flows", "testdata/flows-malformed.jsonl"},
			want: ExitBadInput, wantErr: "line 2",
		},
		"simulate, broken manifest names file and document": {
			args: []string{"simulate", "--cluster", "testdata/bad-cluster", "--flows", "testdata/flows-covered.jsonl"},
			want: ExitBadInput, wantErr: "broken.yaml: document 2",
		},
		"simulate, missing flows file": {
			args: []string{"simulate", "--cluster", "testdata/cluster", "--flows", "testdata/nope.jsonl"},
			want: ExitBadInput, wantErr: "nope.jsonl",
		},
		"simulate, cluster without flows": {
			args: []string{"simulate", "--cluster", "testdata/cluster"},
			want: ExitBadInput, wantErr: "give both --cluster and --flows",
		},
		"simulate, bad output format": {
			args: []string{"simulate", "-o", "xml"},
			want: ExitBadInput, wantErr: `-o "xml"`,
		},
		"simulate, bad external mode and namespace at once": {
			args: []string{"simulate", "--external", "sometimes", "--enforce", "Bad_NS"},
			want: ExitBadInput, wantErr: "--external",
		},
		"unknown flag": {
			args: []string{"simulate", "--no-such-flag"},
			want: ExitBadInput, wantErr: "unknown flag",
		},
		"evaluate needs inputs": {
			args: []string{"evaluate"},
			want: ExitBadInput, wantErr: "evaluate needs --cluster and --flows",
		},
		"compile": {
			args: []string{"compile", "--cluster", "testdata/cluster"},
			want: ExitOK, wantOut: "name: shadowgate-default-deny",
		},
		"compile, broken manifest": {
			args: []string{"compile", "--cluster", "testdata/bad-cluster"},
			want: ExitBadInput, wantErr: "broken.yaml",
		},
		"demo simulate finds the missed paths": {
			args: []string{"simulate"},
			want: ExitFindings, wantOut: "payments/reporting",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, "", tc.args...)
			if code != tc.want {
				t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.want, out, errOut)
			}
			if !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("stderr %q does not contain %q", errOut, tc.wantErr)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("stdout does not contain %q:\n%s", tc.wantOut, out)
			}
		})
	}
}

func TestSimulateJSON(t *testing.T) {
	code, out, errOut := run(t, "", "simulate", "-o", "json", "--cluster", "testdata/cluster", "--flows", "testdata/flows-uncovered.jsonl")
	if code != ExitFindings {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var rep simulate.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	want := []simulate.NamespaceReport{{Namespace: "app", Enforced: true, Connections: 2, WouldDrop: 1, UncoveredEdges: 1}}
	if diff := cmp.Diff(want, rep.Namespaces); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	if len(rep.Uncovered) != 1 {
		t.Fatalf("uncovered = %+v, want one edge", rep.Uncovered)
	}
	e := rep.Uncovered[0]
	gotEdge := []any{e.Source, e.Destination, e.Port, e.Protocol, e.Count}
	wantEdge := []any{
		simulate.Peer{Namespace: "app", Workload: "stranger-0", Kind: "Pod"},
		simulate.Peer{Namespace: "app", Workload: "server"}, // annotation identities have no kind
		int32(8080), "TCP", int64(1),
	}
	if diff := cmp.Diff(wantEdge, gotEdge); diff != "" {
		t.Errorf("edge (-want +got):\n%s", diff)
	}
}

func TestEvaluateJSONLinesInInputOrder(t *testing.T) {
	flows, err := os.ReadFile("testdata/flows-malformed.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	// stdin, with the enforcement of app: line 1 allowed by the compiled intent, line 2 malformed.
	code, out, errOut := run(t, string(flows), "evaluate", "--cluster", "testdata/cluster", "--flows", "-", "--enforce", "app")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var got []simulate.LineVerdict
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var lv simulate.LineVerdict
		if err := json.Unmarshal([]byte(l), &lv); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, lv)
	}
	if len(got) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(got), out)
	}
	if got[0].Line != 1 || got[0].Verdict != simulate.Allowed || got[0].Source.Workload != "client-0" {
		t.Errorf("line 1 = %+v", got[0])
	}
	if got[1].Line != 2 || got[1].Verdict != simulate.Skipped || !strings.HasPrefix(got[1].Reason, "malformed: invalid-json") {
		t.Errorf("line 2 = %+v", got[1])
	}
}

func TestConfigFromEnvironmentAndFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "shadowgate.yaml")
	if err := os.WriteFile(cfg, []byte("cluster: [testdata/cluster]\nflows: testdata/flows-uncovered.jsonl\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "", "simulate", "--config", cfg)
	if code != ExitFindings {
		t.Fatalf("config file: exit %d\n%s\n%s", code, out, errOut)
	}
	// The environment wins over the file; flags win over both.
	t.Setenv("SHADOWGATE_FLOWS", "testdata/flows-covered.jsonl")
	if code, _, errOut := run(t, "", "simulate", "--config", cfg); code != ExitOK {
		t.Fatalf("env over file: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t, "", "simulate", "--config", cfg, "--flows", "testdata/flows-uncovered.jsonl"); code != ExitFindings {
		t.Fatalf("flag over env: exit %d: %s", code, errOut)
	}
}

func TestDemoWritesInputsThatSimulateReads(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run(t, "", "demo", "-o", dir); code != ExitOK {
		t.Fatalf("demo: exit %d: %s", code, errOut)
	}
	_, embedded, _ := run(t, "", "simulate", "-o", "json")
	code, fromFiles, errOut := run(t, "", "simulate", "-o", "json", "--cluster", filepath.Join(dir, "cluster"), "--flows", filepath.Join(dir, "flows.jsonl"))
	if code != ExitFindings {
		t.Fatalf("simulate on written demo: exit %d: %s", code, errOut)
	}
	if diff := cmp.Diff(embedded, fromFiles); diff != "" {
		t.Errorf("written demo differs from embedded (-embedded +files):\n%s", diff)
	}
}

// failingWriter stands for an output that cannot be written (a closed pipe, a full disk).
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

func TestUnwritableOutputIsAnInternalError(t *testing.T) {
	cmd := New(viper.New())
	cmd.SetArgs([]string{"simulate", "-o", "json", "--cluster", "testdata/cluster", "--flows", "testdata/flows-covered.jsonl"})
	cmd.SetOut(failingWriter{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.ExecuteContext(context.Background())
	if got := Code(err); got != ExitInternal {
		t.Fatalf("exit code = %d (err %v), want %d", got, err, ExitInternal)
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("error %q does not say why", err)
	}
}
