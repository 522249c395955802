package bench

import (
	"context"
	"fmt"
	"time"
)

// BurstConfig describes a burst: one member of a room publishes Messages
// messages back to back, each as soon as the previous API call returned:
// chat.Service.Post for Parley (it returns once the message is queued, and
// is retried while chat says it is busy), Topic.Publish for the others.
type BurstConfig struct {
	Router   Router
	N        int
	Degree   int
	Messages int
	Size     int
	Seed     uint64
	// Timeout bounds the whole burst; the wait for the last deliveries
	// also ends after 3 s without any new delivery.
	Timeout time.Duration
	Window  func(begin bool) // see FanoutConfig.Window
}

// BurstResult is what a burst measured. Times are from the first publish
// call. Dropped counts losses that were surfaced: chat.Service.Dropped
// summed over members for Parley (each also an Error event), or what a
// pubsub tracer saw for the other routers, where nothing tells the user.
type BurstResult struct {
	BurstConfig
	SendTime            time.Duration // until the last publish call returned
	LastArrival         time.Duration // until the last message reached the last member
	Delivered, Expected int
	MinPerMember        int   // messages received by the member that got fewest
	Dropped             int64 // losses surfaced (Parley) or traced (others)
	ErrorEvents         int64 // chat.Error events (Parley)
	SendErrors          int   // publish calls that failed
	// Traced drops by queue (not Parley): outbound to a peer, validation
	// queue, subscription buffer.
	DropsByQueue [3]int64
	CPUBusy      float64
	// CPU is the process's CPU time from the first publish until the
	// last arrival was waited for: unlike the times, it hardly depends
	// on what else runs on the machine.
	CPU time.Duration
}

// CPUPerMessage is CPU time per message published (all members' work).
func (r BurstResult) CPUPerMessage() time.Duration {
	if r.Messages == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Messages)
}

// Ratio is the share of expected deliveries that happened.
func (r BurstResult) Ratio() float64 {
	if r.Expected == 0 {
		return 0
	}
	return float64(r.Delivered) / float64(r.Expected)
}

// Rate is delivered messages per second and member, over LastArrival.
func (r BurstResult) Rate() float64 {
	if r.LastArrival <= 0 {
		return 0
	}
	return float64(r.Delivered) / float64(r.N-1) / r.LastArrival.Seconds()
}

// RunBurst builds a room (as RunFanout does), waits for its mesh and has
// member 0 publish cfg.Messages messages as fast as the router's API
// accepts them.
func RunBurst(ctx context.Context, cfg BurstConfig) (BurstResult, error) {
	res := BurstResult{BurstConfig: cfg}
	r, err := newRoom(ctx, roomConfig{Router: cfg.Router, N: cfg.N, Degree: cfg.Degree, Size: cfg.Size,
		Seed: cfg.Seed, Measured: cfg.Messages, Warmup: 5, Unlimited: true, OnDisk: true})
	if err != nil {
		return res, err
	}
	defer r.close()
	if err := r.waitReady(ctx, 30*time.Second); err != nil {
		return res, err
	}
	r.warmup(ctx)
	x0, e0, q0 := r.dropped(), r.chatErr.Load(), r.dropsByQueue()

	deadline := time.Now().Add(cfg.Timeout)
	if cfg.Window != nil {
		cfg.Window(true)
		defer cfg.Window(false)
	}
	c0 := CPUTime()
	start := time.Since(r.base)
	for i := range cfg.Messages {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("burst: only %d of %d messages published within %v", i, cfg.Messages, cfg.Timeout)
		}
		if err := r.post(ctx, 0, i); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.SendErrors++
		}
	}
	res.SendTime = time.Since(r.base) - start
	res.Expected = cfg.Messages * (cfg.N - 1)
	// Wait for the last deliveries: until all arrived, 3 s without
	// progress, or the deadline.
	for prev, still := int64(-1), time.Now(); ; {
		got := r.recvM.Load()
		if got >= int64(res.Expected) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		if got != prev {
			prev, still = got, time.Now()
		} else if time.Since(still) > 3*time.Second {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.LastArrival = time.Duration(r.last.Load()) - start
	res.CPU = CPUTime() - c0
	res.CPUBusy = busy(res.CPU, time.Since(r.base)-start)
	res.Delivered = int(r.recvM.Load())
	res.MinPerMember = cfg.Messages
	for node := 1; node < cfg.N; node++ {
		n := 0
		for i := range cfg.Messages {
			if r.arrivals[node][i].Load() > 0 {
				n++
			}
		}
		res.MinPerMember = min(res.MinPerMember, n)
	}
	// chat reports drops as Error events once a second.
	if r.chats != nil {
		sleepCtx(ctx, 1500*time.Millisecond)
	}
	res.Dropped = r.dropped() - x0
	res.ErrorEvents = r.chatErr.Load() - e0
	q1 := r.dropsByQueue()
	for i := range q1 {
		res.DropsByQueue[i] = q1[i] - q0[i]
	}
	return res, nil
}
