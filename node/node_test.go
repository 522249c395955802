package node_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/internal/testutil"
	"github.com/parley-chat/parley/node"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakIgnores()...)
}

func TestIdentitySurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := node.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, node.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("identity file mode %o, want 600", perm)
	}
	k2, err := node.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Error("a second load returned a different key: the peer ID would change on restart")
	}
}

func TestCorruptIdentityIsAnErrorAndKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, node.IdentityFile)
	garbage := []byte("this is not a key")
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := node.LoadOrCreateIdentity(dir)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("got %v, want an error saying the identity is corrupt", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(garbage) {
		t.Error("the corrupt identity file was replaced")
	}
}

func TestUnreadableIdentityIsAnError(t *testing.T) {
	dir := t.TempDir()
	// A directory where the key file should be cannot be read as a file.
	if err := os.Mkdir(filepath.Join(dir, node.IdentityFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := node.LoadOrCreateIdentity(dir); err == nil {
		t.Fatal("got no error for an unreadable identity")
	}
}

// Three loopback nodes in a line: B knows A, C knows B, D knows C. A and
// C advertise a rendezvous namespace; each finds the other in the DHT (with
// loopback addresses that work) and they connect. D, who does not
// advertise, is never listed.
func TestRendezvousThroughDHT(t *testing.T) {
	const ns = "parley/test/rendezvous"
	a := testutil.NewNode(t)
	b := testutil.NewNode(t, node.WithBootstrap(testutil.Info(a)))
	c := testutil.NewNode(t, node.WithBootstrap(testutil.Info(b)))
	d := testutil.NewNode(t, node.WithBootstrap(testutil.Info(c)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.Discover(ctx, ns)
	c.Discover(ctx, ns)
	for _, pair := range [][2]*node.Node{{c, a}, {a, c}, {d, a}} {
		seeker, member := pair[0], pair[1]
		testutil.Eventually(t, "rendezvous lookup lists the member", func() bool {
			found, err := seeker.FindPeers(ctx, ns)
			if err != nil {
				return false
			}
			for _, p := range found {
				if p.ID == d.ID() {
					t.Fatalf("%s is listed but never advertised", d.ID())
				}
				if p.ID == member.ID() {
					return len(p.Addrs) > 0
				}
			}
			return false
		})
	}
	testutil.Eventually(t, "A and C connected", func() bool {
		return a.Host().Network().Connectedness(c.ID()) == network.Connected
	})
}

// A bootstrap connection that drops is dialed again.
func TestBootstrapReconnects(t *testing.T) {
	a := testutil.NewNode(t)
	b := testutil.NewNode(t, node.WithBootstrap(testutil.Info(a)))
	testutil.Eventually(t, "B connected to A", func() bool {
		return b.Host().Network().Connectedness(a.ID()) == network.Connected
	})
	if err := b.Host().Network().ClosePeer(a.ID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "B reconnected to A", func() bool {
		return b.Host().Network().Connectedness(a.ID()) == network.Connected
	})
	if !b.Host().ConnManager().IsProtected(a.ID(), "parley-bootstrap") {
		t.Error("bootstrap peer is not protected from the connection manager")
	}
}

func TestAddrsEndInPeerID(t *testing.T) {
	n := testutil.NewNode(t)
	addrs := n.Addrs()
	if len(addrs) == 0 {
		t.Fatal("no addresses")
	}
	for _, a := range addrs {
		if !strings.HasSuffix(a.String(), "/p2p/"+n.ID().String()) {
			t.Errorf("address %s does not end in /p2p/<id>", a)
		}
	}
}

// Connection limits that cannot work stop the node from starting, with an
// error naming the option; limits that can work start it.
func TestConnLimits(t *testing.T) {
	tests := []struct {
		name           string
		low, high, max int
		want           string // "" for a node that starts
	}{
		{"the defaults", 96, 192, 512, ""},
		{"all equal", 4, 4, 4, ""},
		{"zero low", 0, 10, 20, "low water mark must be positive"},
		{"negative low", -1, 10, 20, "low water mark must be positive"},
		{"high below low", 10, 5, 20, "high water mark must not be below the low one"},
		{"cap below high", 10, 20, 15, "hard cap must not be below the high water mark"},
		{"zero cap", 1, 1, 0, "hard cap must not be below the high water mark"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _, err := crypto.GenerateEd25519Key(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			n, err := node.New(node.WithIdentity(key),
				node.WithListenAddrs(ma.StringCast("/ip4/127.0.0.1/tcp/0")),
				node.WithConnLimits(tt.low, tt.high, tt.max))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if err := n.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if err == nil {
				n.Close()
				t.Fatal("New accepted the limits")
			}
			if !strings.Contains(err.Error(), "WithConnLimits") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v; want an error from WithConnLimits saying %q", err, tt.want)
			}
		})
	}
}

// A loopback (or any private) address dialed through --bootstrap is
// "direct"; "lan" is for peers mDNS found on the local network, and the
// event bus says when a connected peer becomes one.
func TestPathLANOnlyWhenFoundByMDNS(t *testing.T) {
	a := testutil.NewNode(t)
	b := testutil.NewNode(t, node.WithBootstrap(testutil.Info(a)))
	// Each side adds the connection when its own upgrade is done: wait
	// for both, or b may not hold it yet (seen under load).
	testutil.Eventually(t, "b connected to its bootstrap peer, on both sides", func() bool {
		return a.Host().Network().Connectedness(b.ID()) == network.Connected &&
			b.Host().Network().Connectedness(a.ID()) == network.Connected
	})
	if path, _ := a.PathOf(b.ID()); path != node.PathDirect {
		t.Errorf("a reaches b (dialed over loopback) via %q, want direct", path)
	}
	if path, _ := b.PathOf(a.ID()); path != node.PathDirect {
		t.Errorf("b reaches its bootstrap peer a over loopback via %q, want direct", path)
	}
	sub, err := a.Host().EventBus().Subscribe(new(node.EvtPathChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	node.FoundOnLAN(a, b.ID())
	select {
	case ev := <-sub.Out():
		if ev.(node.EvtPathChanged).Peer != b.ID() {
			t.Errorf("path change for %v, want b", ev)
		}
	case <-time.After(testutil.Timeout):
		t.Fatal("no EvtPathChanged after mDNS found a connected peer")
	}
	if path, _ := a.PathOf(b.ID()); path != node.PathLAN {
		t.Errorf("a reaches b, found by mDNS, via %q, want lan", path)
	}
}
