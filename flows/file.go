package flows

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// MaxLineBytes is the longest line a FileSource parses. Hubble flows are a few KiB; the limit
// only exists so one corrupt line cannot make us buffer a whole file.
const MaxLineBytes = 16 << 20

// StdinPath is the path OpenFile reads as standard input.
const StdinPath = "-"

var (
	gzipMagic = []byte{0x1f, 0x8b}
	utf8BOM   = []byte{0xef, 0xbb, 0xbf}
)

// Events go from a reader goroutine to Next in batches of up to batchLen, at most
// readAheadBatches of them queued: a channel operation per event, and the goroutine
// switch it often causes, cost more than parsing the line. readAhead bounds how many
// parsed events wait for Next, so a slow consumer holds little in memory while parsing
// still overlaps judging.
const (
	batchLen         = 64
	readAheadBatches = 4
	readAhead        = batchLen * readAheadBatches
)

// FileSource reads Hubble jsonpb (or legacy json) lines from a file, a pipe or stdin,
// gzip-compressed or not. It is a Source: Next returns io.EOF after the last line.
//
// A pipe or other reader that may block is read by a goroutine, so that Next honours ctx
// even while a read is blocked on a quiet pipe (`hubble observe --follow | shadowgate ...`).
// A regular file or an in-memory reader, whose reads end promptly, is read and parsed by
// Next itself, on the caller's goroutine: handing every event to another goroutine costs
// more CPU than it saves, and the parser's tables and the consumer's then share one
// core's caches in turn rather than in contention. Like any Source, Next is not safe for
// concurrent use; Close may be called from any goroutine.
type FileSource struct {
	name    string
	closer  io.Closer // nil when the caller owns the reader
	done    chan struct{}
	closed  atomic.Bool // set just before done is closed, for Next's cheap check
	once    sync.Once
	err     error // terminal error already returned by Next; only Next touches it
	maxLine int
	parser  lineParser // used by whichever goroutine reads: Next's or the reader's

	// inline is the stream Next reads itself; nil when a goroutine reads.
	inline *stream

	// With a reader goroutine: batches of results, each non-empty, and spent batches
	// going back to it.
	events chan []fileResult
	free   chan []fileResult
	batch  []fileResult // the batch Next is taking results from; only Next touches it
	pos    int
	out    []fileResult // the batch being filled; only the reader goroutine touches it
	// exited is closed when a follower stops; nil for other sources, whose reader may be
	// blocked on a pipe that Close cannot interrupt.
	exited chan struct{}
}

type fileResult struct {
	ev  Event
	err error
}

var _ Source = (*FileSource)(nil)

// OpenFile opens path for reading flows; StdinPath ("-") reads standard input. Compression
// is detected from the content, not the name, so `flows.json` may be gzip and vice versa.
func OpenFile(path string) (*FileSource, error) {
	if path == StdinPath {
		return NewReader("<stdin>", os.Stdin), nil
	}
	f, fi, err := openInput(path)
	if err != nil {
		return nil, err
	}
	s := newFileSource(path, f, MaxLineBytes, fi.Mode().IsRegular())
	s.closer = f
	return s, nil
}

// openInput opens path and refuses a directory.
func openInput(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: is a directory, want a file of Hubble flows", path)
	}
	return f, fi, nil
}

// NewReader reads flows from r, plain or gzip, exactly as OpenFile does; name is used in
// errors. Close does not close r.
func NewReader(name string, r io.Reader) *FileSource {
	return newFileSource(name, r, MaxLineBytes, readsPromptly(r))
}

// NewPromptReader is NewReader for a reader whose reads never wait for a writer, which
// NewReader cannot tell from its type: a wrapper around a regular file (a byte counter for
// a progress line, say). Next reads and parses it on the caller's goroutine, as it does a
// regular file, and cannot be interrupted by ctx in the middle of a read.
func NewPromptReader(name string, r io.Reader) *FileSource {
	return newFileSource(name, r, MaxLineBytes, true)
}

// ReuseFlows lets Next write every Flow into the same memory: after it, the Flow of an
// event Next returns, with the IsReply and UUID it points to, is valid only until the next
// call to Next, which may overwrite it. The Endpoint slices (Labels, Workloads, Names) and
// the strings other than UUID stay valid, as without it. A consumer that keeps nothing of
// a Flow past its event (a Simulator's Observe) saves an allocation, and the garbage
// collection behind it, per line. Call it before the first Next.
//
// Only a source that reads on Next's goroutine (a regular file, memory, NewPromptReader)
// reuses; one read by a goroutine (a pipe, stdin from a terminal or a pipe, a follower)
// ignores it and allocates every Flow, which the caller may then keep as if it had not
// called it. Lines the fast decoder leaves to protojson also get a Flow of their own.
func (s *FileSource) ReuseFlows() {
	if s.inline != nil && s.parser.reuse == nil {
		// The reader goroutine, had there been one, would own the parser.
		s.parser.reuse = &flowAlloc{}
	}
}

// readsPromptly reports whether every read of r ends without waiting for a writer: memory
// and regular files (stdin redirected from a file included). Those are read inline.
func readsPromptly(r io.Reader) bool {
	switch r := r.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		return true
	case *os.File:
		fi, err := r.Stat()
		return err == nil && fi.Mode().IsRegular()
	}
	return false
}

// newFileSource reads r inline (on Next's goroutine) or with a reader goroutine.
func newFileSource(name string, r io.Reader, maxLine int, inline bool) *FileSource {
	s := &FileSource{
		name:    name,
		done:    make(chan struct{}),
		maxLine: maxLine,
	}
	st := &stream{s: s, r: r}
	if inline {
		s.inline = st
		return s
	}
	s.startReader()
	go s.run(st)
	return s
}

func (s *FileSource) startReader() {
	s.events = make(chan []fileResult, readAheadBatches-1)
	s.free = make(chan []fileResult, readAheadBatches+1)
}

// Name is the name the source reports in errors.
func (s *FileSource) Name() string { return s.name }

// Next returns the next event. Event.Line is the 1-based physical line, blank lines
// included. Read failures (a truncated or corrupt gzip stream, an I/O error) are errors
// naming the file and line, and end the source; unusable lines are KindMalformed events.
func (s *FileSource) Next(ctx context.Context) (Event, error) {
	if s.err != nil {
		return Event{}, s.err
	}
	// Checked first so a canceled ctx wins even when an event is ready.
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	if s.closed.Load() {
		return Event{}, s.errClosed()
	}
	if s.inline != nil {
		return s.nextInline()
	}
	if s.pos == len(s.batch) {
		if s.batch != nil {
			clear(s.batch) // the reader reuses it; keep no Flow alive through it
			select {
			case s.free <- s.batch[:0]:
			default:
			}
			s.batch, s.pos = nil, 0
		}
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case b, ok := <-s.events:
			if !ok {
				// Only Close ends the reader goroutine without a final result.
				return Event{}, s.errClosed()
			}
			s.batch = b
		}
	}
	r := s.batch[s.pos]
	s.pos++
	if r.err != nil {
		s.err = r.err
		return Event{}, r.err
	}
	return r.ev, nil
}

// nextInline reads up to the next event on the caller's goroutine.
func (s *FileSource) nextInline() (Event, error) {
	for {
		ev, ok, err := s.inline.next()
		if err != nil {
			s.parser.release() // nothing more to parse
			if s.closed.Load() {
				// Close closed the file under the read.
				return Event{}, s.errClosed()
			}
			s.err = err
			return Event{}, err
		}
		if ok {
			return ev, nil
		}
	}
}

func (s *FileSource) errClosed() error { return fmt.Errorf("%s: %w", s.name, os.ErrClosed) }

// Close stops reading and closes the file OpenFile opened. A read already blocked on a pipe
// or stdin ends only when it returns; its result is discarded. A follower (OpenFileFollow)
// has stopped and closed its file when Close returns.
func (s *FileSource) Close() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.done)
		if s.closer != nil {
			err = s.closer.Close()
		}
		if s.exited != nil {
			<-s.exited
		}
	})
	return err
}

// emit adds one result to the batch being filled, handing the batch to Next when it is
// full; false means Close came first. Only the reader goroutine calls it.
func (s *FileSource) emit(res fileResult) bool {
	if s.out == nil {
		select {
		case s.out = <-s.free:
		default:
			s.out = make([]fileResult, 0, batchLen)
		}
	}
	s.out = append(s.out, res)
	return len(s.out) < batchLen || s.flush()
}

// flush hands what has been emitted to Next. The reader goroutine calls it before
// anything that may wait (a read from a pipe, a follower's poll), so that no event waits
// behind it; false means Close came first.
func (s *FileSource) flush() bool {
	if len(s.out) == 0 {
		return true
	}
	select {
	case s.events <- s.out:
		s.out = nil
		return true
	case <-s.done:
		return false
	}
}

// send hands one result, and everything before it, to Next; false means Close came first.
func (s *FileSource) send(res fileResult) bool {
	return s.emit(res) && s.flush()
}

// lineEvent makes the event of line n, whose full size was size; ok is false for a blank
// line.
func (s *FileSource) lineEvent(n int, line []byte, size int) (ev Event, ok bool) {
	if size > s.maxLine {
		ev = Malformed(ReasonLineTooLong, fmt.Sprintf("line is %d bytes, longer than the %d-byte limit", size, s.maxLine))
	} else {
		if n == 1 {
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if ev, ok = s.parser.parse(line); !ok {
			return Event{}, false
		}
	}
	ev.Line = n
	return ev, true
}

// stream reads the lines of a file or pipe into events, on whichever goroutine reads.
type stream struct {
	s      *FileSource
	r      io.Reader
	opened bool
	lr     lineReader
	n      int // physical lines read
}

// readBufferSize is how much a source asks of each read(2). A read has a fixed cost
// (a few microseconds in a VM) on top of the copy; at 1 MiB it is paid once per ~600
// Hubble lines. Kernel time of a 1 M-line file replay fell from 0.22-0.32 to 0.14-0.24 µs
// per line against 64 KiB reads.
const readBufferSize = 1 << 20

// open starts reading, through gzip when the content starts with its magic.
func (st *stream) open() error {
	st.opened = true
	br := bufio.NewReaderSize(st.r, readBufferSize)
	if magic, err := br.Peek(len(gzipMagic)); bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return st.fail(1, fmt.Errorf("reading gzip header: %w", err))
		}
		br = bufio.NewReaderSize(zr, readBufferSize)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return st.fail(1, err)
	}
	st.lr = lineReader{r: br, max: st.s.maxLine}
	return nil
}

func (st *stream) fail(line int, err error) error {
	return fmt.Errorf("%s: line %d: %w", st.s.name, line, err)
}

// next reads one physical line: its event, ok=false for a blank line, or the error that
// ends the stream (io.EOF after the last line).
func (st *stream) next() (ev Event, ok bool, err error) {
	if !st.opened {
		if err := st.open(); err != nil {
			return Event{}, false, err
		}
	}
	st.n++
	line, size, err := st.lr.next()
	if errors.Is(err, io.EOF) {
		return Event{}, false, io.EOF
	}
	if err != nil {
		return Event{}, false, st.fail(st.n, err)
	}
	ev, ok = st.s.lineEvent(st.n, line, size)
	return ev, ok, nil
}

// buffered reports whether reading the next line cannot wait for the writer.
func (st *stream) buffered() bool { return st.opened && st.lr.buffered() }

// run is the reader goroutine: it sends every event, then exactly one terminal error
// (io.EOF at the end), unless Close comes first.
func (s *FileSource) run(st *stream) {
	defer close(s.events)
	defer s.parser.release()
	for {
		if len(s.out) > 0 && !st.buffered() && !s.flush() {
			return
		}
		ev, ok, err := st.next()
		if err != nil {
			s.send(fileResult{err: err})
			return
		}
		if ok && !s.emit(fileResult{ev: ev}) {
			return
		}
	}
}

// lineReader splits on '\n' like bufio.Scanner, but skips over a line longer than max
// instead of failing the whole stream. A '\r' before the '\n' stays in the line; it is JSON
// whitespace, which ParseLine trims.
type lineReader struct {
	r   *bufio.Reader
	max int
	// holdPartial keeps a last line without '\n' at EOF, for a follower: the writer may be
	// in the middle of it. Without it, the last line need not end in '\n'.
	holdPartial bool

	buf  []byte // the line so far, up to max+1 bytes
	size int    // bytes of the line so far, '\n' included, kept or not
	done bool   // buf holds a line already returned
	// ahead is how many buffered bytes are known to end in a '\n' (buffered), counted
	// from r's read position.
	ahead int
}

// next returns the next line without its '\n' and the line's size. When size > max the line
// was consumed but not kept. The line is valid until the next call or the next use of r:
// it may be r's own buffer. io.EOF means no more lines (for now, with holdPartial: a
// partial line is kept for the next call).
func (l *lineReader) next() (line []byte, size int, err error) {
	if l.done {
		l.buf, l.size, l.done = l.buf[:0], 0, false
	}
	for {
		frag, err := l.r.ReadSlice('\n')
		l.ahead = max(l.ahead-len(frag), 0)
		if err == nil && l.size == 0 && len(frag) <= l.max+1 {
			// The whole line is in r's buffer: read it there rather than copy it.
			l.done = true
			return frag[:len(frag)-1], len(frag) - 1, nil
		}
		l.size += len(frag)
		if l.size <= l.max+1 { // +1 for the '\n'
			l.buf = append(l.buf, frag...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !(errors.Is(err, io.EOF) && l.size > 0 && !l.holdPartial) {
			return nil, 0, err
		}
		l.done = true
		size = l.size
		if n := len(frag); n > 0 && frag[n-1] == '\n' {
			size--
		}
		if size > l.max {
			return nil, size, nil
		}
		return l.buf[:size], size, nil
	}
}

// buffered reports whether the next line is already in r's buffer, so that reading it
// cannot wait for a writer. It scans the buffer once per fill, not once per line.
func (l *lineReader) buffered() bool {
	if l.ahead == 0 {
		b, _ := l.r.Peek(l.r.Buffered())
		l.ahead = bytes.LastIndexByte(b, '\n') + 1
	}
	return l.ahead > 0
}

// partial returns the partial line held at EOF, and forgets it.
func (l *lineReader) partial() (line []byte, size int) {
	if l.done || l.size == 0 {
		return nil, 0
	}
	line, size = l.buf, l.size
	l.done = true
	if size > l.max {
		return nil, size
	}
	return line, size
}

// reset starts over on r, dropping any partial line.
func (l *lineReader) reset(r io.Reader) {
	l.r.Reset(r)
	l.buf, l.size, l.done, l.ahead = l.buf[:0], 0, false, 0
}

// DefaultFollowPoll is how often a follower at the end of its file looks for more.
const DefaultFollowPoll = time.Second

// FollowOptions configures OpenFileFollow.
type FollowOptions struct {
	// PollInterval is how often a follower at the end of the file checks it for new lines,
	// truncation and replacement; DefaultFollowPoll when zero. Polling, rather than
	// inotify, sees writes made through network filesystems and volume mounts too.
	PollInterval time.Duration
	// Clock times the polls and the Health events; the real clock when nil.
	Clock clock.Clock
}

// OpenFileFollow opens path like OpenFile and then follows it like `tail -F`: at the end
// of the file it waits for more, and Next blocks until a line arrives or ctx ends. Next
// never returns io.EOF for a regular file; Close stops the follower.
//
//   - A last line without its '\n' is never parsed while the file is followed: the writer
//     may be in the middle of it.
//   - A file that shrinks (truncated in place, as logrotate's copytruncate does) is read
//     again from the start; a file replaced under path (rotated) is read to its end, its
//     unterminated last line included, and then the new file is read from the start. Both
//     are reported as Health events (Source "file"): Disconnected at the previous check,
//     since lines written just before it may be lost, then Connected. Event.Line counts
//     from 1 again in the new content.
//   - A path that disappears is Disconnected until a file appears there again.
//
// The follower starts with a Connected event. StdinPath, pipes and other non-regular files
// have no end to wait at: they are read as OpenFile reads them, until EOF. A gzip file
// cannot be followed: its end is not a line boundary.
func OpenFileFollow(path string, opts FollowOptions) (*FileSource, error) {
	if opts.PollInterval < 0 {
		return nil, fmt.Errorf("%s: follow poll interval %v is negative", path, opts.PollInterval)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultFollowPoll
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if path == StdinPath {
		return NewReader("<stdin>", os.Stdin), nil
	}
	f, fi, err := openInput(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		s := newFileSource(path, f, MaxLineBytes, false)
		s.closer = f
		return s, nil
	}
	magic := make([]byte, len(gzipMagic))
	if n, _ := f.ReadAt(magic, 0); n == len(magic) && bytes.Equal(magic, gzipMagic) {
		f.Close()
		return nil, fmt.Errorf("%s: cannot follow a gzip-compressed file; read it without following", path)
	}
	s := &FileSource{
		name:    path,
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
		maxLine: MaxLineBytes,
	}
	s.startReader()
	t := &tail{s: s, path: path, opts: opts, f: f, fi: fi}
	go t.run()
	return s, nil
}

// tail is the state of a follower's goroutine.
type tail struct {
	s    *FileSource
	path string
	opts FollowOptions

	f       *os.File    // the file being read; kept after path is removed or replaced
	fi      fs.FileInfo // f's identity
	lr      lineReader
	line    int       // lines read from f
	checked time.Time // the last check that found nothing wrong
	missing bool      // path was gone at the last check
}

func (t *tail) run() {
	defer close(t.s.exited)
	defer close(t.s.events)
	defer t.s.parser.release()
	defer func() { t.f.Close() }()

	t.lr = lineReader{r: bufio.NewReaderSize(t.f, readBufferSize), max: t.s.maxLine, holdPartial: true}
	t.checked = t.opts.Clock.Now()
	if !t.health(Connected, t.checked, "following "+t.path) {
		return
	}
	for {
		if !t.drain() || !t.s.flush() || !t.wait() {
			return
		}
		if !t.check() {
			return
		}
	}
}

// drain sends every complete line up to the end of f. It returns false when the follower
// must stop: Close, or a read error, which ends the source.
func (t *tail) drain() bool {
	for {
		line, size, err := t.lr.next()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			t.s.send(fileResult{err: fmt.Errorf("%s: line %d: %w", t.path, t.line+1, err)})
			return false
		}
		t.line++
		if ev, ok := t.s.lineEvent(t.line, line, size); ok && !t.s.emit(fileResult{ev: ev}) {
			return false
		}
	}
}

func (t *tail) wait() bool {
	timer := t.opts.Clock.NewTimer(t.opts.PollInterval)
	select {
	case <-t.s.done:
		timer.Stop()
		return false
	case <-timer.C():
		return true
	}
}

// check looks at path: removed, replaced by another file, or shrunk below what was read.
func (t *tail) check() bool {
	now := t.opts.Clock.Now()
	fi, err := os.Stat(t.path)
	switch {
	case err != nil:
		// Keep reading f: a writer may still hold it open.
		if !t.missing {
			t.missing = true
			if !t.health(Disconnected, t.checked, fmt.Sprintf("%s: %v; waiting for it to reappear", t.path, err)) {
				return false
			}
		}
		return true
	case !os.SameFile(fi, t.fi):
		return t.replaced(now)
	case t.missing:
		// Moved away and back: the same file, still being read.
		t.missing = false
		if !t.health(Connected, now, "following "+t.path+" again") {
			return false
		}
	}
	if pos, err := t.f.Seek(0, io.SeekCurrent); err == nil && fi.Size() < pos {
		// Seek rewinds f; the bufio buffer is empty at EOF, so nothing read is dropped.
		if _, err := t.f.Seek(0, io.SeekStart); err != nil {
			t.s.send(fileResult{err: fmt.Errorf("%s: rewinding after truncation: %w", t.path, err)})
			return false
		}
		t.lr.reset(t.f)
		t.line = 0
		msg := fmt.Sprintf("%s shrank from %d to %d bytes (truncated); reading it again from the start, lines written before the truncation since the last check may be lost", t.path, pos, fi.Size())
		if !t.health(Disconnected, t.checked, msg) || !t.health(Connected, now, "following "+t.path) {
			return false
		}
	}
	t.checked = now
	return true
}

// replaced finishes the old file and switches to the one now at path.
func (t *tail) replaced(now time.Time) bool {
	f, fi, err := openInput(t.path)
	if err != nil {
		// Removed again, or unreadable: report it like a missing path and retry later.
		if !t.missing {
			t.missing = true
			return t.health(Disconnected, t.checked, fmt.Sprintf("%s: %v; waiting for it to reappear", t.path, err))
		}
		return true
	}
	// Lines the writer added to the old file before it moved on; its last line is complete
	// now, with or without '\n'.
	ok := t.drain()
	if line, size := t.lr.partial(); ok && size > 0 {
		t.line++
		if ev, parsed := t.s.lineEvent(t.line, line, size); parsed {
			ok = t.s.emit(fileResult{ev: ev})
		}
	}
	t.f.Close()
	t.f, t.fi, t.line = f, fi, 0 // run closes t.f, whatever happens next
	if !ok {
		return false
	}
	magic := make([]byte, len(gzipMagic))
	if n, _ := f.ReadAt(magic, 0); n == len(magic) && bytes.Equal(magic, gzipMagic) {
		t.s.send(fileResult{err: fmt.Errorf("%s: replaced by a gzip-compressed file, which cannot be followed", t.path)})
		return false
	}
	t.lr.reset(f)
	if !t.missing && !t.health(Disconnected, t.checked, t.path+" was replaced; lines written to the old file since the last check may be lost") {
		return false
	}
	t.missing = false
	t.checked = now
	return t.health(Connected, now, "following "+t.path+", a new file, from the start")
}

func (t *tail) health(st HealthState, at time.Time, msg string) bool {
	return t.s.emit(fileResult{ev: Event{Kind: KindHealth, Health: &Health{Time: at, Source: "file", State: st, Message: msg}}})
}
