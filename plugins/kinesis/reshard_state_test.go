package kinesis

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestReshardingKeepsNoStatePerClosedShard reshards the stream many times
// (every open shard closed and replaced by children with new ids, as
// UpdateShardCount does through splits and merges) while writing: the
// output's per-shard state (shard map, pacers) and goroutines stay bounded
// by the open shards, not by every shard the stream ever had, and every
// record is written in order.
func TestReshardingKeepsNoStatePerClosedShard(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 2)
	o := newTestOutput(t, fakeYAML, f.client())
	keys := keysN(20)
	next := map[string]int{}
	next2 := 2
	const reshards = 50
	var goroutines []int
	for i := 0; i < reshards; i++ {
		f.mu.Lock()
		var children []*fakeShard
		for _, s := range f.shards {
			if s.closed {
				continue
			}
			s.closed = true
			children = append(children, &fakeShard{id: fmt.Sprintf("shardId-%012d", next2), start: s.start, end: s.end})
			next2++
		}
		f.shards = append(f.shards, children...)
		f.mu.Unlock()
		o.refreshNow(context.Background())
		if err := o.WriteBatch(context.Background(), makeBatch(keys, 100, 50, next)); err != nil {
			t.Fatalf("reshard %d: %v", i, err)
		}
		if i == 4 || i == reshards-1 {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
			goroutines = append(goroutines, runtime.NumGoroutine())
		}
	}
	checkOrder(t, f.byKey(), next, true)
	o.mu.Lock()
	n := len(o.shards)
	o.mu.Unlock()
	t.Logf("after %d reshards: %d shard states (2 open shards), goroutines %v", reshards, n, goroutines)
	if n > 2+1 { // the open shards and the one for records of unknown shards
		t.Errorf("the output keeps state for %d shards after %d reshards of a 2-shard stream: one per shard the stream ever had", n, reshards)
	}
	if goroutines[1] > goroutines[0]+3 {
		t.Errorf("goroutines grew from %d to %d over %d reshards", goroutines[0], goroutines[1], reshards-5)
	}
}
