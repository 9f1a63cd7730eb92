package flows

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// readAll drains src; it fails the test on any error other than the final io.EOF.
func readAll(t *testing.T, src Source) []Event {
	t.Helper()
	var events []Event
	for {
		ev, err := src.Next(t.Context())
		if errors.Is(err, io.EOF) {
			return events
		}
		if err != nil {
			t.Fatalf("Next after %d events: %v", len(events), err)
		}
		events = append(events, ev)
	}
}

func openFile(t *testing.T, path string) *FileSource {
	t.Helper()
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// goldenEvent prints Kind by name so the golden file reads without the enum at hand.
type goldenEvent struct {
	Kind string
	Event
}

func TestFileSourceGolden(t *testing.T) {
	events := readAll(t, openFile(t, filepath.Join("testdata", "capture.good.jsonl")))
	golden := make([]goldenEvent, len(events))
	for i, ev := range events {
		if ev.Kind == KindMalformed {
			t.Errorf("line %d: malformed %s: %s", ev.Line, ev.Reason, ev.Detail)
		}
		golden[i] = goldenEvent{Kind: ev.Kind.String(), Event: ev}
	}
	got, err := json.MarshalIndent(golden, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "capture.good.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("events of capture.good.jsonl (-want +got), rerun with -update if intended:\n%s", diff)
	}
}

func TestFileSourceBadFixture(t *testing.T) {
	// One line per malformed reason a Hubble capture can produce, with one good line in the
	// middle to show a bad line does not stop the read.
	want := []struct {
		line   int
		kind   Kind
		reason string
		detail string
	}{
		{1, KindMalformed, ReasonInvalidJSON, "unexpected"},
		{2, KindMalformed, ReasonNotAnObject, "an array"},
		{3, KindMalformed, ReasonInvalidField, "Timestamp"},
		{4, KindFlow, "", ""},
		{5, KindMalformed, ReasonEmptyEvent, "keys: agent_event, node_name, time"},
		{6, KindMalformed, ReasonInvalidIP, "IP.source"},
		{7, KindMalformed, ReasonInvalidPort, "l4.UDP.destination_port 70053"},
	}
	got := readAll(t, openFile(t, filepath.Join("testdata", "capture.bad.jsonl")))
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line || g.Kind != w.kind || g.Reason != w.reason || !strings.Contains(g.Detail, w.detail) {
			t.Errorf("event %d = line %d %v %q %q, want line %d %v %q with detail mentioning %q",
				i, g.Line, g.Kind, g.Reason, g.Detail, w.line, w.kind, w.reason, w.detail)
		}
	}
}

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFileSourceGzip(t *testing.T) {
	plain, err := os.ReadFile(filepath.Join("testdata", "capture.good.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, NewReader("plain", bytes.NewReader(plain)))
	half := bytes.Index(plain[len(plain)/2:], []byte("\n")) + len(plain)/2 + 1

	cases := map[string][]byte{
		"one member": gzipBytes(t, plain),
		// `cat a.gz b.gz` of rotated captures is one valid gzip stream of two members.
		"two members": append(gzipBytes(t, plain[:half]), gzipBytes(t, plain[half:])...),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			// No .gz suffix: compression is detected from the content.
			path := filepath.Join(t.TempDir(), "capture.jsonl")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, openFile(t, path))
			if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
				t.Errorf("gzip events (-want +got):\n%s", diff)
			}
		})
	}
}

// lineView is what TestFileSourceLines compares: where each event came from and what it is.
type lineView struct {
	Line   int
	Kind   Kind
	Reason string
}

func TestFileSourceLines(t *testing.T) {
	const flow = `{"flow":{"uuid":"u1"}}`
	cases := map[string]struct {
		input string
		want  []lineView
	}{
		"empty input": {input: "", want: nil},
		"only blank lines": {
			input: "\n\n  \n\r\n",
			want:  nil,
		},
		"blank lines are skipped but counted": {
			input: "\n" + flow + "\n\n\n" + flow + "\n",
			want:  []lineView{{2, KindFlow, ""}, {5, KindFlow, ""}},
		},
		"last line without newline": {
			input: flow + "\n" + flow,
			want:  []lineView{{1, KindFlow, ""}, {2, KindFlow, ""}},
		},
		"CRLF line endings": {
			input: flow + "\r\n\r\n" + flow + "\r\n",
			want:  []lineView{{1, KindFlow, ""}, {3, KindFlow, ""}},
		},
		"byte order mark on line 1": {
			input: "\xef\xbb\xbf" + flow + "\n" + flow + "\n",
			want:  []lineView{{1, KindFlow, ""}, {2, KindFlow, ""}},
		},
		"byte order mark before a blank line 1": {
			input: "\xef\xbb\xbf\n" + flow + "\n",
			want:  []lineView{{2, KindFlow, ""}},
		},
		"byte order mark after line 1": {
			input: flow + "\n\xef\xbb\xbf" + flow + "\n",
			want:  []lineView{{1, KindFlow, ""}, {2, KindMalformed, ReasonInvalidJSON}},
		},
		"truncated last line": {
			input: flow + "\n" + `{"flow":{"uu`,
			want:  []lineView{{1, KindFlow, ""}, {2, KindMalformed, ReasonInvalidJSON}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got []lineView
			for _, ev := range readAll(t, NewReader(name, strings.NewReader(tc.input))) {
				got = append(got, lineView{ev.Line, ev.Kind, ev.Reason})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileSourceLineTooLong(t *testing.T) {
	const flow = `{"flow":{"uuid":"u1"}}`
	const max = 64
	// JSON allows whitespace after '{', so padding keeps a line valid at any length.
	sized := func(n int) string { return "{" + strings.Repeat(" ", n-len(flow)) + flow[1:] }
	cases := map[string]struct {
		input string
		want  []lineView
	}{
		"exactly the limit": {
			input: sized(max) + "\n" + flow + "\n",
			want:  []lineView{{1, KindFlow, ""}, {2, KindFlow, ""}},
		},
		"exactly the limit without newline": {
			input: sized(max),
			want:  []lineView{{1, KindFlow, ""}},
		},
		"one byte over is skipped and reading goes on": {
			input: flow + "\n" + sized(max+1) + "\n" + flow + "\n",
			want:  []lineView{{1, KindFlow, ""}, {2, KindMalformed, ReasonLineTooLong}, {3, KindFlow, ""}},
		},
		"over the limit without newline": {
			input: flow + "\n" + sized(max+1),
			want:  []lineView{{1, KindFlow, ""}, {2, KindMalformed, ReasonLineTooLong}},
		},
		"longer than the read buffer": {
			input: sized(200<<10) + "\n" + flow + "\n",
			want:  []lineView{{1, KindMalformed, ReasonLineTooLong}, {2, KindFlow, ""}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			src := newFileSource(name, strings.NewReader(tc.input), max)
			var got []lineView
			for _, ev := range readAll(t, src) {
				got = append(got, lineView{ev.Line, ev.Kind, ev.Reason})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// The promise is "lines up to 16 MiB", so test it at the real limit once.
func TestFileSourceMaxLineBytes(t *testing.T) {
	const flow = `{"flow":{"uuid":"u1"}}`
	line := "{" + strings.Repeat(" ", MaxLineBytes-len(flow)) + flow[1:]
	input := line + "\n" + line + " \n"
	want := []lineView{{1, KindFlow, ""}, {2, KindMalformed, ReasonLineTooLong}}
	var got []lineView
	for _, ev := range readAll(t, NewReader("big", strings.NewReader(input))) {
		got = append(got, lineView{ev.Line, ev.Kind, ev.Reason})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestFileSourceReadErrors(t *testing.T) {
	const flow = `{"flow":{"uuid":"u1"}}` + "\n"
	good := gzipBytes(t, []byte(strings.Repeat(flow, 3)))
	badChecksum := bytes.Clone(good)
	badChecksum[len(badChecksum)-8] ^= 0xff // CRC-32 is the trailer's first 4 bytes
	var corruptInput flate.CorruptInputError

	cases := map[string]struct {
		input io.Reader
		// wantEvents are delivered before the error; -1 when that depends on where the
		// compressor happened to put block boundaries.
		wantEvents int
		wantPrefix string
		wantIs     error
		wantAs     any
	}{
		"gzip magic without a gzip header": {
			input:      bytes.NewReader([]byte{0x1f, 0x8b, 'n', 'o', 't', ' ', 'g', 'z', 'i', 'p', '\n'}),
			wantPrefix: "cap: line 1: reading gzip header: ",
			wantIs:     gzip.ErrHeader,
		},
		"truncated gzip stream": {
			input:      bytes.NewReader(good[:len(good)-10]),
			wantEvents: -1,
			wantPrefix: "cap: line ",
			wantIs:     io.ErrUnexpectedEOF,
		},
		"corrupt gzip checksum": {
			input:      bytes.NewReader(badChecksum),
			wantEvents: 3,
			wantPrefix: "cap: line 4: ",
			wantIs:     gzip.ErrChecksum,
		},
		"corrupt deflate data": {
			input:      bytes.NewReader(append(bytes.Clone(good[:10]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)),
			wantPrefix: "cap: line 1: ",
			wantAs:     &corruptInput,
		},
		"reader fails mid-line": {
			input:      io.MultiReader(strings.NewReader(flow+flow+`{"flow":`), iotest.ErrReader(fs.ErrPermission)),
			wantEvents: 2,
			wantPrefix: "cap: line 3: ",
			wantIs:     fs.ErrPermission,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			src := NewReader("cap", tc.input)
			var events int
			var err error
			for {
				var ev Event
				if ev, err = src.Next(t.Context()); err != nil {
					break
				}
				if ev.Kind == KindMalformed {
					t.Errorf("line %d: read failure reported as malformed %s: %s", ev.Line, ev.Reason, ev.Detail)
				}
				events++
			}
			if tc.wantEvents >= 0 && events != tc.wantEvents {
				t.Errorf("got %d events before the error, want %d", events, tc.wantEvents)
			}
			if !strings.HasPrefix(err.Error(), tc.wantPrefix) {
				t.Errorf("error %q, want prefix %q", err, tc.wantPrefix)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v, want errors.Is %v", err, tc.wantIs)
			}
			if tc.wantAs != nil && !errors.As(err, tc.wantAs) {
				t.Errorf("error %v, want errors.As %T", err, tc.wantAs)
			}
			if _, again := src.Next(t.Context()); again != err {
				t.Errorf("Next after the error = %v, want the same error %v", again, err)
			}
		})
	}
}

func TestFileSourceEOFIsSticky(t *testing.T) {
	src := NewReader("one", strings.NewReader(`{"flow":{"uuid":"u1"}}`))
	readAll(t, src)
	for range 2 {
		if _, err := src.Next(t.Context()); !errors.Is(err, io.EOF) {
			t.Fatalf("Next after EOF = %v, want io.EOF", err)
		}
	}
}

// `hubble observe --follow | shadowgate` blocks on a quiet pipe; ctx must still end Next, and
// the next line written must not be lost.
func TestFileSourceContextCancelWhileBlocked(t *testing.T) {
	pr, pw := io.Pipe()
	src := NewReader("pipe", pr)
	defer src.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on a quiet pipe = %v, want context.DeadlineExceeded", err)
	}

	go func() {
		fmt.Fprintln(pw, `{"flow":{"uuid":"after-cancel"}}`)
		pw.Close()
	}()
	ev, err := src.Next(t.Context())
	if err != nil {
		t.Fatalf("Next after the writer wrote: %v", err)
	}
	if ev.Kind != KindFlow || ev.Flow.UUID != "after-cancel" || ev.Line != 1 {
		t.Errorf("got %+v, want the flow on line 1", ev)
	}
	if _, err := src.Next(t.Context()); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the writer closed = %v, want io.EOF", err)
	}
}

func TestFileSourceClose(t *testing.T) {
	// More lines than the read-ahead, so the reader goroutine is blocked sending at Close.
	path := filepath.Join(t.TempDir(), "many.jsonl")
	if err := os.WriteFile(path, bytes.Repeat([]byte(`{"flow":{"uuid":"u1"}}`+"\n"), 4*readAhead), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := src.Next(t.Context()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close = %v, want os.ErrClosed", err)
	}
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		path   string
		wantIs error
		want   string
	}{
		"missing file": {path: filepath.Join(dir, "nope.jsonl"), wantIs: fs.ErrNotExist, want: "nope.jsonl"},
		"directory":    {path: dir, want: dir + ": is a directory"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			src, err := OpenFile(tc.path)
			if err == nil {
				src.Close()
				t.Fatalf("OpenFile(%q) succeeded", tc.path)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v, want errors.Is %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestOpenFileStdin(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	stdin := os.Stdin
	os.Stdin = pr
	t.Cleanup(func() { os.Stdin = stdin })

	src, err := OpenFile(StdinPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := pw.WriteString("\n" + `{"flow":{"uuid":"from-stdin"}}` + "\n"); err != nil {
		t.Fatal(err)
	}
	pw.Close()

	got := readAll(t, src)
	want := []Event{{Kind: KindFlow, Line: 2, Flow: &Flow{UUID: "from-stdin"}}}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("events from stdin (-want +got):\n%s", diff)
	}
	if src.Name() != "<stdin>" {
		t.Errorf("Name() = %q, want <stdin>", src.Name())
	}
}

func TestFileSourceCanceledContextWinsOverReadyEvent(t *testing.T) {
	src := NewReader("ready", strings.NewReader(`{"flow":{"uuid":"u1"}}`+"\n"))
	defer src.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 10 {
		if ev, err := src.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next with a canceled ctx = %+v, %v; want context.Canceled", ev, err)
		}
	}
	if ev, err := src.Next(t.Context()); err != nil || ev.Flow == nil || ev.Flow.UUID != "u1" {
		t.Errorf("Next after the cancel = %+v, %v; want the flow, not lost", ev, err)
	}
}
