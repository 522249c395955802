package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
)

// Relayed connections through one relay are not refused for the relay's
// IP address, which go-libp2p caps at 8 connections; direct ones from one
// address still are.
func TestRelayedConnsExemptFromPerIPLimit(t *testing.T) {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale()))
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	r := relayExemptRM{rm}
	circuit := ma.StringCast("/ip4/11.0.0.10/tcp/4001/p2p/12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y/p2p-circuit")
	const n = 12
	for i := range n {
		s, err := r.OpenConnection(network.DirInbound, false, circuit)
		if err != nil {
			t.Fatalf("relayed connection %d of %d through one relay refused: %v", i+1, n, err)
		}
		defer s.Done()
	}
	direct := ma.StringCast("/ip4/11.0.0.21/tcp/4001")
	refused := false
	for range n {
		s, err := r.OpenConnection(network.DirInbound, false, direct)
		if err != nil {
			refused = true
			break
		}
		defer s.Done()
	}
	if !refused {
		t.Errorf("%d direct connections from one IP address all accepted: the per-IP limit is gone for them too", n)
	}
}
