package chat

import (
	"math"
	"net"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer scoring: GossipSub v1.1 scores every peer from what it sends, and
// stops gossiping to (below GossipThreshold), publishing to (below
// PublishThreshold) and finally listening to (below GraylistThreshold) a
// peer that misbehaves. The parameters follow Waku's for its chat-like
// relay network, which fit rooms better than Ethereum's (tuned for steady
// block traffic):
//
//   - P1 time in mesh and P2 first deliveries reward members a little,
//     capped, so a long-standing honest member outweighs a small penalty;
//   - P3 mesh-delivery is off: in a chat room most members are quiet most
//     of the time, and P3 would prune honest quiet members from meshes;
//   - P4 invalid messages (malformed, forged, oversized: our validator's
//     Reject) weighs -100 per message squared, so ten of them graylist;
//   - P5 is Parley's own: a peer that publishes its own messages far over
//     the author rate (Limits.AuthorRate) earns 100 per ignored message,
//     decaying by half every minute, so a sustained flood graylists within
//     seconds while a brief overshoot is forgotten;
//   - P6 IP colocation is mild (more than 10 peers from one address) and
//     off for loopback and private ranges, so LANs, NATed offices behind
//     a relay and local tests are not penalised;
//   - P7 behaviour (GossipSub protocol misbehaviour) as go-libp2p-pubsub
//     recommends.
const (
	GossipThreshold   = -100
	PublishThreshold  = -1000
	GraylistThreshold = -10000

	floodPenalty      = 100         // P5 per over-rate message of the peer's own
	floodPenaltyHalf  = time.Minute // P5 half-life
	scoreDecay        = time.Second // pubsub's decay interval (and score refresh)
	maxPenalisedPeers = 4096
)

// privateNets are never penalised for colocation.
var privateNets = func() []*net.IPNet {
	var out []*net.IPNet
	for _, c := range []string{"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
		"169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10"} {
		_, n, _ := net.ParseCIDR(c)
		out = append(out, n)
	}
	return out
}()

// PeerScoreParams are the peer-score parameters of a chat node; app is
// the application-specific score (P5).
func PeerScoreParams(app func(peer.ID) float64) *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:                      map[string]*pubsub.TopicScoreParams{},
		AppSpecificScore:            app,
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    -1,
		IPColocationFactorThreshold: 10,
		IPColocationFactorWhitelist: privateNets,
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecayWithBase(10*time.Minute, scoreDecay, 0.01),
		DecayInterval:               scoreDecay,
		DecayToZero:                 0.01,
		RetainScore:                 10 * time.Minute,
	}
}

// PeerScoreThresholds are the thresholds of a chat node.
func PeerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             GossipThreshold,
		PublishThreshold:            PublishThreshold,
		GraylistThreshold:           GraylistThreshold,
		AcceptPXThreshold:           0,
		OpportunisticGraftThreshold: 1,
	}
}

// RoomScoreParams are the topic-score parameters of a room.
func RoomScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                     1,
		TimeInMeshWeight:                0.01,
		TimeInMeshQuantum:               time.Second,
		TimeInMeshCap:                   10,
		FirstMessageDeliveriesWeight:    1,
		FirstMessageDeliveriesDecay:     pubsub.ScoreParameterDecayWithBase(time.Minute, scoreDecay, 0.01),
		FirstMessageDeliveriesCap:       10,
		MeshMessageDeliveriesWeight:     0, // P3 off: see above
		MeshMessageDeliveriesDecay:      0.5,
		MeshFailurePenaltyDecay:         0.5,
		InvalidMessageDeliveriesWeight:  -100,
		InvalidMessageDeliveriesDecay:   pubsub.ScoreParameterDecayWithBase(10*time.Minute, scoreDecay, 0.01),
		MeshMessageDeliveriesThreshold:  1,
		MeshMessageDeliveriesCap:        1,
		MeshMessageDeliveriesWindow:     10 * time.Millisecond,
		MeshMessageDeliveriesActivation: time.Minute,
	}
}

// penalties is P5: a decaying penalty per peer, in bounded memory.
type penalties struct {
	mu sync.Mutex
	m  map[peer.ID]penalty
}

type penalty struct {
	v  float64
	at time.Time
}

func newPenalties() *penalties { return &penalties{m: make(map[peer.ID]penalty)} }

func (p *penalties) add(id peer.ID, v float64, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, ok := p.m[id]
	if !ok && len(p.m) >= maxPenalisedPeers {
		p.forgetSmallest(now)
	}
	p.m[id] = penalty{v: decayed(cur, now) + v, at: now}
}

// score is the (negative) application-specific score of id.
func (p *penalties) score(id peer.ID) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, ok := p.m[id]
	if !ok {
		return 0
	}
	v := decayed(cur, time.Now())
	if v < 0.5 {
		delete(p.m, id)
		return 0
	}
	return -v
}

// forgetSmallest drops the peer with the smallest penalty: under a
// Sybil flood the worst offenders stay remembered.
func (p *penalties) forgetSmallest(now time.Time) {
	var min peer.ID
	least := math.Inf(1)
	for id, v := range p.m {
		if d := decayed(v, now); d < least {
			min, least = id, d
		}
	}
	delete(p.m, min)
}

func decayed(p penalty, now time.Time) float64 {
	if p.v == 0 {
		return 0
	}
	return p.v * math.Exp2(-now.Sub(p.at).Seconds()/floodPenaltyHalf.Seconds())
}

// scoreBook holds P5 and the newest scores pubsub reported.
type scoreBook struct {
	penalties *penalties
	mu        sync.Mutex
	last      map[peer.ID]float64
}

func newScoreBook() *scoreBook { return &scoreBook{penalties: newPenalties()} }

// set is pubsub's score inspector: called once per decay interval.
func (b *scoreBook) set(m map[peer.ID]float64) {
	b.mu.Lock()
	b.last = m
	b.mu.Unlock()
}

// PeerScore is p's GossipSub score as of the last second, and whether p
// is scored at all (a connected pubsub peer). Below GraylistThreshold
// this node ignores everything p sends on any room.
func (s *Service) PeerScore(p peer.ID) (float64, bool) {
	s.scores.mu.Lock()
	defer s.scores.mu.Unlock()
	v, ok := s.scores.last[p]
	return v, ok
}
