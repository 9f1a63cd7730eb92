package flows

import "hash/maphash"

// Interner hands out one Go string per distinct content, so that decoders of other
// encodings (the Hubble gRPC stream's protobuf) share the string table the jsonpb fast
// decoder uses instead of keeping their own. It is bounded like the fast decoder's: when
// full it is emptied, which only costs the allocations it was saving. The zero value is
// ready to use; an Interner is not safe for concurrent use.
type Interner struct {
	t internTable
}

var internSeed = maphash.MakeSeed()

// String returns b as a string, the same string as for earlier equal contents while they
// are remembered. It does not retain b.
func (in *Interner) String(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	// 0 marks an empty slot of the table.
	return in.t.get(b, maphash.Bytes(internSeed, b)|1)
}
