// Package outage paces what a lasting connection failure puts in the log.
//
// Benthos logs "Failed to connect to <component>: <error>" each time a
// plugin's Connect returns an error, and calls Connect again after at most a
// second. A server that stays down therefore wrote an ERROR line a second,
// for as long as it lasted (86,400 lines a day). Tracker.Retry keeps trying
// just as often, so that a recovery is seen as soon, but returns (and so has
// the engine log) the failure only at growing intervals: at once, after 10 s,
// then twice as long each time, up to a line a minute while it lasts.
package outage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	// Every is how often Retry tries again.
	Every = time.Second
	// FirstGap is the wait before the failure is said a second time.
	FirstGap = 10 * time.Second
	// MaxGap bounds the waits between two reports.
	MaxGap = time.Minute
)

// Tracker holds the state of one failure: when it began, when it is to be
// said next. The zero value is ready to use.
type Tracker struct {
	mu    sync.Mutex
	since time.Time // zero: not failing
	next  time.Time // when the failure is said next
	gap   time.Duration
	// For tests; zero: the constants above.
	Every, FirstGap, MaxGap time.Duration
}

func (t *Tracker) durations() (every, first, maxGap time.Duration) {
	every, first, maxGap = Every, FirstGap, MaxGap
	if t.Every > 0 {
		every = t.Every
	}
	if t.FirstGap > 0 {
		first = t.FirstGap
	}
	if t.MaxGap > 0 {
		maxGap = t.MaxGap
	}
	return
}

// failed records a failed attempt at now. It reports whether the failure is
// to be said, and if so, how long it has lasted and when it is said next.
func (t *Tracker) failed(now time.Time) (say bool, lasted, nextIn time.Duration) {
	_, first, maxGap := t.durations()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.since.IsZero() {
		t.since, t.gap, t.next = now, first, now
	}
	if now.Before(t.next) {
		return false, 0, 0
	}
	nextIn = t.gap
	t.next = now.Add(t.gap)
	t.gap = min(2*t.gap, maxGap)
	return true, now.Sub(t.since), nextIn
}

// Recovered ends the failure, if there was one, and returns how long it
// lasted (0 when nothing was failing).
func (t *Tracker) Recovered() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.since.IsZero() {
		return 0
	}
	d := time.Since(t.since)
	t.since = time.Time{}
	return max(d, time.Nanosecond)
}

// Failing reports whether a failure is under way.
func (t *Tracker) Failing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.since.IsZero()
}

// Retry calls try until it succeeds (nil), ctx ends (the last error, or
// ctx's), try's error is final (returned as is), or the failure is due to be
// said: then its error is returned, saying how long the failure has lasted
// and when it is said again. The first failure of a run is returned at once.
func (t *Tracker) Retry(ctx context.Context, try func(context.Context) error, final func(error) bool) error {
	every, _, _ := t.durations()
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || (final != nil && final(err)) {
			return err
		}
		if say, lasted, nextIn := t.failed(time.Now()); say {
			if lasted < every {
				return err
			}
			var bo *service.ErrBackOff
			if errors.As(err, &bo) {
				// The engine takes the wait and the message from the
				// outermost back-off error, so the note goes inside.
				return service.NewErrBackOff(&Error{Err: bo.Err, Lasted: lasted, NextIn: nextIn, Every: every}, bo.Wait)
			}
			return &Error{Err: err, Lasted: lasted, NextIn: nextIn, Every: every}
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(every):
		}
	}
}

// Error is a failure that has lasted, as Retry returns it.
type Error struct {
	Err                   error
	Lasted, NextIn, Every time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v (failing for %v, tried again every %v; said again in %v unless it recovers)", e.Err, e.Lasted.Round(time.Second), e.Every, e.NextIn)
}

func (e *Error) Unwrap() error { return e.Err }
