package soak

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/utils/clock"
	testclock "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/flows"
)

var update = flag.Bool("update", false, "rewrite the snapshot fixtures and golden files in testdata/")

// savedAt is when the fixture snapshot was taken.
var savedAt = t0.Add(3 * 24 * time.Hour)

// fixtureStore exercises every part of the format: edges of every peer kind, both verdicts,
// several hours, lost and overflow counts, closed and open gaps, freed peer ids.
func fixtureStore(t testing.TB, clk clock.PassiveClock) *Store {
	t.Helper()
	s := newTestStore(t, clk, func(o *Options) { o.MaxEdgesPerNamespace = 4 })
	s.Track("data", t0)
	s.Track("shop", t0.Add(time.Hour))
	node := Peer{Kind: KindNode, Node: "node-1"}
	for h := range 30 {
		when := t0.Add(time.Duration(h) * 2 * time.Hour)
		s.Observe(cartRds, when, covered("data"), uncovered("shop"))
		if h%3 == 0 {
			s.Observe(EdgeKey{Source: world, Destination: web, Protocol: "TCP", Port: 443}, when, uncovered("shop"))
			s.Observe(EdgeKey{Source: node, Destination: redis, Protocol: "TCP", Port: 6379}, when, covered("data"))
		}
	}
	s.Observe(EdgeKey{Source: cart, Destination: pg}, t0.Add(5*time.Hour), covered("data"))
	s.Observe(tcp(wl("shop", "gone"), pg, 5432), t0.Add(-time.Hour), covered("data"))
	for i := range 3 {
		s.Observe(tcp(wl("shop", fmt.Sprint("extra-", i)), pg, 5432), t0.Add(50*time.Hour), covered("data"))
	}
	s.Lost(AllNamespaces(), t0.Add(20*time.Hour), 17)
	s.Lost(Namespaces("shop"), t0.Add(40*time.Hour), 3)
	for _, h := range []flows.Health{
		{Time: t0.Add(10 * time.Hour), Source: "hubble", State: flows.Disconnected, Message: "rpc error: code = Unavailable"},
		{Time: t0.Add(10*time.Hour + 20*time.Minute), Source: "hubble", State: flows.Connected},
		{Time: t0.Add(60 * time.Hour), Source: "hubble", State: flows.Degraded, Nodes: []string{"node-2"}},
		{Time: t0.Add(70 * time.Hour), Source: "mapper", State: flows.Disconnected, Message: "connection refused"},
	} {
		if err := s.Health(AllNamespaces(), h); err != nil {
			t.Fatal(err)
		}
	}
	// The window ends at savedAt: the "gone" edge's only hour expires and frees its peer.
	s.Expire(savedAt.Add(4 * 24 * time.Hour))
	return s
}

func saveBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Save(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// reseal rewrites the header of a snapshot around payload so only the payload is bad.
func reseal(payload []byte) []byte {
	hdr := make([]byte, headerLen)
	copy(hdr, magic[:])
	binary.BigEndian.PutUint32(hdr[8:], FormatVersion)
	binary.BigEndian.PutUint64(hdr[12:], uint64(len(payload)))
	sum := checksum(hdr[8:20], payload)
	copy(hdr[20:], sum[:])
	return append(hdr, payload...)
}

func gz(raw []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(raw)
	zw.Close()
	return b.Bytes()
}

// badFixtures derives every kind of broken snapshot from a good one.
func badFixtures(good []byte) map[string][]byte {
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	return map[string][]byte{
		"empty":             {},
		"text":              []byte("this is not a snapshot\n"),
		"magic":             with(func(b []byte) []byte { b[1] = 'X'; return b }),
		"version":           with(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 2); return b }),
		"truncated-header":  good[:15],
		"truncated-payload": good[:len(good)-10],
		"checksum":          with(func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }),
		"trailing-data":     append(bytes.Clone(good), '\n'),
		"not-gzip":          reseal([]byte("plain bytes, not gzip")),
		"garbage-content":   reseal(gz([]byte{0x01, 0x02, 0xff, 0xff, 0xff})),
		"short-content":     reseal(gz(withRaw(good, func(raw []byte) []byte { return raw[:len(raw)-3] }))),
		"extra-content":     reseal(gz(withRaw(good, func(raw []byte) []byte { return append(raw, 0) }))),
		"zero-window":       reseal(gz(withRaw(good, func(raw []byte) []byte { raw[0] = 0; return raw }))),
	}
}

// withRaw changes the decompressed content of a good snapshot: checksum and compression
// will be fine, the content will not.
func withRaw(good []byte, f func([]byte) []byte) []byte {
	raw, err := readSnapshot(bytes.NewReader(good))
	if err != nil {
		panic(err)
	}
	return f(raw)
}

var badProblems = map[string]Problem{
	"empty":             ProblemTruncated,
	"text":              ProblemNotSnapshot,
	"magic":             ProblemNotSnapshot,
	"version":           ProblemVersion,
	"truncated-header":  ProblemTruncated,
	"truncated-payload": ProblemTruncated,
	"checksum":          ProblemChecksum,
	"trailing-data":     ProblemCorrupt,
	"not-gzip":          ProblemCorrupt,
	"garbage-content":   ProblemCorrupt,
	"short-content":     ProblemCorrupt,
	"extra-content":     ProblemCorrupt,
	"zero-window":       ProblemCorrupt,
}

func fixturePath(name string) string { return filepath.Join("testdata", "snapshot."+name+".sgsoak") }

// TestFixtures checks the committed snapshots: the good one (written by an earlier build of
// this format) still loads to the golden dump, and each bad one fails the way its name says.
// `go test -update` regenerates them all.
func TestFixtures(t *testing.T) {
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		good := saveBytes(t, fixtureStore(t, testclock.NewFakePassiveClock(savedAt)))
		if err := os.WriteFile(fixturePath("good"), good, 0o644); err != nil {
			t.Fatal(err)
		}
		for name, b := range badFixtures(good) {
			if err := os.WriteFile(fixturePath("bad-"+name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	good, err := os.ReadFile(fixturePath("good"))
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	// Loaded two hours after it was saved: the dump shows the shadowgate-down gap.
	s, err := Load(bytes.NewReader(good), DefaultOptions(), testclock.NewFakePassiveClock(savedAt.Add(2*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "snapshot.good.golden.json"), s.Dump())

	// The report views of the same store: the JSON the lead serves at /report.
	now := savedAt.Add(2 * time.Hour)
	view := struct {
		Summaries []Summary `json:"summaries"`
		Gates     []Result  `json:"gates"`
	}{Summaries: s.Summaries(now)}
	for _, ns := range []string{"data", "shop", "payments"} {
		r, err := s.Gate(ns, now, DefaultGateConfig())
		if err != nil {
			t.Fatal(err)
		}
		view.Gates = append(view.Gates, r)
	}
	checkGolden(t, filepath.Join("testdata", "report.golden.json"), view)

	for name, problem := range badProblems {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(fixturePath("bad-" + name))
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			s, err := Load(bytes.NewReader(b), DefaultOptions(), testclock.NewFakePassiveClock(savedAt))
			var se *SnapshotError
			if !errors.As(err, &se) {
				t.Fatalf("Load = %v, %v; want a *SnapshotError", s, err)
			}
			if se.Problem != problem {
				t.Errorf("problem %q (%v), want %q", se.Problem, err, problem)
			}
			if s != nil {
				t.Error("Load returned a store with its error")
			}
			if problem == ProblemVersion && (se.Version != 2 || se.Error() != "soak snapshot: unsupported-version 2 (this build reads 1)") {
				t.Errorf("version error %q, version %d", se, se.Version)
			}
		})
	}
}

// checkGolden compares v's indented JSON with the golden file (rewritten with -update).
func checkGolden(t *testing.T, golden string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", golden, diff)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	clk := testclock.NewFakePassiveClock(savedAt)
	s := fixtureStore(t, clk)
	want := s.Dump()
	b := saveBytes(t, s)
	want.Heartbeat = savedAt

	t.Run("loaded at once", func(t *testing.T) {
		got, err := Load(bytes.NewReader(b), s.Options(), clk)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got.Dump()); diff != "" {
			t.Errorf("dump after round trip (-want +got):\n%s", diff)
		}
		// The loaded store works like the original: same answers, same next snapshot.
		for _, ns := range []string{"data", "shop"} {
			r1, _ := s.Gate(ns, savedAt, DefaultGateConfig())
			r2, _ := got.Gate(ns, savedAt, DefaultGateConfig())
			if diff := cmp.Diff(r1, r2); diff != "" {
				t.Errorf("gate %s (-original +loaded):\n%s", ns, diff)
			}
		}
		if !bytes.Equal(b, saveBytes(t, got)) {
			t.Error("saving the loaded store gives different bytes")
		}
	})
	t.Run("loaded after downtime", func(t *testing.T) {
		later := savedAt.Add(95 * time.Minute)
		got, err := Load(bytes.NewReader(b), DefaultOptions(), testclock.NewFakePassiveClock(later))
		if err != nil {
			t.Fatal(err)
		}
		down := Gap{Start: savedAt, End: later, Reason: GapShadowgateDown, Source: "shadowgate",
			Message: "not running since the snapshot at " + savedAt.Format(time.RFC3339)}
		for i, d := range got.Dump().Namespaces {
			wantGaps := append(append([]Gap(nil), want.Namespaces[i].Gaps...), down)
			if diff := cmp.Diff(wantGaps, d.Gaps, cmpopts.SortSlices(func(a, b Gap) bool { return compareGaps(a, b) < 0 })); diff != "" {
				t.Errorf("%s gaps (-want +got):\n%s", d.Namespace, diff)
			}
		}
		r, _ := got.Gate("data", later, GateConfig{MaxGap: time.Hour, TopN: 1, Window: 24 * time.Hour})
		if !hasCode(r, CodeGap) {
			t.Errorf("gate after 95m down: %v, want a gap reason", r.Reasons)
		}
	})
	t.Run("loaded with a longer window", func(t *testing.T) {
		short := newTestStore(t, clk, func(o *Options) { o.Window = 24 * time.Hour })
		short.Track("shop", t0)
		b := saveBytes(t, short)
		got, err := Load(bytes.NewReader(b), DefaultOptions(), clk)
		if err != nil {
			t.Fatal(err)
		}
		// Only the last day was kept, so tracking cannot claim more.
		if since := got.Dump().Namespaces[0].TrackedSince; !since.Equal(savedAt.Add(-24 * time.Hour)) {
			t.Errorf("tracked since %s, want %s", since, savedAt.Add(-24*time.Hour))
		}
	})
}

func hasCode(r Result, code string) bool {
	for _, x := range r.Reasons {
		if x.Code == code {
			return true
		}
	}
	return false
}

func TestSaveFile(t *testing.T) {
	clk := testclock.NewFakePassiveClock(savedAt)
	s := fixtureStore(t, clk)
	dir := t.TempDir()
	path := filepath.Join(dir, "soak.snapshot")
	if err := os.WriteFile(path, []byte("previous snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "soak.snapshot" {
		t.Errorf("directory holds %v, want only the snapshot (no temporary files)", entries)
	}
	got, err := LoadFile(path, DefaultOptions(), clk)
	if err != nil {
		t.Fatal(err)
	}
	want := s.Dump()
	if diff := cmp.Diff(want, got.Dump()); diff != "" {
		t.Errorf("dump (-want +got):\n%s", diff)
	}

	missing := filepath.Join(dir, "no", "such", "dir", "soak.snapshot")
	if err := s.SaveFile(missing); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SaveFile into a missing directory: %v", err)
	}
}

func TestLoadFileMissing(t *testing.T) {
	s, err := LoadFile(filepath.Join(t.TempDir(), "soak.snapshot"), DefaultOptions(), testclock.NewFakePassiveClock(t0))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error = %v, want fs.ErrNotExist", err)
	}
	if s == nil || len(s.Dump().Namespaces) != 0 || !s.Dump().SnapshotLost.IsZero() {
		t.Errorf("a first start gets an empty store, got %+v", s)
	}
}

// A snapshot that cannot be used is moved aside, and the fresh store cannot pass a gate on
// history it does not have.
func TestLoadFileCorrupt(t *testing.T) {
	good, err := os.ReadFile(fixturePath("good"))
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	now := savedAt.Add(10 * time.Minute)
	for name, b := range badFixtures(good) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "soak.snapshot")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := LoadFile(path, DefaultOptions(), testclock.NewFakePassiveClock(now))
			var se *SnapshotError
			if !errors.As(err, &se) {
				t.Fatalf("error = %v, want *SnapshotError", err)
			}
			aside := path + ".corrupt-" + strconv.FormatInt(now.Unix(), 10)
			if se.Path != path || se.MovedTo != aside || se.Problem != badProblems[name] {
				t.Errorf("error %+v, want path %s moved to %s, problem %s", se, path, aside, badProblems[name])
			}
			if kept, err := os.ReadFile(aside); err != nil || !bytes.Equal(kept, b) {
				t.Errorf("moved-aside file: %v (same bytes: %t)", err, bytes.Equal(kept, b))
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the corrupt file is still at %s: %v", path, err)
			}
			if s == nil {
				t.Fatal("no fresh store")
			}
			// The caller re-tracks what it governs, claiming the old start.
			s.Track("shop", t0)
			r, err := s.Gate("shop", now.Add(time.Hour), DefaultGateConfig())
			if err != nil {
				t.Fatal(err)
			}
			if r.Pass || !hasCode(r, CodeTracking) || !r.Stats.TrackedSince.Equal(now) {
				t.Errorf("gate on a fresh store after a lost snapshot: pass=%t since=%s reasons=%v", r.Pass, r.Stats.TrackedSince, r.Reasons)
			}
			gaps := s.Dump().Namespaces[0].Gaps
			if len(gaps) != 1 || gaps[0].Reason != GapSnapshotLost || !gaps[0].Start.Equal(t0) || !gaps[0].End.Equal(now) {
				t.Errorf("gaps %+v, want one snapshot-lost gap from %s to %s", gaps, t0, now)
			}
		})
	}
}

// The snapshot must stay small enough to keep in the cluster later: a few MiB for thousands
// of edges.
func TestSnapshotSize(t *testing.T) {
	const edges = 5000
	s := newTestStore(t, testclock.NewFakePassiveClock(t0.Add(7*24*time.Hour)))
	fillStore(s, "shop", edges, 24, t0)
	b := saveBytes(t, s)
	raw, err := readSnapshot(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d edges × 24 hours: %d bytes on disk (%.1f per edge), %d before compression", edges, len(b),
		float64(len(b))/edges, len(raw))
	if len(b) > 1<<20 {
		t.Errorf("snapshot of %d edges is %d bytes, want under 1 MiB", edges, len(b))
	}
}

func FuzzDecode(f *testing.F) {
	good, err := os.ReadFile(fixturePath("good"))
	if err != nil {
		f.Fatalf("%v (run go test -update to create it)", err)
	}
	raw, err := readSnapshot(bytes.NewReader(good))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, _ := New(DefaultOptions(), testclock.NewFakePassiveClock(t0))
		if _, err := s.decode(raw); err != nil {
			return
		}
		// Whatever decodes must re-encode to something that decodes to the same content.
		again, _ := New(DefaultOptions(), testclock.NewFakePassiveClock(t0))
		if _, err := again.decode(s.encodeLocked()); err != nil {
			t.Fatalf("re-encoded content does not decode: %v", err)
		}
		if a, b := s.Dump(), again.Dump(); !sameJSON(t, a, b) {
			t.Fatalf("re-encoded content differs (-first +second):\n%s", cmp.Diff(a, b))
		}
	})
}
