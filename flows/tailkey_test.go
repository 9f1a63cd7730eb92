package flows_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/shadowgate/shadowgate/flows"
)

// TestTailKeylessLineAfterRememberedTails: a line whose flow object has no end for
// tailKey to guess (key 0) must not match an empty memo slot, whose hash is 0 too; FuzzFastDecoder
// found it as a nil dereference once the decoder had remembered tails from earlier lines.
func TestTailKeylessLineAfterRememberedTails(t *testing.T) {
	lines := generatedLines(t, 200)
	lines = append(lines, []byte(`{"flow":{"destination":{"kind":"Deployment"}]}`))
	src := flows.NewReader("tails", bytes.NewReader(bytes.Join(lines, []byte("\n"))))
	defer src.Close()
	var last flows.Event
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = ev
	}
	if last.Kind != flows.KindMalformed {
		t.Errorf("last line: kind %v, want malformed", last.Kind)
	}
}
