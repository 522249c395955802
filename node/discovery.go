package node

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// Backoff bounds for redialing bootstrap peers and retrying DHT work.
const (
	minBackoff       = 500 * time.Millisecond
	maxBackoff       = 30 * time.Second
	findInterval     = time.Second      // first rendezvous lookup period
	maxFindInterval  = 30 * time.Second // the lookup period grows to this
	readvertiseAfter = 5 * time.Minute  // provider records are refreshed this often
	connectTimeout   = 10 * time.Second
)

// backoff returns the next delay: doubled, capped, with ±20% jitter so that
// many nodes restarted together do not redial in lockstep.
func backoff(d time.Duration) time.Duration {
	d *= 2
	if d > maxBackoff {
		d = maxBackoff
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// wait blocks for d or until ctx ends; it reports whether to go on.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// keepConnected dials a bootstrap peer and redials it with backoff whenever
// the connection drops, until the node closes.
func (n *Node) keepConnected(p peer.AddrInfo) {
	defer n.wg.Done()
	disconnected := make(chan struct{}, 1)
	notifee := &network.NotifyBundle{
		DisconnectedF: func(_ network.Network, c network.Conn) {
			if c.RemotePeer() == p.ID {
				select {
				case disconnected <- struct{}{}:
				default:
				}
			}
		},
	}
	n.host.Network().Notify(notifee)
	defer n.host.Network().StopNotify(notifee)

	delay := minBackoff
	failing := false // warn once per outage, not on every retry
	for n.ctx.Err() == nil {
		if n.host.Network().Connectedness(p.ID) != network.Connected {
			// Our own schedule decides when to retry: clear the swarm's
			// dial backoff, which would otherwise refuse the redial.
			if sw, ok := n.host.Network().(*swarm.Swarm); ok {
				sw.Backoff().Clear(p.ID)
			}
			ctx, cancel := context.WithTimeout(n.ctx, connectTimeout)
			err := n.host.Connect(ctx, p)
			cancel()
			if err != nil {
				if n.ctx.Err() != nil {
					return
				}
				level := slog.LevelDebug
				if !failing {
					level, failing = slog.LevelWarn, true
				}
				n.log.Log(n.ctx, level, "bootstrap peer unreachable; retrying with backoff", "peer", p.ID, "retry_in", delay.Round(time.Millisecond), "err", err)
				if !wait(n.ctx, delay) {
					return
				}
				delay = backoff(delay)
				continue
			}
			n.gater.connected(p.ID)
			if failing {
				n.log.Warn("bootstrap peer reachable again", "peer", p.ID)
			} else {
				n.log.Info("connected to bootstrap peer", "peer", p.ID)
			}
			failing, delay = false, minBackoff
		}
		select {
		case <-n.ctx.Done():
			return
		case <-disconnected:
			n.log.Info("bootstrap peer disconnected", "peer", p.ID)
		}
	}
}

// Discover advertises this node under the rendezvous namespace ns in the
// DHT and keeps looking up others there, connecting to each one found, until
// ctx ends or the node closes. Lookups start every second and slow down to
// every 30 s, so members who arrive later are found too.
func (n *Node) Discover(ctx context.Context, ns string) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		defer stop()
		defer cancel()
		if n.waitNATReady(ctx.Done()) {
			n.advertise(ctx, ns)
		}
	}()
	go func() {
		defer n.wg.Done()
		if n.waitNATReady(ctx.Done()) {
			n.find(ctx, ns)
		}
	}()
}

func (n *Node) advertise(ctx context.Context, ns string) {
	delay := minBackoff
	for ctx.Err() == nil {
		if _, err := n.disc.Advertise(ctx, ns); err != nil {
			// Usually "no peers in the routing table" right after start.
			n.log.Debug("advertise failed", "ns", ns, "retry_in", delay, "err", err)
			if !wait(ctx, delay) {
				return
			}
			delay = backoff(delay)
			continue
		}
		n.log.Debug("advertised", "ns", ns)
		delay = minBackoff
		if !wait(ctx, readvertiseAfter) {
			return
		}
	}
}

func (n *Node) find(ctx context.Context, ns string) {
	interval := findInterval
	for {
		n.findOnce(ctx, ns)
		if !wait(ctx, interval) {
			return
		}
		interval = min(interval*2, maxFindInterval)
	}
}

func (n *Node) findOnce(ctx context.Context, ns string) {
	peers, err := n.FindPeers(ctx, ns)
	if err != nil {
		n.log.Debug("rendezvous lookup failed", "ns", ns, "err", err)
		return
	}
	for _, p := range peers {
		if n.host.Network().Connectedness(p.ID) != network.Connected {
			n.connectAsync(p, "dht")
		}
	}
}

// FindPeers looks up once who advertises ns in the DHT (other than this
// node), with the addresses they advertised.
func (n *Node) FindPeers(ctx context.Context, ns string) ([]peer.AddrInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ch, err := n.disc.FindPeers(ctx, ns)
	if err != nil {
		return nil, err
	}
	var out []peer.AddrInfo
	for p := range ch {
		if p.ID != n.host.ID() && len(p.Addrs) > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

// connectAsync dials p in the background so discovery callbacks never block.
func (n *Node) connectAsync(p peer.AddrInfo, source string) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, connectTimeout)
		defer cancel()
		if err := n.host.Connect(ctx, p); err != nil {
			n.log.Debug("connect to discovered peer failed", "peer", p.ID, "via", source, "err", err)
			return
		}
		n.log.Debug("connected to discovered peer", "peer", p.ID, "via", source)
	}()
}

// ParseBootstrap parses a multiaddr that ends in /p2p/<id>.
func ParseBootstrap(s string) (peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	return *info, nil
}
