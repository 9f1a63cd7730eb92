package hubble

import "github.com/shadowgate/shadowgate/flows"

// WireDecoder exposes the wire decoder to the external tests, which compare it with
// proto.Unmarshal and flows.FromResponse on generated traffic (simulate/bench, which
// imports this package).
type WireDecoder struct{ d *wireDecoder }

func NewWireDecoder() WireDecoder { return WireDecoder{newWireDecoder()} }

// Fast is the decoder without its fallback: ok is false when it declines.
func (w WireDecoder) Fast(b []byte) (flows.Event, bool) { return w.d.fast(b) }

// Decode is the decoder with its fallback, as the stream uses it.
func (w WireDecoder) Decode(b []byte) (flows.Event, error) { return w.d.decode(b) }
