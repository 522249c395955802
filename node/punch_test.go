package node

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

// A round of tries is reported once: a success at once, with the try it
// took; a failure only when no further try followed the last failed one.
func TestPunchRoundsReportedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []HolePunchResult
		tr := &punchTracker{report: func(r HolePunchResult) { got = append(got, r) }}
		bob, carol := peer.ID("bob"), peer.ID("carol")
		try := func(p peer.ID, ok bool) {
			tr.Trace(&holepunch.Event{Remote: p, Evt: &holepunch.StartHolePunchEvt{}})
			if !tr.busy(p) {
				t.Errorf("no punch in progress with %s during a try", p)
			}
			end := &holepunch.EndHolePunchEvt{Success: ok, EllapsedTime: time.Millisecond}
			if !ok {
				end.Error = "all dials failed"
			}
			tr.Trace(&holepunch.Event{Remote: p, Evt: end})
		}
		try(bob, false)
		try(bob, true)
		for range 3 {
			try(carol, false)
			time.Sleep(punchRetryWait / 2)
		}
		if len(got) != 1 || !got[0].OK || got[0].Peer != bob || got[0].Attempts != 2 {
			t.Fatalf("reported %+v, want bob's success at the second try only", got)
		}
		if !tr.busy(carol) {
			t.Errorf("carol's round not in progress %v after a failed try", punchRetryWait/2)
		}
		time.Sleep(punchRetryWait)
		synctest.Wait()
		if len(got) != 2 || got[1].OK || got[1].Peer != carol || got[1].Attempts != 3 || got[1].Err != "all dials failed" {
			t.Fatalf("reported %+v, want carol's round failed after 3 tries", got)
		}
		if tr.busy(carol) || tr.busy(bob) {
			t.Errorf("rounds still in progress after they were reported")
		}
	})
}
