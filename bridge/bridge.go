package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/chat/protocol/roster"
	"github.com/parley-chat/parley/chat/storage"
	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/node"
)

// idleRoomAfter is how long a carried room with no member connected to
// the bridge is kept before the bridge stops carrying it.
const idleRoomAfter = 10 * time.Minute

// maxSeen bounds the room names noted by inspect and not yet handled by
// loop; maxRefused bounds the refused rooms remembered (to log them once).
const (
	maxSeen    = 1024
	maxRefused = 4096
)

// Bridge is a running relay/bridge node.
type Bridge struct {
	cfg   config
	node  *node.Node
	ps    *pubsub.PubSub
	subs  *subscriptionFilter
	perIP *ratelimit.Keyed[string] // room messages per remote address
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// The hand-off from inspect, which runs inside pubsub's event loop, to
	// loop: room names peers subscribed to, not yet handled. seenMu guards
	// only seen and dropped and is never held while calling pubsub.
	seenMu  sync.Mutex
	seen    map[string]peer.ID // room → the peer whose subscription named it
	dropped int                // names not noted because seen was full
	wake    chan struct{}      // a pending "seen has names"

	// Owned by loop: no other goroutine reads or writes them, so loop may
	// call into pubsub at any time (as pubsub's processLoop owns its state).
	rooms   map[string]*carried
	refused map[string]bool // rooms refused (logged once)

	// view is what the other goroutines know of the table: every carried
	// room, in a map loop publishes and never changes again.
	view atomic.Pointer[map[string]*carried]

	// closeStore closes the store when the bridge opened it (nil when the
	// caller passed WithStore); a field so that a test can make it fail.
	closeStore func() error
	closeOnce  sync.Once
}

type carried struct {
	by     peer.ID // whose subscription made the relay carry it
	joined *roomproto.Joined
	// stop ends the room's goroutines (history, member events) when the
	// bridge stops carrying it.
	stop     context.CancelFunc
	idleFrom time.Time    // zero while members are connected; owned by loop
	kept     atomic.Int64 // messages stored since it was carried
	// roster holds each member's newest presence, body unread, for
	// members to fetch (chat/protocol/roster): behind a relay, it is how
	// a newcomer learns who is here.
	roster *roster.Book

	mu       sync.Mutex
	limiters map[peer.ID]*rate.Limiter
}

// New starts a bridge: a node in relay role (circuit relay v2 service,
// AutoNAT service, public reachability, DHT server) that also carries the
// rooms of its peers.
//
// How rooms are carried: the bridge runs pubsub with the FloodSub router
// and relays (validates and forwards, without reading) every room topic
// that a connected peer subscribes to. GossipSub peers treat a FloodSub
// peer as one that gets every message of its topics, and FloodSub forwards
// each message to every subscribed peer at once, with no mesh to warm up:
// a NATed peer, whose only full connection may be the one to the bridge,
// gets room traffic from its first second. (Relayed circuit connections
// are "limited" and GossipSub does not use them.)
func New(opts ...Option) (*Bridge, error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	var closeStore func() error
	if cfg.store == nil {
		mem, err := store.OpenMemory()
		if err != nil {
			return nil, fmt.Errorf("start bridge: %w", err)
		}
		cfg.store, closeStore = mem, mem.Close
	}
	n, err := node.New(append(cfg.nodeOpts, node.WithRelayService(cfg.resources))...)
	if err != nil {
		if closeStore != nil {
			closeStore()
		}
		return nil, fmt.Errorf("start bridge: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{
		cfg: cfg, node: n, log: cfg.logger,
		ctx: ctx, cancel: cancel,
		wake:       make(chan struct{}, 1),
		seen:       make(map[string]peer.ID),
		rooms:      make(map[string]*carried),
		refused:    make(map[string]bool),
		closeStore: closeStore,
	}
	b.publish()
	b.subs = newSubscriptionFilter(cfg.maxTopicsPerPeer, n.Host().Network())
	b.perIP = ratelimit.New[string](cfg.rate*PerIPFactor, cfg.burst*PerIPFactor, 0)
	psOpts := []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithSubscriptionFilter(b.subs),
		pubsub.WithAppSpecificRpcInspector(b.inspect),
		pubsub.WithMaxMessageSize(64 << 10),
	}
	if cfg.tracer != nil {
		psOpts = append(psOpts, pubsub.WithRawTracer(cfg.tracer))
	}
	b.ps, err = pubsub.NewFloodSub(ctx, n.Host(), psOpts...)
	if err != nil {
		cancel()
		n.Close()
		if closeStore != nil {
			closeStore()
		}
		return nil, fmt.Errorf("start bridge pubsub: %w", err)
	}
	n.Host().SetStreamHandler(history.ID, history.Server{Store: cfg.store, Allowed: b.servesHistoryTo, Admit: historyLimit().Allow}.Handle)
	n.Host().SetStreamHandler(roster.ID, roster.Server{Book: b.rosterOf, Allowed: b.servesHistoryTo, Admit: rosterLimit().Allow}.Handle)
	b.wg.Add(1)
	go b.loop()
	return b, nil
}

// Node returns the bridge's node.
func (b *Bridge) Node() *node.Node { return b.node }

// Rooms lists the rooms being carried.
func (b *Bridge) Rooms() []string {
	return slices.Sorted(maps.Keys(*b.view.Load()))
}

// Members lists the peers connected to the bridge that are in room.
func (b *Bridge) Members(room string) []peer.ID {
	c := (*b.view.Load())[room]
	if c == nil {
		return nil
	}
	return c.joined.Topic.ListPeers()
}

// servesHistoryTo reports whether p may read room's history here: the
// bridge must carry the room and p must be a member connected to it.
func (b *Bridge) servesHistoryTo(ctx context.Context, room string, p peer.ID) bool {
	c := (*b.view.Load())[room]
	if c == nil {
		return false
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.ctx, cancel)() // the bridge closing: stop waiting
	return c.joined.WaitMember(ctx, p)
}

// publish lets the other goroutines see the rooms carried now. Only loop
// (and New, before it starts loop) calls it.
func (b *Bridge) publish() {
	view := maps.Clone(b.rooms)
	b.view.Store(&view)
}

// Stored counts the messages of room the bridge keeps.
func (b *Bridge) Stored(room string) int {
	n, err := b.cfg.store.CountRoomMessages(room)
	if err != nil {
		return 0
	}
	return n
}

// Close stops carrying rooms and the node, and closes the store if the
// bridge opened it. It reports what failed to close.
func (b *Bridge) Close() error {
	var errs []error
	b.closeOnce.Do(func() {
		b.node.Host().RemoveStreamHandler(history.ID)
		b.node.Host().RemoveStreamHandler(roster.ID)
		b.cancel()
		b.wg.Wait() // loop closes the rooms on its way out
		if err := b.node.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close bridge node: %w", err))
		}
		if b.closeStore != nil {
			if err := b.closeStore(); err != nil {
				errs = append(errs, fmt.Errorf("close bridge store: %w", err))
			}
		}
	})
	return errors.Join(errs...)
}

// inspect runs inside pubsub's event loop for every incoming RPC: it only
// notes the room topics peers subscribe to, for loop to carry. It must
// never wait for anything that waits for pubsub, so it neither reads the
// room table nor blocks: loop sorts out what it already carries. (Noting
// carried rooms too means a subscription that arrives while the sweep
// drops its room gets the room carried again.)
func (b *Bridge) inspect(from peer.ID, rpc *pubsub.RPC) error {
	added := false
	for _, sub := range rpc.GetSubscriptions() {
		topic := sub.GetTopicid()
		room, ok := validRoomTopic(topic)
		if !sub.GetSubscribe() || !ok {
			continue
		}
		b.seenMu.Lock()
		switch _, ok := b.seen[room]; {
		case ok:
		case len(b.seen) >= maxSeen:
			b.dropped++
		default:
			b.seen[room] = from
			added = true
		}
		b.seenMu.Unlock()
	}
	if added {
		select {
		case b.wake <- struct{}{}:
		default: // a wake is pending: loop will take this name too
		}
	}
	return nil
}

// takeSeen hands the names noted by inspect over to loop.
func (b *Bridge) takeSeen() (rooms map[string]peer.ID, dropped int) {
	b.seenMu.Lock()
	defer b.seenMu.Unlock()
	rooms = maps.Clone(b.seen)
	clear(b.seen)
	dropped, b.dropped = b.dropped, 0
	return rooms, dropped
}

// loop owns the room table: it carries the rooms inspect notes, drops idle
// ones and, when the bridge closes, closes them all.
func (b *Bridge) loop() {
	defer b.wg.Done()
	defer b.closeRooms()
	sweep := time.NewTicker(b.cfg.sweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
			rooms, dropped := b.takeSeen()
			if dropped > 0 {
				b.log.Warn("room subscriptions came too fast; some rooms are not carried until a member subscribes again", "dropped", dropped)
			}
			for r, by := range rooms {
				err := b.carry(r, by)
				if b.ctx.Err() != nil {
					return // closing: pubsub refused because it stopped
				}
				if err != nil {
					b.log.Info("not carrying room", "room", r, "reason", err)
				}
			}
		case now := <-sweep.C:
			b.dropIdle(now)
		}
	}
}

// closeRooms stops carrying every room, when the bridge closes.
func (b *Bridge) closeRooms() {
	rooms := b.rooms
	b.rooms = make(map[string]*carried)
	b.publish()
	for _, c := range rooms {
		c.close() // errors only say that pubsub stopped first
	}
}

var (
	errNotAllowed    = errors.New("not in --rooms")
	errTooMany       = errors.New("--max-rooms reached")
	errTooManyByPeer = errors.New("the peer that asked for it already has as many rooms carried as one peer may")
)

// carry starts relaying a room for the peer by, unless it is carried or
// refused already. Only loop calls it.
func (b *Bridge) carry(room string, by peer.ID) error {
	if b.rooms[room] != nil || b.refused[room] {
		return nil
	}
	refuse := func(err error) error {
		if len(b.refused) >= maxRefused {
			clear(b.refused) // forgetting only means logging a refusal again
		}
		b.refused[room] = true
		return err
	}
	if err := chat.ValidateRoomName(room); err != nil {
		return refuse(err)
	}
	if b.cfg.rooms != nil && !b.cfg.rooms[room] {
		return refuse(errNotAllowed)
	}
	if len(b.rooms) >= b.cfg.maxRooms {
		return errTooMany // not remembered: a slot may free up
	}
	// One peer cannot take every slot: the rooms it made the relay carry
	// are bounded (another member's subscription carries the room later).
	n := 0
	for _, c := range b.rooms {
		if c.by == by {
			n++
		}
	}
	if n >= b.cfg.maxRoomsPerPeer {
		return errTooManyByPeer // not remembered either
	}
	c := &carried{by: by, limiters: make(map[peer.ID]*rate.Limiter), roster: roster.NewBook(maxLimiters)}
	// The same join/validate/subscribe sequence as a member's, with a
	// validator that checks the envelope's header and leaves the body
	// unread. Subscribing relays the topic and lets the bridge keep its
	// history.
	j, err := roomproto.Join(b.ps, room, roomproto.Validator(room, nil, b.check(c)), chat.PeerQueueSize)
	if err != nil {
		return err
	}
	c.joined = j
	ctx, stop := context.WithCancel(b.ctx)
	c.stop = stop
	b.wg.Add(1)
	go b.keepHistory(ctx, room, c, j.Sub)
	if b.cfg.observer != nil {
		b.wg.Add(1)
		go b.watchMembers(ctx, room, j.Events)
	}
	b.rooms[room] = c
	b.publish()
	b.log.Info("carrying room", "room", room)
	return nil
}

// watchMembers reports members joining and leaving a carried room, until
// ctx ends (the room is dropped or the bridge closes).
func (b *Bridge) watchMembers(ctx context.Context, room string, evh *pubsub.TopicEventHandler) {
	defer b.wg.Done()
	for {
		ev, err := evh.NextPeerEvent(ctx)
		if err != nil {
			return // bridge closed or room dropped
		}
		switch ev.Type {
		case pubsub.PeerJoin:
			b.cfg.observer(chat.PeerJoined{Room: room, Peer: ev.Peer})
		case pubsub.PeerLeave:
			b.cfg.observer(chat.PeerLeft{Room: room, Peer: ev.Peer})
		}
	}
}

// check adds the operator's limits to a valid envelope: it rejects one
// over the size limit and ignores (drops without penalty) an author over
// its rate.
func (b *Bridge) check(c *carried) func(*pubsub.Message, *pb.Envelope) pubsub.ValidationResult {
	return func(msg *pubsub.Message, _ *pb.Envelope) pubsub.ValidationResult {
		if len(msg.Data) > b.cfg.maxMessageBytes {
			return pubsub.ValidationReject
		}
		if !c.allow(msg.GetFrom(), b.cfg.rate, b.cfg.burst) {
			return pubsub.ValidationIgnore
		}
		// Fresh author keys each get a bucket above: what comes in from
		// one address is limited too (generously: a LAN behind one NAT
		// address may hold several members).
		if ip := b.remoteIP(msg.ReceivedFrom); ip != "" && !b.perIP.Allow(ip) {
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationAccept
	}
}

// close stops carrying the room. Subscription.Cancel hands the
// subscription to pubsub's event loop before it returns, so the topic has
// none left when Topic.Close reaches that loop, and the room can be
// joined again later.
func (c *carried) close() error {
	c.stop()
	return c.joined.Close()
}

// keepHistory stores the chat messages of a carried room, so that members
// who were offline can catch up from the bridge.
func (b *Bridge) keepHistory(ctx context.Context, room string, c *carried, sub *pubsub.Subscription) {
	defer b.wg.Done()
	pruned := time.Now()
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		opened, ok := msg.ValidatorData.(*roomproto.Opened)
		if !ok {
			continue
		}
		if opened.Envelope.GetKind() == pb.Envelope_PRESENCE {
			c.roster.AddSigned(msg.Message, opened.Envelope.GetSentAtMs(), msg.ReceivedFrom)
			continue
		}
		if opened.Envelope.GetKind() != pb.Envelope_MESSAGE {
			continue
		}
		// Kept as the author signed it, body unread (no nick, no text):
		// members verify and open it when they catch up.
		m, err := history.Record(msg, opened.Envelope, nil)
		if err == nil {
			_, err = b.cfg.store.AddRoomMessages([]storage.RoomMessage{m})
		}
		if err != nil {
			b.log.Warn("store carried message", "room", room, "err", err)
			continue
		}
		c.kept.Add(1)
		if time.Since(pruned) >= time.Minute {
			pruned = time.Now()
			if _, err := b.cfg.store.Prune(room, b.cfg.retention); err != nil {
				b.log.Warn("prune carried room", "room", room, "err", err)
			}
		}
	}
}

// maxLimiters bounds the per-author state of one room.
const maxLimiters = 4096

func (c *carried) allow(author peer.ID, r float64, burst int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.limiters[author]
	if l == nil {
		if len(c.limiters) >= maxLimiters {
			clear(c.limiters) // forgetting buckets only ever lets more through
		}
		l = rate.NewLimiter(rate.Limit(r), burst)
		c.limiters[author] = l
	}
	return l.Allow()
}

// dropIdle stops carrying rooms that had no member connected for
// idleAfter (idleRoomAfter unless a test says otherwise). Only loop calls
// it, and it holds no lock while it asks pubsub.
func (b *Bridge) dropIdle(now time.Time) {
	var idle []string
	for name, c := range b.rooms {
		if b.ctx.Err() != nil {
			return
		}
		if len(c.joined.Topic.ListPeers()) > 0 {
			c.idleFrom = time.Time{}
			continue
		}
		if c.kept.Load() == 0 {
			// Nothing to serve anyone: release it at once (a peer that
			// subscribes to rooms and leaves takes its memory with it).
			idle = append(idle, name)
			continue
		}
		if c.idleFrom.IsZero() {
			c.idleFrom = now
			continue
		}
		if now.Sub(c.idleFrom) >= b.cfg.idleAfter {
			idle = append(idle, name)
		}
	}
	if len(idle) == 0 {
		return
	}
	closing := make([]*carried, len(idle))
	for i, name := range idle {
		closing[i] = b.rooms[name]
		delete(b.rooms, name)
	}
	b.publish() // no longer served before it is closed
	for i, name := range idle {
		if err := closing[i].close(); err != nil {
			b.log.Warn("stop carrying idle room", "room", name, "err", err)
			continue
		}
		b.log.Info("stopped carrying idle room", "room", name)
	}
	// Give the memory back now: an idle relay allocates too little for
	// the garbage collector to run soon, and the runtime returns freed
	// pages to the system only gradually, so after a peer that
	// subscribed to many rooms left, the relay stayed ~10 MB (+29 %)
	// larger for minutes. At most once a sweep, on a small heap.
	debug.FreeOSMemory()
}

// rosterOf returns the roster book of a carried room.
func (b *Bridge) rosterOf(room string) (*roster.Book, bool) {
	c := (*b.view.Load())[room]
	if c == nil {
		return nil, false
	}
	return c.roster, true
}

// rosterLimit bounds the roster requests the bridge serves to one peer, as
// a member's node does.
func rosterLimit() *ratelimit.Keyed[peer.ID] {
	return ratelimit.New[peer.ID](chat.RosterRate, chat.RosterBurst, 0)
}

// historyLimit bounds the history requests the bridge serves to one peer,
// as a member's node does.
func historyLimit() *ratelimit.Keyed[peer.ID] {
	l := chat.DefaultLimits()
	return ratelimit.New[peer.ID](l.HistoryRate, l.HistoryBurst, 0)
}

// PerIPFactor is how many authors' worth of room messages one remote
// address may send through the bridge.
const PerIPFactor = 10

// remoteIP is the address p is connected from ("" if not connected).
func (b *Bridge) remoteIP(p peer.ID) string {
	for _, c := range b.node.Host().Network().ConnsToPeer(p) {
		if ip, err := manet.ToIP(c.RemoteMultiaddr()); err == nil {
			return ip.String()
		}
	}
	return ""
}
