package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/simulate/ui"
)

var pageDataRE = regexp.MustCompile(`(?s)<script id="sg-data" type="application/json">(.*?)</script>`)

func pageDataOf(t *testing.T, html string) ui.Data {
	t.Helper()
	m := pageDataRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no page data in %.200q", html)
	}
	var d ui.Data
	if err := json.Unmarshal([]byte(m[1]), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReportHTML(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		args []string
		// file is where the page goes; "" is standard output.
		file        string
		wantObjects []string
		wantEdges   int
		wantMerged  bool
	}{
		"offline, to a file": {
			args: []string{"report", "--cluster", "testdata/cluster", "--flows", mixedFlows, "--html", filepath.Join(dir, "mixed.html")}, file: filepath.Join(dir, "mixed.html"),
			wantObjects: []string{"app/stranger-0"}, wantEdges: 4, wantMerged: true,
		},
		"the demo, to standard output": {
			args:        []string{"report", "--html", "-"},
			wantObjects: []string{"monitoring/prometheus", "payments/reporting", "shop/checkout"}, wantEdges: 41, wantMerged: true,
		},
		"a saved report, new objects in v1alpha3": {
			args: []string{"report", "--report", goodReport, "--api-version", "v1alpha3", "--html", filepath.Join(dir, "saved.html")}, file: filepath.Join(dir, "saved.html"),
			wantObjects: []string{"app/stranger-0-suggested"}, wantEdges: 4,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, "", tc.args...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			html := out
			if tc.file != "" {
				html = readFile(t, tc.file)
				if out != "" || !strings.HasPrefix(errOut, "wrote "+tc.file+": ") {
					t.Errorf("stdout %q, stderr %q", out, errOut)
				}
				leftovers, err := filepath.Glob(filepath.Join(filepath.Dir(tc.file), ".shadowgate-report-*"))
				if err != nil || len(leftovers) > 0 {
					t.Errorf("temporary files left: %v %v", leftovers, err)
				}
			}
			if !strings.HasPrefix(html, "<!doctype html>") {
				t.Fatalf("not a page: %.100q", html)
			}
			d := pageDataOf(t, html)
			var objects []string
			for _, s := range d.Suggestions {
				objects = append(objects, s.Object)
			}
			if diff := cmp.Diff(tc.wantObjects, objects); diff != "" {
				t.Errorf("suggested objects (-want +got):\n%s", diff)
			}
			if len(d.Report.Edges) != tc.wantEdges || d.Merged != tc.wantMerged {
				t.Errorf("%d edges, merged %v; want %d, %v", len(d.Report.Edges), d.Merged, tc.wantEdges, tc.wantMerged)
			}
			if strings.Contains(strings.Join(tc.args, " "), "v1alpha3") && !strings.Contains(d.Suggestions[0].YAML, "k8s.otterize.com/v1alpha3") {
				t.Errorf("--api-version not applied:\n%s", d.Suggestions[0].YAML)
			}
		})
	}
}

func TestReportBadInput(t *testing.T) {
	cases := map[string]struct {
		args    []string
		wantErr string
	}{
		"no output":       {args: []string{"report"}, wantErr: "report needs --html FILE"},
		"two inputs":      {args: []string{"report", "--html", "-", "--report", goodReport, "--url", "http://127.0.0.1:1"}, wantErr: "exclusive"},
		"not a report":    {args: []string{"report", "--html", "-", "--report", "testdata/suggest/report-not-a-report.json"}, wantErr: "not a report"},
		"bad api version": {args: []string{"report", "--html", "-", "--api-version", "v0"}, wantErr: `--api-version: api version "v0"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, "", tc.args...)
			if code != ExitBadInput || !strings.Contains(errOut, tc.wantErr) || out != "" {
				t.Errorf("exit %d (want %d), stderr %q (want %q), stdout %.80q", code, ExitBadInput, errOut, tc.wantErr, out)
			}
		})
	}
}

// A page that cannot be written fails without leaving a partial file behind.
func TestReportUnwritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	code, _, errOut := run(t, "", "report", "--cluster", "testdata/cluster", "--flows", mixedFlows, "--html", filepath.Join(dir, "r.html"))
	if code != ExitInternal || !strings.Contains(errOut, "missing") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory created: %v", err)
	}
}
