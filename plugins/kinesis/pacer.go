package kinesis

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// pacer paces the writes to one shard so that Kinesis never receives more
// than the shard limits (records/s and bytes/s, each multiplied by an adaptive
// factor) within any one second. The factor drops multiplicatively when
// Kinesis throttles the shard and grows back additively on every request that
// is not throttled.
//
// It is a sliding window, not a token bucket: a bucket holding a second of
// tokens lets a burst of a full second through on top of the refill, so a
// shard idle for a second then got twice its limit within one second (and
// was throttled by Kinesis) whenever writes resumed. The window counts each
// request from when its answer came back (the latest moment Kinesis can have
// received it) until one window later, and a request goes only when the
// requests still counted plus itself fit the limit; as the next request
// cannot reach Kinesis before it is sent, no second of arrivals at Kinesis
// holds more than the limit, whatever the network delays. A request larger
// than the limit (one record bigger than a second's bytes) goes when nothing
// is counted and is counted for as many seconds as it is worth.
//
// A zero rate disables that limit. The pacer expects one request at a time
// (the output holds the shard's in-flight slot from room to landed).
type pacer struct {
	mu       sync.Mutex
	recRate  float64 // nominal records/s
	byteRate float64 // nominal bytes/s
	factor   float64 // 0 < factor <= 1
	// window holds the answered requests still counted, in the order they
	// stop being counted (until), so that expiry only ever removes from the
	// front; sumN and sumB are their totals. A request's cost is constant,
	// whatever the number of requests of the last second.
	window     []paced
	sumN, sumB float64
	inflight   paced // the request sent and not answered yet, if sent
	sent       bool
	lastCut    time.Time
	now        func() time.Time
}

// paced is one request counted in the window: from at (its answer, or its
// sending while unanswered) until until.
type paced struct {
	at, until time.Time
	n, b      float64
}

const (
	pacerMinFactor = 0.05
	pacerDecrease  = 0.7
	pacerIncrease  = 0.05
	pacerCutEvery  = 250 * time.Millisecond
	// pacerWindow is the second the limits apply to, plus a margin for
	// the clock granularity of the arrival times Kinesis keeps.
	pacerWindow = time.Second + 5*time.Millisecond
)

func newPacer(recordsPerSec, bytesPerSec float64, now func() time.Time) *pacer {
	if now == nil {
		now = time.Now
	}
	return &pacer{recRate: recordsPerSec, byteRate: bytesPerSec, factor: 1, now: now}
}

// hold is how long a request of n records and b bytes stays counted: one
// window, or longer for a request worth more than a window at the current
// rates. Caller holds mu.
func (p *pacer) hold(n, b float64) time.Duration {
	secs := 1.0
	if p.recRate > 0 {
		secs = math.Max(secs, n/(p.recRate*p.factor))
	}
	if p.byteRate > 0 {
		secs = math.Max(secs, b/(p.byteRate*p.factor))
	}
	return time.Duration(secs * float64(pacerWindow))
}

// expire forgets the answered requests no longer counted at t. Caller holds
// mu.
func (p *pacer) expire(t time.Time) {
	k := 0
	for k < len(p.window) && !p.window[k].until.After(t) {
		p.sumN -= p.window[k].n
		p.sumB -= p.window[k].b
		k++
	}
	if k == 0 {
		return
	}
	clear(p.window[:k])
	p.window = p.window[k:]
	if len(p.window) == 0 {
		p.sumN, p.sumB = 0, 0 // no rounding drift carried on
	}
}

// roomNow returns the records and bytes a request may carry now (at least n
// records and b bytes; math.MaxInt for a disabled limit) when a request of n
// records and b bytes fits, or else how long to wait for it. Caller holds mu.
func (p *pacer) roomNow(n, b int) (int, int, time.Duration) {
	if p.recRate <= 0 && p.byteRate <= 0 {
		return math.MaxInt, math.MaxInt, 0
	}
	t := p.now()
	p.expire(t)
	sumN, sumB := p.sumN, p.sumB
	if p.sent { // an unanswered request may still be on its way
		sumN += p.inflight.n
		sumB += p.inflight.b
	}
	capN, capB := p.recRate*p.factor, p.byteRate*p.factor
	room := func(sumN, sumB float64) (int, int, bool) {
		rn, rb := math.MaxInt, math.MaxInt
		if p.recRate > 0 {
			rn = int(capN - sumN)
		}
		if p.byteRate > 0 {
			rb = int(capB - sumB)
		}
		if sumN <= 0 && sumB <= 0 {
			// Alone: a request larger than the limit goes too.
			return max(rn, n), max(rb, b), true
		}
		return rn, rb, rn >= n && rb >= b
	}
	if rn, rb, ok := room(sumN, sumB); ok {
		return rn, rb, 0
	}
	// Wait until enough counted requests have expired, earliest first.
	// An unanswered one (none while the output holds the shard's slot) is
	// waited for a window.
	for _, e := range p.window {
		sumN -= e.n
		sumB -= e.b
		if _, _, ok := room(math.Max(sumN, 0), math.Max(sumB, 0)); ok {
			return 0, 0, max(time.Millisecond, e.until.Sub(t))
		}
	}
	return 0, 0, pacerWindow
}

// room blocks until a request of n records and b bytes may be sent,
// honouring ctx, and returns how many records and bytes a request may carry
// now (see roomNow). The request sent is then counted with take.
func (p *pacer) room(ctx context.Context, n, b int) (int, int, error) {
	for {
		p.mu.Lock()
		rn, rb, d := p.roomNow(n, b)
		p.mu.Unlock()
		if d == 0 {
			return rn, rb, nil
		}
		if err := sleepCtx(ctx, d); err != nil {
			return 0, 0, err
		}
	}
}

// take counts a request of n records and b bytes, sent now.
func (p *pacer) take(n, b int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.recRate <= 0 && p.byteRate <= 0 {
		return
	}
	if p.sent { // not expected (one request at a time): count the earlier one as answered
		p.landedLocked()
	}
	t := p.now()
	p.inflight = paced{at: t, until: t.Add(p.hold(float64(n), float64(b))), n: float64(n), b: float64(b)}
	p.sent = true
}

// landed records that the answer to the request counted by the last take
// came back (or that the request ended without one): it stays counted for a
// window from now.
func (p *pacer) landed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.landedLocked()
}

func (p *pacer) landedLocked() {
	if !p.sent {
		return
	}
	p.sent = false
	t := p.now()
	e := p.inflight
	e.until = t.Add(e.until.Sub(e.at))
	e.at = t
	// Usually the last to expire; a request held longer (one larger than
	// the limit) may be passed.
	i := len(p.window)
	for i > 0 && p.window[i-1].until.After(e.until) {
		i--
	}
	p.window = slices.Insert(p.window, i, e)
	p.sumN += e.n
	p.sumB += e.b
}

// maxRecords is the most records one request should carry at the current rate
// (a full window), at least 1 and at most limit.
func (p *pacer) maxRecords(limit int) int { return p.perRequest(p.recRate, limit) }

// maxBytes is the most bytes one request should carry at the current rate, at
// most limit. A single record is always allowed whatever its size.
func (p *pacer) maxBytes(limit int) int { return p.perRequest(p.byteRate, limit) }

// perRequest is one full window at rate (records or bytes per second, 0 for
// no limit) scaled by the current factor, between 1 and limit.
func (p *pacer) perRequest(rate float64, limit int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rate <= 0 {
		return limit
	}
	n := int(rate * p.factor)
	return max(1, min(limit, n))
}

// throttled records that Kinesis throttled this shard: slow down, at most
// once per pacerCutEvery (the responses of one burst are one signal).
func (p *pacer) throttled() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.now(); t.Sub(p.lastCut) >= pacerCutEvery {
		p.factor = math.Max(pacerMinFactor, p.factor*pacerDecrease)
		p.lastCut = t
	}
}

// accepted records a request that saw no throttling: speed back up.
func (p *pacer) accepted() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.factor < 1 {
		p.factor = math.Min(1, p.factor+pacerIncrease)
	}
}

func (p *pacer) rateFactor() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.factor
}

// sleepCtx sleeps for d or until ctx is done, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
