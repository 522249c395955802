package node

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestAddrRoute(t *testing.T) {
	for _, tt := range []struct{ addr, family, transport string }{
		{"/ip4/11.0.0.21/tcp/4001", FamilyIP4, TransportTCP},
		{"/ip6/2a00:12::11/udp/4001/quic-v1", FamilyIP6, TransportQUIC},
		{"/ip4/11.0.0.10/udp/4001/quic-v1/p2p/12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y/p2p-circuit", FamilyIP4, TransportQUIC},
		{"/ip6/2a00:10::10/tcp/4001/p2p/12D3KooWGuKRgnu281d1P2vBY8K6Cy9BodSVaP8JkEEbwCgCax4y/p2p-circuit/p2p/12D3KooWMdpUG3TTdoLemdq5bkGTLDbfvsDgXpUr7gAuFiaDykzC", FamilyIP6, TransportTCP},
		{"/dns4/relay.example/tcp/443/wss", "", "wss"},
	} {
		family, transport := AddrRoute(ma.StringCast(tt.addr))
		if family != tt.family || transport != tt.transport {
			t.Errorf("AddrRoute(%s) = %q, %q; want %q, %q", tt.addr, family, transport, tt.family, tt.transport)
		}
	}
}
