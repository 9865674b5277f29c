package kinesis

import (
	"context"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// send simulates the output's use of the pacer: wait (on the fake clock),
// then the answer after latency. It returns the sending time.
func pacedSend(clk *fakeClock, p *pacer, n, b int, latency time.Duration) time.Time {
	for {
		_, _, d := p.roomNow(n, b)
		if d == 0 {
			break
		}
		clk.advance(d)
	}
	p.take(n, b)
	at := clk.t
	clk.advance(latency)
	p.landed()
	return at
}

// delay is how long a request of n records and b bytes waits now.
func (p *pacer) delay(n, b int) time.Duration {
	_, _, d := p.roomNow(n, b)
	if d == 0 {
		p.take(n, b)
	}
	return d
}

func TestPacerKeepsShardRate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacer(1000, 1<<20, clk.now)
	// An idle shard takes one second of records at once, and not one
	// more record within that second (a bucket holding a second of tokens
	// let a second's worth more through as it refilled).
	if d := p.delay(1000, 1000); d != 0 {
		t.Fatalf("idle shard made 1000 records wait %v", d)
	}
	clk.advance(30 * time.Millisecond)
	p.landed()
	d := p.delay(1, 1)
	if d < time.Second || d > time.Second+50*time.Millisecond {
		t.Fatalf("a record after a full second's worth waits %v, want one window from the answer", d)
	}
	// Simulated 10 s of sending 100-record requests as fast as allowed,
	// 20 ms of latency: never more than 1000 records sent within a
	// second, and close to 1000 records/s.
	sends := []time.Time{pacedSend(clk, p, 100, 100, 20*time.Millisecond)}
	start := sends[0]
	for clk.t.Sub(start) < 10*time.Second {
		sends = append(sends, pacedSend(clk, p, 100, 100, 20*time.Millisecond))
	}
	j := 0
	for i := range sends {
		for sends[i].Sub(sends[j]) >= time.Second {
			j++
		}
		if n := (i - j + 1) * 100; n > 1000 {
			t.Fatalf("%d records sent within one second at %v", n, sends[i].Sub(start))
		}
	}
	// Each request is counted from its answer: 1000 records per window
	// plus latency (1.025 s).
	if sent := 100 * len(sends); sent < 9500 || sent > 10100 {
		t.Fatalf("sent %d records in 10 s at 1000/s, 20 ms latency", sent)
	}
}

func TestPacerBytesLimitAndLargeRecord(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacer(1000, 1<<20, clk.now)
	if got := p.maxBytes(5 << 20); got != 1<<20 {
		t.Fatalf("maxBytes = %d, want 1 MiB (one second of a shard)", got)
	}
	// A 3 MiB record goes out alone, and counts for three seconds.
	if d := p.delay(1, 3<<20); d != 0 {
		t.Fatalf("big record on an idle shard waits %v", d)
	}
	p.landed()
	d := p.delay(1, 1<<20)
	if d < 2900*time.Millisecond || d > 3100*time.Millisecond {
		t.Fatalf("after a 3 MiB record the next 1 MiB waits %v, want ~3s", d)
	}
}

func TestPacerAdaptsToThrottling(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacer(1000, 0, clk.now)
	p.throttled()
	if f := p.rateFactor(); f != pacerDecrease {
		t.Fatalf("factor after one throttle %v", f)
	}
	p.throttled() // same window: one signal
	if f := p.rateFactor(); f != pacerDecrease {
		t.Fatalf("factor after two throttles in one window %v", f)
	}
	for i := 0; i < 100; i++ {
		clk.advance(pacerCutEvery)
		p.throttled()
	}
	if f := p.rateFactor(); f != pacerMinFactor {
		t.Fatalf("factor floor %v", f)
	}
	if got := p.maxRecords(500); got != int(1000*pacerMinFactor) {
		t.Fatalf("maxRecords at the floor %d", got)
	}
	for i := 0; i < 100; i++ {
		p.accepted()
	}
	if f := p.rateFactor(); f != 1 {
		t.Fatalf("factor after recovery %v", f)
	}
	if got := p.maxRecords(500); got != 500 {
		t.Fatalf("maxRecords recovered %d", got)
	}
}

func TestPacerWaitHonoursContext(t *testing.T) {
	p := newPacer(1, 0, nil)
	if _, _, err := p.room(context.Background(), 1, 0); err != nil {
		t.Fatal(err)
	}
	p.take(1, 0)
	p.landed()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := p.room(ctx, 1, 0); err == nil {
		t.Fatal("wait for an empty 1/s bucket returned no error at a 50ms deadline")
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("wait ignored the context for %v", el)
	}
}

// The room a request may take is what the window has left, so a request
// that does not fit whole is cut to what fits rather than waiting a window.
func TestPacerRoomIsWhatTheWindowLeaves(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacer(1000, 1<<20, clk.now)
	n, b, err := p.room(context.Background(), 1, 100)
	if err != nil || n != 1000 || b != 1<<20 {
		t.Fatalf("idle shard: room %d records %d bytes (%v)", n, b, err)
	}
	p.take(600, 1000)
	clk.advance(10 * time.Millisecond)
	p.landed()
	if n, b, d := p.roomNow(1, 100); d != 0 || n != 400 || b != 1<<20-1000 {
		t.Fatalf("after 600 records: room %d records %d bytes, wait %v", n, b, d)
	}
	clk.advance(500 * time.Millisecond)
	p.take(400, 1000)
	p.landed()
	if _, _, d := p.roomNow(1, 100); d < 500*time.Millisecond || d > 520*time.Millisecond {
		t.Fatalf("full window: wait %v, want until the first request expires", d)
	}
	// A throttle lowers the limit: the window is over it until enough
	// of it expires.
	p.throttled()
	clk.advance(520 * time.Millisecond)
	if n, _, d := p.roomNow(1, 100); d != 0 || n != 700-400 {
		t.Fatalf("after the first request expired, factor 0.7: room %d records, wait %v", n, d)
	}
}

// BenchmarkPacerRequest: the pacer's cost per request does not grow with the
// number of requests of the last second (the window). 1-record requests
// answered after 1 ms (1000 counted at a time) against requests answered
// after 100 ms (10 counted), in the same run; x_small_window is the ratio of
// the two costs (about 1: constant cost).
func BenchmarkPacerRequest(b *testing.B) {
	run := func(b *testing.B, latency time.Duration) float64 {
		clock := time.Unix(0, 0)
		p := newPacer(1e9, 0, func() time.Time { return clock })
		ctx := context.Background()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if _, _, err := p.room(ctx, 1, 100); err != nil {
				b.Fatal(err)
			}
			p.take(1, 100)
			clock = clock.Add(latency)
			p.landed()
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	var small float64
	b.Run("window=10", func(b *testing.B) { small = run(b, 100*time.Millisecond) })
	b.Run("window=1000", func(b *testing.B) {
		large := run(b, time.Millisecond)
		if small > 0 {
			b.ReportMetric(large/small, "x_small_window")
		}
	})
}
