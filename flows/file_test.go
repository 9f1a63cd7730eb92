package flows

import (
	"bufio"
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
	clocktesting "k8s.io/utils/clock/testing"
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
		for _, mode := range readModes {
			t.Run(name+"/"+mode.name, func(t *testing.T) {
				var got []lineView
				for _, ev := range readAll(t, newFileSource(name, strings.NewReader(tc.input), MaxLineBytes, mode.inline)) {
					got = append(got, lineView{ev.Line, ev.Kind, ev.Reason})
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// readModes are the two ways a FileSource reads: on Next's goroutine (memory, regular
// files) and with a reader goroutine handing batches over (pipes, followers). Tests that
// do not depend on the kind of reader run both.
var readModes = []struct {
	name   string
	inline bool
}{{"inline", true}, {"goroutine", false}}

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
		for _, mode := range readModes {
			t.Run(name+"/"+mode.name, func(t *testing.T) {
				src := newFileSource(name, strings.NewReader(tc.input), max, mode.inline)
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
		input func() io.Reader
		// wantEvents are delivered before the error; -1 when that depends on where the
		// compressor happened to put block boundaries.
		wantEvents int
		wantPrefix string
		wantIs     error
		wantAs     any
	}{
		"gzip magic without a gzip header": {
			input:      readerOf(bytes.NewReader, []byte{0x1f, 0x8b, 'n', 'o', 't', ' ', 'g', 'z', 'i', 'p', '\n'}),
			wantPrefix: "cap: line 1: reading gzip header: ",
			wantIs:     gzip.ErrHeader,
		},
		"truncated gzip stream": {
			input:      readerOf(bytes.NewReader, good[:len(good)-10]),
			wantEvents: -1,
			wantPrefix: "cap: line ",
			wantIs:     io.ErrUnexpectedEOF,
		},
		"corrupt gzip checksum": {
			input:      readerOf(bytes.NewReader, badChecksum),
			wantEvents: 3,
			wantPrefix: "cap: line 4: ",
			wantIs:     gzip.ErrChecksum,
		},
		"corrupt deflate data": {
			input:      readerOf(bytes.NewReader, append(bytes.Clone(good[:10]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)),
			wantPrefix: "cap: line 1: ",
			wantAs:     &corruptInput,
		},
		"reader fails mid-line": {
			input: func() io.Reader {
				return io.MultiReader(strings.NewReader(flow+flow+`{"flow":`), iotest.ErrReader(fs.ErrPermission))
			},
			wantEvents: 2,
			wantPrefix: "cap: line 3: ",
			wantIs:     fs.ErrPermission,
		},
	}
	for name, tc := range cases {
		for _, mode := range readModes {
			t.Run(name+"/"+mode.name, func(t *testing.T) {
				src := newFileSource("cap", tc.input(), MaxLineBytes, mode.inline)
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
}

// readerOf defers making a reader, so that each run of a table case gets a fresh one.
func readerOf(r func([]byte) *bytes.Reader, b []byte) func() io.Reader {
	return func() io.Reader { return r(b) }
}

func TestFileSourceEOFIsSticky(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			src := newFileSource("one", strings.NewReader(`{"flow":{"uuid":"u1"}}`), MaxLineBytes, mode.inline)
			readAll(t, src)
			for range 2 {
				if _, err := src.Next(t.Context()); !errors.Is(err, io.EOF) {
					t.Fatalf("Next after EOF = %v, want io.EOF", err)
				}
			}
		})
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
	// More lines than the read-ahead, so a reader goroutine is blocked sending at Close.
	path := filepath.Join(t.TempDir(), "many.jsonl")
	if err := os.WriteFile(path, bytes.Repeat([]byte(`{"flow":{"uuid":"u1"}}`+"\n"), 4*readAhead), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			src := newFileSource(path, f, MaxLineBytes, mode.inline)
			src.closer = f
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
		})
	}
}

// Close may come from another goroutine while Next reads inline; Next then ends with
// os.ErrClosed (or returns what it had already read), never a read error about the
// closed file, and the race detector has nothing to say.
func TestFileSourceCloseDuringInlineNext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "many.jsonl")
	if err := os.WriteFile(path, bytes.Repeat([]byte(`{"flow":{"uuid":"u1"}}`+"\n"), 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if src.inline == nil {
		t.Fatal("a regular file is not read inline")
	}
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := src.Next(context.Background()); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(time.Millisecond)
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) {
		t.Errorf("Next during Close ended with %v, want os.ErrClosed (or io.EOF if it read all first)", err)
	}
}

func TestFileSourceReadMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flows.jsonl")
	if err := os.WriteFile(path, []byte(`{"flow":{"uuid":"u1"}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	cases := map[string]struct {
		open       func(t *testing.T) *FileSource
		wantInline bool
	}{
		"regular file":   {open: func(t *testing.T) *FileSource { return must(t)(OpenFile(path)) }, wantInline: true},
		"bytes.Reader":   {open: func(*testing.T) *FileSource { return NewReader("b", bytes.NewReader(nil)) }, wantInline: true},
		"bytes.Buffer":   {open: func(*testing.T) *FileSource { return NewReader("b", new(bytes.Buffer)) }, wantInline: true},
		"strings.Reader": {open: func(*testing.T) *FileSource { return NewReader("s", strings.NewReader("")) }, wantInline: true},
		"os pipe":        {open: func(*testing.T) *FileSource { return NewReader("p", pr) }},
		"io pipe": {open: func(*testing.T) *FileSource {
			r, _ := io.Pipe()
			return NewReader("p", r)
		}},
		"other reader": {open: func(*testing.T) *FileSource { return NewReader("o", struct{ io.Reader }{strings.NewReader("")}) }},
		"follower":     {open: func(t *testing.T) *FileSource { return must(t)(OpenFileFollow(path, FollowOptions{})) }},
		"NewPromptReader": {open: func(*testing.T) *FileSource {
			return NewPromptReader("o", struct{ io.Reader }{strings.NewReader("")})
		}, wantInline: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			src := tc.open(t)
			defer src.Close()
			if got := src.inline != nil; got != tc.wantInline {
				t.Errorf("read inline = %v, want %v", got, tc.wantInline)
			}
		})
	}
}

func must(t *testing.T) func(*FileSource, error) *FileSource {
	return func(src *FileSource, err error) *FileSource {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
}

// A reader goroutine hands events over in batches, but never holds one back while it
// waits for a writer: lines written to a pipe that stays open are delivered, a blank last
// line included.
func TestFileSourcePipeDeliversBeforeBlocking(t *testing.T) {
	const flow = `{"flow":{"uuid":"u1"}}`
	cases := map[string]string{
		"one line":                flow + "\n",
		"a few lines":             flow + "\n" + flow + "\n" + flow + "\n",
		"a blank line after them": flow + "\n" + flow + "\n\n",
		"then half a line":        flow + "\n" + `{"flow":{"uu`,
		"more than a batch":       strings.Repeat(flow+"\n", batchLen+3),
	}
	for name, input := range cases {
		t.Run(name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			src := NewReader("pipe", pr)
			defer src.Close()
			go pw.Write([]byte(input))
			want := strings.Count(strings.ReplaceAll(input, "\n\n", "\n"), flow+"\n")
			for i := range want {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				ev, err := src.Next(ctx)
				cancel()
				if err != nil || ev.Kind != KindFlow {
					t.Fatalf("Next #%d = %+v, %v; want the flow the writer wrote", i+1, ev, err)
				}
			}
		})
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
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			// Two flows, so that a reader goroutine's batch still holds one after the
			// first Next.
			src := newFileSource("ready", strings.NewReader(`{"flow":{"uuid":"u1"}}`+"\n"+`{"flow":{"uuid":"u2"}}`+"\n"), MaxLineBytes, mode.inline)
			defer src.Close()
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			for _, want := range []string{"u1", "u2"} {
				for range 10 {
					if ev, err := src.Next(ctx); !errors.Is(err, context.Canceled) {
						t.Fatalf("Next with a canceled ctx = %+v, %v; want context.Canceled", ev, err)
					}
				}
				if ev, err := src.Next(t.Context()); err != nil || ev.Flow == nil || ev.Flow.UUID != want {
					t.Errorf("Next after the cancel = %+v, %v; want the flow %s, not lost", ev, err, want)
				}
			}
		})
	}
}

// pieces is a reader that a test feeds: it returns what was fed, then io.EOF until more is
// fed, like a file a writer appends to.
type pieces struct{ data []string }

func (p *pieces) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.data[0])
	if p.data[0] = p.data[0][n:]; p.data[0] == "" {
		p.data = p.data[1:]
	}
	return n, nil
}

func TestLineReaderHoldPartial(t *testing.T) {
	type read struct {
		line string
		size int
		eof  bool
	}
	cases := map[string]struct {
		feeds [][]string // fed before each round of reads until EOF
		want  [][]read
	}{
		"a line completed across writes": {
			feeds: [][]string{{"a\nb"}, {"c"}, {"d\n"}},
			want:  [][]read{{{"a", 1, false}, {eof: true}}, {{eof: true}}, {{"bcd", 3, false}, {eof: true}}},
		},
		"a line over the limit while still being written": {
			feeds: [][]string{{"0123"}, {"456789"}, {"\nok\n"}},
			want:  [][]read{{{eof: true}}, {{eof: true}}, {{"", 10, false}, {"ok", 2, false}, {eof: true}}},
		},
		"CRLF and blank lines": {
			feeds: [][]string{{"a\r"}, {"\n\n"}},
			want:  [][]read{{{eof: true}}, {{"a\r", 2, false}, {"", 0, false}, {eof: true}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			src := &pieces{}
			// A 16-byte buffer makes lines span buffer fills.
			lr := lineReader{r: bufio.NewReaderSize(src, 16), max: 8, holdPartial: true}
			var got [][]read
			for _, feed := range tc.feeds {
				src.data = append(src.data, feed...)
				var round []read
				for {
					line, size, err := lr.next()
					if errors.Is(err, io.EOF) {
						round = append(round, read{eof: true})
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					round = append(round, read{line: string(line), size: size})
				}
				got = append(got, round)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(read{})); diff != "" {
				t.Errorf("reads (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLineReaderPartial(t *testing.T) {
	lr := lineReader{r: bufio.NewReader(&pieces{data: []string{"a\n", "tail"}}), max: 8, holdPartial: true}
	if line, _, err := lr.next(); err != nil || string(line) != "a" {
		t.Fatalf("next = %q, %v; want a", line, err)
	}
	if line, size := lr.partial(); line != nil || size != 0 {
		t.Errorf("partial after a complete line = %q, %d; want nothing", line, size)
	}
	if _, _, err := lr.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("next at the partial line = %v, want io.EOF", err)
	}
	if line, size := lr.partial(); string(line) != "tail" || size != 4 {
		t.Errorf("partial = %q, %d; want tail, 4", line, size)
	}
	if line, size := lr.partial(); line != nil || size != 0 {
		t.Errorf("partial again = %q, %d; want it forgotten", line, size)
	}
}

// followView is what the follow tests compare.
type followView struct {
	Line   int
	Kind   Kind
	UUID   string
	Reason string
	State  HealthState
	At     time.Duration // Health.Time from the start
}

var followStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func followViewOf(ev Event) followView {
	v := followView{Line: ev.Line, Kind: ev.Kind, Reason: ev.Reason}
	if ev.Flow != nil {
		v.UUID = ev.Flow.UUID
	}
	if ev.Health != nil {
		v.State, v.At = ev.Health.State, ev.Health.Time.Sub(followStart)
	}
	return v
}

// follower drives an OpenFileFollow source with a fake clock.
type follower struct {
	t     *testing.T
	src   *FileSource
	clock *clocktesting.FakeClock
}

const followPoll = time.Second

func startFollow(t *testing.T, path string) *follower {
	t.Helper()
	fc := clocktesting.NewFakeClock(followStart)
	src, err := OpenFileFollow(path, FollowOptions{PollInterval: followPoll, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return &follower{t: t, src: src, clock: fc}
}

// idle returns the events the follower yields until it waits at the end of the file. It
// waits on the clock only after sending everything it read, so an empty queue and a waiter
// mean the file was read to its end.
func (f *follower) idle() []followView {
	f.t.Helper()
	var got []followView
	for deadline := time.Now().Add(10 * time.Second); ; {
		// Events wait in the channel's batches or in the batch Next is taking from.
		if len(f.src.events) > 0 || f.src.pos < len(f.src.batch) {
			ev, err := f.src.Next(f.t.Context())
			if err != nil {
				f.t.Fatalf("Next after %d events: %v", len(got), err)
			}
			got = append(got, followViewOf(ev))
			continue
		}
		if f.clock.HasWaiters() {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the follower neither sent an event nor waited for 10s; got %+v", got)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func flowLine(uuid string) string { return `{"flow":{"uuid":"` + uuid + `"}}` + "\n" }

func TestFileSourceFollow(t *testing.T) {
	connected := followView{Kind: KindHealth, State: Connected}
	flowAt := func(line int, uuid string) followView { return followView{Line: line, Kind: KindFlow, UUID: uuid} }
	health := func(st HealthState, at time.Duration) followView {
		return followView{Kind: KindHealth, State: st, At: at}
	}
	type step struct {
		do   func(t *testing.T, path string)
		want []followView
	}
	appendLines := func(data string) func(*testing.T, string) {
		return func(t *testing.T, path string) { appendFile(t, path, data) }
	}
	cases := map[string]struct {
		initial string
		steps   []step
	}{
		"lines are read as they are appended": {
			initial: flowLine("u1"),
			steps: []step{
				{want: []followView{connected, flowAt(1, "u1")}},
				{do: appendLines(flowLine("u2") + "\n" + flowLine("u3")), want: []followView{flowAt(2, "u2"), flowAt(4, "u3")}},
				{},
			},
		},
		"an empty file": {
			steps: []step{
				{want: []followView{connected}},
				{do: appendLines(flowLine("u1")), want: []followView{flowAt(1, "u1")}},
			},
		},
		"half a line waits for its newline": {
			initial: flowLine("u1") + `{"flow":{"uu`,
			steps: []step{
				{want: []followView{connected, flowAt(1, "u1")}},
				{do: appendLines(`id":"u2"}}`)},
				{do: appendLines("\n" + `{"flow":`), want: []followView{flowAt(2, "u2")}},
				{do: appendLines(`{"uuid":"u3"}}` + "\n"), want: []followView{flowAt(3, "u3")}},
			},
		},
		"bad lines are reported and reading goes on": {
			initial: flowLine("u1"),
			steps: []step{
				{want: []followView{connected, flowAt(1, "u1")}},
				{do: appendLines("{bad\n" + flowLine("u2")), want: []followView{{Line: 2, Kind: KindMalformed, Reason: ReasonInvalidJSON}, flowAt(3, "u2")}},
			},
		},
		"truncated in place and rewritten (copytruncate)": {
			initial: flowLine("u1") + flowLine("u2") + `{"partial`,
			steps: []step{
				{want: []followView{connected, flowAt(1, "u1"), flowAt(2, "u2")}},
				{
					do: func(t *testing.T, path string) {
						if err := os.Truncate(path, 0); err != nil {
							t.Fatal(err)
						}
						appendFile(t, path, flowLine("u3"))
					},
					want: []followView{health(Disconnected, 0), health(Connected, followPoll), flowAt(1, "u3")},
				},
				{do: appendLines(flowLine("u4")), want: []followView{flowAt(2, "u4")}},
			},
		},
		"replaced (rotated): the old file is read to its end first": {
			initial: flowLine("u1"),
			steps: []step{
				{want: []followView{connected, flowAt(1, "u1")}},
				{
					do: func(t *testing.T, path string) {
						if err := os.Rename(path, path+".1"); err != nil {
							t.Fatal(err)
						}
						// The writer finishes the old file without a final newline, then
						// moves on to a new one.
						appendFile(t, path+".1", flowLine("u2")+`{"flow":{"uuid":"u3"}}`)
						appendFile(t, path, flowLine("u4"))
					},
					want: []followView{
						flowAt(2, "u2"), flowAt(3, "u3"),
						health(Disconnected, 0), health(Connected, followPoll), flowAt(1, "u4"),
					},
				},
				{do: appendLines(flowLine("u5")), want: []followView{flowAt(2, "u5")}},
			},
		},
		"removed, then created again": {
			initial: flowLine("u1"),
			steps: []step{
				{want: []followView{connected, flowAt(1, "u1")}},
				{
					do: func(t *testing.T, path string) {
						if err := os.Remove(path); err != nil {
							t.Fatal(err)
						}
					},
					want: []followView{health(Disconnected, 0)},
				},
				{},
				{do: appendLines(flowLine("u2")), want: []followView{health(Connected, 3*followPoll), flowAt(1, "u2")}},
			},
		},
		"moved away and back": {
			initial: flowLine("u1"),
			steps: []step{
				{want: []followView{connected, flowAt(1, "u1")}},
				{
					do: func(t *testing.T, path string) {
						if err := os.Rename(path, path+".moved"); err != nil {
							t.Fatal(err)
						}
					},
					want: []followView{health(Disconnected, 0)},
				},
				{
					do: func(t *testing.T, path string) {
						if err := os.Rename(path+".moved", path); err != nil {
							t.Fatal(err)
						}
						appendFile(t, path, flowLine("u2"))
					},
					want: []followView{health(Connected, 2*followPoll), flowAt(2, "u2")},
				},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flows.jsonl")
			if err := os.WriteFile(path, []byte(tc.initial), 0o644); err != nil {
				t.Fatal(err)
			}
			var f *follower
			for i, st := range tc.steps {
				if f == nil {
					f = startFollow(t, path)
				} else {
					if st.do != nil {
						st.do(t, path)
					}
					f.clock.Step(followPoll)
				}
				if diff := cmp.Diff(st.want, f.idle()); diff != "" {
					t.Fatalf("step %d: events (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestFileSourceFollowHealthMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.jsonl")
	if err := os.WriteFile(path, []byte(flowLine("u1")+flowLine("u2")), 0o644); err != nil {
		t.Fatal(err)
	}
	f := startFollow(t, path)
	f.idle()
	if err := os.Truncate(path, 5); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(followPoll)
	var msgs []string
	for range 2 {
		ev, err := f.src.Next(t.Context())
		if err != nil || ev.Health == nil {
			t.Fatalf("Next = %+v, %v; want a Health event", ev, err)
		}
		if ev.Health.Source != "file" {
			t.Errorf("Health.Source = %q, want file", ev.Health.Source)
		}
		msgs = append(msgs, ev.Health.Message)
	}
	want := []string{
		path + " shrank from 46 to 5 bytes (truncated); reading it again from the start, lines written before the truncation since the last check may be lost",
		"following " + path,
	}
	if diff := cmp.Diff(want, msgs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestFileSourceFollowGzip(t *testing.T) {
	gz := gzipBytes(t, []byte(flowLine("u1")))
	t.Run("at open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "flows.jsonl")
		if err := os.WriteFile(path, gz, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := OpenFileFollow(path, FollowOptions{})
		if err == nil || !strings.Contains(err.Error(), "cannot follow a gzip-compressed file") {
			t.Fatalf("OpenFileFollow = %v, want it to refuse gzip", err)
		}
	})
	t.Run("replaced by one", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "flows.jsonl")
		if err := os.WriteFile(path, []byte(flowLine("u1")), 0o644); err != nil {
			t.Fatal(err)
		}
		f := startFollow(t, path)
		f.idle()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, gz, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		f.clock.Step(followPoll)
		_, err := f.src.Next(t.Context())
		want := path + ": replaced by a gzip-compressed file, which cannot be followed"
		if err == nil || err.Error() != want {
			t.Fatalf("Next = %v, want %q", err, want)
		}
		if _, again := f.src.Next(t.Context()); again != err {
			t.Errorf("Next after the error = %v, want the same error", again)
		}
	})
}

func TestOpenFileFollowErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		path string
		opts FollowOptions
		want string
	}{
		"missing file":      {path: filepath.Join(dir, "nope.jsonl"), want: "nope.jsonl: no such file or directory"},
		"directory":         {path: dir, want: dir + ": is a directory"},
		"negative interval": {path: dir, opts: FollowOptions{PollInterval: -time.Second}, want: "follow poll interval -1s is negative"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			src, err := OpenFileFollow(tc.path, tc.opts)
			if err == nil {
				src.Close()
				t.Fatalf("OpenFileFollow(%q) succeeded", tc.path)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFileSourceFollowContextAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.jsonl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := startFollow(t, path)
	f.idle()

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := f.src.Next(ctx)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next at the end of a followed file = %v, want context.Canceled", err)
	}
	// The follower keeps going: a line written after the cancel is not lost.
	appendFile(t, path, flowLine("after-cancel"))
	f.clock.Step(followPoll)
	if got := f.idle(); !cmp.Equal(got, []followView{{Line: 1, Kind: KindFlow, UUID: "after-cancel"}}) {
		t.Fatalf("after the cancel: %+v, want the new line", got)
	}

	if err := f.src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-f.src.exited:
	default:
		t.Fatal("the follower still runs after Close returned")
	}
	if f.clock.HasWaiters() {
		t.Error("the follower's poll timer outlived Close")
	}
	if _, err := f.src.Next(t.Context()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close = %v, want os.ErrClosed", err)
	}
}

// With the real clock: the one test that waits on real polls, bounded by a deadline.
func TestFileSourceFollowRealClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flows.jsonl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFileFollow(path, FollowOptions{PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if ev, err := src.Next(ctx); err != nil || ev.Health == nil || ev.Health.State != Connected {
		t.Fatalf("first event = %+v, %v; want Connected", ev, err)
	}
	appendFile(t, path, flowLine("live"))
	if ev, err := src.Next(ctx); err != nil || ev.Flow == nil || ev.Flow.UUID != "live" {
		t.Fatalf("Next = %+v, %v; want the appended flow", ev, err)
	}
}

func TestOpenFileFollowStdin(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	stdin := os.Stdin
	os.Stdin = pr
	t.Cleanup(func() { os.Stdin = stdin })

	src, err := OpenFileFollow(StdinPath, FollowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := pw.WriteString(flowLine("from-stdin")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	got := readAll(t, src)
	want := []Event{{Kind: KindFlow, Line: 1, Flow: &Flow{UUID: "from-stdin"}}}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("events from stdin (-want +got):\n%s", diff)
	}
}
