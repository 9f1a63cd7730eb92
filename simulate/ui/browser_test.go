package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/suggest"
	"github.com/shadowgate/shadowgate/simulate/ui"
)

// The browser tests drive Debian's Chromium headless. CI installs it (apt package
// "chromium"); elsewhere the tests skip without it.

// browserBudget bounds each test's browser session against hangs. A session takes a
// few seconds; the bound leaves room for a loaded machine running -race.
const browserBudget = 60 * time.Second

// browser is a headless Chromium tab, with what the page did that a test should know.
type browser struct {
	ctx context.Context
	mu  sync.Mutex
	// requests are the URLs the page asked for; exceptions are uncaught script errors.
	requests, exceptions []string
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: the browser tests need Debian's chromium package (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); set CI to make this a failure")
	return ""
}

// newBrowser starts Chromium with a fresh profile and opens one tab; everything stops
// when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserBudget)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1440, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelTab()
		// Chromium's helpers may still write into the profile for a moment after
		// the browser exits; wait for it so that TempDir's cleanup can remove it.
		if a := chromedp.FromContext(tab); a != nil && a.Allocator != nil {
			a.Allocator.Wait()
		}
	})
	b := &browser{ctx: tab}
	err := chromedp.Listen(tab, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, e.Request.URL)
		case *cdpruntime.EventExceptionThrown:
			b.exceptions = append(b.exceptions, (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b.do(t, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tgt, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tgt, cdpruntime.Enable, cdp.Empty{})
		return err
	}))
	return b
}

func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval runs a script in the page and decodes its JSON result into v.
func (b *browser) eval(t *testing.T, script string, v any) {
	t.Helper()
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("script %q: %v", firstLine(script), err)
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("script %q: result %s: %v", firstLine(script), raw, err)
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// waitFor polls a script until it is true, bounded by the browser's budget.
func (b *browser) waitFor(t *testing.T, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](script, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for %q: %v", script, err)
	}
}

func (b *browser) checkNoExceptions(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.exceptions) > 0 {
		t.Errorf("uncaught script errors:\n%s", strings.Join(b.exceptions, "\n"))
	}
}

func (b *browser) requested() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

// screenshot saves a PNG of the whole page, or of the element sel selects, as a test
// artifact under SHADOWGATE_ARTIFACTS (else the test's temporary directory) and returns
// its path.
func (b *browser) screenshot(t *testing.T, name, sel string) string {
	t.Helper()
	shot := chromedp.FullScreenshot(100) // 100: PNG
	if sel != "" {
		shot = chromedp.Screenshot(chromedp.CSS(sel))
	}
	png, err := chromedp.Run(b.ctx, shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("SHADOWGATE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// expectedGraph is what the page should draw for a report with every namespace
// expanded: one node per peer, one edge per pair of peers with the worst status of
// the pair's edges.
type expectedGraph struct {
	Nodes    int
	Edges    int
	ByStatus map[string]int
}

var statusRank = map[simulate.EdgeStatus]int{simulate.StatusOpen: 0, simulate.StatusCovered: 1, simulate.StatusDenied: 2, simulate.StatusWouldDrop: 3}

func expectGraph(rep *simulate.Report, keep func(simulate.Edge) bool) expectedGraph {
	peers := map[string]bool{}
	pairs := map[string]simulate.EdgeStatus{}
	for _, e := range rep.Edges {
		if keep != nil && !keep(e) {
			continue
		}
		k := suggest.EdgeKey(e)
		src, dst := k[:strings.Index(k, ">")], k[strings.Index(k, ">")+1:strings.LastIndex(k, ":")]
		peers[src], peers[dst] = true, true
		if st, ok := pairs[src+">"+dst]; !ok || statusRank[e.Status] > statusRank[st] {
			pairs[src+">"+dst] = e.Status
		}
	}
	g := expectedGraph{Nodes: len(peers), Edges: len(pairs), ByStatus: map[string]int{}}
	for _, st := range pairs {
		g.ByStatus[string(st)]++
	}
	return g
}

// drawnGraph reads the graph the page drew: node and edge elements, and edges by the
// colour their line is stroked with.
const drawnGraph = `(() => {
  const byColor = {};
  for (const p of document.querySelectorAll('#graph g.edge path.line')) {
    const c = p.getAttribute('stroke');
    byColor[c] = (byColor[c] || 0) + 1;
  }
  return {
    nodes: document.querySelectorAll('#graph g.node').length,
    groupNodes: document.querySelectorAll('#graph g.node.group-node').length,
    edges: document.querySelectorAll('#graph g.edge').length,
    byColor,
    rows: [...document.querySelectorAll('#uncovered tbody tr[data-key]')].map((r) => r.cells[0].textContent + ' -> ' + r.cells[1].textContent),
  };
})()`

type drawn struct {
	Nodes, GroupNodes, Edges int
	ByColor                  map[string]int
	Rows                     []string
}

func (b *browser) drawn(t *testing.T) drawn {
	t.Helper()
	var d drawn
	b.eval(t, drawnGraph, &d)
	return d
}

// setSelect chooses an option as a user does: the value changes, then "change" fires.
func (b *browser) setSelect(t *testing.T, sel, value string) {
	t.Helper()
	b.eval(t, fmt.Sprintf(`(() => {
  const s = document.querySelector(%q);
  if (![...s.options].some((o) => o.value === %q)) throw new Error('no option %s');
  s.value = %q;
  s.dispatchEvent(new Event('change', { bubbles: true }));
  return true;
})()`, sel, value, value, value), nil)
}

var statusColor = map[string]string{"covered": "#2b8a3e", "would-drop": "#e03131", "denied": "#868e96", "open": "#1c7ed6"}

func byColor(byStatus map[string]int) map[string]int {
	out := map[string]int{}
	for st, n := range byStatus {
		out[statusColor[st]] = n
	}
	return out
}

// clickEdge clicks, with the mouse, the drawn edge from src to dst (display ids) at a
// point of its line where nothing else is on top.
func (b *browser) clickEdge(t *testing.T, src, dst string) {
	t.Helper()
	var pt struct{ X, Y float64 }
	b.eval(t, fmt.Sprintf(`(() => {
  const g = document.querySelector('#graph g.edge[data-src=%q][data-dst=%q]');
  if (!g) throw new Error('no edge %s -> %s');
  const path = g.querySelector('path.hit');
  const len = path.getTotalLength(), m = path.getScreenCTM();
  for (const f of [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8]) {
    const p = path.getPointAtLength(len * f);
    const x = p.x * m.a + p.y * m.c + m.e, y = p.x * m.b + p.y * m.d + m.f;
    const top = document.elementFromPoint(x, y);
    if (top && top.closest('g.edge') === g) return {x, y};
  }
  throw new Error('every point of the edge is covered');
})()`, src, dst, src, dst), &pt)
	b.do(t, chromedp.MouseClickXY(pt.X, pt.Y))
}

func TestBrowserStaticReport(t *testing.T) {
	chromiumPath(t)
	rep, sug := demoReport(t) // before the browser starts: its budget is for the browser
	b := newBrowser(t)
	path := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ui.Render(f, rep, sug); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	pageURL := "file://" + path
	b.do(t, chromedp.Navigate(pageURL))
	b.waitFor(t, `document.querySelectorAll('#graph g.edge').length > 0`)

	// The whole graph: 13 workloads, 3 outside CIDR groups, 3 nodes.
	got := b.drawn(t)
	want := expectGraph(rep, nil)
	if want.Nodes != 19 {
		t.Fatalf("the demo has %d peers, want 19: the fixture changed", want.Nodes)
	}
	wantDrawn := drawn{Nodes: want.Nodes, Edges: want.Edges, ByColor: byColor(want.ByStatus),
		Rows: []string{"monitoring/prometheus -> kafka/kafka", "payments/reporting -> payments/ledger", "shop/checkout -> payments/ledger"}}
	if diff := cmp.Diff(wantDrawn, got); diff != "" {
		t.Errorf("drawn graph (-want +got):\n%s", diff)
	}

	// Click the uncovered checkout -> ledger edge: its details carry the suggested YAML.
	b.clickEdge(t, "w:shop/checkout/Deployment", "w:payments/ledger/Deployment")
	var details struct {
		Selected string
		Title    string
		YAML     []string
	}
	b.eval(t, `(() => ({
  selected: document.querySelector('#details').getAttribute('data-selected'),
  title: document.querySelector('#details h3').textContent,
  yaml: [...document.querySelectorAll('#details pre.yaml')].map((p) => p.textContent),
}))()`, &details)
	var checkout *suggest.Intents
	for _, in := range sug.Intents {
		if in.Key() == "shop/checkout" {
			checkout = in
		}
	}
	wantYAML, err := checkout.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{string(wantYAML)}, details.YAML); diff != "" {
		t.Errorf("suggested YAML in the details (-want +got):\n%s", diff)
	}
	if details.Selected != "w:shop/checkout/Deployment>w:payments/ledger/Deployment" || details.Title != "shop/checkout → payments/ledger" {
		t.Errorf("details show %q (%q)", details.Title, details.Selected)
	}
	var detailRows []string
	b.eval(t, `[...document.querySelectorAll('#details tr[data-key]')].map((r) => r.dataset.key)`, &detailRows)
	if diff := cmp.Diff([]string{"w:shop/checkout/Deployment>w:payments/ledger/Deployment:TCP/8080"}, detailRows); diff != "" {
		t.Errorf("edges listed in the details (-want +got):\n%s", diff)
	}
	// Copy puts the YAML on the clipboard (or, where the page may not use it, selects
	// and copies it) and says so.
	b.do(t, chromedp.Click(chromedp.CSS("#details button.copy")))
	b.waitFor(t, `document.querySelector('#details .copied').textContent !== ''`)
	var copied string
	b.eval(t, `document.querySelector('#details .copied').textContent`, &copied)
	if copied != "Copied" {
		t.Errorf("after Copy YAML: %q", copied)
	}
	var selectedRows []string
	b.eval(t, `[...document.querySelectorAll('#uncovered tbody tr.selected')].map((r) => r.dataset.key)`, &selectedRows)
	if diff := cmp.Diff([]string{"w:shop/checkout/Deployment>w:payments/ledger/Deployment:TCP/8080"}, selectedRows); diff != "" {
		t.Errorf("table rows marked for the selected edge (-want +got):\n%s", diff)
	}

	// Hovering a workload brings its edges forward.
	var center struct{ X, Y float64 }
	b.eval(t, `(() => { const r = document.querySelector('#graph g.node[data-id="w:shop/checkout/Deployment"] rect').getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()`, &center)
	b.do(t, chromedp.MouseEvent(chromedp.MouseMoved, center.X, center.Y))
	var focused struct {
		Focusing bool
		Edges    int
	}
	b.eval(t, `({focusing: document.querySelector('#graph').classList.contains('focusing'), edges: document.querySelectorAll('#graph g.edge.hl').length})`, &focused)
	wantFocus := expectGraph(rep, func(e simulate.Edge) bool {
		return e.Source.Workload == "checkout" || e.Destination.Workload == "checkout"
	})
	if !focused.Focusing || focused.Edges != wantFocus.Edges {
		t.Errorf("hovering checkout: focusing %v, %d edges forward; want %d", focused.Focusing, focused.Edges, wantFocus.Edges)
	}
	b.do(t, chromedp.MouseEvent(chromedp.MouseMoved, 1, 1))

	// The table's fix for the reporting job opens its YAML.
	b.do(t, chromedp.Click(chromedp.CSS(`#uncovered tr[data-key^="w:payments/reporting/CronJob>"] button.fix`)))
	var tableYAML string
	b.eval(t, `document.querySelector('#uncovered tr.yaml-row pre.yaml').textContent`, &tableYAML)
	if !strings.Contains(tableYAML, "name: reporting\n") || !strings.Contains(tableYAML, "name: ledger\n") {
		t.Errorf("the reporting job's suggestion:\n%s", tableYAML)
	}

	// Sorting by source puts the table in source order, the other way on a second click.
	b.do(t, chromedp.Click(chromedp.CSS(`#uncovered th[data-sort="source"] button`)))
	var order []string
	b.eval(t, `[...document.querySelectorAll('#uncovered tbody tr[data-key]')].map((r) => r.cells[0].textContent)`, &order)
	if !sort.StringsAreSorted(order) || len(order) != 3 {
		t.Errorf("sorted by source: %v", order)
	}

	// The namespace filter keeps the edges that touch payments and their ends.
	b.setSelect(t, "#ns-filter", "payments")
	got = b.drawn(t)
	touches := func(e simulate.Edge) bool {
		return e.Source.Namespace == "payments" || e.Destination.Namespace == "payments"
	}
	want = expectGraph(rep, touches)
	wantDrawn = drawn{Nodes: want.Nodes, Edges: want.Edges, ByColor: byColor(want.ByStatus),
		Rows: []string{"payments/reporting -> payments/ledger", "shop/checkout -> payments/ledger"}}
	if diff := cmp.Diff(wantDrawn, got); diff != "" {
		t.Errorf("filtered to payments (-want +got):\n%s", diff)
	}
	var groups []string
	b.eval(t, `[...new Set([...document.querySelectorAll('#graph g.node')].map((n) => n.dataset.group))].sort()`, &groups)
	if diff := cmp.Diff([]string{"hosts", "ext", "ns:data", "ns:kafka", "ns:kube-system", "ns:monitoring", "ns:payments", "ns:shop"}, groups, sortStrings); diff != "" {
		t.Errorf("namespaces drawn for payments (-want +got):\n%s", diff)
	}

	// Search highlights: back to all namespaces, look for kafka.
	b.setSelect(t, "#ns-filter", "")
	b.do(t, chromedp.SendKeys(chromedp.CSS("#search"), "kafka"))
	b.waitFor(t, `document.querySelectorAll('#graph g.node.match').length > 0`)
	var matched []string
	b.eval(t, `[...document.querySelectorAll('#graph g.node.match')].map((n) => n.dataset.id)`, &matched)
	if diff := cmp.Diff([]string{"w:kafka/kafka/StatefulSet"}, matched); diff != "" {
		t.Errorf("search matches (-want +got):\n%s", diff)
	}
	b.eval(t, `(() => { const s = document.querySelector('#search'); s.value = ''; s.dispatchEvent(new Event('input')); return true; })()`, nil)
	b.waitFor(t, `document.querySelectorAll('#graph g.node.match').length === 0`)

	// The legend's boxes hide a status: without the covered edges, the rest remain.
	b.do(t, chromedp.Click(chromedp.CSS(`#legend input[data-status="covered"]`)))
	got = b.drawn(t)
	want = expectGraph(rep, func(e simulate.Edge) bool { return e.Status != simulate.StatusCovered })
	if got.Edges != want.Edges || got.ByColor[statusColor["covered"]] != 0 {
		t.Errorf("without covered edges: drew %d edges %v, want %d", got.Edges, got.ByColor, want.Edges)
	}
	b.do(t, chromedp.Click(chromedp.CSS(`#legend input[data-status="covered"]`)))
	b.clickEdge(t, "w:shop/checkout/Deployment", "w:payments/ledger/Deployment")

	shot := b.screenshot(t, "report-demo.png", "")
	if png, err := os.ReadFile(shot); err != nil || len(png) < 10_000 || string(png[1:4]) != "PNG" {
		t.Errorf("screenshot %s: %v: %d bytes, not a PNG", shot, err, len(png))
	}
	for _, u := range b.requested() {
		if u != pageURL {
			t.Errorf("the page requested %s: it must need nothing but itself", u)
		}
	}
	b.checkNoExceptions(t)
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
})

// At 500 workloads the page opens as a map of collapsed namespaces, and expands one on
// demand.
func TestBrowserLargeReport(t *testing.T) {
	chromiumPath(t)
	rep := bigReport(500)
	path := filepath.Join(t.TempDir(), "big.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ui.Render(f, rep, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	start := time.Now()
	b.do(t, chromedp.Navigate("file://"+path))
	b.waitFor(t, `document.querySelectorAll('#graph g.node').length > 0`)
	t.Logf("500 workloads, %d edges: drawn %s after navigation started", len(rep.Edges), time.Since(start).Round(time.Millisecond))

	namespaces := map[string]bool{}
	for _, e := range rep.Edges {
		for _, p := range []simulate.Peer{e.Source, e.Destination} {
			if p.Namespace != "" {
				namespaces[p.Namespace] = true
			}
		}
	}
	got := b.drawn(t)
	// Every namespace collapsed, the outside group too (20 CIDRs): one box each.
	if got.GroupNodes != len(namespaces)+1 || got.Nodes != got.GroupNodes {
		t.Errorf("drew %d nodes, %d of them collapsed namespaces; want %d collapsed boxes and nothing else", got.Nodes, got.GroupNodes, len(namespaces)+1)
	}
	if got.Edges == 0 || got.Edges > len(namespaces)*len(namespaces) {
		t.Errorf("%d edges between %d namespace boxes", got.Edges, len(namespaces))
	}
	if len(got.Rows) != len(rep.Uncovered) {
		t.Errorf("%d table rows, want %d", len(got.Rows), len(rep.Uncovered))
	}
	b.screenshot(t, "report-500-collapsed.png", ".graph-panel")

	// Clicking a namespace box expands it in place.
	b.do(t, chromedp.Click(chromedp.CSS(`#graph g.node.group-node[data-id="g:ns:team-03"]`)))
	b.waitFor(t, `document.querySelector('#graph g.group[data-group="ns:team-03"]') !== null`)
	var inside int
	b.eval(t, `document.querySelectorAll('#graph g.node[data-group="ns:team-03"]:not(.group-node)').length`, &inside)
	if inside == 0 {
		t.Error("expanding team-03 drew none of its workloads")
	}
	b.do(t, chromedp.MouseEvent(chromedp.MouseMoved, 1, 1))
	b.screenshot(t, "report-500-expanded.png", ".graph-panel")

	// And the other end: a report with nothing in it says so.
	empty := filepath.Join(t.TempDir(), "empty.html")
	if err := os.WriteFile(empty, []byte(renderString(t, &simulate.Report{})), 0o644); err != nil {
		t.Fatal(err)
	}
	b.do(t, chromedp.Navigate("file://"+empty))
	b.waitFor(t, `document.querySelector('#uncovered-intro').textContent === 'Nothing would be dropped.'`)
	var emptyShown bool
	b.eval(t, `!document.querySelector('#graph-empty').hidden && document.querySelectorAll('#graph g.node').length === 0`, &emptyShown)
	if !emptyShown {
		t.Error("an empty report does not say that no edges match")
	}
	b.checkNoExceptions(t)
}

// withRollout is rep as a daemon's /report has it: with the fields of a newer report
// (a namespace's rollout mode, phase, gate and soak) and the gate results and soak
// summaries of the live report.
func withRollout(t *testing.T, rep *simulate.Report) []byte {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, n := range m["namespaces"].([]any) {
		ns := n.(map[string]any)
		if ns["namespace"] == "shop" {
			ns["mode"], ns["phase"], ns["gate"], ns["soak"] = "Enforce", "Enforced", map[string]any{"passed": true}, map[string]any{"progress": 1}
		}
	}
	m["gates"] = []any{map[string]any{"namespace": "payments", "pass": false, "windowSeconds": 259200, "reasons": []any{
		map[string]any{"code": "uncovered", "message": "2 uncovered edges"},
		map[string]any{"code": "tracking", "message": "observed 36h of the 72h window"},
	}}}
	m["soak"] = []any{map[string]any{"namespace": "payments", "trackedSeconds": 129600, "gapSeconds": 600,
		"now": "2026-11-22T12:00:00Z", "windowStart": "2026-11-19T12:00:00Z"}}
	m["generatedAt"] = "2026-11-22T12:00:00Z"
	m["sources"] = []any{map[string]any{"name": "hubble", "state": "connected", "since": "2026-11-22T08:00:00Z", "lastFlow": "2026-11-22T11:59:59Z"}}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The daemon's page: fetched from /report, suggestions from the handler, refreshed on
// demand with the new report.
func TestBrowserLiveHandler(t *testing.T) {
	chromiumPath(t)
	rep, _ := demoReport(t)
	b := newBrowser(t)
	var mu sync.Mutex
	current := withRollout(t, rep)
	var reportGets, suggestPosts int
	mux := http.NewServeMux()
	mux.HandleFunc("/report", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		reportGets++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(current)
	})
	page := http.StripPrefix("/ui", ui.Handler("/report", ui.WithRefresh(time.Hour)))
	mux.Handle("/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			mu.Lock()
			suggestPosts++
			mu.Unlock()
		}
		page.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b.do(t, chromedp.Navigate(srv.URL+"/ui/"))
	b.waitFor(t, `document.querySelectorAll('#graph g.edge').length > 0`)
	got := b.drawn(t)
	want := expectGraph(rep, nil)
	if got.Nodes != want.Nodes || got.Edges != want.Edges || len(got.Rows) != 3 {
		t.Errorf("live page drew %d nodes, %d edges, %d uncovered rows; want %d, %d, 3", got.Nodes, got.Edges, len(got.Rows), want.Nodes, want.Edges)
	}
	// The overview reads what a daemon adds: per-namespace rollout fields, gate results
	// and soak summaries; namespaces without them show the defaults.
	var overview [][]string
	b.eval(t, `[...document.querySelectorAll('#overview tbody tr')].map((r) => [...r.cells].slice(0, 5).map((c) => c.textContent + (c.querySelector('[title]') ? ' | ' + c.querySelector('[title]').title : '')))`, &overview)
	wantOverview := [][]string{
		{"data", "shadow", "—", "not evaluated", "no soak data"},
		{"ingress-nginx", "not enforced", "—", "not evaluated", "no soak data"},
		{"kafka", "shadow", "—", "not evaluated", "no soak data"},
		{"kube-system", "not enforced", "—", "not evaluated", "no soak data"},
		{"monitoring", "not enforced", "—", "not evaluated", "no soak data"},
		{"payments", "shadow", "—", "fail | 2 uncovered edges; observed 36h of the 72h window", "50% | tracked 36h of 72h, gaps 10m"},
		{"shop", "Enforce", "Enforced", "pass", "100% | {\"progress\":1}"},
	}
	if diff := cmp.Diff(wantOverview, overview); diff != "" {
		t.Errorf("namespace overview (-want +got):\n%s", diff)
	}

	var live struct{ Status, Inputs string }
	b.eval(t, `({status: document.querySelector('#live-status').textContent, inputs: document.querySelector('#flows').textContent})`, &live)
	if !strings.Contains(live.Status, "(report of 2026-11-22 12:00:00Z)") || !strings.Contains(live.Inputs, "source hubble: connected since 2026-11-22 08:00:00Z, last flow 2026-11-22 11:59:59Z") {
		t.Errorf("live status %q, inputs %q", live.Status, live.Inputs)
	}

	b.clickEdge(t, "w:monitoring/prometheus/StatefulSet", "w:kafka/kafka/StatefulSet")
	var yaml string
	b.eval(t, `document.querySelector('#details pre.yaml').textContent`, &yaml)
	if !strings.Contains(yaml, "name: prometheus-suggested\n") {
		t.Errorf("live suggestion (made without the cluster):\n%s", yaml)
	}

	// The intents were fixed: the next report has nothing uncovered.
	mu.Lock()
	fixed := *rep
	fixed.Uncovered = nil
	fixed.Edges = nil
	for _, e := range rep.Edges {
		if e.Status == simulate.StatusWouldDrop {
			e.Status = simulate.StatusCovered
		}
		fixed.Edges = append(fixed.Edges, e)
	}
	current = withRollout(t, &fixed)
	mu.Unlock()
	b.eval(t, `window.shadowgate.refresh().then(() => true)`, nil)
	got = b.drawn(t)
	if got.ByColor[statusColor["would-drop"]] != 0 || len(got.Rows) != 0 || got.Edges != want.Edges {
		t.Errorf("after the refresh: %+v", got)
	}
	var intro string
	b.eval(t, `document.querySelector('#uncovered-intro').textContent`, &intro)
	if intro != "Nothing would be dropped." {
		t.Errorf("intro %q", intro)
	}
	mu.Lock()
	gets, posts := reportGets, suggestPosts
	mu.Unlock()
	if gets != 2 || posts != 2 {
		t.Errorf("%d report fetches and %d suggest posts, want 2 each", gets, posts)
	}
	b.screenshot(t, "report-live.png", "")
	for _, u := range b.requested() {
		if !strings.HasPrefix(u, srv.URL+"/") {
			t.Errorf("the live page requested %s, outside its server", u)
		}
	}
	b.checkNoExceptions(t)
}

// A node's own probes and its cross-node traffic to one workload are two edges from two
// drawn peers, which the page keeps apart and names.
func TestBrowserNodeEdges(t *testing.T) {
	chromiumPath(t)
	web := simulate.Peer{Namespace: "shop", Workload: "web", Kind: "Deployment"}
	rep := &simulate.Report{Enforced: []string{"shop"},
		Edges: []simulate.Edge{
			{Source: simulate.Peer{Kind: simulate.KindNode, Node: "node-1"}, Destination: web, Port: 8080, Protocol: "TCP", Count: 40, Status: simulate.StatusCovered},
			{Source: simulate.Peer{Kind: simulate.KindCrossNode, Node: "node-1"}, Destination: web, Port: 8080, Protocol: "TCP", Count: 2, Status: simulate.StatusWouldDrop},
		}}
	rep.Uncovered = rep.Edges[1:]
	path := filepath.Join(t.TempDir(), "nodes.html")
	if err := os.WriteFile(path, []byte(renderString(t, rep)), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.do(t, chromedp.Navigate("file://"+path))
	b.waitFor(t, `document.querySelectorAll('#graph g.edge').length > 0`)
	want := expectGraph(rep, nil)
	if want.Nodes != 3 || want.Edges != 2 {
		t.Fatalf("expected graph %+v: suggest.EdgeKey does not tell the two node peers apart", want)
	}
	wantDrawn := drawn{Nodes: want.Nodes, Edges: want.Edges, ByColor: byColor(want.ByStatus),
		Rows: []string{"node node-1 (cross-node) -> shop/web"}}
	if diff := cmp.Diff(wantDrawn, b.drawn(t)); diff != "" {
		t.Errorf("drawn graph (-want +got):\n%s", diff)
	}
	var labels []string
	b.eval(t, `[...document.querySelectorAll('#graph g.node[data-kind]')].filter((g) => g.getAttribute('data-kind').endsWith('Node')).map((g) => g.getAttribute('data-id') + ' ' + g.querySelector('title').textContent).sort()`, &labels)
	if diff := cmp.Diff([]string{"c:node-1 node node-1 (cross-node)", "h:node-1 node node-1"}, labels); diff != "" {
		t.Errorf("node peers drawn (-want +got):\n%s", diff)
	}
	b.checkNoExceptions(t)
}
