package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestWithBootstrapMergesAddressesOfOnePeer(t *testing.T) {
	const r1, r2 = "12D3KooWRDyg5h45Pecmg1kCZav8KGRcmg86UneNNAdzVPBgiomg", "12D3KooWLVQAwhzxXVTZJcTJ8Hpg3wTb8mS8mTfwBFmcvEfJF8s2"
	var c config
	for _, s := range []string{
		"/ip4/11.0.0.10/tcp/4001/p2p/" + r1,
		"/ip4/11.0.0.11/tcp/4001/p2p/" + r2,
		"/ip6/2a00:10::10/udp/4001/quic-v1/p2p/" + r1,
		"/ip4/11.0.0.10/tcp/4001/p2p/" + r1, // again
	} {
		info, err := peer.AddrInfoFromP2pAddr(ma.StringCast(s))
		if err != nil {
			t.Fatal(err)
		}
		if err := WithBootstrap(*info)(&c); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.bootstrap) != 2 || c.bootstrap[0].ID.String() != r1 || c.bootstrap[1].ID.String() != r2 {
		t.Fatalf("bootstrap peers %v, want %s then %s", c.bootstrap, r1, r2)
	}
	if got := c.bootstrap[0].Addrs; len(got) != 2 || got[0].String() != "/ip4/11.0.0.10/tcp/4001" || got[1].String() != "/ip6/2a00:10::10/udp/4001/quic-v1" {
		t.Errorf("addresses of %s: %v, want its TCP over IPv4 and QUIC over IPv6 addresses once each", r1, got)
	}
}
