// Package history is the protocol by which a member catches up on the
// room messages it missed: /parley/history/1.0.0.
//
// # Wire
//
// One request and one response per stream, both unsigned-varint
// length-prefixed protobuf:
//
//	requester → HistoryRequest{room, after (sent_at_ms, lamport, id), limit ≤ 200}
//	server    → HistoryResponse{messages: signed GossipSub messages, more}
//
// Messages come in the room's history order after the given position. The
// server answers only a requester that is in the room, as it is itself; a
// reply is at most MaxResponseBytes. Each message is the author's signed
// GossipSub message, so the requester verifies it against the author's key
// (Verify) and a server cannot forge history.
package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
	"github.com/parley-chat/parley/chat/protocol/internal/exchange"
	"github.com/parley-chat/parley/chat/protocol/room"
	"github.com/parley-chat/parley/chat/storage"
)

// ID is the history protocol.
const ID protocol.ID = "/parley/history/1.0.0"

// ServiceName names the protocol's resource-manager scope.
const ServiceName = "parley.history"

// spec is the protocol as one request/response exchange.
var spec = exchange.Protocol{ID: ID, Service: ServiceName, Timeout: Timeout,
	MaxRequest: maxRequestBytes, MaxResponse: MaxResponseBytes, ResponseName: "history reply"}

// Bounds of the protocol.
const (
	PageSize         = 200     // messages per response at most
	MaxResponseBytes = 4 << 20 // one response frame
	maxRequestBytes  = 1 << 10
	Timeout          = 10 * time.Second
)

// Record turns a validated live room message and its opened body into
// what is stored: the envelope's fields and the signed GossipSub message.
func Record(msg *pubsub.Message, env *pb.Envelope, body *pb.Body) (storage.RoomMessage, error) {
	raw, err := proto.Marshal(msg.Message)
	if err != nil {
		return storage.RoomMessage{}, fmt.Errorf("encode signed message: %w", err)
	}
	return storage.RoomMessage{
		ID:      env.GetId(),
		Room:    env.GetRoom(),
		Author:  msg.GetFrom().String(),
		Nick:    body.GetNick(),
		Text:    body.GetText(),
		SentAt:  env.GetSentAtMs(),
		Lamport: env.GetLamport(),
		Raw:     raw,
	}, nil
}

// Verify checks a signed GossipSub message received as history of rm:
// it must be on the room's topic, carry a valid signature of its author
// (checked as libp2p-pubsub checks it) and a valid chat message. History
// may be older than room.MaxMessageAge, but not from the future.
func Verify(raw []byte, rm string, now time.Time) (storage.RoomMessage, error) {
	return VerifyOpen(raw, rm, now, room.OpenPublic)
}

// VerifyOpen is Verify with the room's own way of opening a body: a
// private room's history is sealed, and its members open it with the
// room's key (room.Sealer.Open).
func VerifyOpen(raw []byte, rm string, now time.Time, open room.Opener) (storage.RoomMessage, error) {
	var m pubsubpb.Message
	if err := proto.Unmarshal(raw, &m); err != nil {
		return storage.RoomMessage{}, fmt.Errorf("decode signed message: %w", err)
	}
	if m.GetTopic() != room.Topic(rm) {
		return storage.RoomMessage{}, fmt.Errorf("message of topic %q in the history of room %q", m.GetTopic(), rm)
	}
	author, err := room.VerifySignature(&m)
	if err != nil {
		return storage.RoomMessage{}, err
	}
	env, err := room.DecodeStored(m.GetData(), rm, now)
	if err != nil {
		return storage.RoomMessage{}, err
	}
	if env.GetKind() != pb.Envelope_MESSAGE {
		return storage.RoomMessage{}, errors.New("history holds only chat messages")
	}
	body, err := open(env, author)
	if err != nil {
		return storage.RoomMessage{}, err
	}
	return storage.RoomMessage{
		ID: env.GetId(), Room: rm, Author: author.String(), Nick: body.GetNick(), Text: body.GetText(),
		SentAt: env.GetSentAtMs(), Lamport: env.GetLamport(), Raw: raw,
	}, nil
}

// MessageID returns the chat message ID inside raw, a signed GossipSub message,
// checking nothing: enough to tell whether it is stored already (an ID
// is stored only after its message was verified).
func MessageID(raw []byte) (string, error) {
	var m pubsubpb.Message
	if err := proto.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("decode signed message: %w", err)
	}
	var env pb.Envelope
	if err := proto.Unmarshal(m.GetData(), &env); err != nil {
		return "", fmt.Errorf("decode envelope: %w", err)
	}
	return env.GetId(), nil
}

// Source is what a Server reads from.
type Source interface {
	RoomMessagesAfter(room string, after storage.Cursor, limit int) ([]storage.RoomMessage, error)
}

// Server answers history requests from a store. Allowed says whether the
// requester may read a room here: both this node and the requester must
// be in it.
type Server struct {
	Store   Source
	Allowed func(ctx context.Context, room string, requester peer.ID) bool
	// Served, if not nil, is told which messages a requester was sent
	// (after they were written): it has them now.
	Served func(room string, requester peer.ID, ids []string)
	// Admit, if not nil, says whether to serve one more request of the
	// requester (a rate limit): a refused stream is reset at once, before
	// its request is read.
	Admit func(requester peer.ID) bool
}

// Handle serves one history stream: a thin handler that resets the stream
// on any error and closes it on success.
func (srv Server) Handle(st network.Stream) {
	spec.Handle(st, srv.Admit, srv.serve)
}

func (srv Server) serve(st network.Stream) error {
	var req pb.HistoryRequest
	if err := spec.ReadRequest(st, &req); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if room.ValidateName(req.GetRoom()) != nil || !srv.Allowed(ctx, req.GetRoom(), st.Conn().RemotePeer()) {
		return errors.New("history request for a room the requester or this node is not in")
	}
	limit := int(min(max(req.GetLimit(), 1), PageSize))
	msgs, err := srv.Store.RoomMessagesAfter(req.GetRoom(),
		storage.Cursor{SentAt: req.GetAfterSentAtMs(), Lamport: req.GetAfterLamport(), ID: req.GetAfterId()}, limit+1)
	if err != nil {
		return err
	}
	resp := &pb.HistoryResponse{More: len(msgs) > limit}
	size := 0
	var ids []string
	for i, m := range msgs {
		if i == limit || size+len(m.Raw)+16 > MaxResponseBytes {
			resp.More = true
			break
		}
		resp.Messages = append(resp.Messages, m.Raw)
		ids = append(ids, m.ID)
		size += len(m.Raw) + 16
	}
	if err := spec.Reply(st, resp, size+16); err != nil {
		return err
	}
	if srv.Served != nil && len(ids) > 0 {
		srv.Served(req.GetRoom(), st.Conn().RemotePeer(), ids)
	}
	return nil
}

// Fetch asks p for one page of room's history after cur.
func Fetch(ctx context.Context, h host.Host, p peer.ID, rm string, cur storage.Cursor) (*pb.HistoryResponse, error) {
	req := &pb.HistoryRequest{Room: rm, AfterSentAtMs: cur.SentAt, AfterLamport: cur.Lamport, AfterId: cur.ID, Limit: PageSize}
	var resp pb.HistoryResponse
	if err := spec.Call(ctx, h, p, req, &resp); err != nil {
		return nil, err
	}
	if len(resp.GetMessages()) > PageSize {
		return nil, fmt.Errorf("history page of %d messages, max %d", len(resp.GetMessages()), PageSize)
	}
	return &resp, nil
}
