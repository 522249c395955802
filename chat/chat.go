package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parley-chat/parley/chat/protocol/history"
	"github.com/parley-chat/parley/chat/protocol/roster"
	"github.com/parley-chat/parley/chat/storage"
	"github.com/parley-chat/parley/internal/store"
	"github.com/parley-chat/parley/node"
)

// Errors returned by Service methods.
var (
	ErrClosed        = errors.New("chat closed")
	ErrNotInRoom     = errors.New("not in room")
	ErrAlreadyInRoom = errors.New("already in room")
	ErrUnknownPeer   = errors.New("unknown peer")
	ErrAmbiguousNick = errors.New("ambiguous nick")
	ErrSelf          = errors.New("that is you")
	// ErrNotStored means a message asked for (a page's anchor) is not kept here.
	ErrNotStored = storage.ErrNotFound
)

// Discoverer finds and connects to other members of a rendezvous
// namespace until ctx ends (node.Node implements it).
type Discoverer interface {
	Discover(ctx context.Context, ns string)
}

// Option configures a Service.
type Option func(*config) error

type config struct {
	nick        string
	discovery   Discoverer
	logger      *slog.Logger
	dmIdle      time.Duration
	ackTimeout  time.Duration
	openTimeout time.Duration
	pathOf      func(peer.ID) node.Route
	store       storage.Store
	history     int
	retention   storage.Retention
	limits      Limits
	hooks       Hooks
}

// Defaults for history.
const (
	// DefaultHistory is how many messages of a room's history are shown:
	// of the stored ones at join, and of what each catch-up brings.
	DefaultHistory = 50
)

// DefaultRetention bounds each room's stored history on a user's node.
var DefaultRetention = storage.Retention{MaxMessages: 10000, MaxAge: 30 * 24 * time.Hour}

// WithStore keeps room history, received DMs and the DM outbox in st, e.g.
// Parley's SQLite store (default: one in memory, lost at exit). The
// Service does not close it.
func WithStore(st storage.Store) Option {
	return func(c *config) error { c.store = st; return nil }
}

// WithHistory sets how many messages of a room's history are shown: the
// newest n stored at join, and the newest n of what each catch-up brings
// (missed while away), besides any a live line follows, which are shown
// before it. Everything caught up is stored all the same; a HistoryShown
// event counts what was not shown.
func WithHistory(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return errors.New("history: negative count")
		}
		c.history = n
		return nil
	}
}

// WithRetention bounds each room's stored history.
func WithRetention(r storage.Retention) Option {
	return func(c *config) error {
		if r.MaxMessages < 0 || r.MaxAge < 0 {
			return errors.New("retention: negative bound")
		}
		c.retention = r
		return nil
	}
}

// WithNick sets the nick (default: the one this node had last time, kept
// in the store, else DefaultNick).
func WithNick(nick string) Option {
	return func(c *config) error {
		if err := ValidateNick(nick); err != nil {
			return err
		}
		c.nick = nick
		return nil
	}
}

// WithDiscovery makes every joined room look for its members through d.
func WithDiscovery(d Discoverer) Option {
	return func(c *config) error { c.discovery = d; return nil }
}

// WithLogger sets the structured logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// WithDMIdleTimeout sets how long an inbound DM stream may stay silent
// before it is reset (default 1 minute).
func WithDMIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("dm idle timeout %v: must be positive", d)
		}
		c.dmIdle = d
		return nil
	}
}

// WithDMTimeouts sets how long opening a DM stream to a peer (dial
// included) and waiting for an ack may take.
func WithDMTimeouts(open, ack time.Duration) Option {
	return func(c *config) error {
		if open <= 0 || ack <= 0 {
			return fmt.Errorf("dm timeouts (open %v, ack %v): must be positive", open, ack)
		}
		c.openTimeout, c.ackTimeout = open, ack
		return nil
	}
}

// WithPathClassifier sets how a peer's connection path is named, e.g.
// node.Node.RouteOf, which knows LAN addresses and hole-punched connections.
// Without it, a path is "relayed" or "direct" (with the address family and
// transport of the best connection all the same).
func WithPathClassifier(f func(peer.ID) node.Route) Option {
	return func(c *config) error { c.pathOf = f; return nil }
}

// Service is a chat participant on a libp2p host: rooms over GossipSub,
// direct messages over their own stream protocol, and an event bus that
// any number of front ends subscribe to.
//
// Shared state has one owner per concern, each with its own small lock,
// none of them held while calling into pubsub or the network: rooms
// (roomTable), nicks (nickBook), the DM outbox (outbox), the event bus.
type Service struct {
	h      host.Host
	ps     *pubsub.PubSub
	tracer *meshTracer
	limits *limiters
	scores *scoreBook
	cfg    config
	log    *slog.Logger
	bus    *bus

	ctx    context.Context
	cancel context.CancelFunc

	life   sync.Mutex // guards closed and wg.Add, so Close can wait
	closed bool
	wg     sync.WaitGroup // goroutines that may emit events

	rooms    roomTable
	nicks    *nickBook
	roles    *roleBook
	outbox   *outbox
	store    storage.Store
	memStore *store.Store // the in-memory store New opened, closed by Close

	posts    chan post // room messages Post accepted, sent in order
	postOnce sync.Once

	closeOnce sync.Once
	closeErr  error
}

// New starts a chat service on h. Subscribe to see its events.
func New(h host.Host, opts ...Option) (*Service, error) {
	cfg := config{
		logger:      slog.Default(),
		dmIdle:      time.Minute,
		ackTimeout:  10 * time.Second,
		openTimeout: 20 * time.Second,
		history:     DefaultHistory,
		retention:   DefaultRetention,
		limits:      DefaultLimits(),
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.pathOf == nil {
		cfg.pathOf = func(p peer.ID) node.Route { return simplePath(h, p) }
	}
	var mem *store.Store // opened here, closed by Close
	if cfg.store == nil {
		var err error
		if mem, err = store.OpenMemory(); err != nil {
			return nil, err
		}
		cfg.store = mem
	}
	nicks, err := newNickBook(h.ID(), cfg.nick, cfg.store, cfg.logger)
	if err != nil {
		if mem != nil {
			mem.Close()
		}
		return nil, fmt.Errorf("start chat: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tracer := newMeshTracer()
	scores := newScoreBook()
	psOpts := append(PubSubOptions(tracer, scores.penalties.score), pubsub.WithPeerScoreInspect(scores.set, scoreDecay))
	ps, err := pubsub.NewGossipSub(ctx, h, append(psOpts, cfg.hooks.pubsubOptions()...)...)
	if err != nil {
		cancel()
		if mem != nil {
			mem.Close()
		}
		return nil, fmt.Errorf("start gossipsub: %w", err)
	}
	s := &Service{
		h: h, ps: ps, cfg: cfg, log: cfg.logger, tracer: tracer, limits: newLimiters(cfg.limits), scores: scores,
		bus: newBus(), posts: make(chan post, maxPosts),
		ctx: ctx, cancel: cancel,
		rooms:    roomTable{m: make(map[string]*room)},
		nicks:    nicks,
		roles:    newRoleBook(h),
		store:    cfg.store,
		memStore: mem,
	}
	s.outbox = newOutbox(s)
	h.SetStreamHandler(DMProtocol, s.handleDM)
	h.SetStreamHandler(history.ID, history.Server{Store: s.store, Allowed: s.servesHistoryTo, Served: s.historyServed, Admit: s.limits.history.Allow}.Handle)
	h.SetStreamHandler(roster.ID, s.rosterServer().Handle)
	if err := s.outbox.start(); err != nil {
		s.Close()
		return nil, err
	}
	s.watchConnections()
	s.wg.Add(1)
	go s.reportDrops()
	return s, nil
}

// MeshParams are GossipSub's mesh degrees for chat rooms: D=3 (2..4)
// instead of 6 (5..12). With go-libp2p's defaults a member's mesh holds
// nearly all of its ~8 neighbours, so GossipSub sent as much as flooding:
// 7.8× the payload per receiver on a 50-member random graph. D=3 measured
// 4.0× (5.8× on a full mesh), 100 % delivered, p99 no worse
// (docs/benchmarks.md). Own messages are flood-published anyway, and
// gossip (Dlazy 6) repairs what the thinner mesh misses.
func MeshParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi, p.Dout = 3, 2, 4, 0
	return p
}

// PubSubOptions are the GossipSub options of chat rooms (the benchmarks
// measure GossipSub with exactly these); app is the application-specific
// part of the peer score (see PeerScoreParams).
func PubSubOptions(tracer pubsub.RawTracer, app func(peer.ID) float64) []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithGossipSubParams(MeshParams()),
		pubsub.WithPeerScore(PeerScoreParams(app), PeerScoreThresholds()),
		pubsub.WithRawTracer(tracer),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		// Small rooms would lose messages published before the next
		// heartbeat grafts a new member into the mesh: send own messages
		// to every known member of the topic instead.
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerExchange(true),
		pubsub.WithMaxMessageSize(64 << 10),
		// Per-peer send queue (pubsub's default is 32 RPCs): room for a
		// burst of chat messages before pubsub starts dropping, which
		// reportDrops then surfaces.
		pubsub.WithPeerOutboundQueueSize(PeerQueueSize),
		pubsub.WithValidateQueueSize(PeerQueueSize),
	}
}

// PeerQueueSize is the size of GossipSub's per-peer outbound queue (in
// RPCs), of its validation queue and of each room's subscription buffer.
const PeerQueueSize = 4096

// DefaultNick is the nick used until the user picks one: the last
// characters of the peer ID.
func DefaultNick(id peer.ID) string {
	s := id.String()
	return "peer-" + s[max(0, len(s)-6):]
}

// Subscribe returns a new reader of the service's events. Each
// subscription has its own bounded queue; one that falls behind is closed
// with ErrFellBehind and never slows the node down.
func (s *Service) Subscribe(opts ...SubscribeOption) (*Subscription, error) {
	return s.bus.subscribe(opts...)
}

// LastSeq is the sequence number of the newest event so far.
func (s *Service) LastSeq() uint64 { return s.bus.lastSeq() }

// Subscribers counts the open event subscriptions.
func (s *Service) Subscribers() int { return s.bus.subscribers() }

// ID returns this node's peer ID.
func (s *Service) ID() peer.ID { return s.h.ID() }

// Nick returns the current nick.
func (s *Service) Nick() string { return s.nicks.own() }

// SetNick changes the nick and announces it in every room: the other
// members get a NickChanged event for each room they share with this
// node, and so do this node's front ends (Self set).
func (s *Service) SetNick(nick string) error {
	if err := ValidateNick(nick); err != nil {
		return err
	}
	old := s.nicks.own()
	s.nicks.setOwn(nick)
	if old == nick {
		return nil
	}
	for _, r := range s.rooms.list() {
		s.emit(NickChanged{Room: r.name, Peer: s.h.ID(), Old: old, New: nick, Self: true})
		r.announceSoon(0)
	}
	return nil
}

// sawNicks notes sightings in the nick book and announces each nick it
// changed in every joined room that has seen the peer, whichever room (or
// DM) brought the news: alice's new nick shows once in each room she
// shares with this node, however her presences arrive.
func (s *Service) sawNicks(all []sighting) {
	for _, c := range s.nicks.seenAll(all) {
		for _, r := range s.rooms.list() {
			if r.knows(c.p) {
				s.emit(NickChanged{Room: r.name, Peer: c.p, Old: c.old, New: c.new})
			}
		}
	}
}

// sentTime is a send time in Unix milliseconds as a time, zero if unset.
func sentTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// PeerInfo describes a known peer for a /peers listing.
type PeerInfo struct {
	ID   peer.ID
	Nick string
	// Rooms are the joined rooms the peer is a member of now (for a relay:
	// the rooms it carries). A peer with no rooms is connected for another
	// reason (the DHT, a relay) or was only seen recently.
	Rooms []string
	Path  string // PathLAN, PathDirect, PathHolePunched, PathRelayed, or PathNone
	Relay peer.ID
	// Family (FamilyIP4, FamilyIP6) and Transport (TransportTCP,
	// TransportQUIC, …) of the connection Path names; for a relayed one,
	// of the hop to the relay. Empty when not connected.
	Family    string
	Transport string
	Role      string // RoleRelay for a relay, else RolePerson
	// LastSeen is when its last message, presence or DM arrived (zero if
	// never: a peer that is only connected).
	LastSeen time.Time
}

// PathNone is a PeerInfo's Path when the peer is not connected now.
const PathNone = "not connected"

// memberTimeout is how long a room member heard only through a bridge (a
// message or a presence, with no connection of its own to this node) is
// still listed as in the room: a bridge does not say when a member leaves.
const memberTimeout = 30 * time.Minute

// RecentlySeen is how far back Peers lists peers that are in none of this
// node's rooms now.
const RecentlySeen = 24 * time.Hour

// Peers lists who is in the joined rooms now (connected members, and
// members heard through a bridge within memberTimeout that did not leave
// or disconnect since), every connected peer, and the peers seen within
// RecentlySeen that are neither (Path PathNone, no Rooms), sorted by ID.
func (s *Service) Peers() []PeerInfo {
	byID := make(map[peer.ID]*PeerInfo)
	get := func(p peer.ID) *PeerInfo {
		if pi, ok := byID[p]; ok {
			return pi
		}
		pi := &PeerInfo{ID: p}
		byID[p] = pi
		return pi
	}
	for _, r := range s.rooms.list() {
		members := append(r.topic.ListPeers(), r.heardWithin(memberTimeout)...)
		for _, p := range members {
			pi := get(p)
			if !slices.Contains(pi.Rooms, r.name) {
				pi.Rooms = append(pi.Rooms, r.name)
			}
		}
	}
	for _, p := range s.h.Network().Peers() {
		get(p)
	}
	for p := range s.nicks.known(time.Now().Add(-RecentlySeen)) {
		get(p)
	}
	out := make([]PeerInfo, 0, len(byID))
	for _, pi := range byID {
		if pi.ID == s.h.ID() {
			continue
		}
		pi.Nick = s.nicks.get(pi.ID)
		pi.LastSeen = s.nicks.lastSeen(pi.ID)
		pi.Role, _ = s.roles.known(pi.ID)
		pi.Path = PathNone
		if connected(s.h, pi.ID) {
			r := s.cfg.pathOf(pi.ID)
			pi.Path, pi.Relay, pi.Family, pi.Transport = r.Path, r.Relay, r.Family, r.Transport
		}
		sort.Strings(pi.Rooms)
		out = append(out, *pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ResolvePeer turns what a person typed into a peer ID: a peer ID, a nick
// (of exactly one known peer), a peer as front ends show it, nick[A1LeKv]
// or [A1LeKv], or the ID tag alone (the end of a peer ID, at least
// minTagLen characters, of exactly one known peer). Your own nick or ID
// is ErrSelf.
func (s *Service) ResolvePeer(who string) (peer.ID, error) {
	who = strings.TrimSpace(who)
	if id, err := peer.Decode(who); err == nil {
		return id, nil
	}
	// The tag decides; the nick before it may be an older one.
	if _, tag, ok := splitTag(who); ok {
		matches := s.bySuffix(tag)
		switch {
		case len(matches) == 1 && matches[0] == s.h.ID():
			return "", fmt.Errorf("%w (%s)", ErrSelf, who)
		case len(matches) == 1:
			return matches[0], nil
		case len(matches) > 1:
			return "", fmt.Errorf("%w %q: the tag %s fits %s; give more of the peer ID", ErrAmbiguousNick, who, tag, s.shown(matches))
		}
		return "", fmt.Errorf("%w %q: no known peer's ID ends in %s", ErrUnknownPeer, who, tag)
	}
	matches := s.nicks.lookup(who)
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		if who == s.Nick() {
			return "", fmt.Errorf("%w (%s is your nick)", ErrSelf, who)
		}
		if len(who) >= minTagLen {
			switch ids := s.bySuffix(who); {
			case len(ids) == 1 && ids[0] == s.h.ID():
				return "", fmt.Errorf("%w (%s is the end of your peer ID)", ErrSelf, who)
			case len(ids) == 1:
				return ids[0], nil
			case len(ids) > 1:
				return "", fmt.Errorf("%w %q: fits %s; give more of the peer ID", ErrAmbiguousNick, who, s.shown(ids))
			}
		}
		return "", fmt.Errorf("%w %q: no peer with that nick or ID tag has been seen (give the peer ID instead)", ErrUnknownPeer, who)
	default:
		return "", fmt.Errorf("%w %q: used by %s; say which, as shown", ErrAmbiguousNick, who, s.shown(matches))
	}
}

// minTagLen is the shortest end of a peer ID that ResolvePeer takes.
const minTagLen = 4

// splitTag splits "nick[TAG]" or "[TAG]" (as front ends show a peer).
func splitTag(s string) (nick, tag string, ok bool) {
	i := strings.LastIndexByte(s, '[')
	if i < 0 || !strings.HasSuffix(s, "]") {
		return "", "", false
	}
	tag = s[i+1 : len(s)-1]
	if len(tag) < minTagLen {
		return "", "", false
	}
	return s[:i], tag, true
}

// bySuffix lists the known peers (nick book, connected, this node) whose
// ID ends in tag.
func (s *Service) bySuffix(tag string) []peer.ID {
	seen := make(map[peer.ID]bool)
	var out []peer.ID
	consider := func(p peer.ID) {
		if !seen[p] && strings.HasSuffix(p.String(), tag) {
			seen[p] = true
			out = append(out, p)
		}
	}
	consider(s.h.ID())
	for p := range s.nicks.known(time.Time{}) {
		consider(p)
	}
	for _, p := range s.h.Network().Peers() {
		consider(p)
	}
	return out
}

// shown lists peers as front ends show them, nick[A1LeKv], sorted.
func (s *Service) shown(ids []peer.ID) string {
	out := make([]string, len(ids))
	for i, p := range ids {
		out[i] = s.nicks.get(p) + short(p)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// Drain waits until every DM delivery under way is acknowledged or has
// failed (a failed DM stays queued on disk for a later attempt), or until
// ctx ends.
func (s *Service) Drain(ctx context.Context) error {
	if err := s.outbox.busy.wait(ctx); err != nil {
		return fmt.Errorf("drain pending sends: %w", err)
	}
	return nil
}

// Close leaves every room, stops the DM protocol, ends every event
// subscription and closes the store if New opened it. It does not close
// the host.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.life.Lock()
		s.closed = true
		s.life.Unlock()

		s.h.RemoveStreamHandler(DMProtocol)
		s.h.RemoveStreamHandler(history.ID)
		s.h.RemoveStreamHandler(roster.ID)
		s.cancel()
		for _, r := range s.rooms.takeAll() {
			r.close()
		}
		s.outbox.close()
		s.wg.Wait()
		s.bus.close()
		if s.memStore != nil {
			if err := s.memStore.Close(); err != nil {
				s.closeErr = fmt.Errorf("close chat store: %w", err)
			}
		}
	})
	return s.closeErr
}

// Notify puts an event from the embedding program (e.g. RelayReservation)
// into the event stream, so front ends have one stream to render.
func (s *Service) Notify(ev Event) { s.emit(ev) }

// track registers a goroutine that may emit events; it fails once closed.
func (s *Service) track() bool {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Service) isClosed() bool {
	s.life.Lock()
	defer s.life.Unlock()
	return s.closed
}

// emit hands ev to every subscriber; it never blocks.
func (s *Service) emit(ev Event) { s.bus.publish(ev) }
