package flows_test

import (
	"bufio"
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

var fastLines = flag.Int("fast.lines", 20_000, "generated lines TestFastDecoderAgreesWithProtojson compares (a quarter under -race)")

var eventOpts = []cmp.Option{cmpopts.EquateComparable(netip.Addr{})}

// agree parses line both ways and fails unless the fast decoder either declined or
// returned exactly what protojson returns. It reports whether the fast path was taken.
func agree(t testing.TB, name string, line []byte) bool {
	t.Helper()
	line = bytes.Trim(line, flows.JSONSpace)
	if len(line) == 0 {
		return false
	}
	fast, ok := flows.ParseFast(line)
	if !ok {
		return false
	}
	slow := flows.ParseSlow(line)
	if diff := cmp.Diff(slow, fast, eventOpts...); diff != "" {
		t.Fatalf("%s: fast decoder disagrees with protojson (-protojson +fast):\n%s\nline: %s", name, diff, line)
	}
	return true
}

func generatedLines(tb testing.TB, n int) [][]byte {
	tb.Helper()
	return profileLines(tb, bench.ProfileS, n)
}

func profileLines(tb testing.TB, p bench.Profile, n int) [][]byte {
	tb.Helper()
	w := bench.Generate(p, 7)
	g := w.NewFlowGen()
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Append(nil)
	}
	return out
}

func fixtureLines(tb testing.TB, name string) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, slices.Clone(sc.Bytes()))
	}
	return out
}

// TestFastDecoderAgreesWithProtojson compares the two paths on the fixtures and on
// generated traffic, where nearly every line must take the fast path (all but the
// lost-events notices), or the fast path is not doing its job.
func TestFastDecoderAgreesWithProtojson(t *testing.T) {
	for _, name := range []string{"capture.good.jsonl", "capture.bad.jsonl"} {
		for i, line := range fixtureLines(t, name) {
			agree(t, name+" line "+strconv.Itoa(i+1), line)
		}
	}
	n := *fastLines
	if raceEnabled {
		n /= 4
	}
	lines := generatedLines(t, n)
	fast := 0
	for i, line := range lines {
		if agree(t, "generated line "+strconv.Itoa(i+1), line) {
			fast++
		}
	}
	if min := len(lines) * 99 / 100; fast < min {
		t.Errorf("fast path took %d of %d generated lines, want at least %d", fast, len(lines), min)
	}
}

// A typical flow line to vary in the cases below.
const base = `{"flow":{"time":"2026-11-20T10:00:00.137Z","uuid":"6513270e-269e-4d37-b2a7-4de452e6b438","verdict":"FORWARDED",` +
	`"IP":{"source":"10.0.1.12","destination":"10.0.2.33","ipVersion":"IPv4"},` +
	`"l4":{"TCP":{"source_port":51234,"destination_port":8080,"flags":{"SYN":true}}},` +
	`"source":{"ID":1203,"identity":48211,"namespace":"shop","labels":["k8s:app=frontend"],"pod_name":"frontend-1","workloads":[{"name":"frontend","kind":"Deployment"}]},` +
	`"destination":{"identity":2,"labels":["reserved:world"]},` +
	`"Type":"L3_L4","node_name":"node-1","traffic_direction":"EGRESS","is_reply":false,"Summary":"TCP Flags: SYN"},` +
	`"node_name":"node-1","time":"2026-11-20T10:00:00.137Z"}`

// TestFastDecoderCases pins which unusual inputs the fast decoder takes and which it
// leaves to protojson; whichever it is, the result must be protojson's.
func TestFastDecoderCases(t *testing.T) {
	with := func(old, new string) string {
		if !strings.Contains(base, old) {
			t.Fatalf("base line has no %q", old)
		}
		return strings.Replace(base, old, new, 1)
	}
	cases := map[string]struct {
		line     string
		wantFast bool
	}{
		"typical":                          {base, true},
		"camelCase field names":            {with(`"node_name":"node-1","traffic`, `"nodeName":"node-1","traffic`), true},
		"unknown fields are skipped":       {with(`"Summary"`, `"future":{"a":[1,2.5e3,-0.1,true,false,null,"x",{}]},"Summary"`), true},
		"unknown enum name reads as unset": {with(`"verdict":"FORWARDED"`, `"verdict":"SOMETHING_NEW"`), true},
		"zero enum name reads as unset":    {with(`"verdict":"FORWARDED"`, `"verdict":"VERDICT_UNKNOWN"`), true},
		"deprecated reply alone":           {with(`"is_reply":false`, `"reply":true`), true},
		"is_reply wins over reply":         {with(`"is_reply":false`, `"reply":true,"is_reply":false`), true},
		"envelope fills time and node":     {with(`"time":"2026-11-20T10:00:00.137Z","uuid"`, `"uuid"`), true},
		"IPv6":                             {with(`"source":"10.0.1.12","destination":"10.0.2.33"`, `"source":"fd00::1","destination":"fd00::2"`), true},
		"IPv4-mapped address is unmapped":  {with(`"source":"10.0.1.12"`, `"source":"::ffff:10.0.1.12"`), true},
		"ICMP":                             {with(`{"TCP":{"source_port":51234,"destination_port":8080,"flags":{"SYN":true}}}`, `{"ICMPv4":{"type":8}}`), true},
		"empty l4":                         {with(`{"TCP":{"source_port":51234,"destination_port":8080,"flags":{"SYN":true}}}`, `{}`), true},
		"nanosecond timestamp":             {with(`10:00:00.137Z","uuid"`, `10:00:00.123456789Z","uuid"`), true},
		"leap day":                         {with(`2026-11-20T10:00:00.137Z","uuid"`, `2028-02-29T10:00:00Z","uuid"`), true},
		"whitespace everywhere":            {" \t" + strings.NewReplacer(`":`, "\" :\t", `,"`, ", \r\n\"").Replace(base), true},

		"escaped string":             {with(`"shop"`, `"sh\u006fp"`), false},
		"non-ASCII string":           {with(`"shop"`, `"shöp"`), false},
		"null field":                 {with(`"uuid":"6513270e-269e-4d37-b2a7-4de452e6b438"`, `"uuid":null`), false},
		"numeric enum":               {with(`"verdict":"FORWARDED"`, `"verdict":1`), false},
		"number as string":           {with(`"destination_port":8080`, `"destination_port":"8080"`), false},
		"fractional number":          {with(`"destination_port":8080`, `"destination_port":8080.0`), false},
		"port above 65535":           {with(`"destination_port":8080`, `"destination_port":70000`), false},
		"port above uint32":          {with(`"destination_port":8080`, `"destination_port":4294967296`), false},
		"duplicate field":            {with(`"verdict":"FORWARDED"`, `"verdict":"FORWARDED","verdict":"DROPPED"`), false},
		"duplicate by both names":    {with(`"node_name":"node-1","traffic`, `"node_name":"node-1","nodeName":"node-2","traffic`), false},
		"two l4 protocols":           {with(`"flags":{"SYN":true}}}`, `"flags":{"SYN":true}},"UDP":{}}`), false},
		"two response types":         {with(`"node_name":"node-1","time"`, `"lost_events":{},"node_name":"node-1","time"`), false},
		"timestamp with offset":      {with(`10:00:00.137Z","uuid"`, `10:00:00.137+01:00","uuid"`), false},
		"timestamp with ten digits":  {with(`10:00:00.137Z","uuid"`, `10:00:00.1234567891Z","uuid"`), false},
		"31st of November":           {with(`2026-11-20T10:00:00.137Z","uuid"`, `2026-11-31T10:00:00Z","uuid"`), false},
		"year zero":                  {with(`2026-11-20T10:00:00.137Z","uuid"`, `0000-11-20T10:00:00Z","uuid"`), false},
		"no IP layer":                {with(`"IP":{"source":"10.0.1.12","destination":"10.0.2.33","ipVersion":"IPv4"},`, ``), false},
		"bad address":                {with(`"10.0.1.12"`, `"10.0.1.312"`), false},
		"zoned address":              {with(`"source":"10.0.1.12","destination":"10.0.2.33"`, `"source":"fe80::1%eth0","destination":"fe80::2"`), false},
		"mixed families":             {with(`"source":"10.0.1.12"`, `"source":"fd00::1"`), false},
		"wrong type for known field": {with(`"Summary":"TCP Flags: SYN"`, `"Summary":7`), false},
		"wrong type in tunnel":       {with(`"Summary"`, `"tunnel":{"IP":{"source":5}},"Summary"`), false},
		"tunnel is not the flow IP":  {with(`"Summary"`, `"tunnel":{"IP":{"source":"1.2.3.4","destination":"5.6.7.8"},"l4":{"UDP":{"source_port":1,"destination_port":2}}},"Summary"`), true},
		"Any extension":              {with(`"Summary"`, `"extensions":{"@type":"x"},"Summary"`), false},
		"trailing garbage":           {base + `x`, false},
		"bare flow":                  {strings.TrimSuffix(strings.TrimPrefix(base, `{"flow":`), `,"node_name":"node-1","time":"2026-11-20T10:00:00.137Z"}`), false},
		"lost events":                {`{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"27"},"time":"2026-11-20T10:00:01.312Z"}`, false},
		"extension key":              {with(`"Summary"`, `"[x.y]":1,"Summary"`), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := agree(t, name, []byte(tc.line)); got != tc.wantFast {
				t.Errorf("fast path taken = %v, want %v", got, tc.wantFast)
			}
			// ParseLine gives the same answer whichever path it takes.
			ev, _ := flows.ParseLine([]byte(tc.line))
			if diff := cmp.Diff(flows.ParseSlow(bytes.Trim([]byte(tc.line), flows.JSONSpace)), ev, eventOpts...); diff != "" {
				t.Errorf("ParseLine disagrees with protojson (-protojson +ParseLine):\n%s", diff)
			}
		})
	}
}

// TestFastDecoderMemo: stretches a decoder remembers from earlier lines (endpoint
// objects, the members after "destination") are reused only where a line holds exactly
// the same bytes in the same place, and never let through what reading would decline.
func TestFastDecoderMemo(t *testing.T) {
	with := func(line, old, new string) string {
		if !strings.Contains(line, old) {
			t.Fatalf("line has no %q", old)
		}
		return strings.Replace(line, old, new, 1)
	}
	// A source object longer than the memo key, so that objects differing late share it.
	long := with(base, `"labels":["k8s:app=frontend"]`,
		`"labels":["k8s:app=frontend","k8s:io.cilium.k8s.policy.serviceaccount=frontend","k8s:team=web"]`)
	tail := `,"Type":"L3_L4","node_name":"node-1","traffic_direction":"EGRESS","is_reply":false,"Summary":"TCP Flags: SYN"}`
	cases := map[string]struct {
		lines    []string // read in order by one decoder
		wantFast []bool
	}{
		"same line twice": {
			lines:    []string{long, long},
			wantFast: []bool{true, true},
		},
		"endpoint differs after the key bytes": {
			lines:    []string{long, with(long, `"k8s:team=web"`, `"k8s:team=ads"`), long},
			wantFast: []bool{true, true, true},
		},
		"endpoint differs in its last byte": {
			lines:    []string{long, with(long, `"pod_name":"frontend-1","workloads":[{"name":"frontend","kind":"Deployment"}]}`, `"pod_name":"frontend-1","workloads":[{"name":"frontend","kind":"Deployment"}],"x":1}`)},
			wantFast: []bool{true, true},
		},
		"same endpoint, then a broken one with the same start": {
			lines:    []string{long, with(long, `"pod_name":"frontend-1"`, `"pod_name":"fr\u006fntend-1"`)},
			wantFast: []bool{true, false},
		},
		"remembered tail whose field came earlier in the next line": {
			lines: []string{
				with(base, `"Type":"L3_L4","node_name":"node-1","traffic_direction":"EGRESS","is_reply":false,"Summary":"TCP Flags: SYN"}`, tail[1:]),
				with(with(base, `"Type":"L3_L4","node_name":"node-1","traffic_direction":"EGRESS","is_reply":false,"Summary":"TCP Flags: SYN"}`, tail[1:]), `"verdict":"FORWARDED"`, `"verdict":"FORWARDED","Type":"L7"`),
			},
			wantFast: []bool{true, false},
		},
		"remembered tail after other fields": {
			lines: []string{
				base,
				with(base, `"verdict":"FORWARDED"`, `"verdict":"DROPPED","drop_reason_desc":"POLICY_DENIED"`),
				with(base, `"uuid":"6513270e-269e-4d37-b2a7-4de452e6b438",`, ``),
			},
			wantFast: []bool{true, true, true},
		},
		"tail with source names and a deprecated reply": {
			lines: []string{
				with(base, `"Type":"L3_L4"`, `"Type":"L3_L4","source_names":["a.example"],"reply":true`),
				with(base, `"Type":"L3_L4"`, `"Type":"L3_L4","source_names":["a.example"],"reply":true`),
				with(with(base, `"Type":"L3_L4"`, `"Type":"L3_L4","source_names":["a.example"],"reply":true`), `"is_reply":false,`, ``),
			},
			wantFast: []bool{true, true, true},
		},
		"tail holding fields outside the remembered set": {
			lines: []string{
				with(base, `"Type":"L3_L4"`, `"Type":"L3_L4","l4":{"UDP":{"source_port":1,"destination_port":53}}`),
				with(with(base, `"l4":{"TCP":{"source_port":51234,"destination_port":8080,"flags":{"SYN":true}}},`, ``), `"Type":"L3_L4"`, `"Type":"L3_L4","l4":{"UDP":{"source_port":1,"destination_port":53}}`),
			},
			wantFast: []bool{false, true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			parse := flows.NewFastDecoder()
			for i, line := range tc.lines {
				want := flows.ParseSlow([]byte(line))
				got, ok := parse([]byte(line))
				if ok != tc.wantFast[i] {
					t.Errorf("line %d: fast path taken = %v, want %v", i+1, ok, tc.wantFast[i])
				}
				if !ok {
					continue
				}
				if diff := cmp.Diff(want, got, eventOpts...); diff != "" {
					t.Errorf("line %d: fast decoder disagrees with protojson (-protojson +fast):\n%s", i+1, diff)
				}
			}
		})
	}
}

// TestFastDecoderMemoGenerated runs one decoder over profile M's traffic, where most
// endpoints and tails are remembered, and holds every line to protojson.
func TestFastDecoderMemoGenerated(t *testing.T) {
	n := *fastLines / 4
	if raceEnabled {
		n /= 4
	}
	parse := flows.NewFastDecoder()
	fast := 0
	for i, line := range profileLines(t, bench.ProfileM, n) {
		got, ok := parse(line)
		if !ok {
			continue
		}
		fast++
		if diff := cmp.Diff(flows.ParseSlow(line), got, eventOpts...); diff != "" {
			t.Fatalf("generated line %d: fast decoder disagrees with protojson (-protojson +fast):\n%s\nline: %s", i+1, diff, line)
		}
	}
	if min := n * 99 / 100; fast < min {
		t.Errorf("fast path took %d of %d generated lines, want at least %d", fast, n, min)
	}
}

// TestFastDecoderOwnsItsResult: the decoder keeps nothing of the caller's buffer, and the
// slices it hands out do not share storage that an append could overwrite.
func TestFastDecoderOwnsItsResult(t *testing.T) {
	line := []byte(base)
	ev, ok := flows.ParseFast(line)
	if !ok {
		t.Fatal("fast path declined the base line")
	}
	want := flows.ParseSlow([]byte(base))
	for i := range line {
		line[i] = 'x'
	}
	if diff := cmp.Diff(want, ev, eventOpts...); diff != "" {
		t.Errorf("event changed when the line buffer was overwritten (-want +got):\n%s", diff)
	}
	two := []byte(strings.Replace(base, `"labels":["reserved:world"]`, `"labels":["reserved:world","reserved:other"]`, 1))
	ev, _ = flows.ParseFast(two)
	src, dst := ev.Flow.Source.Labels, slices.Clone(ev.Flow.Destination.Labels)
	_ = append(src, "appended")
	if diff := cmp.Diff(dst, ev.Flow.Destination.Labels); diff != "" {
		t.Errorf("appending to Source.Labels changed Destination.Labels (-want +got):\n%s", diff)
	}
}

// TestFastDecoderAllocations bounds the garbage per line once the decoder's tables know
// the traffic: the Flow alone (its IsReply and UUID live in the same allocation).
func TestFastDecoderAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates and empties sync.Pool at random")
	}
	lines := generatedLines(t, 200)
	// Each run parses every line; AllocsPerRun's warm-up run fills the tables of the
	// decoder that the measured runs get from the pool (on its one P).
	perRun := testing.AllocsPerRun(20, func() {
		for _, l := range lines {
			flows.ParseLine(l)
		}
	})
	if allocs := perRun / float64(len(lines)); allocs > 1.1 {
		t.Errorf("ParseLine allocates %.2f times per generated line, want at most 1", allocs)
	}
}

// FuzzFastDecoder holds the fast decoder to protojson on arbitrary input: whenever it
// does not decline, the events must be identical.
func FuzzFastDecoder(f *testing.F) {
	for _, name := range []string{"capture.good.jsonl", "capture.bad.jsonl"} {
		for _, line := range fixtureLines(f, name) {
			f.Add(line)
		}
	}
	for _, line := range generatedLines(f, 50) {
		f.Add(line)
	}
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, line []byte) {
		agree(t, "fuzzed line", line)
	})
}

// BenchmarkParseLineGenerated parses generated lines. A file source hands ParseLine a
// line it has just copied into its buffer, so the lines cycle through a set small
// enough to stay in cache; a set of every line would measure memory latency instead.
func BenchmarkParseLineGenerated(b *testing.B) {
	for _, p := range []bench.Profile{bench.ProfileS, bench.ProfileM} {
		b.Run("profile="+p.Name, func(b *testing.B) { benchmarkParse(b, profileLines(b, p, 100_000)[:1024]) })
	}
}

func benchmarkParse(b *testing.B, lines [][]byte) {
	var size int
	for _, l := range lines {
		size += len(l)
	}
	b.SetBytes(int64(size / len(lines)))
	b.ReportAllocs()
	cpu := startCPU(b)
	i := 0
	for b.Loop() {
		flows.ParseLine(lines[i%len(lines)])
		i++
	}
	cpu.report(b)
}

// BenchmarkParseLineProtojson is the protojson path alone on the same lines, what every
// line cost before the fast decoder.
func BenchmarkParseLineProtojson(b *testing.B) {
	lines := generatedLines(b, 1024)
	b.ReportAllocs()
	cpu := startCPU(b)
	i := 0
	for b.Loop() {
		flows.ParseSlow(lines[i%len(lines)])
		i++
	}
	cpu.report(b)
}

// cpuClock reports the process's CPU time per operation next to ns/op: on a machine
// shared with other work, wall time measures the neighbours as much as the code.
type cpuClock time.Duration

func startCPU(b *testing.B) cpuClock {
	b.Helper()
	return cpuClock(processCPU(b))
}

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU(b)-time.Duration(c))/float64(b.N), "cpu-ns/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
