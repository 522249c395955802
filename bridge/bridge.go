package bridge

import (
	"fmt"

	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"

	"github.com/parley-chat/parley/node"
)

// Bridge is a running relay/bridge node.
type Bridge struct {
	node *node.Node
}

// New starts a bridge on a node built from opts plus the relay role:
// circuit relay v2 with res, AutoNAT service, public reachability and the
// DHT in server mode.
func New(res relayv2.Resources, opts ...node.Option) (*Bridge, error) {
	n, err := node.New(append(opts, node.WithRelayService(res))...)
	if err != nil {
		return nil, fmt.Errorf("start bridge: %w", err)
	}
	return &Bridge{node: n}, nil
}

// Node returns the bridge's node.
func (b *Bridge) Node() *node.Node { return b.node }

// Close stops the bridge.
func (b *Bridge) Close() error { return b.node.Close() }
