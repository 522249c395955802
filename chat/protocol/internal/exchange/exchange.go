// Package exchange is one request and one response on a stream of their
// own, both unsigned-varint length-prefixed protobuf: the shape of
// Parley's history and roster protocols. It holds what both sides of
// such a protocol do around their own messages: the resource manager's
// service scope and memory reservations, deadlines, and resetting the
// stream on any error.
package exchange

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"
)

// Protocol names a request/response protocol and bounds it.
type Protocol struct {
	ID           protocol.ID
	Service      string        // the resource manager's service scope
	Timeout      time.Duration // the whole exchange
	MaxRequest   int           // bytes of a request frame
	MaxResponse  int           // bytes of a response frame
	ResponseName string        // for errors: "history reply"
}

// Call asks p: writes req on a new stream and reads one response into
// resp. Ending ctx (the room left, the node closing) ends it at once.
func (pr Protocol) Call(ctx context.Context, h host.Host, p peer.ID, req, resp proto.Message) error {
	ctx, cancel := context.WithTimeout(ctx, pr.Timeout)
	defer cancel()
	st, err := h.NewStream(ctx, p, pr.ID)
	if err != nil {
		return err
	}
	defer st.Close()
	defer context.AfterFunc(ctx, func() { st.Reset() })()
	if err := st.Scope().SetService(pr.Service); err != nil {
		st.Reset()
		return err
	}
	// A reply may be up to MaxResponse: reserve that before reading it,
	// as go-libp2p's own protocols do.
	if err := st.Scope().ReserveMemory(pr.MaxResponse, network.ReservationPriorityAlways); err != nil {
		st.Reset()
		return fmt.Errorf("reserve memory for a %s: %w", pr.ResponseName, err)
	}
	defer st.Scope().ReleaseMemory(pr.MaxResponse)
	st.SetDeadline(time.Now().Add(pr.Timeout))
	if err := pbio.NewDelimitedWriter(st).WriteMsg(req); err != nil {
		st.Reset()
		return err
	}
	st.CloseWrite()
	if err := pbio.NewDelimitedReader(st, pr.MaxResponse).ReadMsg(resp); err != nil {
		st.Reset()
		return err
	}
	return nil
}

// Handle serves one stream: a thin handler. admit, if not nil, is a rate
// limit per requester (a refused stream is reset before it is read);
// serve reads the request with ReadRequest and answers with Reply. Any
// error resets the stream; success closes it.
func (pr Protocol) Handle(st network.Stream, admit func(peer.ID) bool, serve func(network.Stream) error) {
	if admit != nil && !admit(st.Conn().RemotePeer()) {
		st.Reset()
		return
	}
	if err := st.Scope().SetService(pr.Service); err != nil {
		st.Reset()
		return
	}
	st.SetDeadline(time.Now().Add(pr.Timeout))
	if err := serve(st); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// ReadRequest reads the request of a stream being served.
func (pr Protocol) ReadRequest(st network.Stream, req proto.Message) error {
	if err := pbio.NewDelimitedReader(st, pr.MaxRequest).ReadMsg(req); err != nil {
		return fmt.Errorf("read %s request: %w", pr.Service, err)
	}
	return nil
}

// Reply writes resp, accounting for it in the stream's memory while it is
// held (size: its encoded size, or an estimate above it).
func (pr Protocol) Reply(st network.Stream, resp proto.Message, size int) error {
	if err := st.Scope().ReserveMemory(size, network.ReservationPriorityMedium); err != nil {
		return fmt.Errorf("reserve memory for a %s: %w", pr.ResponseName, err)
	}
	defer st.Scope().ReleaseMemory(size)
	return pbio.NewDelimitedWriter(st).WriteMsg(resp)
}
