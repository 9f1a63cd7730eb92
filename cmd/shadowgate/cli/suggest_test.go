package cli

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/simulate"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files")

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "suggest", name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

const (
	mixedFlows = "testdata/suggest/flows-mixed.jsonl"
	goodReport = "testdata/suggest/report-good.json"
)

// The demo, the mixed fixture (a workload, an outside caller and another node's host
// network all uncovered) and a saved report: what suggest prints and explains.
func TestSuggestGolden(t *testing.T) {
	cases := map[string]struct {
		args   []string
		stdin  string
		golden string
	}{
		"v1alpha3 for new objects": {
			args: []string{"suggest", "--api-version", "v1alpha3", "--cluster", "testdata/cluster", "--flows", "testdata/flows-uncovered.jsonl"}, golden: "uncovered-v1alpha3",
		},
		"offline, with notes": {
			args: []string{"suggest", "--cluster", "testdata/cluster", "--flows", mixedFlows}, golden: "mixed",
		},
		"a saved report from a newer producer, not merged": {
			args: []string{"suggest", "--report", goodReport}, golden: "report-unmerged",
		},
		"a saved report on stdin, merged with the cluster": {
			args: []string{"suggest", "--report", "-", "--cluster", "testdata/cluster"}, stdin: readFile(t, goodReport), golden: "mixed",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, tc.stdin, tc.args...)
			if code != ExitOK {
				t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
			}
			checkGolden(t, tc.golden+".golden.yaml", out)
			checkGolden(t, tc.golden+".stderr.golden", errOut)
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The round trip through files: the suggestions, given back as --intents, leave
// nothing uncovered but what the notes said intents cannot cover.
func TestSuggestThenSimulate(t *testing.T) {
	cases := map[string]struct {
		inputs    []string
		wantFiles []string
		// wantAfter is the exit code of simulate with the suggestions, wantLeft what it
		// still finds uncovered.
		wantAfter int
		wantLeft  []string
	}{
		"the demo": {
			wantFiles: []string{"monitoring.prometheus.yaml", "payments.reporting.yaml", "shop.checkout.yaml"},
			wantAfter: ExitOK,
		},
		"a stranger calling the server": {
			inputs:    []string{"--cluster", "testdata/cluster", "--flows", "testdata/flows-uncovered.jsonl"},
			wantFiles: []string{"app.stranger-0.yaml"},
			wantAfter: ExitOK,
		},
		"the outside caller and the other node remain": {
			inputs:    []string{"--cluster", "testdata/cluster", "--flows", mixedFlows},
			wantFiles: []string{"app.stranger-0.yaml"},
			wantAfter: ExitFindings, wantLeft: []string{"node 10.0.0.2 (cross-node) -> app/server", "external 203.0.113.0/24 -> app/server"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "intents")
			code, _, errOut := run(t, "", append(append([]string{"suggest"}, tc.inputs...), "-o", dir)...)
			if code != ExitOK {
				t.Fatalf("suggest: exit %d: %s", code, errOut)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, e := range entries {
				files = append(files, e.Name())
			}
			if diff := cmp.Diff(tc.wantFiles, files); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			for _, f := range files {
				if !strings.Contains(errOut, "wrote "+filepath.Join(dir, f)) {
					t.Errorf("stderr does not name %s:\n%s", f, errOut)
				}
			}
			code, out, errOut := run(t, "", append(append([]string{"simulate", "-o", "json"}, tc.inputs...), "--intents", dir)...)
			if code != tc.wantAfter {
				t.Fatalf("simulate with the suggestions: exit %d, want %d\n%s%s", code, tc.wantAfter, out, errOut)
			}
			var rep simulate.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, e := range rep.Uncovered {
				left = append(left, e.Source.String()+" -> "+e.Destination.String())
			}
			if diff := cmp.Diff(tc.wantLeft, left); diff != "" {
				t.Errorf("uncovered with the suggestions (-want +got):\n%s", diff)
			}
		})
	}
}

// A daemon's /report: read at the base URL or at the URL given, failures reported.
func TestSuggestFromURL(t *testing.T) {
	report := readFile(t, goodReport)
	mux := http.NewServeMux()
	mux.HandleFunc("/report", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(report))
	})
	mux.HandleFunc("/v2/report", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(report)) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "snapshot not synced yet", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	closed := httptest.NewServer(mux)
	closed.Close()

	code, want, errOut := run(t, "", "suggest", "--report", goodReport)
	if code != ExitOK {
		t.Fatalf("suggest --report: exit %d: %s", code, errOut)
	}
	cases := map[string]struct {
		url      string
		wantCode int
		wantErr  string
	}{
		"the daemon's base URL":   {url: srv.URL, wantCode: ExitOK},
		"a base URL with a slash": {url: srv.URL + "/", wantCode: ExitOK},
		"a report URL":            {url: srv.URL + "/v2/report", wantCode: ExitOK},
		"the daemon is not ready": {url: srv.URL + "/broken", wantCode: ExitInternal, wantErr: "503 Service Unavailable: snapshot not synced yet"},
		"not a report":            {url: srv.URL + "/html", wantCode: ExitBadInput, wantErr: "GET " + srv.URL + "/html: not a report"},
		"nobody listening":        {url: closed.URL, wantCode: ExitInternal, wantErr: "GET " + closed.URL + "/report"},
		"not an http URL":         {url: "ftp://example/report", wantCode: ExitBadInput, wantErr: `--url "ftp://example/report"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, "", "suggest", "--url", tc.url, "--timeout", "5s")
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, want %d; stderr %q does not contain %q", code, tc.wantCode, errOut, tc.wantErr)
			}
			if code == ExitOK {
				if diff := cmp.Diff(want, out); diff != "" {
					t.Errorf("from the URL (-saved report +url):\n%s", diff)
				}
			}
		})
	}
}

func TestSuggestBadInput(t *testing.T) {
	cases := map[string]struct {
		args    []string
		wantErr []string
	}{
		"two inputs": {
			args:    []string{"suggest", "--report", goodReport, "--cluster", "testdata/cluster", "--flows", mixedFlows},
			wantErr: []string{"--flows, --report and --url are exclusive"},
		},
		"cluster without flows": {
			args: []string{"suggest", "--cluster", "testdata/cluster"}, wantErr: []string{"give both --cluster and --flows"},
		},
		"intents without the cluster they overlay": {
			args: []string{"suggest", "--report", goodReport, "--intents", "testdata/cluster"}, wantErr: []string{"--intents overlays --cluster"},
		},
		"unknown api version": {
			args: []string{"suggest", "--api-version", "v3"}, wantErr: []string{`--api-version: api version "v3"`},
		},
		"every bad flag at once": {
			args:    []string{"suggest", "--external", "sometimes", "--timeout", "0s", "--report", goodReport, "--url", "http://127.0.0.1:1"},
			wantErr: []string{"--external", "--timeout 0s", "exclusive"},
		},
		"report: broken JSON located": {
			args: []string{"suggest", "--report", "testdata/suggest/report-bad-syntax.json"}, wantErr: []string{"report-bad-syntax.json: not a report: line 4, column 78: invalid character '}'"},
		},
		"report: wrong type located": {
			args:    []string{"suggest", "--report", "testdata/suggest/report-bad-type.json"},
			wantErr: []string{"report-bad-type.json: line 4: field uncovered.port: cannot use JSON string as int32"},
		},
		"report: another document": {
			args: []string{"suggest", "--report", "testdata/suggest/report-not-a-report.json"}, wantErr: []string{`no "uncovered" or "edges" field`},
		},
		"report: missing file": {
			args: []string{"suggest", "--report", "testdata/suggest/nope.json"}, wantErr: []string{"nope.json"},
		},
		"broken manifests for the merge": {
			args: []string{"suggest", "--report", goodReport, "--cluster", "testdata/bad-cluster"}, wantErr: []string{"broken.yaml: document 2"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, "", tc.args...)
			if code != ExitBadInput {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitBadInput, out, errOut)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not contain %q", errOut, w)
				}
			}
			if out != "" {
				t.Errorf("stdout on bad input:\n%s", out)
			}
		})
	}
}

func TestSuggestNothingToSuggest(t *testing.T) {
	code, out, errOut := run(t, "", "suggest", "--cluster", "testdata/cluster", "--flows", "testdata/flows-covered.jsonl")
	if code != ExitOK || out != "" || errOut != "Nothing to suggest: no edge would be dropped.\n" {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}

// simulate's -o is a format and shares the configuration key "output": it must not turn
// into suggest's output directory. SHADOWGATE_OUTPUT_DIR is suggest's.
func TestSuggestOutputDirFromEnvironment(t *testing.T) {
	t.Setenv("SHADOWGATE_OUTPUT", "json")
	code, out, errOut := run(t, "", "suggest", "--cluster", "testdata/cluster", "--flows", "testdata/flows-uncovered.jsonl")
	if code != ExitOK || !strings.Contains(out, "kind: ClientIntents") {
		t.Fatalf("with SHADOWGATE_OUTPUT=json: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, err := os.Stat("json"); !os.IsNotExist(err) {
		t.Errorf("a directory named json was written: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	t.Setenv("SHADOWGATE_OUTPUT_DIR", dir)
	code, out, errOut = run(t, "", "suggest", "--cluster", "testdata/cluster", "--flows", "testdata/flows-uncovered.jsonl")
	if code != ExitOK || out != "" {
		t.Fatalf("with SHADOWGATE_OUTPUT_DIR: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.stranger-0.yaml")); err != nil {
		t.Error(err)
	}
}
