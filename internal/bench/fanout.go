package bench

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"time"
)

// FanoutConfig describes one room fan-out run.
type FanoutConfig struct {
	Router   Router
	N        int           // members
	Degree   int           // links each member dials (RandomGraph); >= N-1: full mesh
	Messages int           // measured messages
	Interval time.Duration // between two publishes
	Size     int           // payload bytes (1024)
	Warmup   int           // unmeasured messages first
	Seed     uint64
	Tune     *GossipTune // GossipSub only: parameters other than chat's
	// Window, if set, is called when the measured window begins (true) and
	// ends (false): to profile only that.
	Window func(begin bool)
}

// FanoutResult is what one fan-out run measured.
//
// Latency is publish-to-delivery: from just before the publishing member
// calls Topic.Publish (Service.Send for Parley) to the moment another
// member's reader gets the message from its subscription (its Message
// event for Parley); one sample per message and receiving member, all
// clocks in one process. Delivery is the share of (message, receiver)
// pairs that arrived. Duplicates are redundant copies a member received
// and discarded (pubsub's DuplicateMessage trace), per message and
// receiver. Amplification is the bytes all hosts wrote to their TCP
// sockets from the first publish until 1 s after the last delivery (so it
// includes Noise and yamux framing, signatures, GossipSub control and
// gossip), divided by payload × receivers × messages.
type FanoutResult struct {
	FanoutConfig
	Edges                int
	MeanDegree           float64
	MinDegree, MaxDegree int
	Setup                time.Duration // start hosts, connect, members see each other
	Latency              Dist
	Delivered, Expected  int
	DupPerNode           float64
	WireBytes            int64
	Amplification        float64
	Dropped              int64
	Unsent               int64 // copies with no stream to send on yet (see chat.Service.Unsent)
	LateSends            int64 // Parley: sent, but Send gave up waiting for its own copy to be stored
	// SetupWire and Wire count the messages sent by kind: while the room
	// formed (and warmed up), and while measuring.
	SetupWire, Wire WireCount
	CPUBusy         float64 // CPU used by the process ÷ (wall time × cores) while measuring
}

// Ratio is the share of expected deliveries that happened.
func (r FanoutResult) Ratio() float64 {
	if r.Expected == 0 {
		return 0
	}
	return float64(r.Delivered) / float64(r.Expected)
}

// RunFanout builds a room of in-process hosts, waits for its mesh,
// publishes cfg.Messages messages from random members cfg.Interval apart
// and measures their delivery.
func RunFanout(ctx context.Context, cfg FanoutConfig) (FanoutResult, error) {
	res := FanoutResult{FanoutConfig: cfg}
	start := time.Now()
	r, err := newRoom(ctx, roomConfig{Router: cfg.Router, N: cfg.N, Degree: cfg.Degree, Size: cfg.Size,
		Seed: cfg.Seed, Measured: cfg.Messages, Warmup: cfg.Warmup, Tune: cfg.Tune})
	if err != nil {
		return res, err
	}
	defer r.close()
	res.Edges = len(r.edges)
	res.MeanDegree, res.MinDegree, res.MaxDegree = r.degreeStats()
	if err := r.waitReady(ctx, 30*time.Second); err != nil {
		return res, err
	}
	res.Setup = time.Since(start)
	r.warmup(ctx)

	rng := mrand.New(mrand.NewPCG(cfg.Seed, 1))
	sendAt := make([]int64, cfg.Messages)
	from := make([]int, cfg.Messages)
	if cfg.Window != nil {
		cfg.Window(true)
	}
	w0, d0, x0, u0 := r.hosts.Written(), r.dups(), r.dropped(), r.unsent()
	res.SetupWire = r.wire()
	wire0 := res.SetupWire
	c0, t0 := CPUTime(), time.Now()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for i := range cfg.Messages {
		from[i] = rng.IntN(cfg.N)
		sendAt[i] = time.Since(r.base).Nanoseconds()
		if err := r.publish(ctx, from[i], i); err != nil {
			return res, fmt.Errorf("publish: %w", err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.Expected = cfg.Messages * (cfg.N - 1)
	waitUntil(ctx, 10*time.Second, func() bool { return r.recvM.Load() >= int64(res.Expected) })
	// Trailing GossipSub traffic (IDONTWANT, gossip of the last messages)
	// belongs to the cost too: count one more heartbeat.
	sleepCtx(ctx, time.Second)
	res.WireBytes = r.hosts.Written() - w0
	res.CPUBusy = busy(CPUTime()-c0, time.Since(t0))
	if cfg.Window != nil {
		cfg.Window(false)
	}
	res.Dropped, res.Unsent = r.dropped()-x0, r.unsent()-u0
	res.LateSends = r.lateSends.Load()
	res.Wire = r.wire().Sub(wire0)
	res.DupPerNode = float64(r.dups()-d0) / float64(res.Expected)

	lat := r.latencies(from, sendAt)
	res.Delivered = len(lat)
	res.Latency = NewDist(lat)
	res.Amplification = float64(res.WireBytes) / float64(int64(cfg.Size)*int64(res.Expected))
	return res, nil
}
