package chat

import (
	"errors"
	"testing"
)

func TestBusResumesFromReplayAndReportsGaps(t *testing.T) {
	b := newBus()
	defer b.close()
	for i := range 10 {
		b.publish(Notice{Text: string(rune('a' + i))})
	}
	sub, err := b.subscribe(After(7))
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for range 3 {
		got = append(got, (<-sub.C()).Seq)
	}
	if len(got) != 3 || got[0] != 8 || got[2] != 10 {
		t.Errorf("resumed after 7 with %v, want [8 9 10]", got)
	}
	for range replayEvents {
		b.publish(Notice{})
	}
	if _, err := b.subscribe(After(3)); !errors.Is(err, ErrGap) {
		t.Errorf("resuming from an event no longer buffered: got %v, want ErrGap", err)
	}
	if _, err := b.subscribe(After(b.lastSeq() + 5)); !errors.Is(err, ErrGap) {
		t.Errorf("resuming from a sequence number from the future (another run): got %v, want ErrGap", err)
	}
}

func TestBusDropsSlowSubscriberWithoutBlocking(t *testing.T) {
	b := newBus()
	slow, _ := b.subscribe(WithBuffer(2))
	fast, _ := b.subscribe(WithBuffer(100))
	for range 50 { // would block for good if publish waited for slow
		b.publish(Notice{})
	}
	n := 0
	for range slow.C() {
		n++
	}
	if n != 2 || !errors.Is(slow.Err(), ErrFellBehind) {
		t.Errorf("slow subscriber got %d events and err %v; want 2 and ErrFellBehind", n, slow.Err())
	}
	if len(fast.C()) != 50 {
		t.Errorf("fast subscriber has %d events, want 50", len(fast.C()))
	}
	b.close()
	if fast.Err() != nil {
		t.Errorf("subscription ended by close: err %v, want nil", fast.Err())
	}
	if _, err := b.subscribe(WithBuffer(0)); err == nil {
		t.Error("a zero buffer was accepted")
	}
}
