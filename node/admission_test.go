package node_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

// Peers that connect and sit idle do not keep a newcomer out until the
// connection manager's grace period (10 s) is over: the node closes the
// oldest idle inbound connections to keep a few inbound slots free, and
// never one that carries a stream.
func TestIdleInboundConnectionsMakeRoomForNewcomers(t *testing.T) {
	const hold = "/parley-test/hold/1.0.0"
	// Inbound limit 8 (half the cap of 16), of which 2 are kept free.
	victim := testutil.NewNode(t, node.WithConnLimits(4, 8, 16))
	victim.Host().SetStreamHandler(hold, func(s network.Stream) {
		io.Copy(io.Discard, s) // held open until the other side closes it
		s.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	busy := plainHost(t)
	if err := busy.Connect(ctx, testutil.Info(victim)); err != nil {
		t.Fatal(err)
	}
	st, err := busy.NewStream(ctx, victim.ID(), hold)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	var idle []host.Host
	for range 10 { // more than the inbound limit: the last are refused
		h := plainHost(t)
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		if h.Connect(cctx, testutil.Info(victim)) == nil {
			idle = append(idle, h)
		}
		ccancel()
	}
	if len(idle) < 6 {
		t.Fatalf("only %d of 10 idle peers got in; the test needs the inbound slots full", len(idle))
	}

	// Before the connection manager would trim any of them (their grace
	// is 10 s), the node has closed idle ones to free its reserve ...
	filled := time.Now()
	testutil.EventuallyWithin(t, 8*time.Second, "2 inbound slots free again", func() bool {
		return inboundConns(victim) <= 6
	})
	t.Logf("2 slots free %v after the slots filled", time.Since(filled).Round(time.Millisecond))
	// ... so a newcomer gets in at its first attempt.
	newcomer := plainHost(t)
	if err := newcomer.Connect(ctx, testutil.Info(victim)); err != nil {
		t.Fatalf("the newcomer could not connect: %v", err)
	}

	if victim.Host().Network().Connectedness(busy.ID()) != network.Connected {
		t.Error("the peer with an open stream was disconnected")
	}
	if _, err := st.Write([]byte("still here")); err != nil {
		t.Errorf("the held stream broke: %v", err)
	}
	testutil.Eventually(t, "the oldest idle peer is closed first", func() bool {
		return victim.Host().Network().Connectedness(idle[0].ID()) != network.Connected
	})
}

func inboundConns(n *node.Node) int {
	k := 0
	for _, c := range n.Host().Network().Conns() {
		if c.Stat().Direction == network.DirInbound {
			k++
		}
	}
	return k
}

func plainHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
