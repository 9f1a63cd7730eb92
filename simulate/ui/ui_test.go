package ui_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/suggest"
	"github.com/shadowgate/shadowgate/simulate/ui"
)

var dataScript = regexp.MustCompile(`(?s)<script id="sg-data" type="application/json">(.*?)</script>`)

// pageData extracts and decodes the data the page's script reads.
func pageData(t *testing.T, html string) ui.Data {
	t.Helper()
	m := dataScript.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no data script in the page")
	}
	var d ui.Data
	if err := json.Unmarshal([]byte(m[1]), &d); err != nil {
		t.Fatalf("page data: %v", err)
	}
	return d
}

func renderString(t *testing.T, rep *simulate.Report) string {
	t.Helper()
	return render(t, rep, nil)
}

func render(t *testing.T, rep *simulate.Report, sug *suggest.Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := ui.Render(&b, rep, sug); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The page data of the demo, as the script receives it: every suggestion keyed to the
// edges it covers.
func TestDemoDataGolden(t *testing.T) {
	rep, sug := demoReport(t)
	d, err := ui.NewData(rep, sug)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	enc := json.NewEncoder(&got)
	enc.SetEscapeHTML(false) // readable edge keys ("a>b") in the golden file
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct {
		Suggestions []ui.Suggestion `json:"suggestions"`
		Notes       []ui.Note       `json:"notes"`
		Merged      bool            `json:"merged"`
	}{d.Suggestions, d.Notes, d.Merged}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "demo.suggestions.golden.json", got.Bytes())

	page := pageData(t, render(t, rep, sug))
	if diff := cmp.Diff(*d, page); diff != "" {
		t.Errorf("embedded data differs from NewData (-want +got):\n%s", diff)
	}
}

// Self-contained: nothing in the page points outside it, and the policy forbids it.
func TestRenderIsSelfContained(t *testing.T) {
	rep, sug := demoReport(t)
	html := render(t, rep, sug)
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script[^>]+src=`),
		regexp.MustCompile(`(?i)<link[^>]+href=`),
		regexp.MustCompile(`(?i)@import`),
		regexp.MustCompile(`(?i)url\(\s*['"]?(https?:)?//`),
	} {
		if loc := bad.FindStringIndex(html); loc != nil {
			t.Errorf("page references an outside resource: %q", html[loc[0]:min(len(html), loc[1]+40)])
		}
	}
	csp := regexp.MustCompile(`http-equiv="Content-Security-Policy" content="([^"]*)"`).FindStringSubmatch(html)
	if csp == nil || !strings.Contains(csp[1], "default-src &#39;none&#39;") || strings.Contains(csp[1], "connect-src") {
		t.Errorf("Content-Security-Policy = %v, want default-src 'none' and no connect-src", csp)
	}
}

// Data from the cluster cannot end the script element or inject markup.
func TestRenderEscapesData(t *testing.T) {
	evil := `</script><script>alert(1)</script><!--`
	rep := &simulate.Report{Uncovered: []simulate.Edge{{
		Source:      simulate.Peer{Namespace: "shop", Workload: evil, Kind: "Deployment"},
		Destination: simulate.Peer{Namespace: "shop", Workload: "api", Kind: "Deployment"},
		Protocol:    "TCP", Port: 80, Count: 1, Status: simulate.StatusWouldDrop, Reason: evil,
	}}}
	html := render(t, rep, nil)
	if strings.Contains(html, evil) {
		t.Fatalf("the page holds %q verbatim", evil)
	}
	if got := strings.Count(html, "</script>"); got != 2 {
		t.Errorf("%d script end tags, want 2 (data and code)", got)
	}
	d := pageData(t, html)
	if got := d.Report.Uncovered[0].Source.Workload; got != evil {
		t.Errorf("workload round-trips as %q", got)
	}
	if len(d.Suggestions) != 1 || !strings.Contains(d.Suggestions[0].YAML, "-suggested") {
		t.Errorf("a nil suggestion result is computed without the cluster: %+v", d.Suggestions)
	}
}

func TestRenderNilReport(t *testing.T) {
	if err := ui.Render(io.Discard, nil, nil); err == nil {
		t.Error("nil report: no error")
	}
}

func TestHandler(t *testing.T) {
	rep, _ := demoReport(t)
	body, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	merged := func(r *simulate.Report) (*suggest.Result, error) {
		return suggest.Suggest(r, &suggest.Cluster{}, suggest.Options{APIVersion: "v1alpha3"})
	}
	failing := func(*simulate.Report) (*suggest.Result, error) { return nil, errors.New("snapshot not synced") }
	mux := http.NewServeMux()
	mux.Handle("/ui/", http.StripPrefix("/ui", ui.Handler("/report")))
	mux.Handle("/merged/", ui.Handler("http://127.0.0.1:9/report", ui.WithSuggester(merged)))
	mux.Handle("/failing/", ui.Handler("/report", ui.WithSuggester(failing)))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cases := map[string]struct {
		method, path, body string
		wantStatus         int
		wantType           string
		check              func(t *testing.T, body string)
	}{
		"the page, live": {
			method: "GET", path: "/ui/", wantStatus: 200, wantType: "text/html; charset=utf-8",
			check: func(t *testing.T, body string) {
				d := pageData(t, body)
				want := &ui.Live{ReportURL: "/report", SuggestPath: "suggest", RefreshSeconds: 15}
				if diff := cmp.Diff(want, d.Live); diff != "" {
					t.Errorf("live config (-want +got):\n%s", diff)
				}
				if !strings.Contains(body, "connect-src &#39;self&#39;\"") {
					t.Errorf("a live page may fetch from its own origin only")
				}
			},
		},
		"an absolute report URL may be fetched": {
			method: "GET", path: "/merged/", wantStatus: 200, wantType: "text/html; charset=utf-8",
			check: func(t *testing.T, body string) {
				if !strings.Contains(body, "connect-src &#39;self&#39; http://127.0.0.1:9\"") {
					t.Errorf("the report's origin is not allowed by the page's policy")
				}
			},
		},
		"suggestions for a posted report": {
			method: "POST", path: "/ui/suggest", body: string(body), wantStatus: 200, wantType: "application/json",
			check: func(t *testing.T, body string) {
				var got struct {
					Suggestions []ui.Suggestion
					Merged      bool
				}
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatal(err)
				}
				var objects []string
				for _, s := range got.Suggestions {
					objects = append(objects, s.Object)
				}
				want := []string{"monitoring/prometheus-suggested", "payments/reporting-suggested", "shop/checkout-suggested"}
				if diff := cmp.Diff(want, objects); diff != "" || got.Merged {
					t.Errorf("objects (-want +got):\n%s\nmerged: %v", diff, got.Merged)
				}
			},
		},
		"a suggester that knows the cluster": {
			method: "POST", path: "/merged/suggest", body: string(body), wantStatus: 200, wantType: "application/json",
			check: func(t *testing.T, body string) {
				if !strings.Contains(body, `"merged":true`) || !strings.Contains(body, "k8s.otterize.com/v1alpha3") {
					t.Errorf("the configured suggester was not used: %s", body)
				}
			},
		},
		"a suggester failing": {
			method: "POST", path: "/failing/suggest", body: string(body), wantStatus: 500, wantType: "text/plain; charset=utf-8",
			check: func(t *testing.T, body string) {
				if !strings.Contains(body, "snapshot not synced") {
					t.Errorf("body %q does not say why", body)
				}
			},
		},
		"not a report": {
			method: "POST", path: "/ui/suggest", body: `{"uncovered": 3}`, wantStatus: 400, wantType: "text/plain; charset=utf-8",
			check: func(t *testing.T, body string) {
				if !strings.HasPrefix(body, "report: ") {
					t.Errorf("body %q", body)
				}
			},
		},
		"suggest wants POST": {method: "GET", path: "/ui/suggest", wantStatus: 405, wantType: "text/plain; charset=utf-8"},
		"the page wants GET": {method: "DELETE", path: "/ui/", wantStatus: 405, wantType: "text/plain; charset=utf-8"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Content-Type") != tc.wantType {
				t.Fatalf("%s %s = %d %q, want %d %q\n%s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.wantStatus, tc.wantType, b)
			}
			if tc.check != nil {
				tc.check(t, string(b))
			}
		})
	}
}
