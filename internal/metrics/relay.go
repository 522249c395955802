package metrics

import (
	"sync"
	"sync/atomic"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	roomproto "github.com/parley-chat/parley/chat/protocol/room"
)

// MaxRoomLabels bounds the room label values of a relay's per-room
// counters: rooms met after that many are counted as room="_other".
const MaxRoomLabels = 100

// OtherRoom is the room label of rooms past MaxRoomLabels.
const OtherRoom = "_other"

// Relay holds a relay's metrics. Give Tracer to bridge.WithPubSubTracer
// and Carrier to WatchBridge.
type Relay struct {
	forwarded, limited *prometheus.CounterVec // by room
	rejected           *prometheus.CounterVec // by reason

	mu    sync.Mutex
	rooms map[string]bool // room label values in use

	totalForwarded, totalLimited atomic.Uint64
}

// NewRelay registers a relay's metrics on reg.
func NewRelay(reg prometheus.Registerer) *Relay {
	f := factory{reg}
	return &Relay{
		forwarded: f.counterVec("relay_messages_forwarded_total",
			"Room envelopes the relay accepted and forwarded to the room's members connected to it, by room (at most 100 rooms, then \"_other\") and kind (message, presence; read from the header, the body stays unread).", "room", "kind"),
		limited: f.counterVec("relay_messages_rate_limited_total",
			"Room messages the relay did not forward because their author was over --rate/--burst, by room.", "room"),
		rejected: f.counterVec("relay_messages_rejected_total",
			"Room messages the relay refused for another reason (too big, invalid envelope or signature, queue full), by pubsub's reason.", "reason"),
		rooms: make(map[string]bool),
	}
}

// label bounds the room label values.
func (r *Relay) label(topic string) string {
	room, ok := roomproto.NameOf(topic)
	if !ok {
		return OtherRoom
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rooms[room] {
		return room
	}
	if len(r.rooms) >= MaxRoomLabels {
		return OtherRoom
	}
	r.rooms[room] = true
	return room
}

// Totals returns the messages forwarded and rate-limited so far.
func (r *Relay) Totals() (forwarded, rateLimited uint64) {
	return r.totalForwarded.Load(), r.totalLimited.Load()
}

// Tracer returns the pubsub tracer that counts the relay's messages.
func (r *Relay) Tracer() pubsub.RawTracer { return relayTracer{r} }

type relayTracer struct{ r *Relay }

var _ pubsub.RawTracer = relayTracer{}

func (t relayTracer) DeliverMessage(msg *pubsub.Message) {
	t.r.forwarded.WithLabelValues(t.r.label(msg.GetTopic()), kindOf(msg.Data)).Inc()
	t.r.totalForwarded.Add(1)
}

func (t relayTracer) RejectMessage(msg *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationIgnored { // the bridge ignores an author over its rate
		t.r.limited.WithLabelValues(t.r.label(msg.GetTopic())).Inc()
		t.r.totalLimited.Add(1)
		return
	}
	t.r.rejected.WithLabelValues(reason).Inc()
}

func (relayTracer) DuplicateMessage(*pubsub.Message)         {}
func (relayTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (relayTracer) UndeliverableMessage(*pubsub.Message)     {}
func (relayTracer) AddPeer(peer.ID, protocol.ID)             {}
func (relayTracer) RemovePeer(peer.ID)                       {}
func (relayTracer) Join(string)                              {}
func (relayTracer) Leave(string)                             {}
func (relayTracer) Graft(peer.ID, string)                    {}
func (relayTracer) Prune(peer.ID, string)                    {}
func (relayTracer) ValidateMessage(*pubsub.Message)          {}
func (relayTracer) ThrottlePeer(peer.ID)                     {}
func (relayTracer) RecvRPC(*pubsub.RPC)                      {}
func (relayTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (relayTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (relayTracer) OnClosedOutboundStream(peer.ID)           {}

// Carrier is what the relay's room gauges read at scrape time
// (bridge.Bridge implements it).
type Carrier interface {
	Rooms() []string
	Members(room string) []peer.ID
}

// WatchBridge registers gauges read from b at scrape time: rooms carried
// and members per room (bounded by the bridge's --max-rooms).
func (r *Relay) WatchBridge(reg prometheus.Registerer, b Carrier) {
	register(reg, &carrierCollector{b: b,
		rooms:   prometheus.NewDesc(Namespace+"_relay_rooms_carried", "Rooms the relay carries now.", nil, nil),
		members: prometheus.NewDesc(Namespace+"_relay_room_members", "Members of a carried room connected to the relay now, by room.", []string{"room"}, nil),
	})
}

type carrierCollector struct {
	b              Carrier
	rooms, members *prometheus.Desc
}

func (c *carrierCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.rooms
	ch <- c.members
}

func (c *carrierCollector) Collect(ch chan<- prometheus.Metric) {
	rooms := c.b.Rooms()
	ch <- prometheus.MustNewConstMetric(c.rooms, prometheus.GaugeValue, float64(len(rooms)))
	for _, room := range rooms {
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(len(c.b.Members(room))), room)
	}
}
