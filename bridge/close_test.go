package bridge

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-chat/parley/node"
)

// A store that fails to close (history not flushed, say) must not go
// unnoticed: Close reports it, and still closes the store and the node.
func TestCloseReportsStoreError(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(WithNodeOptions(node.WithIdentity(key), node.WithListenAddrs(ma.StringCast("/ip4/127.0.0.1/tcp/0"))))
	if err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	if b.closeStore == nil {
		b.Close()
		t.Fatal("the bridge opened its own store but will not close it")
	}
	failed := errors.New("disk I/O error")
	closeStore := b.closeStore
	b.closeStore = func() error { return errors.Join(closeStore(), failed) }

	err = b.Close()
	if !errors.Is(err, failed) {
		t.Fatalf("Close() = %v, want the store's error", err)
	}
	if !strings.Contains(err.Error(), "close bridge store") {
		t.Errorf("Close() = %q, want it to say the store failed to close", err)
	}
	if _, err := b.cfg.store.CountRoomMessages("lobby"); err == nil {
		t.Error("the store still answers after Close: it was not closed")
	}
}
