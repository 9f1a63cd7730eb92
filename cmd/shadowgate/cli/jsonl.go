package cli

import (
	"bufio"
	"encoding/json"
	"io"
)

// jsonLines writes one compact JSON object per line through a buffer.
type jsonLines struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

func newJSONLines(w io.Writer) *jsonLines {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &jsonLines{bw: bw, enc: json.NewEncoder(bw)}
}

func (j *jsonLines) write(v any) error { return j.enc.Encode(v) }

func (j *jsonLines) flush() error { return j.bw.Flush() }
