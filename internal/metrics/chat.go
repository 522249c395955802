package metrics

import (
	"context"
	"errors"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/chat/storage"
)

// Chat holds a chat node's metrics. Build it with NewChat, give
// Hooks to chat.WithHooks and wrap the store with Store, then Watch the
// service.
type Chat struct {
	reg  prometheus.Registerer
	self peer.ID

	published  prometheus.Counter
	received   *prometheus.CounterVec // by kind
	rejected   *prometheus.CounterVec // by reason
	duplicates prometheus.Counter
	dropped    *prometheus.CounterVec // by where
	latency    prometheus.Histogram
	backfilled prometheus.Counter

	dmSent, dmDelivered, dmQueued, dmFailed, dmReceived prometheus.Counter

	servedRequests, servedMessages                  prometheus.Counter
	catchUps, fetchedPages, fetchedMsgs, fetchedNew prometheus.Counter

	storeWrite *prometheus.HistogramVec // by op
}

// NewChat registers a chat node's metrics on reg. self is this node's
// peer ID (its own messages are "published", not "received").
func NewChat(reg prometheus.Registerer, self peer.ID) *Chat {
	f := factory{reg}
	c := &Chat{
		reg:  reg,
		self: self,
		published: f.counter("room_messages_published_total",
			"Room messages this node sent (its own lines, counted once GossipSub took them and they were stored)."),
		received: f.counterVec("room_messages_received_total",
			"Room envelopes from other peers that passed validation, by kind (message, presence).", "kind"),
		rejected: f.counterVec("room_messages_rejected_total",
			"Room envelopes refused, by pubsub's reason (e.g. \"validation failed\", \"invalid signature\", \"validation ignored\", \"validation queue full\").", "reason"),
		duplicates: f.counter("room_messages_duplicate_total",
			"Room envelopes received again after the first copy (normal in a mesh)."),
		dropped: f.counterVec("room_messages_dropped_total",
			"Room messages lost because a queue was full: where is peer_queue (to a slow peer), validation_queue or subscription (this node too slow).", "where"),
		latency: f.histogram("room_message_delivery_seconds",
			"Time from a room message's sent-at (the author's clock) to it being shown here, for live messages from others.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}),
		backfilled: f.counter("room_messages_backfilled_total",
			"Room messages shown as history (replayed at join or caught up) rather than live."),
		dmSent:      f.counter("dms_sent_total", "DMs written to the outbox (every DM this node sends)."),
		dmDelivered: f.counter("dms_delivered_total", "DMs the receiver acknowledged."),
		dmQueued:    f.counter("dms_queued_total", "Delivery attempts that left a DM waiting in the outbox (peer unreachable, no ack)."),
		dmFailed:    f.counter("dms_failed_total", "DMs given up (never delivered)."),
		dmReceived:  f.counter("dms_received_total", "DMs received from other peers."),
		servedRequests: f.counter("catchup_served_requests_total",
			"History pages other peers asked this node for."),
		servedMessages: f.counter("catchup_served_messages_total",
			"Room messages read from the store to answer others' history requests."),
		catchUps:     f.counter("catchup_runs_total", "Catch-ups this node ran (one per peer and room) that fetched at least one page."),
		fetchedPages: f.counter("catchup_fetched_pages_total", "History pages this node fetched from others."),
		fetchedMsgs:  f.counter("catchup_fetched_messages_total", "Room messages in the pages fetched."),
		fetchedNew:   f.counter("catchup_fetched_new_total", "Fetched room messages this node did not have yet."),
		storeWrite: f.histogramVec("store_write_seconds",
			"Time one store write took, by op (add_room_messages, add_received_dm, queue_dm, mark_delivered, reschedule, give_up, save_peer, mark_read, prune).",
			prometheus.ExponentialBuckets(.0001, 4, 10), "op"),
	}
	for _, k := range []string{"message", "presence"} {
		c.received.WithLabelValues(k)
	}
	for _, w := range []string{"peer_queue", "validation_queue", "subscription"} {
		c.dropped.WithLabelValues(w)
	}
	return c
}

// Hooks returns the chat hooks that feed these metrics.
func (c *Chat) Hooks() chat.Hooks {
	return chat.Hooks{
		PubSubTracer: chatTracer{c},
		CaughtUp: func(_ string, pages, messages, fresh int) {
			c.catchUps.Inc()
			c.fetchedPages.Add(float64(pages))
			c.fetchedMsgs.Add(float64(messages))
			c.fetchedNew.Add(float64(fresh))
		},
	}
}

// Watch registers the gauges read from svc at scrape time (outbox depth,
// event subscribers and their lag) and reads svc's event stream until ctx
// ends or svc closes. It returns at once; the reader runs in a goroutine
// that ends by then.
func (c *Chat) Watch(ctx context.Context, svc *chat.Service) error {
	f := factory{c.reg}
	f.gaugeFunc("dm_outbox_depth", "DMs waiting in the outbox for delivery.", func() float64 {
		dms, err := svc.Outbox()
		if err != nil {
			return -1
		}
		return float64(len(dms))
	})
	f.gaugeFunc("event_subscribers", "Front ends reading the event stream (terminal, JSON, each web tab).", func() float64 {
		return float64(svc.Subscribers())
	})
	f.gaugeFunc("event_subscriber_lag_events", "The most events waiting in one subscriber's queue now.", func() float64 {
		n, _ := svc.EventLag()
		return float64(n)
	})
	f.counterFunc("event_subscribers_fell_behind_total", "Subscribers dropped because their queue filled up (they resume from the replay buffer).", func() float64 {
		_, n := svc.EventLag()
		return float64(n)
	})
	sub, err := svc.Subscribe(chat.WithBuffer(1 << 15))
	if err != nil {
		return err
	}
	go c.read(ctx, svc, sub)
	return nil
}

func (c *Chat) read(ctx context.Context, svc *chat.Service, sub *chat.Subscription) {
	stop := context.AfterFunc(ctx, sub.Close)
	defer stop()
	var last uint64
	for {
		for st := range sub.C() {
			last = st.Seq
			c.observe(st.Event, time.Now())
		}
		if !errors.Is(sub.Err(), chat.ErrFellBehind) || ctx.Err() != nil {
			return
		}
		next, err := svc.Subscribe(chat.WithBuffer(1<<15), chat.After(last))
		if err != nil {
			if next, err = svc.Subscribe(chat.WithBuffer(1 << 15)); err != nil {
				return
			}
		}
		stop()
		sub = next
		stop = context.AfterFunc(ctx, sub.Close)
	}
}

func (c *Chat) observe(ev chat.Event, now time.Time) {
	switch e := ev.(type) {
	case chat.Message:
		switch {
		case e.Backfill:
			c.backfilled.Inc()
		case e.From == c.self:
			c.published.Inc()
		default:
			c.latency.Observe(max(0, now.Sub(e.SentAt).Seconds()))
		}
	case chat.DirectMessage:
		c.dmReceived.Inc()
	case chat.Delivered:
		c.dmDelivered.Inc()
	case chat.Queued:
		c.dmQueued.Inc()
	}
}

// chatTracer counts GossipSub's events of room topics. Pubsub calls it
// from its event loop: it only increments counters.
type chatTracer struct{ c *Chat }

var _ pubsub.RawTracer = chatTracer{}

func (t chatTracer) DeliverMessage(msg *pubsub.Message) {
	if _, ok := roomproto.NameOf(msg.GetTopic()); !ok {
		return
	}
	// Pubsub does not trace this node's own messages to raw tracers: the
	// event stream counts those (published).
	t.c.received.WithLabelValues(kindOf(msg.Data)).Inc()
}

func (t chatTracer) RejectMessage(msg *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled:
		t.c.dropped.WithLabelValues("validation_queue").Inc()
	}
	t.c.rejected.WithLabelValues(reason).Inc()
}

func (t chatTracer) DuplicateMessage(*pubsub.Message) { t.c.duplicates.Inc() }

func (t chatTracer) DropRPC(rpc *pubsub.RPC, _ peer.ID) {
	if n := len(rpc.GetPublish()); n > 0 {
		t.c.dropped.WithLabelValues("peer_queue").Add(float64(n))
	}
}

func (t chatTracer) UndeliverableMessage(*pubsub.Message) {
	t.c.dropped.WithLabelValues("subscription").Inc()
}

func (chatTracer) AddPeer(peer.ID, protocol.ID)             {}
func (chatTracer) RemovePeer(peer.ID)                       {}
func (chatTracer) Join(string)                              {}
func (chatTracer) Leave(string)                             {}
func (chatTracer) Graft(peer.ID, string)                    {}
func (chatTracer) Prune(peer.ID, string)                    {}
func (chatTracer) ValidateMessage(*pubsub.Message)          {}
func (chatTracer) ThrottlePeer(peer.ID)                     {}
func (chatTracer) RecvRPC(*pubsub.RPC)                      {}
func (chatTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (chatTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (chatTracer) OnClosedOutboundStream(peer.ID)           {}

// kindOf names a room envelope's kind without opening its body.
func kindOf(data []byte) string {
	var env pb.Envelope
	if proto.Unmarshal(data, &env) != nil {
		return "other"
	}
	switch env.GetKind() {
	case pb.Envelope_MESSAGE:
		return "message"
	case pb.Envelope_PRESENCE:
		return "presence"
	}
	return "other"
}

// Store wraps st so that writes are timed, DMs sent and given up are
// counted, and history pages served to others are counted.
func (c *Chat) Store(st storage.Store) storage.Store { return &timedStore{Store: st, c: c} }

type timedStore struct {
	storage.Store
	c *Chat
}

func (s *timedStore) time(op string, start time.Time) {
	s.c.storeWrite.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (s *timedStore) AddRoomMessages(msgs []storage.RoomMessage) ([]bool, error) {
	defer s.time("add_room_messages", time.Now())
	return s.Store.AddRoomMessages(msgs)
}

func (s *timedStore) RoomMessagesAfter(room string, after storage.Cursor, limit int) ([]storage.RoomMessage, error) {
	msgs, err := s.Store.RoomMessagesAfter(room, after, limit)
	if err == nil { // only the history server pages forward
		s.c.servedRequests.Inc()
		s.c.servedMessages.Add(float64(len(msgs)))
	}
	return msgs, err
}

func (s *timedStore) Prune(room string, r storage.Retention) (int64, error) {
	defer s.time("prune", time.Now())
	return s.Store.Prune(room, r)
}

func (s *timedStore) AddReceivedDM(m storage.DM) (bool, error) {
	defer s.time("add_received_dm", time.Now())
	return s.Store.AddReceivedDM(m)
}

func (s *timedStore) AddReceivedDMs(ms []storage.DM) ([]bool, error) {
	defer s.time("add_received_dm", time.Now())
	return s.Store.AddReceivedDMs(ms)
}

func (s *timedStore) MarkDMsDelivered(ids []string) error {
	defer s.time("mark_delivered", time.Now())
	return s.Store.MarkDMsDelivered(ids)
}

func (s *timedStore) QueueDM(m storage.DM) error {
	defer s.time("queue_dm", time.Now())
	err := s.Store.QueueDM(m)
	if err == nil {
		s.c.dmSent.Inc()
	}
	return err
}

func (s *timedStore) MarkDelivered(id string) error {
	defer s.time("mark_delivered", time.Now())
	return s.Store.MarkDelivered(id)
}

func (s *timedStore) Reschedule(id string, attempts int, next time.Time) error {
	defer s.time("reschedule", time.Now())
	return s.Store.Reschedule(id, attempts, next)
}

func (s *timedStore) GiveUp(id, reason string) error {
	defer s.time("give_up", time.Now())
	err := s.Store.GiveUp(id, reason)
	if err == nil {
		s.c.dmFailed.Inc()
	}
	return err
}

func (s *timedStore) SavePeers(ps ...storage.KnownPeer) error {
	defer s.time("save_peer", time.Now())
	return s.Store.SavePeers(ps...)
}

func (s *timedStore) MarkRead(conversation string, at time.Time) error {
	defer s.time("mark_read", time.Now())
	return s.Store.MarkRead(conversation, at)
}

// factory registers metrics under Namespace.
type factory struct{ reg prometheus.Registerer }

// register registers c, or returns the equal collector registered before
// (a second service on one registry shares the first one's metrics).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(T); ok {
				return old
			}
		}
		panic(err) // a programming error: two different metrics with one name
	}
	return c
}

func (f factory) counter(name, help string) prometheus.Counter {
	return register(f.reg, prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}))
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(f.reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels))
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	return register(f.reg, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}))
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(f.reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels))
}

// gaugeFunc and counterFunc read fn at scrape time; a second one of the
// same name on one registry is not registered (the first one's fn stays).
func (f factory) gaugeFunc(name, help string, fn func() float64) {
	f.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}

func (f factory) counterFunc(name, help string, fn func() float64) {
	f.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}
