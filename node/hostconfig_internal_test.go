package node

import (
	"crypto/rand"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// hostConfig restates what libp2p.New would configure, without go-libp2p's
// root package. If a go-libp2p upgrade adds a default that hostConfig does
// not set, libp2p.FallbackDefaults fills in a field here and this fails:
// restate that default in hostConfig (or decide it is not wanted).
func TestHostConfigLeavesNothingToGoLibp2pDefaults(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := peer.AddrInfoFromP2pAddr(ma.StringCast("/ip4/11.0.0.10/tcp/4001/p2p/12D3KooWRDyg5h45Pecmg1kCZav8KGRcmg86UneNNAdzVPBgiomg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"plain", nil},
		{"bootstrap relays", []Option{WithBootstrap(*relay)}},
		{"relay service", []Option{WithRelayService(relayv2.DefaultResources())}},
		{"upnp and announce", []Option{WithUPnP(true), WithAnnounceAddrs(ma.StringCast("/ip4/11.0.0.20/tcp/4001"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaults()
			cfg.key = key
			cfg.listen = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
			for _, o := range tc.opts {
				if err := o(&cfg); err != nil {
					t.Fatal(err)
				}
			}
			n := &Node{cfg: cfg, gater: &gater{}}
			hc, err := n.hostConfig()
			if err != nil {
				t.Fatal(err)
			}
			before := *hc
			defer func() {
				hc.ResourceManager.Close()
				hc.ConnManager.Close()
				hc.Peerstore.Close()
				if hc.ResourceManager != before.ResourceManager {
					before.ResourceManager.Close()
				}
				if hc.ConnManager != before.ConnManager {
					before.ConnManager.Close()
				}
				if hc.Peerstore != before.Peerstore {
					before.Peerstore.Close()
				}
			}()
			if err := hc.Apply(libp2p.FallbackDefaults); err != nil {
				t.Fatal(err)
			}
			got, want := reflect.ValueOf(*hc), reflect.ValueOf(before)
			for i := range got.NumField() {
				if !sameField(got.Field(i), want.Field(i)) {
					t.Errorf("go-libp2p's defaults set %s, which hostConfig leaves unset", got.Type().Field(i).Name)
				}
			}
		})
	}
}

// sameField is reflect.DeepEqual, except that funcs are the same when
// they are the same func (DeepEqual says two non-nil funcs never are).
func sameField(a, b reflect.Value) bool {
	if a.Kind() == reflect.Func {
		return a.Pointer() == b.Pointer()
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// The parley binary must not link go-libp2p's root package: its default
// options name every transport go-libp2p has (WebSocket, WebTransport,
// WebRTC and pion's stack), which the linker then keeps, used or not.
func TestParleyLinksNoUnusedTransport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/parley-chat/parley/cmd/parley").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	unwanted := map[string]bool{
		"github.com/libp2p/go-libp2p":                            true,
		"github.com/libp2p/go-libp2p/p2p/transport/websocket":    true,
		"github.com/libp2p/go-libp2p/p2p/transport/webtransport": true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		if unwanted[pkg] {
			t.Errorf("cmd/parley depends on %s", pkg)
		}
	}
}
