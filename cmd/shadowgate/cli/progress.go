package cli

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// countingReader counts the bytes read through it, for the progress line.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress draws one self-overwriting line on a terminal: bytes read of the total, flows
// read, and the rate. It is silent when the output is not a terminal.
type progress struct {
	w       io.Writer
	total   int64
	bytes   *countingReader
	flows   atomic.Int64
	start   time.Time
	stop    chan struct{}
	stopped chan struct{}
}

// startProgress starts drawing every interval until done is called; nil when w is not a
// terminal or quiet is set (all methods accept a nil receiver).
func startProgress(w io.Writer, quiet bool, total int64, bytes *countingReader, every time.Duration) *progress {
	if quiet || !isTerminal(w) {
		return nil
	}
	p := &progress{w: w, total: total, bytes: bytes, start: time.Now(), stop: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

func (p *progress) add() {
	if p != nil {
		p.flows.Add(1)
	}
}

func (p *progress) draw() {
	elapsed := time.Since(p.start).Seconds()
	read := p.bytes.n.Load()
	line := fmt.Sprintf("\r%s read", humanBytes(read))
	if p.total > 0 {
		line = fmt.Sprintf("\r%s / %s (%.0f%%)", humanBytes(read), humanBytes(p.total), 100*float64(read)/float64(p.total))
	}
	n := p.flows.Load()
	fmt.Fprintf(p.w, "%s, %d lines, %.0f lines/s, %s/s   ", line, n, float64(n)/max(elapsed, 1e-9), humanBytes(int64(float64(read)/max(elapsed, 1e-9))))
}

// done erases the progress line.
func (p *progress) done() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.stopped
	fmt.Fprint(p.w, "\r\033[K")
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// useColor: colour only on a terminal, and never when NO_COLOR is set (no-color.org).
func useColor(w io.Writer) bool {
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	return isTerminal(w)
}
