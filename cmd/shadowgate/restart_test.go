package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/simulate"
)

// TestRestartAfterSIGKILL replays a flow file through the real binary twice: once without
// interruption, once killed with SIGKILL at two points and restarted on the same state. The
// gate must answer the same, and the soak must hold the same connections and edges: nothing
// lost, nothing counted twice, and the downtime recorded as gaps.
func TestRestartAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "shadowgate")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	const n = 600
	lines := flowLines(n, time.Now().Add(-50*time.Minute))

	// Uninterrupted.
	dir := t.TempDir()
	whole := filepath.Join(dir, "flows.jsonl")
	writeLines(t, whole, lines, false)
	d := startDaemon(t, bin, whole, filepath.Join(dir, "state"))
	want := d.waitConnections(t, n)
	d.stop(t, syscall.SIGTERM)

	// Killed twice along the way.
	dir = t.TempDir()
	flows, state := filepath.Join(dir, "flows.jsonl"), filepath.Join(dir, "state")
	writeLines(t, flows, lines[:200], false)
	d = startDaemon(t, bin, flows, state)
	d.waitConnections(t, 200)
	d.waitSaved(t, state)
	d.stop(t, syscall.SIGKILL)

	writeLines(t, flows, lines[200:450], true)
	d = startDaemon(t, bin, flows, state)
	d.waitConnections(t, 450)
	// No wait for a save this time: whatever came after the last one is read again.
	d.stop(t, syscall.SIGKILL)

	writeLines(t, flows, lines[450:], true)
	d = startDaemon(t, bin, flows, state)
	got := d.waitConnections(t, n)
	d.stop(t, syscall.SIGTERM)

	if diff := cmp.Diff(gateView(want), gateView(got)); diff != "" {
		t.Errorf("restarted run differs from the uninterrupted one (-uninterrupted +restarted):\n%s", diff)
	}
	// One gap per restart, or one spanning both when the second run was killed before its
	// first save (then its work is read again and its time is inside the first gap).
	if g := downtimeGaps(got); g < 1 || g > 2 {
		t.Errorf("restarted run recorded %d shadowgate-down gaps, want 1 or 2", g)
	}
	if g := downtimeGaps(want); g != 0 {
		t.Errorf("uninterrupted run recorded %d shadowgate-down gaps, want 0", g)
	}
}

type view struct {
	Connections int64
	Uncovered   []string
	Reasons     []string
}

func gateView(r *simulate.LiveReport) view {
	var v view
	for _, s := range r.Soak {
		if s.Namespace == "app" {
			v.Connections = s.Connections
			for _, e := range s.Uncovered {
				v.Uncovered = append(v.Uncovered, fmt.Sprintf("%s x%d", e.Source.Workload, e.Count))
			}
		}
	}
	for _, g := range r.Gates {
		if g.Namespace == "app" {
			for _, reason := range g.Reasons {
				if reason.Code == "tracking" {
					continue // both runs are younger than the window; the messages carry the age
				}
				v.Reasons = append(v.Reasons, reason.Code)
			}
		}
	}
	return v
}

func downtimeGaps(r *simulate.LiveReport) int {
	n := 0
	for _, s := range r.Soak {
		if s.Namespace != "app" {
			continue
		}
		for _, g := range s.Gaps {
			for _, c := range g.Causes {
				if c.Reason == "shadowgate-down" {
					n++
				}
			}
		}
	}
	return n
}

// flowLines are jsonpb lines for the cli testdata cluster: client-0 calls server-0 (covered
// by its intent), and every tenth line stranger-0 does (not covered).
func flowLines(n int, start time.Time) []string {
	out := make([]string, n)
	for i := range out {
		src, ip := "client-0", "10.1.0.20"
		if i%10 == 9 {
			src, ip = "stranger-0", "10.1.0.30"
		}
		ts := start.Add(time.Duration(i) * 4 * time.Second).UTC().Format(time.RFC3339Nano)
		out[i] = fmt.Sprintf(`{"flow":{"time":%q,"uuid":"u-%d","verdict":"FORWARDED","IP":{"source":%q,"destination":"10.1.0.10","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":%d,"destination_port":8080,"flags":{"SYN":true}}},"source":{"namespace":"app","pod_name":%q},"destination":{"namespace":"app","pod_name":"server-0"},"Type":"L3_L4","node_name":"node-1","traffic_direction":"INGRESS","is_reply":false},"node_name":"node-1","time":%q}`,
			ts, i, ip, 40000+i, src, ts)
	}
	return out
}

func writeLines(t *testing.T, path string, lines []string, appendTo bool) {
	t.Helper()
	flag := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendTo {
		flag = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

type daemon struct {
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stderr strings.Builder
	exited chan error
}

var servingRE = regexp.MustCompile(`serving .* on (\S+)`)

func startDaemon(t *testing.T, bin, flows, state string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, "simulate", "--cluster", "cli/testdata/cluster", "--flows", flows, "--follow",
		"--state", state, "--save-interval", "50ms", "--summary-interval", "1h", "--listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, exited: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.stderr.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.exited
	})
	select {
	case d.addr = <-addr:
		return d
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon did not start serving; stderr:\n%s", d.log())
	}
	return nil
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

func (d *daemon) report(t *testing.T) *simulate.LiveReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.addr+"/report", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /report: %v", err)
	}
	defer resp.Body.Close()
	var r simulate.LiveReport
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode /report: %v", err)
	}
	return &r
}

// waitConnections waits until the soak holds n connections for namespace app.
func (d *daemon) waitConnections(t *testing.T, n int64) *simulate.LiveReport {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := d.report(t)
		for _, s := range r.Soak {
			if s.Namespace == "app" && s.Connections == n {
				return r
			}
			if s.Namespace == "app" && s.Connections > n {
				t.Fatalf("soak holds %d connections, more than the %d lines given: counted twice", s.Connections, n)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("soak never reached %d connections: %+v", n, r.Soak)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSaved waits for a state save after now, so the kill lands after a snapshot.
func (d *daemon) waitSaved(t *testing.T, state string) {
	t.Helper()
	since := time.Now()
	deadline := since.Add(10 * time.Second)
	for {
		if fi, err := os.Stat(state); err == nil && fi.ModTime().After(since) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("state was never saved")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *daemon) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		d.exited <- err // for the cleanup
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("SIGTERM: daemon exited with %v, want a clean exit; stderr:\n%s", err, d.log())
		}
	case <-time.After(20 * time.Second):
		// Ask the runtime where it is stuck before killing it.
		_ = d.cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(time.Second)
		t.Fatalf("daemon did not exit within 20s of %v; stderr:\n%s", sig, d.log())
	}
}
