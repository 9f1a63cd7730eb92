package bench

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The child server's message file: what is written is read back, message for message
// (an empty one included), and a file cut short is an error naming the message.
func TestMessageFile(t *testing.T) {
	msgs := [][]byte{[]byte("first"), {}, []byte(strings.Repeat("x", 300))}
	path, err := writeMessages(msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	got, err := readMessages(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(msgs, got); diff != "" {
		t.Errorf("read back (-written +read):\n%s", diff)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readMessages(path); err == nil || !strings.Contains(err.Error(), "message 3 is truncated") {
		t.Errorf("reading a truncated file: %v, want message 3 named as truncated", err)
	}
}
