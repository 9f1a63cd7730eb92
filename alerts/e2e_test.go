package alerts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/viper"

	"github.com/shadowgate/shadowgate/cmd/shadowgate/cli"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
)

// TestUncoveredFlowsAlertEndToEnd runs the shipped rules in Debian's real Prometheus,
// scraping a long-running simulate that follows a real gRPC Hubble observer: the
// uncovered-flows alert must go pending with the namespace's labels, and resolve once the
// missing intent is written and the simulate has reloaded it.
func TestUncoveredFlowsAlertEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("prometheus not found on PATH with CI set (apt-get install prometheus): %v", err)
		}
		t.Skipf("prometheus not found (apt-get install prometheus): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// client-0 -> server-0 is covered by the cluster's intent; stranger-0 -> server-0 is not.
	now := time.Now()
	server := hubbletest.Endpoint{Namespace: "app", Pod: "server-0", IP: "10.1.0.10"}
	spec := func(src hubbletest.Endpoint, uuid string) hubbletest.FlowSpec {
		return hubbletest.FlowSpec{UUID: uuid, Node: "node-1", Source: src, Destination: server, DestPort: 8080, TCPFlagsSYN: true}
	}
	fs := append(
		hubbletest.Series(20, now.Add(-time.Minute), time.Second, spec(hubbletest.Endpoint{Namespace: "app", Pod: "client-0", IP: "10.1.0.20"}, "client")),
		hubbletest.Series(3, now.Add(-50*time.Second), 5*time.Second, spec(hubbletest.Endpoint{Namespace: "app", Pod: "stranger-0", IP: "10.1.0.30"}, "stranger"))...)
	relay := hubbletest.Start(t, hubbletest.Steady(fs), hubbletest.ListenAddress("127.0.0.1:0"))

	dir := t.TempDir()
	intentsDir := filepath.Join(dir, "intents")
	if err := os.Mkdir(intentsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	target := startSimulate(ctx, t, "--cluster", "testdata/e2e/cluster", "--intents", intentsDir, "--enforce", "app",
		"--hubble", relay.Addr(), "--listen", "127.0.0.1:0", "--reload-interval", "500ms", "--summary-interval", "500ms")
	prom := startPrometheus(ctx, t, promBin, target)

	want := []map[string]string{{"alertname": "ShadowgateUncoveredFlows", "namespace": "app", "severity": "warning"}}
	var got []map[string]string
	poll(ctx, t, "ShadowgateUncoveredFlows pending or firing for namespace app", func() bool {
		got = prom.alerts(ctx, t, "ShadowgateUncoveredFlows", "pending", "firing")
		return len(got) > 0
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("active alert labels (-want +got):\n%s", diff)
	}
	if v := prom.query(ctx, t, `shadowgate_uncovered_edges{namespace="app"}`); v != "1" {
		t.Errorf("shadowgate_uncovered_edges{namespace=app} = %q, want 1", v)
	}

	// The stranger's team adds its intent; the simulate reloads it and re-judges the edge.
	b, err := os.ReadFile("testdata/e2e/stranger-intent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(intentsDir, "stranger.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "ShadowgateUncoveredFlows to resolve after the intent was added", func() bool {
		return len(prom.alerts(ctx, t, "ShadowgateUncoveredFlows", "pending", "firing")) == 0
	})
	if v := prom.query(ctx, t, `shadowgate_uncovered_edges{namespace="app"}`); v != "0" {
		t.Errorf("shadowgate_uncovered_edges{namespace=app} after the intent = %q, want 0", v)
	}
}

// poll checks cond four times a second until it holds or ctx ends.
func poll(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// syncBuffer collects a process's log for failure messages and for the listen address.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var servingRE = regexp.MustCompile(`serving .* on (\S+)`)

// startSimulate runs `shadowgate simulate` in-process until the test ends and returns the
// address it serves /metrics on.
func startSimulate(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	var stderr syncBuffer
	cmd := cli.New(viper.New())
	cmd.SetArgs(append([]string{"simulate", "--quiet"}, args...))
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("simulate: %v", err)
		}
		if t.Failed() {
			t.Logf("simulate log:\n%s", stderr.String())
		}
	})
	var addr string
	poll(ctx, t, "the simulate to serve", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("simulate exited early: %v\n%s", err, stderr.String())
		default:
		}
		if m := servingRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

type promServer struct {
	base string
}

// startPrometheus runs Prometheus on a free loopback port with the shipped rules, scraping
// target every second; it is killed and its storage removed when the test ends.
func startPrometheus(ctx context.Context, t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs("rules/shadowgate.rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile("testdata/e2e/prometheus.yml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("{{RULES}}", rules, "{{TARGET}}", target).Replace(string(tmpl))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	var log syncBuffer
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	p := &promServer{base: "http://" + addr}
	poll(ctx, t, "prometheus to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited early:\n%s", log.String())
		default:
		}
		resp, err := get(ctx, p.base+"/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// freeLoopbackAddr picks a port the kernel considers free; Prometheus binds it right after.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// httpClient bounds every request, so a wedged Prometheus fails the poll instead of the
// whole test's deadline.
var httpClient = &http.Client{Timeout: 5 * time.Second}

func get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return httpClient.Do(req)
}

func (p *promServer) api(ctx context.Context, t *testing.T, path string, into any) {
	t.Helper()
	resp, err := get(ctx, p.base+path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("GET %s: %s: %v", path, resp.Status, err)
	}
	if env.Status != "success" {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, env.Error)
	}
	if err := json.Unmarshal(env.Data, into); err != nil {
		t.Fatalf("GET %s: data: %v", path, err)
	}
}

// alerts returns the labels of the active alerts named name in one of states.
func (p *promServer) alerts(ctx context.Context, t *testing.T, name string, states ...string) []map[string]string {
	t.Helper()
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	p.api(ctx, t, "/api/v1/alerts", &data)
	var out []map[string]string
	for _, a := range data.Alerts {
		for _, s := range states {
			if a.Labels["alertname"] == name && a.State == s {
				out = append(out, a.Labels)
			}
		}
	}
	return out
}

// query evaluates an instant query that must return one sample and returns its value.
func (p *promServer) query(ctx context.Context, t *testing.T, q string) string {
	t.Helper()
	var data struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	p.api(ctx, t, "/api/v1/query?query="+url.QueryEscape(q), &data)
	if len(data.Result) != 1 {
		t.Fatalf("query %s: %d samples, want 1", q, len(data.Result))
	}
	return fmt.Sprint(data.Result[0].Value[1])
}
