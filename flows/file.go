package flows

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
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

// readAhead bounds how many parsed events wait for Next, so a slow consumer holds at most
// this many flows in memory while still overlapping parsing with judging.
const readAhead = 64

// FileSource reads Hubble jsonpb (or legacy json) lines from a file, a pipe or stdin,
// gzip-compressed or not. It is a Source: Next returns io.EOF after the last line.
//
// Reading runs in a goroutine so that Next honours ctx even while a read is blocked on a
// quiet pipe (`hubble observe --follow | shadowgate ...`). Like any Source, Next is not safe
// for concurrent use; Close may be called from any goroutine.
type FileSource struct {
	name    string
	closer  io.Closer // nil when the caller owns the reader
	events  chan fileResult
	done    chan struct{}
	once    sync.Once
	err     error // terminal error already returned by Next; only Next touches it
	maxLine int
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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil {
		f.Close()
		return nil, err
	} else if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory, want a file of Hubble flows", path)
	}
	s := newFileSource(path, f, MaxLineBytes)
	s.closer = f
	return s, nil
}

// NewReader reads flows from r, plain or gzip, exactly as OpenFile does; name is used in
// errors. Close does not close r.
func NewReader(name string, r io.Reader) *FileSource {
	return newFileSource(name, r, MaxLineBytes)
}

func newFileSource(name string, r io.Reader, maxLine int) *FileSource {
	s := &FileSource{
		name:    name,
		events:  make(chan fileResult, readAhead),
		done:    make(chan struct{}),
		maxLine: maxLine,
	}
	go s.run(r)
	return s
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
	select {
	case <-s.done:
		return Event{}, fmt.Errorf("%s: %w", s.name, os.ErrClosed)
	default:
	}
	select {
	case <-ctx.Done():
		return Event{}, ctx.Err()
	case r, ok := <-s.events:
		if !ok {
			// Only Close ends the reader goroutine without a final result.
			return Event{}, fmt.Errorf("%s: %w", s.name, os.ErrClosed)
		}
		if r.err != nil {
			s.err = r.err
			return Event{}, r.err
		}
		return r.ev, nil
	}
}

// Close stops reading and closes the file OpenFile opened. A read already blocked on a pipe
// or stdin ends only when it returns; its result is discarded.
func (s *FileSource) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		if s.closer != nil {
			err = s.closer.Close()
		}
	})
	return err
}

// run owns the reader: it sends every event, then exactly one terminal error (io.EOF at the
// end), unless Close comes first.
func (s *FileSource) run(r io.Reader) {
	defer close(s.events)
	send := func(res fileResult) bool {
		select {
		case s.events <- res:
			return true
		case <-s.done:
			return false
		}
	}
	fail := func(line int, err error) {
		send(fileResult{err: fmt.Errorf("%s: line %d: %w", s.name, line, err)})
	}

	br := bufio.NewReaderSize(r, 64<<10)
	if magic, err := br.Peek(len(gzipMagic)); bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			fail(1, fmt.Errorf("reading gzip header: %w", err))
			return
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	} else if err != nil && !errors.Is(err, io.EOF) {
		fail(1, err)
		return
	}

	lr := lineReader{r: br, max: s.maxLine}
	for n := 1; ; n++ {
		line, size, err := lr.next()
		if errors.Is(err, io.EOF) {
			send(fileResult{err: io.EOF})
			return
		}
		if err != nil {
			fail(n, err)
			return
		}
		var ev Event
		if size > s.maxLine {
			ev = Malformed(ReasonLineTooLong, fmt.Sprintf("line is %d bytes, longer than the %d-byte limit", size, s.maxLine))
		} else {
			if n == 1 {
				line = bytes.TrimPrefix(line, utf8BOM)
			}
			var ok bool
			if ev, ok = ParseLine(line); !ok {
				continue
			}
		}
		ev.Line = n
		if !send(fileResult{ev: ev}) {
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
	buf []byte
}

// next returns the next line without its '\n' and the line's size. When size > max the line
// was consumed but not kept. The last line need not end in '\n'. io.EOF means no more lines.
func (l *lineReader) next() (line []byte, size int, err error) {
	l.buf = l.buf[:0]
	for {
		frag, err := l.r.ReadSlice('\n')
		size += len(frag)
		if size <= l.max+1 { // +1 for the '\n'
			l.buf = append(l.buf, frag...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !(errors.Is(err, io.EOF) && size > 0) {
			return nil, 0, err
		}
		if n := len(frag); n > 0 && frag[n-1] == '\n' {
			size--
		}
		if size > l.max {
			return nil, size, nil
		}
		return l.buf[:size], size, nil
	}
}
