package node

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestCircuitRelay(t *testing.T) {
	const relay = "12D3KooWRDyg5h45Pecmg1kCZav8KGRcmg86UneNNAdzVPBgiomg"
	for _, tc := range []struct{ addr, want string }{
		{"/ip4/11.0.0.10/tcp/4001/p2p/" + relay + "/p2p-circuit", relay},
		{"/ip4/11.0.0.10/udp/4001/quic-v1/p2p/" + relay + "/p2p-circuit/p2p/12D3KooWLVQAwhzxXVTZJcTJ8Hpg3wTb8mS8mTfwBFmcvEfJF8s2", relay},
		{"/ip4/11.0.0.10/tcp/4001/p2p/" + relay, ""},
		{"/ip6/2a00:10::10/tcp/4001", ""},
		{"/p2p-circuit", ""},
	} {
		if got := circuitRelay(ma.StringCast(tc.addr)); got.String() != tc.want && !(tc.want == "" && got == "") {
			t.Errorf("circuitRelay(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
