package chat

import (
	"context"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/internal/store"
)

// HistoryProtocol serves a room's stored messages to members catching up.
const HistoryProtocol protocol.ID = "/parley/history/1.0.0"

// Bounds of the history protocol.
const (
	HistoryPageSize         = 200     // messages per response at most
	MaxHistoryResponseBytes = 4 << 20 // one response frame
	maxHistoryRequestBytes  = 1 << 10
	historyTimeout          = 10 * time.Second
	maxCatchUpPages         = 50 // 10 000 messages per catch-up
	catchUpMargin           = 5 * time.Minute
	catchUpEvery            = time.Minute // per room and peer at most
)

// signPrefix is what libp2p-pubsub prepends to a message before signing.
const signPrefix = "libp2p-pubsub:"

// StoredMessage turns a validated live room message into what the store
// keeps: the envelope's fields and the signed GossipSub message itself.
func StoredMessage(msg *pubsub.Message, env *pb.Envelope) (store.RoomMessage, error) {
	raw, err := proto.Marshal(msg.Message)
	if err != nil {
		return store.RoomMessage{}, fmt.Errorf("encode signed message: %w", err)
	}
	return store.RoomMessage{
		ID:      env.GetId(),
		Room:    env.GetRoom(),
		Author:  msg.GetFrom().String(),
		Nick:    env.GetNick(),
		Text:    env.GetText(),
		SentAt:  env.GetSentAtMs(),
		Lamport: env.GetLamport(),
		Raw:     raw,
	}, nil
}

// VerifyStored checks a signed GossipSub message received as history for
// room: it must be on the room's topic, carry a valid signature of its
// author (checked as libp2p-pubsub checks it) and a valid chat message.
// History may be older than MaxMessageAge, but not from the future.
func VerifyStored(raw []byte, room string, now time.Time) (store.RoomMessage, error) {
	var m pubsubpb.Message
	if err := proto.Unmarshal(raw, &m); err != nil {
		return store.RoomMessage{}, fmt.Errorf("decode signed message: %w", err)
	}
	if m.GetTopic() != TopicPrefix+room {
		return store.RoomMessage{}, fmt.Errorf("message of topic %q in the history of room %q", m.GetTopic(), room)
	}
	author, err := verifySignature(&m)
	if err != nil {
		return store.RoomMessage{}, err
	}
	var env pb.Envelope
	if err := proto.Unmarshal(m.GetData(), &env); err != nil {
		return store.RoomMessage{}, fmt.Errorf("decode envelope: %w", err)
	}
	if len(m.GetData()) > MaxEnvelopeBytes {
		return store.RoomMessage{}, fmt.Errorf("envelope: %w", ErrTooLong)
	}
	if err := validateEnvelope(&env, room, now, 0); err != nil {
		return store.RoomMessage{}, err
	}
	if env.GetKind() != pb.Envelope_MESSAGE {
		return store.RoomMessage{}, errors.New("history holds only chat messages")
	}
	return store.RoomMessage{
		ID: env.GetId(), Room: room, Author: author.String(), Nick: env.GetNick(), Text: env.GetText(),
		SentAt: env.GetSentAtMs(), Lamport: env.GetLamport(), Raw: raw,
	}, nil
}

func verifySignature(m *pubsubpb.Message) (peer.ID, error) {
	author, err := peer.IDFromBytes(m.GetFrom())
	if err != nil {
		return "", fmt.Errorf("bad author: %w", err)
	}
	var key crypto.PubKey
	if m.Key == nil {
		key, err = author.ExtractPublicKey()
	} else {
		key, err = crypto.UnmarshalPublicKey(m.Key)
		if err == nil && !author.MatchesPublicKey(key) {
			err = errors.New("signing key does not match the author")
		}
	}
	if err != nil || key == nil {
		return "", fmt.Errorf("author's key: %v", err)
	}
	unsigned := proto.CloneOf(m)
	unsigned.Signature, unsigned.Key = nil, nil
	data, err := proto.Marshal(unsigned)
	if err != nil {
		return "", err
	}
	ok, err := key.Verify(append([]byte(signPrefix), data...), m.GetSignature())
	if err != nil || !ok {
		return "", errors.New("invalid signature")
	}
	return author, nil
}

// HistoryServiceName names the history protocol's resource-manager scope.
const HistoryServiceName = "parley.history"

// HistoryServer answers history requests from a store. Allowed says
// whether the requester may read a room here: both this node and the
// requester must be in it.
type HistoryServer struct {
	Store   *store.Store
	Allowed func(ctx context.Context, room string, requester peer.ID) bool
}

// Handle serves one history stream.
func (hs HistoryServer) Handle(st network.Stream) {
	if err := st.Scope().SetService(HistoryServiceName); err != nil {
		st.Reset()
		return
	}
	if err := hs.serve(st); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

func (hs HistoryServer) serve(st network.Stream) error {
	st.SetDeadline(time.Now().Add(historyTimeout))
	var req pb.HistoryRequest
	if err := pbio.NewDelimitedReader(st, maxHistoryRequestBytes).ReadMsg(&req); err != nil {
		return fmt.Errorf("read history request: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	if ValidateRoomName(req.GetRoom()) != nil || !hs.Allowed(ctx, req.GetRoom(), st.Conn().RemotePeer()) {
		return errors.New("history request for a room the requester or this node is not in")
	}
	limit := int(min(max(req.GetLimit(), 1), HistoryPageSize))
	msgs, err := hs.Store.RoomMessagesAfter(req.GetRoom(),
		store.Cursor{SentAt: req.GetAfterSentAtMs(), Lamport: req.GetAfterLamport(), ID: req.GetAfterId()}, limit+1)
	if err != nil {
		return err
	}
	resp := &pb.HistoryResponse{More: len(msgs) > limit}
	size := 0
	for i, m := range msgs {
		if i == limit || size+len(m.Raw)+16 > MaxHistoryResponseBytes {
			resp.More = true
			break
		}
		resp.Messages = append(resp.Messages, m.Raw)
		size += len(m.Raw) + 16
	}
	// The reply is held in memory while it is written: account for it.
	if err := st.Scope().ReserveMemory(size+16, network.ReservationPriorityMedium); err != nil {
		return fmt.Errorf("reserve memory for a history reply: %w", err)
	}
	defer st.Scope().ReleaseMemory(size + 16)
	return pbio.NewDelimitedWriter(st).WriteMsg(resp)
}

// fetchHistory asks p for one page of room's history after cur.
func fetchHistory(ctx context.Context, h host.Host, p peer.ID, room string, cur store.Cursor) (*pb.HistoryResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	st, err := h.NewStream(ctx, p, HistoryProtocol)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.Scope().SetService(HistoryServiceName); err != nil {
		st.Reset()
		return nil, err
	}
	// A reply may be up to MaxHistoryResponseBytes: reserve that before
	// reading it, as go-libp2p's own protocols do.
	if err := st.Scope().ReserveMemory(MaxHistoryResponseBytes, network.ReservationPriorityAlways); err != nil {
		st.Reset()
		return nil, fmt.Errorf("reserve memory for a history reply: %w", err)
	}
	defer st.Scope().ReleaseMemory(MaxHistoryResponseBytes)
	st.SetDeadline(time.Now().Add(historyTimeout))
	req := &pb.HistoryRequest{Room: room, AfterSentAtMs: cur.SentAt, AfterLamport: cur.Lamport, AfterId: cur.ID, Limit: HistoryPageSize}
	if err := pbio.NewDelimitedWriter(st).WriteMsg(req); err != nil {
		st.Reset()
		return nil, err
	}
	st.CloseWrite()
	var resp pb.HistoryResponse
	if err := pbio.NewDelimitedReader(st, MaxHistoryResponseBytes).ReadMsg(&resp); err != nil {
		st.Reset()
		return nil, err
	}
	if len(resp.GetMessages()) > HistoryPageSize {
		return nil, fmt.Errorf("history page of %d messages, max %d", len(resp.GetMessages()), HistoryPageSize)
	}
	return &resp, nil
}

// catchUp fetches what r's store lacks from p, verifies each message,
// stores it and shows it as backfill. A peer that answers with anything
// forged or malformed is not asked again by this catch-up.
func (r *room) catchUp(p peer.ID) {
	s := r.s
	latest, ok, err := s.store.LatestRoomMessage(r.name)
	if err != nil {
		s.log.Warn("catch up", "room", r.name, "err", err)
		return
	}
	cur := store.Cursor{}
	if ok {
		// Messages sent a little before our newest may still be missing
		// (clocks differ, delivery is not ordered): start a margin earlier.
		cur = store.Cursor{SentAt: latest.SentAt - catchUpMargin.Milliseconds()}
	} else if s.cfg.retention.MaxAge > 0 {
		cur = store.Cursor{SentAt: time.Now().Add(-s.cfg.retention.MaxAge).UnixMilli()}
	}
	got, shown := 0, 0
	start := time.Now()
	for page := 0; page < maxCatchUpPages && r.ctx.Err() == nil; page++ {
		resp, err := fetchHistory(r.ctx, s.h, p, r.name, cur)
		if err != nil {
			s.log.Debug("catch up: history request failed", "room", r.name, "peer", p, "err", err)
			return
		}
		// Verify the whole page before storing any of it, then store it
		// in one transaction.
		page := make([]store.RoomMessage, 0, len(resp.GetMessages()))
		for _, raw := range resp.GetMessages() {
			m, err := VerifyStored(raw, r.name, time.Now())
			if err != nil {
				s.log.Info("catch up: peer sent invalid history; ignoring it", "room", r.name, "peer", p, "err", err)
				return
			}
			page = append(page, m)
		}
		if len(page) > 0 {
			got += len(page)
			cur = page[len(page)-1].Cursor()
			shown += r.deliver(page, true)
		}
		if !resp.GetMore() || len(resp.GetMessages()) == 0 {
			break
		}
	}
	if shown > 0 {
		s.log.Info("caught up", "room", r.name, "peer", p, "new", shown, "received", got, "took", time.Since(start).Round(time.Millisecond))
	}
}
