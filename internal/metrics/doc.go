// Package metrics exposes a Parley node in Prometheus' text format: go-libp2p's
// own collectors (registered on the same registry through node.WithMetrics) and
// Parley's, counted where they happen without threading metrics through chat:
//
//   - a pubsub RawTracer (chat.Hooks.PubSubTracer, bridge.WithPubSubTracer) counts
//     room messages published, received, rejected by reason, duplicates and drops;
//   - a reader of chat's event stream measures delivery latency (sent-at → shown)
//     and counts DM deliveries and DMs waiting in the outbox;
//   - a storage.Store wrapper times store writes and counts DMs queued and given
//     up, and catch-up pages served to others;
//   - chat.Hooks.CaughtUp counts catch-up pages and messages fetched;
//   - on a relay, the bridge's room table at scrape time: rooms carried and
//     members per room.
//
// Labels are bounded: never a peer ID; a room only on a relay, and only for the
// first MaxRoomLabels rooms it sees (later ones are counted as room="_other").
// docs/metrics.md documents every metric.
package metrics
