package kinesis

import (
	"context"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestPacerKeepsShardRate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacer(1000, 1<<20, clk.now)
	// A full bucket lets one second of records through at once.
	if d := p.delay(1000, 1000); d != 0 {
		t.Fatalf("full bucket made 1000 records wait %v", d)
	}
	// Then 500 more need half a second.
	d := p.delay(500, 500)
	if d < 490*time.Millisecond || d > 510*time.Millisecond {
		t.Fatalf("500 records after an empty bucket wait %v, want ~500ms", d)
	}
	clk.advance(d)
	if d := p.delay(500, 500); d != 0 {
		t.Fatalf("after waiting, still %v", d)
	}
	// Simulated 10 s of sending 100-record requests as fast as allowed:
	// the rate must be 1000 records/s.
	sent := 0
	start := clk.t
	for clk.t.Sub(start) < 10*time.Second {
		if d := p.delay(100, 100); d > 0 {
			clk.advance(d)
			continue
		}
		sent += 100
	}
	if sent < 9800 || sent > 10200 {
		t.Fatalf("sent %d records in 10 s at 1000/s", sent)
	}
}

func TestPacerBytesLimitAndLargeRecord(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacer(1000, 1<<20, clk.now)
	if got := p.maxBytes(5 << 20); got != 1<<20 {
		t.Fatalf("maxBytes = %d, want 1 MiB (one second of a shard)", got)
	}
	// A 3 MiB record goes out on a full bucket, then the debt is paid.
	if d := p.delay(1, 3<<20); d != 0 {
		t.Fatalf("big record on a full bucket waits %v", d)
	}
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
	if err := p.wait(context.Background(), 1, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.wait(ctx, 1, 0); err == nil {
		t.Fatal("wait for an empty 1/s bucket returned no error at a 50ms deadline")
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("wait ignored the context for %v", el)
	}
}
