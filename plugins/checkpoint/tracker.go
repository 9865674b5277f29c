package checkpoint

import "sync"

// Tracker turns acknowledgements that arrive in any order into the highest
// position whose predecessors are all acknowledged. Positions are tracked in
// emission order; a batch that is nacked stays pending (and holds back every
// later position) until it is redelivered and acknowledged. Safe for
// concurrent use.
type Tracker[T any] struct {
	mu      sync.Mutex
	base    uint64 // id of entries[0]
	entries []trackEntry[T]
	highest T
	hasHigh bool
}

type trackEntry[T any] struct {
	pos  T
	done bool
}

// NewTracker returns an empty tracker.
func NewTracker[T any]() *Tracker[T] { return &Tracker[T]{} }

// Track records a position reached once the batch now emitted is
// acknowledged, and returns the id to acknowledge it with.
func (t *Tracker[T]) Track(pos T) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = append(t.entries, trackEntry[T]{pos: pos})
	return t.base + uint64(len(t.entries)) - 1
}

// Ack marks id acknowledged. It returns the highest contiguous acknowledged
// position and whether it moved. Acking an unknown or already acked id is a
// no-op.
func (t *Tracker[T]) Ack(id uint64) (T, bool) {
	hi, _, moved := t.AckCount(id)
	return hi, moved
}

// AckCount is Ack that also returns how many entries are contiguously
// acknowledged from the first one (the count hi covers).
func (t *Tracker[T]) AckCount(id uint64) (hi T, contiguous uint64, moved bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id < t.base || id >= t.base+uint64(len(t.entries)) {
		return t.highest, t.base, false
	}
	t.entries[id-t.base].done = true
	moved = false
	n := 0
	for n < len(t.entries) && t.entries[n].done {
		t.highest = t.entries[n].pos
		t.hasHigh = true
		moved = true
		n++
	}
	if n > 0 {
		var zero trackEntry[T]
		for i := 0; i < n; i++ {
			t.entries[i] = zero
		}
		t.entries = t.entries[n:]
		t.base += uint64(n)
		if cap(t.entries) > 1024 && len(t.entries) < cap(t.entries)/4 {
			t.entries = append([]trackEntry[T](nil), t.entries...)
		}
	}
	return t.highest, t.base, moved
}

// Reopen marks id, acknowledged or not, as not acknowledged again: the
// batch will be delivered again (an earlier batch was nacked and every
// batch after it is re-sent), and the position must wait for that
// delivery's acknowledgement. It reports whether id is still tracked (not
// yet passed by the contiguous point); an id already passed cannot be
// reopened.
func (t *Tracker[T]) Reopen(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id < t.base || id >= t.base+uint64(len(t.entries)) {
		return false
	}
	t.entries[id-t.base].done = false
	return true
}

// Tracked is the number of entries ever tracked.
func (t *Tracker[T]) Tracked() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.base + uint64(len(t.entries))
}

// Highest returns the highest contiguous acknowledged position, if any.
func (t *Tracker[T]) Highest() (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.highest, t.hasHigh
}

// Pending is the number of tracked, not yet contiguously acknowledged
// entries.
func (t *Tracker[T]) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
