package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/node"
)

// idleRoomAfter is how long a carried room with no member connected to
// the bridge is kept before the bridge stops carrying it.
const idleRoomAfter = 10 * time.Minute

// Bridge is a running relay/bridge node.
type Bridge struct {
	cfg  config
	node *node.Node
	ps   *pubsub.PubSub
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	mu      sync.Mutex
	seen    map[string]bool // room topics announced by peers, not yet handled
	rooms   map[string]*carried
	refused map[string]bool // rooms refused (logged once)

	ownStore  bool
	closeOnce sync.Once
}

type carried struct {
	topic    *pubsub.Topic
	events   *pubsub.TopicEventHandler // nil without an observer
	sub      *pubsub.Subscription
	idleFrom time.Time // zero while members are connected

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
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var ownStore bool
	var err error
	if cfg.store, ownStore, err = store.OrMemory(cfg.store); err != nil {
		return nil, err
	}
	n, err := node.New(append(cfg.nodeOpts, node.WithRelayService(cfg.resources))...)
	if err != nil {
		if ownStore {
			cfg.store.Close()
		}
		return nil, fmt.Errorf("start bridge: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{
		cfg: cfg, node: n, log: cfg.logger,
		ctx: ctx, cancel: cancel,
		wake:     make(chan struct{}, 1),
		seen:     make(map[string]bool),
		rooms:    make(map[string]*carried),
		refused:  make(map[string]bool),
		ownStore: ownStore,
	}
	b.ps, err = pubsub.NewFloodSub(ctx, n.Host(),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithAppSpecificRpcInspector(b.inspect),
		pubsub.WithMaxMessageSize(64<<10),
	)
	if err != nil {
		cancel()
		n.Close()
		return nil, fmt.Errorf("start bridge pubsub: %w", err)
	}
	n.Host().SetStreamHandler(chat.HistoryProtocol, chat.HistoryServer{Store: cfg.store, Allowed: func(_ context.Context, room string, _ peer.ID) bool { return b.carries(room) }}.Handle)
	b.wg.Add(1)
	go b.loop()
	return b, nil
}

// Node returns the bridge's node.
func (b *Bridge) Node() *node.Node { return b.node }

// Rooms lists the rooms being carried.
func (b *Bridge) Rooms() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.rooms))
}

// Members lists the peers connected to the bridge that are in room.
func (b *Bridge) Members(room string) []peer.ID {
	b.mu.Lock()
	c := b.rooms[room]
	b.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.topic.ListPeers()
}

// Stored counts the messages of room the bridge keeps.
func (b *Bridge) Stored(room string) int {
	n, err := b.cfg.store.CountRoomMessages(room)
	if err != nil {
		return 0
	}
	return n
}

// Close stops carrying rooms and the node.
func (b *Bridge) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.node.Host().RemoveStreamHandler(chat.HistoryProtocol)
		b.cancel()
		b.mu.Lock()
		for name, r := range b.rooms {
			r.close(b.ps, name)
		}
		b.mu.Unlock()
		b.wg.Wait()
		err = b.node.Close()
		if b.ownStore {
			b.cfg.store.Close()
		}
	})
	return err
}

// inspect runs inside pubsub's event loop for every incoming RPC: it only
// notes the room topics peers subscribe to, for loop to join.
func (b *Bridge) inspect(_ peer.ID, rpc *pubsub.RPC) error {
	added := false
	for _, sub := range rpc.GetSubscriptions() {
		topic := sub.GetTopicid()
		if !sub.GetSubscribe() || !strings.HasPrefix(topic, chat.TopicPrefix) {
			continue
		}
		room := strings.TrimPrefix(topic, chat.TopicPrefix)
		b.mu.Lock()
		if b.rooms[room] == nil && !b.refused[room] && !b.seen[room] {
			b.seen[room] = true
			added = true
		}
		b.mu.Unlock()
	}
	if added {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func (b *Bridge) loop() {
	defer b.wg.Done()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
			b.mu.Lock()
			rooms := make([]string, 0, len(b.seen))
			for r := range b.seen {
				rooms = append(rooms, r)
			}
			clear(b.seen)
			b.mu.Unlock()
			for _, r := range rooms {
				if err := b.carry(r); err != nil {
					b.log.Info("not carrying room", "room", r, "reason", err)
				}
			}
		case now := <-sweep.C:
			b.dropIdle(now)
		}
	}
}

var (
	errNotAllowed = errors.New("not in --rooms")
	errTooMany    = errors.New("--max-rooms reached")
)

// carry starts relaying a room.
func (b *Bridge) carry(room string) error {
	refuse := func(err error) error {
		b.mu.Lock()
		b.refused[room] = true
		b.mu.Unlock()
		return err
	}
	if err := chat.ValidateRoomName(room); err != nil {
		return refuse(err)
	}
	if b.cfg.rooms != nil && !b.cfg.rooms[room] {
		return refuse(errNotAllowed)
	}
	b.mu.Lock()
	n := len(b.rooms)
	b.mu.Unlock()
	if n >= b.cfg.maxRooms {
		return errTooMany // not remembered: a slot may free up
	}
	c := &carried{limiters: make(map[peer.ID]*rate.Limiter)}
	topicName := chat.TopicPrefix + room
	if err := b.ps.RegisterTopicValidator(topicName, b.validator(room, c)); err != nil {
		return fmt.Errorf("register validator: %w", err)
	}
	topic, err := b.ps.Join(topicName)
	if err != nil {
		b.ps.UnregisterTopicValidator(topicName)
		return fmt.Errorf("join: %w", err)
	}
	// Subscribing relays the topic and lets the bridge keep its history.
	sub, err := topic.Subscribe(pubsub.WithBufferSize(chat.PeerQueueSize))
	if err != nil {
		topic.Close()
		b.ps.UnregisterTopicValidator(topicName)
		return fmt.Errorf("subscribe: %w", err)
	}
	c.topic, c.sub = topic, sub
	b.wg.Add(1)
	go b.keepHistory(room, sub)
	if b.cfg.observer != nil {
		if evh, err := topic.EventHandler(); err == nil {
			c.events = evh
			b.wg.Add(1)
			go b.watchMembers(room, evh)
		}
	}
	b.mu.Lock()
	b.rooms[room] = c
	b.mu.Unlock()
	b.log.Info("carrying room", "room", room)
	return nil
}

// watchMembers reports members joining and leaving a carried room.
func (b *Bridge) watchMembers(room string, evh *pubsub.TopicEventHandler) {
	defer b.wg.Done()
	for {
		ev, err := evh.NextPeerEvent(b.ctx)
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

// validator accepts what every Parley node accepts, within the operator's
// size limit, and ignores (drops without penalty) an author over its rate.
func (b *Bridge) validator(room string, c *carried) pubsub.ValidatorEx {
	return func(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if len(msg.Data) > b.cfg.maxMessageBytes {
			return pubsub.ValidationReject
		}
		env, err := chat.DecodeEnvelope(msg.Data, room, time.Now())
		if err != nil {
			return pubsub.ValidationReject
		}
		if !c.allow(msg.GetFrom(), b.cfg.rate, b.cfg.burst) {
			return pubsub.ValidationIgnore
		}
		msg.ValidatorData = env
		return pubsub.ValidationAccept
	}
}

func (c *carried) close(ps *pubsub.PubSub, room string) {
	if c.events != nil {
		c.events.Cancel()
	}
	c.sub.Cancel()
	c.topic.Close()
	ps.UnregisterTopicValidator(chat.TopicPrefix + room)
}

// keepHistory stores the chat messages of a carried room, so that members
// who were offline can catch up from the bridge.
func (b *Bridge) keepHistory(room string, sub *pubsub.Subscription) {
	defer b.wg.Done()
	pruned := time.Now()
	for {
		msg, err := sub.Next(b.ctx)
		if err != nil {
			return
		}
		env, ok := msg.ValidatorData.(*pb.Envelope)
		if !ok || env.GetKind() != pb.Envelope_MESSAGE {
			continue
		}
		m, err := chat.StoredMessage(msg, env)
		if err == nil {
			_, err = b.cfg.store.AddRoomMessage(m)
		}
		if err != nil {
			b.log.Warn("store carried message", "room", room, "err", err)
			continue
		}
		if time.Since(pruned) >= time.Minute {
			pruned = time.Now()
			if _, err := b.cfg.store.Prune(room, b.cfg.retention); err != nil {
				b.log.Warn("prune carried room", "room", room, "err", err)
			}
		}
	}
}

// carries reports whether the bridge carries room (it serves only those).
func (b *Bridge) carries(room string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rooms[room] != nil
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
// idleRoomAfter.
func (b *Bridge) dropIdle(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, r := range b.rooms {
		if len(r.topic.ListPeers()) > 0 {
			r.idleFrom = time.Time{}
			continue
		}
		if r.idleFrom.IsZero() {
			r.idleFrom = now
			continue
		}
		if now.Sub(r.idleFrom) >= idleRoomAfter {
			r.close(b.ps, name)
			delete(b.rooms, name)
			b.log.Info("stopped carrying idle room", "room", name)
		}
	}
}
