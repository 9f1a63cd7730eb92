package hubbletest

import (
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// serverCodec is gRPC's proto codec, except that an encodedMessage is sent as the bytes
// it holds (see SendEncoded).
type serverCodec struct{}

var protoCodec = encoding.GetCodecV2(grpcproto.Name)

// encodedMessage is a message marshaled beforehand.
type encodedMessage struct{ data mem.BufferSlice }

func (serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encodedMessage); ok {
		return e.data, nil
	}
	return protoCodec.Marshal(v)
}

func (serverCodec) Unmarshal(data mem.BufferSlice, v any) error { return protoCodec.Unmarshal(data, v) }

func (serverCodec) Name() string { return grpcproto.Name }
