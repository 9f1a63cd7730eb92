// Package hubble is a flows.Source that follows a Hubble Relay, or a single Cilium agent's
// Hubble server, over gRPC with the observer API's GetFlows (follow, server-side
// namespace and verdict filters, TLS or mutual TLS).
//
// The source turns the stream into normalized events exactly as flows.FromResponse does
// (flows, lost_events as flows.KindLost, relay node_status as flows.KindNodeStatus): flow
// responses are decoded from their protobuf bytes straight into flows.Flow, reading only
// the fields it keeps (wire.go), and anything unusual goes through proto.Unmarshal and
// flows.FromResponse, which define the result. It reports its own state as
// flows.KindHealth events so that the soak store never mistakes missing data for clean
// data:
//
//   - Connected when a GetFlows stream is established, and again when every node of a
//     degraded relay is back. The first stream follows from the live end, so coverage
//     starts there.
//   - Disconnected when a stream ends or cannot be established, with the error text. An
//     outage whose error does not change is reported once, not on every retry.
//   - Stalled when an established stream has sent nothing for Config.StallTimeout, time
//     spent waiting for a slow consumer excepted. The stream is abandoned (Disconnected
//     follows) and re-established with since, so a stuck server costs no data that its
//     ring buffer still holds.
//   - CaughtUp after a reconnect, once the replay of what was missed has reached the
//     present. Health.Since is the start of the outage it closes (the first Disconnected
//     or Stalled of it), Health.Time the moment the replay ended.
//   - Degraded when a ServerStatus poll reports num_unavailable_nodes > 0, with
//     Health.Nodes the nodes the relay names; repeated only when that list changes.
//
// Reconnects ask for since = the time of the newest flow received minus
// Config.ReplayOverlap, so that flows which reached the server late (the relay merges its
// nodes' streams within a sort window; node clocks differ) are not skipped. The overlap
// is de-duplicated by flow uuid, or by time, node, 5-tuple and direction for flows without
// one, and lost-events notices that Hubble's ring reader resends whatever since says are
// dropped too. A replay has reached the present when a flow stamped at or after the
// reconnect arrives (the server streams in time order, so everything older has been
// sent), or when the stream has been idle for Config.CatchUpIdle (a replay from memory is
// a burst: a pause means it is over). The first test compares the server's timestamps
// with our clock; nodes are assumed NTP-synchronized, and a flow stamped more than a
// minute ahead of our clock does not move the replay point.
//
// What a reconnect cannot tell: a ring buffer that wrapped during a long outage replays
// from its oldest entry without saying so, and an agent that restarted has lost its
// history. Neither is distinguishable on the stream from a quiet period.
package hubble
