package hubble

import (
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/shadowgate/shadowgate/flows"
)

// streamCodec is the codec of the GetFlows call. A response is decoded by the wire
// decoder straight from gRPC's receive buffers into an event, instead of into a
// GetFlowsResponse that would then be converted; everything else (the request) goes
// through gRPC's proto codec.
type streamCodec struct{}

var protoCodec = encoding.GetCodecV2(grpcproto.Name)

// recvTarget is what the receiving goroutine passes to RecvMsg.
type recvTarget struct {
	dec *wireDecoder
	buf []byte // a message split over several buffers, joined
	ev  flows.Event
}

func (streamCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (streamCodec) Unmarshal(data mem.BufferSlice, v any) error {
	t, ok := v.(*recvTarget)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		t.buf = t.buf[:0]
		for _, d := range data {
			t.buf = append(t.buf, d.ReadOnlyData()...)
		}
		b = t.buf
	}
	ev, err := t.dec.decode(b)
	t.ev = ev
	return err
}

// Name is the proto codec's: the content-subtype on the wire does not change.
func (streamCodec) Name() string { return grpcproto.Name }
