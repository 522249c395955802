package doctor

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-chat/parley/node"
)

// What the NAT does to the port, told from identify's observations, and
// what that means for hole punching.
func TestAnalyseNAT(t *testing.T) {
	listen := []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/tcp/4001"), ma.StringCast("/ip4/0.0.0.0/udp/4001/quic-v1")}
	ob := func(p, local, observed string) node.Observation {
		return node.Observation{Peer: peer.ID(p), Local: ma.StringCast(local), Observed: ma.StringCast(observed)}
	}
	const (
		tcpLocal = "/ip4/192.168.1.11/tcp/4001"
		udpLocal = "/ip4/192.168.1.11/udp/4001/quic-v1"
	)
	tests := []struct {
		name      string
		obs       []node.Observation
		kind      string
		holePunch string
	}{
		{"nothing observed", nil, NATUnknown, PunchUnknown},
		{"public address", []node.Observation{ob("r1", "/ip4/11.0.0.12/tcp/4001", "/ip4/11.0.0.12/tcp/4001")}, NATNone, PunchNotNeeded},
		{"port kept, two observers", []node.Observation{
			ob("r1", tcpLocal, "/ip4/11.0.0.21/tcp/4001"),
			ob("r2", tcpLocal, "/ip4/11.0.0.21/tcp/4001"),
			ob("r2", udpLocal, "/ip4/11.0.0.21/udp/4001/quic-v1")}, NATPortPreserving, PunchShouldWork},
		{"same other port for everyone", []node.Observation{
			ob("r1", tcpLocal, "/ip4/11.0.0.21/tcp/50000"),
			ob("r2", tcpLocal, "/ip4/11.0.0.21/tcp/50000")}, NATConsistent, PunchShouldWork},
		{"a new port per peer", []node.Observation{
			ob("r1", tcpLocal, "/ip4/11.0.0.22/tcp/31337"),
			ob("r2", tcpLocal, "/ip4/11.0.0.22/tcp/40404")}, NATRandom, PunchCannot},
		{"another port, one observer", []node.Observation{ob("r1", tcpLocal, "/ip4/11.0.0.22/tcp/31337")}, NATPortChanged, PunchUnlikely},
		{"the worst transport decides", []node.Observation{
			ob("r1", tcpLocal, "/ip4/11.0.0.21/tcp/4001"),
			ob("r1", udpLocal, "/ip4/11.0.0.21/udp/1111/quic-v1"),
			ob("r2", udpLocal, "/ip4/11.0.0.21/udp/2222/quic-v1")}, NATRandom, PunchCannot},
		{"a connection from another port says nothing", []node.Observation{ob("r1", "/ip4/192.168.1.11/tcp/39999", "/ip4/11.0.0.21/tcp/1234")}, NATUnknown, PunchUnknown},
		{"relayed connections say nothing", []node.Observation{{Peer: "r1", Relayed: true,
			Local: ma.StringCast(tcpLocal), Observed: ma.StringCast("/ip4/11.0.0.21/tcp/1")}}, NATUnknown, PunchUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyseNAT(tt.obs, listen)
			if got.Kind != tt.kind || got.HolePunching != tt.holePunch {
				t.Errorf("got NAT %q, hole punching %q; want %q, %q (observations %+v)", got.Kind, got.HolePunching, tt.kind, tt.holePunch, got.Observations)
			}
		})
	}
}
