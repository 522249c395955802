package node

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestReachableDirectly(t *testing.T) {
	v4 := ma.StringCast("/ip4/11.0.0.12/tcp/4001")
	v4quic := ma.StringCast("/ip4/11.0.0.12/udp/4001/quic-v1")
	nat4 := ma.StringCast("/ip4/11.0.0.21/tcp/4001")
	v6 := ma.StringCast("/ip6/2a00:11::11/tcp/4001")
	for _, tc := range []struct {
		name                   string
		reachable, unreachable []ma.Multiaddr
		want                   bool
	}{
		{"no verdict yet", nil, nil, false},
		{"all unreachable: behind NAT or firewall", nil, []ma.Multiaddr{nat4, v6}, false},
		{"reachable over IPv4", []ma.Multiaddr{v4}, nil, true},
		{"one transport reachable, another not", []ma.Multiaddr{v4}, []ma.Multiaddr{v4quic}, true},
		{"IPv6 reachable, IPv4 NATed: keep the relay for IPv4-only peers", []ma.Multiaddr{v6}, []ma.Multiaddr{nat4}, false},
		{"both families reachable", []ma.Multiaddr{v4, v6}, []ma.Multiaddr{nat4}, true},
	} {
		if got := reachableDirectly(tc.reachable, tc.unreachable); got != tc.want {
			t.Errorf("%s: reachableDirectly(%v, %v) = %t, want %t", tc.name, tc.reachable, tc.unreachable, got, tc.want)
		}
	}
}
