package chat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/content"
	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/history"
	roomproto "github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/chat/protocol/roster"
	"github.com/parley-chat/parley/chat/storage"
)

// Presence: a member announces its nick to the room when it joins (again
// when it first meets a member, if that announcement reached no one) and
// when it changes it, so that others can /dm it by nick before it speaks.
// Members that join later learn it from the members they meet, who keep
// every member's newest presence as signed (roster.go): nobody answers a
// newcomer room-wide. Room-wide answers were O(members²) copies while a
// room formed: 62,878 presence copies on the wire while a 50-member room
// formed, 30 times its messages' traffic, and even coalesced and backed
// off they filled the measured window of a 100-member room and kept a
// simulated 1,000-member room busy for minutes (docs/benchmarks.md).
//
// presenceDelay gathers the first members met after an announcement that
// reached no one into one.
const presenceDelay = 250 * time.Millisecond

type room struct {
	s    *Service
	name string // as the user knows it: events, commands
	// wire is the room's name on the wire and in the store: the name for
	// a public room, the sealer's derived name for a private one.
	wire   string
	sealer *roomproto.Sealer // nil for a public room
	open   roomproto.Opener
	joined *roomproto.Joined
	topic  *pubsub.Topic // joined.Topic
	ctx    context.Context
	cancel context.CancelFunc

	order *sequencer // each sender's live lines in the order they were sent
	// members counts the topic's peers as peerLoop has seen them join and
	// leave: publish reads it for every message, where ListPeers is a
	// round trip through pubsub's event loop.
	members atomic.Int32
	pace    *rate.Limiter // own messages, a little under what members accept

	mu           sync.Mutex
	lamport      uint64
	lastOwn      uint64 // Lamport of this node's newest message in the room
	lastOwnAt    int64  // its sent-at (Unix ms)
	announce     *time.Timer
	announced    time.Time             // when the last presence reached someone (zero: not yet)
	heard        map[peer.ID]time.Time // authors seen in the room, also through a bridge
	met          map[peer.ID]struct{}  // members this room has seen: joined, spoke or in its roster
	gaps         map[peer.ID]int64     // authors whose lines went missing, after which sent-at
	gapTimer     *time.Timer           // fetches them (repairGaps)
	gapFirst     time.Time             // first gap since the last repair
	joinedAt     time.Time
	pruned       time.Time                // last retention run
	joinCatchUps int                      // members caught up from in the catch-up window
	left         map[peer.ID]time.Time    // members who left (or lost touch), and when
	ownSent      map[string]chan struct{} // own messages not yet stored, by id
	unreceived   []unreceivedMsg          // own messages no one received yet, oldest first
	closeOnce    sync.Once

	roster     *roster.Book             // each member's newest presence, as signed
	rosterAt   map[peer.ID]rosterCursor // how far this node got in each neighbour's book
	rosterDue  map[peer.ID]struct{}     // neighbours to ask for their roster soon
	rosterWake chan struct{}            // rosterDue has someone
}

// maxRemembered bounds the members remembered as having left a room.
const maxRemembered = 4096

// pruneEvery is how often a room's retention runs, at most (it cost 9 %
// of the CPU of a burst when it ran every 100 messages).
const pruneEvery = time.Minute

// catchUpWindow is how long after joining a room this node catches up
// from every member it meets. Later it catches up only from members that
// come back after losing touch (a partition healed, a relay restarted): a
// newcomer has nothing this node missed, and every catch-up re-reads the
// last few minutes of the room.
const catchUpWindow = 30 * time.Second

// joinCatchUps is how many members (relays aside) a node catches up from
// in its catch-up window.
const joinCatchUps = 3

// catchUpSoon asks p, a member we just met in the room, for the messages
// this node missed. However often p leaves and comes back, it is asked at
// most Limits.CatchUpsPerRoom times at once, then once per CatchUpEvery:
// coming back must not buy a peer a fresh catch-up each time.
//
// Right after joining, it asks the first joinCatchUps members it meets
// and every relay, not everyone: when a whole room joins at once (a
// restart, a partition healing) each member asking each other one was
// O(members²) catch-ups, a storm; members that joined with us have
// nothing we missed, and a member that comes back is asked anyway.
func (r *room) catchUpSoon(p peer.ID, role string) {
	r.mu.Lock()
	_, returning := r.left[p]
	delete(r.left, p)
	inWindow := time.Since(r.joinedAt) <= catchUpWindow
	skip := !returning && (!inWindow || (role != RoleRelay && r.joinCatchUps >= joinCatchUps))
	if !skip && !returning && role != RoleRelay {
		r.joinCatchUps++
	}
	r.mu.Unlock()
	if skip {
		return
	}
	r.goCatchUp(p, nil, r.s.cfg.history)
}

// goCatchUp starts a catch-up from p (catchUpFrom) in the background,
// unless p served this room a catch-up too recently (however often it
// left and came back) or the service is closing; it says whether it did.
func (r *room) goCatchUp(p peer.ID, from *storage.Cursor, show int) bool {
	if !r.s.limits.catchUps.Allow(roomPeer{r.name, p}) {
		r.s.log.Debug("catch up: skipped, asked this peer recently", "room", r.name, "peer", p)
		return false
	}
	if !r.s.track() {
		return false
	}
	go func() {
		defer r.s.wg.Done()
		r.catchUpFrom(p, from, show)
	}()
	return true
}

// Join subscribes to room name and starts looking for its members.
func (s *Service) Join(name string) error {
	return s.join(name, nil)
}

// join joins room name: a public one, or with sealer a private one.
func (s *Service) join(name string, sealer *roomproto.Sealer) error {
	if err := ValidateRoomName(name); err != nil {
		return err
	}
	if !s.track() {
		return ErrClosed
	}
	defer s.wg.Done()
	if r, ok := s.rooms.get(name); ok {
		if r.sealer != nil && sealer == nil {
			return fmt.Errorf("join room %q: %w: the private #%s (the public one is another room: /leave %s first)", name, ErrAlreadyInRoom, name, name)
		}
		return fmt.Errorf("join room %q: %w", name, ErrAlreadyInRoom)
	}
	wire, open := name, roomproto.Opener(roomproto.OpenPublic)
	if sealer != nil {
		wire, open = sealer.Name(), sealer.Open
	}
	j, err := roomproto.Join(s.ps, wire, roomproto.Validator(wire, open, s.authorLimit(name)), PeerQueueSize)
	if err != nil {
		return fmt.Errorf("join room %q: %w", name, err)
	}
	if err := j.Topic.SetScoreParams(RoomScoreParams()); err != nil {
		j.Close()
		return fmt.Errorf("join room %q: %w", name, err)
	}
	// This node's counter goes on where its stored history stands, so its
	// next message names the previous one (prev-lamport) after a restart.
	lastOwn, _, err := s.store.AuthorLamport(wire, s.h.ID().String(), math.MaxUint64)
	if err != nil {
		j.Close()
		return fmt.Errorf("join room %q: %w", name, err)
	}
	latest, _, err := s.store.LatestRoomMessage(wire)
	if err != nil {
		j.Close()
		return fmt.Errorf("join room %q: %w", name, err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	r := &room{s: s, name: name, wire: wire, sealer: sealer, open: open, joined: j, topic: j.Topic, ctx: ctx, cancel: cancel,
		lamport: max(lastOwn, latest.Lamport), lastOwn: lastOwn,
		heard: make(map[peer.ID]time.Time), met: make(map[peer.ID]struct{}), gaps: make(map[peer.ID]int64), left: make(map[peer.ID]time.Time),
		ownSent: make(map[string]chan struct{}), joinedAt: time.Now(), pruned: time.Now(),
		roster: roster.NewBook(maxRemembered), rosterAt: make(map[peer.ID]rosterCursor),
		rosterDue: make(map[peer.ID]struct{}), rosterWake: make(chan struct{}, 1)}
	r.order = newSequencer(r)
	r.pace = s.limits.ownPace()
	if !s.rooms.add(r) {
		r.close()
		return fmt.Errorf("join room %q: %w", name, ErrAlreadyInRoom)
	}
	if s.ctx.Err() != nil { // Close ran meanwhile
		s.rooms.remove(name)
		r.close()
		return ErrClosed
	}
	s.wg.Add(3)
	go r.readLoop()
	go r.peerLoop()
	go r.rosterLoop()
	if s.cfg.discovery != nil {
		s.cfg.discovery.Discover(ctx, roomproto.Rendezvous(wire))
	}
	r.announceSoon(0)
	return nil
}

// Leave unsubscribes from a room.
func (s *Service) Leave(name string) error {
	r, ok := s.rooms.remove(name)
	if !ok {
		return fmt.Errorf("leave room %q: %w", name, ErrNotInRoom)
	}
	r.close()
	if r.sealer != nil {
		// Leaving a private room forgets its key: only a new invite
		// brings this node back.
		return s.store.DeletePrivateRoom(name)
	}
	return nil
}

// Rooms lists the joined rooms, sorted.
func (s *Service) Rooms() []string { return s.rooms.names() }

// MaxHistoryPage bounds one History call.
const MaxHistoryPage = 500

// History returns up to limit stored messages of a joined or earlier
// joined room that come before the message with ID before ("" for the
// newest), oldest first, marked Backfill: the pages a front end shows when
// scrolling back.
func (s *Service) History(room, before string, limit int) ([]Message, error) {
	if err := ValidateRoomName(room); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxHistoryPage {
		return nil, fmt.Errorf("history of room %q: limit %d: want 1 to %d", room, limit, MaxHistoryPage)
	}
	// A private room's history before a rekey is under its earlier
	// epochs' names: page on into them, newest first.
	var msgs []storage.RoomMessage
	var notFound error
	for _, wire := range s.wiresOf(room) {
		page, err := s.store.RoomMessagesBefore(wire, before, limit-len(msgs))
		if errors.Is(err, storage.ErrNotFound) && before != "" {
			notFound = err
			continue // the anchor may be in an earlier epoch
		}
		if err != nil {
			return nil, fmt.Errorf("history of room %q: %w", room, err)
		}
		msgs, before, notFound = append(page, msgs...), "", nil
		if len(msgs) >= limit {
			break
		}
	}
	if notFound != nil {
		return nil, fmt.Errorf("history of room %q: %w", room, notFound)
	}
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = messageEvent(m, true)
		out[i].Room = room
	}
	return out, nil
}

// servesHistoryTo reports whether p may read room's history from this
// node: both must be in the room. A requester's subscription can reach
// this node a moment after the requester saw ours, so it is awaited
// briefly.
func (s *Service) servesHistoryTo(ctx context.Context, room string, p peer.ID) bool {
	r, ok := s.rooms.byWire(room)
	if !ok {
		return false
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.ctx, cancel)() // the room left: stop waiting
	return r.joined.WaitMember(ctx, p)
}

// sendTimeout bounds how long Send waits for its own message to come back
// through GossipSub and be stored.
const sendTimeout = 5 * time.Second

// Send publishes text to a joined room and returns the message ID once
// the message is signed, sent and stored (so it is durable when the front
// end says "sent"). It comes back as a Message event like everyone else's.
func (s *Service) Send(ctx context.Context, roomName, text string) (string, error) {
	if err := ValidateText(text); err != nil {
		return "", fmt.Errorf("send to room %q: %w", roomName, err)
	}
	return s.send(ctx, roomName, text, content.NewID())
}

func (s *Service) send(ctx context.Context, roomName, text, id string) (string, error) {
	o, err := s.publishOwn(ctx, roomName, text, id)
	if err != nil {
		return "", err
	}
	defer o.done()
	timeout := time.NewTimer(sendTimeout)
	defer timeout.Stop()
	select {
	case <-o.stored:
		return id, nil
	case <-o.r.ctx.Done():
		return id, o.errLeft()
	case <-ctx.Done():
		return id, fmt.Errorf("send to room %q: %w", roomName, ctx.Err())
	case <-timeout.C:
		return id, o.errNotStored()
	}
}

// ownMessage is an own room message published and not yet back and
// stored: stored is closed when it is.
type ownMessage struct {
	r      *room
	id     string
	stored chan struct{}
}

// publishOwn seals text as message id and publishes it to roomName; the
// caller waits on the result's stored and calls done.
func (s *Service) publishOwn(ctx context.Context, roomName, text, id string) (ownMessage, error) {
	r, ok := s.rooms.get(roomName)
	if !ok {
		return ownMessage{}, fmt.Errorf("send to room %q: %w", roomName, ErrNotInRoom)
	}
	env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: id, Room: r.wire}
	if err := r.seal(env, &pb.Body{Nick: s.Nick(), Text: text}); err != nil {
		return ownMessage{}, fmt.Errorf("send to room %q: %w", roomName, err)
	}
	o := ownMessage{r: r, id: id, stored: make(chan struct{})}
	r.mu.Lock()
	r.ownSent[id] = o.stored
	r.mu.Unlock()
	// Members ignore an author over their rate limit: wait for our turn
	// rather than send what they would drop.
	err := r.pace.Wait(ctx)
	if err == nil {
		err = r.publish(ctx, env)
	}
	if err != nil {
		o.done()
		return ownMessage{}, fmt.Errorf("send to room %q: %w", roomName, err)
	}
	return o, nil
}

// done forgets o: it was stored, or is no longer waited for.
func (o ownMessage) done() {
	o.r.mu.Lock()
	delete(o.r.ownSent, o.id)
	o.r.mu.Unlock()
}

func (o ownMessage) errLeft() error {
	return fmt.Errorf("send to room %q: left the room before the message was stored", o.r.name)
}

func (o ownMessage) errNotStored() error {
	return fmt.Errorf("send to room %q: message sent but not stored within %v", o.r.name, sendTimeout)
}

// Right after joining, a room's members are not known yet: their
// subscriptions arrive a moment later. A message published then reaches
// nobody (GossipSub sends only to known members), so for joinSettle after
// joining, while connected to anyone, publishing waits up to readyWait for
// a first member.
const (
	joinSettle = 5 * time.Second
	readyWait  = 2 * time.Second
)

// publish stamps env (Lamport; for a message also the previous message's
// Lamport, and a sent-at never before the previous one's, so that history
// order keeps this node's lines in the order they were sent) and sends it.
func (r *room) publish(ctx context.Context, env *pb.Envelope) error {
	if time.Since(r.joinedAt) < joinSettle && len(r.topic.ListPeers()) == 0 && len(r.s.h.Network().Peers()) > 0 {
		wctx, cancel := context.WithTimeout(ctx, readyWait)
		err := r.waitForMember(wctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	message := env.GetKind() == pb.Envelope_MESSAGE
	r.mu.Lock()
	r.lamport++
	env.Lamport = r.lamport
	env.SentAtMs = time.Now().UnixMilli()
	if message {
		env.PrevLamport = r.lastOwn
		env.SentAtMs = max(env.SentAtMs, r.lastOwnAt)
		r.lastOwn, r.lastOwnAt = env.Lamport, env.SentAtMs
	}
	r.mu.Unlock()
	data, err := proto.Marshal(env)
	if err == nil {
		if message && r.members.Load() == 0 {
			r.noteUnreceived(env.GetId(), data) // before our own copy comes back
		}
		err = r.topic.Publish(ctx, data)
	}
	if err != nil && message {
		// Not sent: the next message follows the one before this.
		r.mu.Lock()
		if r.lastOwn == env.Lamport {
			r.lastOwn = env.GetPrevLamport()
		}
		r.mu.Unlock()
	}
	return err
}

// waitForMember returns once the room has a known member.
func (r *room) waitForMember(ctx context.Context) error {
	evh, err := r.topic.EventHandler()
	if err != nil {
		return err
	}
	defer evh.Cancel()
	for len(r.topic.ListPeers()) == 0 {
		if _, err := evh.NextPeerEvent(ctx); err != nil {
			return err
		}
	}
	return nil
}

// maxBatch bounds the room messages stored in one transaction: what
// arrived while the previous batch was being stored is stored together
// (group commit). One transaction per message was half the CPU of a
// 10,000-message burst.
const maxBatch = 256

// readLoop takes the room's messages off the subscription and stores and
// shows them in batches. A reader goroutine hands them over through a
// channel of maxBatch: while a batch is stored it fills, then blocks, and
// pubsub's subscription buffer takes the rest (its drops are reported).
func (r *room) readLoop() {
	defer r.s.wg.Done()
	r.replay()
	if !r.s.track() {
		return
	}
	in := make(chan *pubsub.Message, maxBatch)
	go func() {
		defer r.s.wg.Done()
		defer close(in)
		for {
			msg, err := r.joined.Sub.Next(r.ctx)
			if err != nil {
				return // subscription cancelled or room closed
			}
			select {
			case in <- msg:
			case <-r.ctx.Done():
				return
			}
		}
	}()
	batch := make([]*pubsub.Message, 0, maxBatch)
	for msg := range in {
		batch = append(batch[:0], msg)
	drain:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-in:
				if !ok {
					break drain
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		r.receive(batch)
		clear(batch) // let the messages go
	}
}

// receive notes who spoke in msgs, stores their room messages in one
// transaction and then shows the new ones, each sender's in the order
// they were sent (order.go).
func (r *room) receive(msgs []*pubsub.Message) {
	recs := make([]storage.RoomMessage, 0, len(msgs))
	froms := make([]origin, 0, len(msgs))
	var seen []sighting
	for _, msg := range msgs {
		opened, ok := msg.ValidatorData.(*roomproto.Opened)
		if !ok {
			continue
		}
		env, body := opened.Envelope, opened.Body
		if env.GetKind() == pb.Envelope_PRESENCE {
			r.roster.AddSigned(msg.Message, env.GetSentAtMs(), msg.ReceivedFrom) // own too: neighbours learn it from us
		}
		if from := msg.GetFrom(); from != r.s.h.ID() { // own nick: SetNick's, not an echo's
			r.meet(from)
			seen = append(seen, sighting{from, body.GetNick(), time.Now(), sentTime(env.GetSentAtMs())})
			r.hear(from)
		}
		if env.GetKind() != pb.Envelope_MESSAGE {
			continue
		}
		m, err := history.Record(msg, env, body)
		if err != nil {
			r.s.log.Warn("room message", "room", r.name, "err", err)
			continue
		}
		recs = append(recs, m)
		froms = append(froms, origin{msg.GetFrom(), env.GetPrevLamport()})
	}
	r.s.sawNicks(seen) // in one transaction: while a room forms, a batch names many members
	if len(recs) == 0 {
		return
	}
	r.order.arrive(recs, froms)
}

// replay shows the newest stored messages of the room (at most
// cfg.history), as history, and then where what is new since this node
// left begins.
func (r *room) replay() {
	if r.s.cfg.history == 0 {
		return
	}
	msgs, err := r.s.store.RecentRoomMessages(r.wire, r.s.cfg.history)
	if err != nil {
		r.s.emit(Error{Err: r.s.tell(fmt.Sprintf("the history of #%s could not be read; see the log", r.name), nil, err)})
		return
	}
	for _, m := range msgs {
		r.s.emit(r.event(m, true))
	}
	if len(msgs) > 0 {
		hidden := 0
		if n, err := r.s.store.CountRoomMessages(r.wire); err == nil {
			hidden = max(0, n-len(msgs))
		}
		r.s.emit(HistoryShown{Room: r.name, Shown: len(msgs), Hidden: hidden})
	}
}

// keep stores messages that arrived live or as backfill and reports which
// were new: the store is the one place where duplicates (live, backfilled
// and replayed copies of a message) are recognised.
func (r *room) keep(msgs []storage.RoomMessage, backfill bool) []bool {
	added, err := r.s.store.AddRoomMessages(msgs)
	if err != nil {
		r.s.emit(Error{Err: r.s.tell(fmt.Sprintf("%d messages of #%s could not be stored; see the log", len(msgs), r.name), nil, err, "room", r.name)})
		return nil
	}
	// Once per batch, not per message: the author is compared as the
	// string it is stored as (decoding a peer ID is a base58 decode).
	self := r.s.h.ID().String()
	if backfill {
		// Who wrote history is known by nick too (e.g. for /dm), as of
		// when it was sent: newer sightings win. One batch for the page.
		now := time.Now().UnixMilli()
		seen := make([]sighting, 0, len(msgs))
		for _, m := range msgs {
			if m.Author == self {
				continue
			}
			if author, err := peer.Decode(m.Author); err == nil {
				seen = append(seen, sighting{author, content.PeerNick(m.Nick), time.UnixMilli(min(m.SentAt, now)), sentTime(m.SentAt)})
			}
		}
		r.s.sawNicks(seen)
	}
	r.mu.Lock()
	for _, m := range msgs {
		r.lamport = max(r.lamport, m.Lamport)
		if done, ok := r.ownSent[m.ID]; ok && m.Author == self {
			close(done)
			delete(r.ownSent, m.ID)
		}
	}
	prune := time.Since(r.pruned) >= pruneEvery
	if prune {
		r.pruned = time.Now()
	}
	r.mu.Unlock()
	if prune {
		if _, err := r.s.store.Prune(r.wire, r.s.cfg.retention); err != nil {
			r.s.log.Warn("prune room history", "room", r.name, "err", err)
		}
	}
	return added
}

func (r *room) event(m storage.RoomMessage, backfill bool) Message {
	ev := messageEvent(m, backfill)
	ev.Room = r.name // a private room is stored under its wire name
	if !backfill && ev.From == r.s.h.ID() {
		ev.Unreceived = r.isUnreceived(m.ID)
	}
	return ev
}

func messageEvent(m storage.RoomMessage, backfill bool) Message {
	author, _ := peer.Decode(m.Author)
	return Message{
		Room:     m.Room,
		ID:       m.ID,
		From:     author,
		Nick:     content.PeerNick(m.Nick), // stored under looser rules, maybe
		Text:     m.Text,
		SentAt:   time.UnixMilli(m.SentAt).UTC(),
		Lamport:  m.Lamport,
		Backfill: backfill,
	}
}

func (r *room) peerLoop() {
	defer r.s.wg.Done()
	for {
		ev, err := r.joined.Events.NextPeerEvent(r.ctx)
		if err != nil {
			return
		}
		switch ev.Type {
		case pubsub.PeerJoin:
			r.members.Add(1)
			// A relay joins every room it carries: name it as the relay,
			// not as a member (its identify may still be under way).
			role := r.s.roles.get(r.ctx, ev.Peer)
			nick := r.s.nicks.get(ev.Peer)
			r.meet(ev.Peer)
			r.s.emit(PeerJoined{Room: r.name, Peer: ev.Peer, Nick: nick, Role: role})
			r.memberJoined(ev.Peer, role)
			// Who is here: the newcomer's roster has it (and the newcomer
			// asks ours). Our own presence goes room-wide only if it has
			// not reached anyone yet.
			r.askRoster(ev.Peer)
			r.announceSoon(presenceDelay)
			r.catchUpSoon(ev.Peer, role) // a relay keeps the room's history too
		case pubsub.PeerLeave:
			r.members.Add(-1)
			r.s.tracer.Prune(ev.Peer, roomproto.Topic(r.wire))
			r.mu.Lock()
			delete(r.heard, ev.Peer)
			if len(r.left) >= maxRemembered {
				clear(r.left) // forgetting only skips a catch-up
			}
			r.left[ev.Peer] = time.Now()
			r.mu.Unlock()
			role, _ := r.s.roles.known(ev.Peer)
			r.s.emit(PeerLeft{Room: r.name, Peer: ev.Peer, Nick: r.s.nicks.get(ev.Peer), Role: role})
		}
	}
}

// announceSoon publishes a presence envelope: at once for d == 0 (this
// node joined or changed its nick), else (a member was met) after d and
// only if no presence of this node has reached anyone yet. Calls that
// arrive while one is pending are coalesced into it.
func (r *room) announceSoon(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return
	}
	met := d > 0
	if met && !r.announced.IsZero() {
		return // the room has it; newcomers get it from rosters
	}
	if r.announce != nil {
		if met {
			return
		}
		// A new nick is not held back: it replaces the pending one.
		r.announce.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		r.mu.Lock() // held by announceSoon until t is set
		if r.announce == t {
			r.announce = nil
		}
		if met && !r.announced.IsZero() {
			r.mu.Unlock()
			return
		}
		at := time.Now()
		r.announced = at
		r.mu.Unlock()
		if !r.s.track() {
			return
		}
		defer r.s.wg.Done()
		env := &pb.Envelope{Kind: pb.Envelope_PRESENCE, Id: content.NewID(), Room: r.wire}
		err := r.seal(env, &pb.Body{Nick: r.s.Nick()})
		if err == nil {
			err = r.publish(r.ctx, env)
		}
		if err != nil || len(r.topic.ListPeers()) == 0 {
			// It reached no one (joined before meeting anyone): the
			// first member met gets it soon.
			r.mu.Lock()
			if r.announced.Equal(at) {
				r.announced = time.Time{}
			}
			r.mu.Unlock()
		}
		if err != nil && !errors.Is(err, context.Canceled) && r.ctx.Err() == nil {
			r.s.log.Debug("announce presence", "room", r.name, "err", err)
		}
	})
	r.announce = t
}

func (r *room) close() {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		if r.announce != nil {
			r.announce.Stop()
			r.announce = nil
		}
		if r.gapTimer != nil {
			r.gapTimer.Stop()
		}
		r.mu.Unlock()
		r.cancel()
		r.order.close()
		if err := r.joined.Close(); err != nil {
			r.s.log.Debug("close room topic", "room", r.name, "err", err)
		}
	})
}

// hear notes a live message or presence from p in the room: p is a member
// now, also when it is reachable only through a bridge. History (replayed
// or caught up) says nothing about who is here now.
func (r *room) hear(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.heard) >= maxRemembered {
		clear(r.heard) // forgetting only lists a member later
	}
	r.heard[p] = time.Now()
}

// meet notes p as a member this room has seen: a nick p changes is
// announced here too.
func (r *room) meet(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.met[p]; ok {
		return
	}
	if len(r.met) >= maxRemembered {
		clear(r.met) // forgetting only leaves a nick change unannounced here
	}
	r.met[p] = struct{}{}
}

// knows says whether this room has seen p.
func (r *room) knows(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.met[p]
	return ok
}

// Gap repair: a line shown without the one it follows (held for
// holdFor, then given up) means that one was lost on the way, e.g.
// dropped by a full queue during a burst (not an author over the rate:
// what the validator ignored is not fetched back). The room catches up from the
// author (who has all its own lines), from just after its last line
// shown, once the gaps stop for gapQuiet (at most gapMax after the
// first), so one catch-up after a burst fetches everything it lost.
const (
	gapQuiet = time.Second
	gapMax   = 30 * time.Second
)

// missed notes that author's lines after the one sent at sentAt (Unix ms)
// did not all arrive.
func (r *room) missed(author peer.ID, sentAt int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.gaps[author]; ok && sentAt < cur || !ok && len(r.gaps) < maxRemembered {
		r.gaps[author] = sentAt // the earliest gap: one catch-up covers the later ones
	}
	if r.gapTimer == nil {
		r.gapFirst = time.Now()
		r.gapTimer = time.AfterFunc(gapQuiet, r.repairGaps)
		return
	}
	r.gapTimer.Reset(min(gapQuiet, time.Until(r.gapFirst.Add(gapMax))))
}

// repairGaps catches up, for each author whose lines went missing, from
// the author if it is a neighbour (else from a neighbour), within the
// catch-up limits, showing all that comes as history.
func (r *room) repairGaps() {
	r.mu.Lock()
	gaps := r.gaps
	r.gaps = make(map[peer.ID]int64)
	r.gapTimer = nil
	r.mu.Unlock()
	if r.ctx.Err() != nil || len(gaps) == 0 {
		return
	}
	peers := r.topic.ListPeers()
	for author, sentAt := range gaps {
		if r.s.limits.overRateLately(roomPeer{r.name, author}, time.Now()) {
			continue // its excess was ignored on purpose: not fetched back
		}
		p := author
		if !slices.Contains(peers, p) {
			if len(peers) == 0 {
				return
			}
			p = peers[rand.IntN(len(peers))]
		}
		if r.goCatchUp(p, &storage.Cursor{SentAt: sentAt - 1}, math.MaxInt) {
			r.s.log.Info("lines missing; fetching them", "room", r.name, "author", author, "from", p)
		}
	}
}

// gone forgets p as a member heard in the room: it left the topic or
// disconnected from this node.
func (r *room) gone(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.heard, p)
}

// heardWithin lists the authors heard in the room within d: members that
// may be reachable only through a bridge, so not among the topic's peers.
func (r *room) heardWithin(d time.Duration) []peer.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []peer.ID
	for p, at := range r.heard {
		if time.Since(at) < d {
			out = append(out, p)
		}
	}
	return out
}

// seal puts body into env: encrypted with the room's key in a private
// room, encoded as is in a public one.
func (r *room) seal(env *pb.Envelope, body *pb.Body) error {
	if r.sealer != nil {
		return r.sealer.Seal(env, body, r.s.h.ID())
	}
	return roomproto.SealBody(env, body)
}

// wireOf is the name room is stored and carried under: its own for a
// public room or one not joined, the derived one for a joined private room.
func (s *Service) wireOf(room string) string {
	if r, ok := s.rooms.get(room); ok {
		return r.wire
	}
	return room
}
