// Package soak keeps what shadowgate needs to judge a namespace over a soak window — the
// distinct edges that reached it, when ingestion was healthy, and what was lost — in memory
// bounded by the number of distinct edges, and answers the gate question "is namespace N safe
// to enforce, and if not, why".
//
// The rule every part of the package follows is that missing data is never clean data: an
// untracked namespace, a namespace tracked for less than the window, a gap in ingestion (a
// disconnected or stalled source, an unavailable node, shadowgate itself down, a snapshot that
// failed to load), flows the producer lost, and observations that did not fit under the edge
// caps all make the gate fail with a specific, stable-coded reason.
//
// # Memory layout
//
// Peers (workloads, nodes, CIDR buckets) are interned once per Store and edges refer to them by
// 32-bit ids. Each namespace keeps its edges in one slice of 64-byte records and finds them
// through an open-addressing table of 4-byte slots (the keys stay in the records). The hour
// buckets are a varint byte string of (hour delta, count) pairs sorted by hour, grown a few
// bytes at a time: an edge seen in 24 distinct hours of a week takes about 75 bytes for them,
// and the hot path (another flow in the edge's latest hour) rewrites the last varint in place.
// All told a stored edge costs 155–185 bytes (TestBytesPerEdge).
//
// # Time
//
// Windows are hour-aligned: a window of W judged at now starts at the beginning of the hour
// containing now−W, so a namespace is always judged over at least W. Everything time-based takes
// its time from the arguments or from the injected clock.PassiveClock, never from time.Now.
package soak
