package kinesis

import (
	"context"
	"math"
	"sync"
	"time"
)

// pacer paces the writes to one shard with two token buckets (records/s and
// bytes/s) whose rates are the shard limits multiplied by an adaptive factor:
// the factor drops multiplicatively when Kinesis throttles the shard and grows
// back additively on every request that is not throttled. A bucket holds at
// most one second of tokens; a request larger than that waits for a full
// bucket and then borrows, so a record bigger than a second's worth still goes
// out (and the next request waits the debt off).
//
// A zero rate disables that bucket.
type pacer struct {
	mu         sync.Mutex
	recRate    float64 // nominal records/s
	byteRate   float64 // nominal bytes/s
	factor     float64 // 0 < factor <= 1
	recTokens  float64
	byteTokens float64
	last       time.Time
	lastCut    time.Time // last decrease: at most one per pacerCutEvery
	now        func() time.Time
}

const (
	pacerMinFactor  = 0.05
	pacerDecrease   = 0.7
	pacerIncrease   = 0.05
	pacerBurstSecs  = 1.0
	pacerCutEvery   = 250 * time.Millisecond
	pacerStartRatio = 1.0
)

func newPacer(recordsPerSec, bytesPerSec float64, now func() time.Time) *pacer {
	if now == nil {
		now = time.Now
	}
	return &pacer{
		recRate:    recordsPerSec,
		byteRate:   bytesPerSec,
		factor:     1,
		recTokens:  recordsPerSec * pacerBurstSecs * pacerStartRatio,
		byteTokens: bytesPerSec * pacerBurstSecs * pacerStartRatio,
		last:       now(),
		now:        now,
	}
}

// refill adds the tokens earned since the last call. Caller holds mu.
func (p *pacer) refill() {
	t := p.now()
	dt := t.Sub(p.last).Seconds()
	p.last = t
	if dt <= 0 {
		return
	}
	if p.recRate > 0 {
		c := p.recRate * p.factor * pacerBurstSecs
		p.recTokens = math.Min(c, p.recTokens+dt*p.recRate*p.factor)
	}
	if p.byteRate > 0 {
		c := p.byteRate * p.factor * pacerBurstSecs
		p.byteTokens = math.Min(c, p.byteTokens+dt*p.byteRate*p.factor)
	}
}

// delay returns how long a request of n records and b bytes must wait, or 0
// after taking its tokens. Caller holds mu.
func (p *pacer) delay(n, b int) time.Duration {
	p.refill()
	var wait float64
	if p.recRate > 0 {
		need := math.Min(float64(n), p.recRate*p.factor*pacerBurstSecs)
		if p.recTokens < need {
			wait = math.Max(wait, (need-p.recTokens)/(p.recRate*p.factor))
		}
	}
	if p.byteRate > 0 {
		need := math.Min(float64(b), p.byteRate*p.factor*pacerBurstSecs)
		if p.byteTokens < need {
			wait = math.Max(wait, (need-p.byteTokens)/(p.byteRate*p.factor))
		}
	}
	if wait > 0 {
		d := time.Duration(wait * float64(time.Second))
		if d < time.Millisecond {
			d = time.Millisecond
		}
		return d
	}
	if p.recRate > 0 {
		p.recTokens -= float64(n)
	}
	if p.byteRate > 0 {
		p.byteTokens -= float64(b)
	}
	return 0
}

// wait blocks until a request of n records and b bytes may be sent, honouring
// ctx, and takes its tokens.
func (p *pacer) wait(ctx context.Context, n, b int) error {
	for {
		p.mu.Lock()
		d := p.delay(n, b)
		p.mu.Unlock()
		if d == 0 {
			return nil
		}
		if err := sleepCtx(ctx, d); err != nil {
			return err
		}
	}
}

// maxRecords is the most records one request should carry at the current rate
// (a full bucket), at least 1 and at most limit.
func (p *pacer) maxRecords(limit int) int { return p.perRequest(p.recRate, limit) }

// maxBytes is the most bytes one request should carry at the current rate, at
// most limit. A single record is always allowed whatever its size.
func (p *pacer) maxBytes(limit int) int { return p.perRequest(p.byteRate, limit) }

// perRequest is one full bucket at rate (records or bytes per second, 0 for
// no limit) scaled by the current factor, between 1 and limit.
func (p *pacer) perRequest(rate float64, limit int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rate <= 0 {
		return limit
	}
	n := int(rate * p.factor * pacerBurstSecs)
	return max(1, min(limit, n))
}

// throttled records that Kinesis throttled this shard: slow down (at most
// once per pacerCutEvery) and forget the tokens saved up (the shard has no
// headroom right now).
func (p *pacer) throttled() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refill()
	if t := p.now(); t.Sub(p.lastCut) >= pacerCutEvery {
		// One cut per window: the responses of one burst are one signal.
		p.factor = math.Max(pacerMinFactor, p.factor*pacerDecrease)
		p.lastCut = t
	}
	p.recTokens = math.Min(p.recTokens, 0)
	p.byteTokens = math.Min(p.byteTokens, 0)
}

// accepted records a request that saw no throttling: speed back up.
func (p *pacer) accepted() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.factor < 1 {
		p.refill()
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
