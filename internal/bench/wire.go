package bench

import (
	"fmt"
	"sync/atomic"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/chat/pb"
)

// WireCount counts what a room's members sent to each other, by kind:
// published messages (room text, presence), GossipSub control and
// history requests. Copies are counted per receiver (one per RPC sent).
type WireCount struct {
	Text, TextBytes         int64 // room messages (the payload measured)
	Presence, PresenceBytes int64 // Parley's presence envelopes
	IHave, IWant, IDontWant int64 // message IDs in gossip control
	Graft, Prune            int64
	Validated               int64 // copies that went through validation
	Duplicates              int64 // copies received and discarded as seen
	CatchUps, HistoryPages  int64 // Parley: catch-ups that fetched a page, pages fetched
	Rosters, RosterEntries  int64 // Parley: roster pages fetched, presences they held
}

// Sub is w minus earlier (what happened in between).
func (w WireCount) Sub(earlier WireCount) WireCount { return w.plus(earlier, -1) }

// Add is w and o together (two members' counts).
func (w WireCount) Add(o WireCount) WireCount { return w.plus(o, 1) }

func (w WireCount) plus(o WireCount, sign int64) WireCount {
	return WireCount{
		Text: w.Text + sign*o.Text, TextBytes: w.TextBytes + sign*o.TextBytes,
		Presence: w.Presence + sign*o.Presence, PresenceBytes: w.PresenceBytes + sign*o.PresenceBytes,
		IHave: w.IHave + sign*o.IHave, IWant: w.IWant + sign*o.IWant, IDontWant: w.IDontWant + sign*o.IDontWant,
		Graft: w.Graft + sign*o.Graft, Prune: w.Prune + sign*o.Prune,
		Validated: w.Validated + sign*o.Validated, Duplicates: w.Duplicates + sign*o.Duplicates,
		CatchUps: w.CatchUps + sign*o.CatchUps, HistoryPages: w.HistoryPages + sign*o.HistoryPages,
		Rosters: w.Rosters + sign*o.Rosters, RosterEntries: w.RosterEntries + sign*o.RosterEntries,
	}
}

func (w WireCount) String() string {
	return fmt.Sprintf("text %d (%s), presence %d (%s), IHAVE %d, IWANT %d, IDONTWANT %d ids, GRAFT %d, PRUNE %d; validated %d, duplicates %d; catch-ups %d (%d pages); rosters %d (%d presences)",
		w.Text, kb(w.TextBytes), w.Presence, kb(w.PresenceBytes), w.IHave, w.IWant, w.IDontWant, w.Graft, w.Prune,
		w.Validated, w.Duplicates, w.CatchUps, w.HistoryPages, w.Rosters, w.RosterEntries)
}

func kb(n int64) string { return fmt.Sprintf("%.0f KB", float64(n)/1e3) }

// wireTracer counts one member's traffic into a WireCount (atomically:
// pubsub calls it from its event loop and validation workers).
type wireTracer struct {
	parley                                                                                                         bool // messages are Parley envelopes (else all are text)
	text, textB, pres, presB, ihave, iwant, idw, graft, prune, valid, dup, catchUps, pages, rosters, rosterEntries atomic.Int64
}

func (t *wireTracer) count() WireCount {
	return WireCount{Text: t.text.Load(), TextBytes: t.textB.Load(), Presence: t.pres.Load(), PresenceBytes: t.presB.Load(),
		IHave: t.ihave.Load(), IWant: t.iwant.Load(), IDontWant: t.idw.Load(), Graft: t.graft.Load(), Prune: t.prune.Load(),
		Validated: t.valid.Load(), Duplicates: t.dup.Load(), CatchUps: t.catchUps.Load(), HistoryPages: t.pages.Load(),
		Rosters: t.rosters.Load(), RosterEntries: t.rosterEntries.Load()}
}

func (t *wireTracer) sent(rpc *pubsub.RPC) {
	for _, m := range rpc.GetPublish() {
		n := int64(len(m.GetData()) + len(m.GetSignature()) + len(m.GetKey()) + len(m.GetFrom()) + len(m.GetSeqno()))
		if t.parley {
			var env pb.Envelope
			if proto.Unmarshal(m.GetData(), &env) == nil && env.GetKind() != pb.Envelope_MESSAGE {
				t.pres.Add(1)
				t.presB.Add(n)
				continue
			}
		}
		t.text.Add(1)
		t.textB.Add(n)
	}
	c := rpc.GetControl()
	for _, x := range c.GetIhave() {
		t.ihave.Add(int64(len(x.GetMessageIDs())))
	}
	for _, x := range c.GetIwant() {
		t.iwant.Add(int64(len(x.GetMessageIDs())))
	}
	for _, x := range c.GetIdontwant() {
		t.idw.Add(int64(len(x.GetMessageIDs())))
	}
	t.graft.Add(int64(len(c.GetGraft())))
	t.prune.Add(int64(len(c.GetPrune())))
}

func (t *wireTracer) rosterFetched(_ string, presences, _ int) {
	t.rosters.Add(1)
	t.rosterEntries.Add(int64(presences))
}

func (t *wireTracer) caughtUp(_ string, pages, _, _ int) {
	t.catchUps.Add(1)
	t.pages.Add(int64(pages))
}
