package eventlog

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	start := time.Now()
	l := New[int](start)
	even := func(n int) bool { return n%2 == 0 }
	go func() {
		for i := 1; i <= 6; i++ {
			l.Add(start.Add(time.Duration(i)*time.Millisecond), i)
		}
		l.End()
	}()
	ctx := context.Background()
	if e, i, at, err := l.Wait(ctx, 0, 2, even); err != nil || e != 4 || i != 3 || at != 4*time.Millisecond {
		t.Errorf("2nd even = %d at index %d, %v, %v; want 4 at index 3, 4ms", e, i, at, err)
	}
	if e, i, _, err := l.Wait(ctx, 4, 1, even); err != nil || e != 6 || i != 5 {
		t.Errorf("first even from index 4 = %d at %d (%v), want 6 at 5", e, i, err)
	}
	if _, _, _, err := l.Wait(ctx, 0, 4, even); !errors.Is(err, ErrEnded) {
		t.Errorf("4th even of 3: %v, want ErrEnded", err)
	}
	if n := l.Count(even); n != 3 || l.Len() != 6 || len(l.Events()) != 6 {
		t.Errorf("Count = %d, Len = %d, want 3 and 6", n, l.Len())
	}
}

func TestWaitContext(t *testing.T) {
	l := New[string](time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, _, err := l.Wait(ctx, 0, 1, func(string) bool { return true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on an empty log = %v, want the deadline", err)
	}
}
