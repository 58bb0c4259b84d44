package consulq

import (
	"context"
	"testing"
	"time"
)

func TestNextIndex(t *testing.T) {
	for _, tc := range []struct{ prev, got, want uint64 }{
		{0, 5, 5},
		{5, 5, 5},
		{5, 9, 9},
		{9, 4, 0}, // backwards: start over
		{9, 0, 1}, // zero: never block on 0
		{0, 0, 1},
	} {
		if got := NextIndex(tc.prev, tc.got); got != tc.want {
			t.Errorf("NextIndex(%d, %d) = %d, want %d", tc.prev, tc.got, got, tc.want)
		}
	}
}

func TestQueryTimeout(t *testing.T) {
	if got := QueryTimeout(false, time.Minute, time.Second); got != time.Second {
		t.Errorf("non-blocking: %v, want 1s", got)
	}
	if got, want := QueryTimeout(true, 16*time.Second, time.Second), 18*time.Second; got != want {
		t.Errorf("blocking: %v, want %v", got, want)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for i, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		got := b.Next()
		if got < want*8/10 || got >= want*12/10 {
			t.Errorf("delay %d: %v, want %v ±20%%", i, got, want)
		}
	}
	b.Reset()
	if got := b.Next(); got >= 120*time.Millisecond {
		t.Errorf("after Reset: %v, want about 100ms", got)
	}
}

func TestSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Errorf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v", err)
	}
}
