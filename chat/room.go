package chat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
)

// TopicPrefix is prepended to a room name to form its GossipSub topic.
const TopicPrefix = "parley/room/"

// RendezvousPrefix is prepended to a room name to form the DHT namespace
// under which the room's members advertise themselves.
const RendezvousPrefix = "parley/rendezvous/room/"

// presenceDelay coalesces the presence announcements triggered by peers
// joining a room in quick succession.
const presenceDelay = 250 * time.Millisecond

type room struct {
	s      *Service
	name   string
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	events *pubsub.TopicEventHandler
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	lamport   uint64
	announce  *time.Timer
	heard     map[peer.ID]time.Time // authors seen in the room, also through a bridge
	closeOnce sync.Once
}

// Join subscribes to room name and starts looking for its members.
func (s *Service) Join(name string) error {
	if err := ValidateRoomName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.rooms[name]; ok {
		return fmt.Errorf("join room %q: %w", name, ErrAlreadyInRoom)
	}
	topicName := TopicPrefix + name
	if err := s.ps.RegisterTopicValidator(topicName, roomValidator(name)); err != nil {
		return fmt.Errorf("join room %q: register validator: %w", name, err)
	}
	topic, err := s.ps.Join(topicName)
	if err != nil {
		s.ps.UnregisterTopicValidator(topicName)
		return fmt.Errorf("join room %q: %w", name, err)
	}
	evh, err := topic.EventHandler()
	if err != nil {
		topic.Close()
		s.ps.UnregisterTopicValidator(topicName)
		return fmt.Errorf("join room %q: %w", name, err)
	}
	sub, err := topic.Subscribe(pubsub.WithBufferSize(PeerQueueSize))
	if err != nil {
		evh.Cancel()
		topic.Close()
		s.ps.UnregisterTopicValidator(topicName)
		return fmt.Errorf("join room %q: %w", name, err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	r := &room{s: s, name: name, topic: topic, sub: sub, events: evh, ctx: ctx, cancel: cancel,
		heard: make(map[peer.ID]time.Time)}
	s.rooms[name] = r
	s.wg.Add(2)
	go r.readLoop()
	go r.peerLoop()
	if s.cfg.discovery != nil {
		s.cfg.discovery.Discover(ctx, RendezvousPrefix+name)
	}
	r.announceSoon(0)
	return nil
}

// Leave unsubscribes from a room.
func (s *Service) Leave(name string) error {
	s.mu.Lock()
	r, ok := s.rooms[name]
	delete(s.rooms, name)
	for id, rn := range s.ownSent {
		if rn == name {
			delete(s.ownSent, id)
			s.sends.Done()
		}
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("leave room %q: %w", name, ErrNotInRoom)
	}
	r.close()
	return nil
}

// Rooms lists the joined rooms, sorted.
func (s *Service) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.rooms))
}

func (s *Service) roomsLocked() []*room {
	rs := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rs = append(rs, r)
	}
	return rs
}

// Send publishes text to a joined room and returns the message ID. The
// message comes back as a Message event like everyone else's.
func (s *Service) Send(ctx context.Context, roomName, text string) (string, error) {
	if err := ValidateText(text); err != nil {
		return "", fmt.Errorf("send to room %q: %w", roomName, err)
	}
	s.mu.Lock()
	r, ok := s.rooms[roomName]
	nick := s.nick
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("send to room %q: %w", roomName, ErrNotInRoom)
	}
	env := &pb.Envelope{Kind: pb.Envelope_MESSAGE, Id: newID(), Room: roomName, Nick: nick, Text: text}
	s.mu.Lock()
	s.ownSent[env.Id] = roomName
	s.sends.Add(1)
	s.mu.Unlock()
	if err := r.publish(ctx, env); err != nil {
		s.mu.Lock()
		if _, ok := s.ownSent[env.Id]; ok {
			delete(s.ownSent, env.Id)
			s.sends.Done()
		}
		s.mu.Unlock()
		return "", fmt.Errorf("send to room %q: %w", roomName, err)
	}
	return env.Id, nil
}

func (r *room) publish(ctx context.Context, env *pb.Envelope) error {
	r.mu.Lock()
	r.lamport++
	env.Lamport = r.lamport
	r.mu.Unlock()
	env.SentAtMs = time.Now().UnixMilli()
	data, err := proto.Marshal(env)
	if err != nil {
		return err
	}
	return r.topic.Publish(ctx, data)
}

// DecodeEnvelope decodes and validates the payload of a message on the
// topic of room.
func DecodeEnvelope(data []byte, room string, now time.Time) (*pb.Envelope, error) {
	if len(data) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("envelope of %d bytes: %w (max %d)", len(data), ErrTooLong, MaxEnvelopeBytes)
	}
	var env pb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	if err := ValidateEnvelope(&env, room, now); err != nil {
		return nil, err
	}
	return &env, nil
}

// roomValidator rejects (and so penalises the forwarder of) anything that
// is not a well-formed envelope for this room.
func roomValidator(name string) pubsub.ValidatorEx {
	return func(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		env, err := DecodeEnvelope(msg.Data, name, time.Now())
		if err != nil {
			return pubsub.ValidationReject
		}
		msg.ValidatorData = env
		return pubsub.ValidationAccept
	}
}

func (r *room) readLoop() {
	defer r.s.wg.Done()
	self := r.s.h.ID()
	for {
		msg, err := r.sub.Next(r.ctx)
		if err != nil {
			return // subscription cancelled or room closed
		}
		env, ok := msg.ValidatorData.(*pb.Envelope)
		if !ok {
			continue
		}
		from := msg.GetFrom()
		r.mu.Lock()
		r.lamport = max(r.lamport, env.GetLamport())
		if from != self {
			r.heard[from] = time.Now()
		}
		r.mu.Unlock()
		r.s.learnNick(from, env.GetNick())
		if env.GetKind() != pb.Envelope_MESSAGE {
			continue
		}
		r.s.emit(Message{
			Room:   r.name,
			ID:     env.GetId(),
			From:   from,
			Nick:   env.GetNick(),
			Text:   env.GetText(),
			SentAt: time.UnixMilli(env.GetSentAtMs()).UTC(),
		})
		if from == self {
			r.s.mu.Lock()
			if _, ok := r.s.ownSent[env.GetId()]; ok {
				delete(r.s.ownSent, env.GetId())
				r.s.sends.Done()
			}
			r.s.mu.Unlock()
		}
	}
}

func (r *room) peerLoop() {
	defer r.s.wg.Done()
	for {
		ev, err := r.events.NextPeerEvent(r.ctx)
		if err != nil {
			return
		}
		switch ev.Type {
		case pubsub.PeerJoin:
			r.s.emit(PeerJoined{Room: r.name, Peer: ev.Peer, Nick: r.s.nickOf(ev.Peer)})
			// Tell the newcomer who we are, so /dm by nick works before we
			// say anything.
			r.announceSoon(presenceDelay)
		case pubsub.PeerLeave:
			r.s.tracer.forget(TopicPrefix+r.name, ev.Peer)
			r.mu.Lock()
			delete(r.heard, ev.Peer)
			r.mu.Unlock()
			r.s.emit(PeerLeft{Room: r.name, Peer: ev.Peer, Nick: r.s.nickOf(ev.Peer)})
		}
	}
}

// announceSoon publishes a presence envelope after d, coalescing calls that
// arrive while one is pending.
func (r *room) announceSoon(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.announce != nil || r.ctx.Err() != nil {
		return
	}
	r.announce = time.AfterFunc(d, func() {
		r.mu.Lock()
		r.announce = nil
		r.mu.Unlock()
		if !r.s.track() {
			return
		}
		defer r.s.wg.Done()
		env := &pb.Envelope{Kind: pb.Envelope_PRESENCE, Id: newID(), Room: r.name, Nick: r.s.Nick()}
		if err := r.publish(r.ctx, env); err != nil && !errors.Is(err, context.Canceled) && r.ctx.Err() == nil {
			r.s.log.Debug("announce presence", "room", r.name, "err", err)
		}
	})
}

func (r *room) close() {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		if r.announce != nil {
			r.announce.Stop()
			r.announce = nil
		}
		r.mu.Unlock()
		r.cancel()
		r.sub.Cancel()
		r.events.Cancel()
		if err := r.topic.Close(); err != nil {
			r.s.log.Debug("close topic", "room", r.name, "err", err)
		}
		r.s.ps.UnregisterTopicValidator(TopicPrefix + r.name)
	})
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
