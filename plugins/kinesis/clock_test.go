package kinesis

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestShardRefreshSurvivesWallClockStepBack: the wall clock steps back an
// hour (an NTP correction, a VM restored from a snapshot) after the shard map
// was listed. A write then lands on a shard the map does not know (the
// stream was resharded): the map must be re-listed at once, as documented,
// not an hour later. The one-re-list-per-second guard measured the time
// since the last listing on the wall clock (Unix nanoseconds, which carry no
// monotonic reading), so the step made it wait the hour. (o.now is the
// output's wall clock; time.Now().Add shifts what it returns by the step.)
func TestShardRefreshSurvivesWallClockStepBack(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 1)
	o := newTestOutput(t, fakeYAML, nil)
	var step atomic.Int64 // how far the wall clock stepped, in ns
	o.now = func() time.Time { return time.Now().Add(time.Duration(step.Load())) }
	client := o.clientFor(f.client().(*kinesis.Client))
	o.newClient = func(context.Context) (kinesisAPI, error) { return client, nil }
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	step.Store(int64(-time.Hour))

	// Reshard: the only shard is closed and replaced by a child.
	f.mu.Lock()
	f.shards[0].closed = true
	f.shards = append(f.shards, &fakeShard{id: "shardId-000000000001", start: f.shards[0].start, end: f.shards[0].end})
	f.mu.Unlock()
	next := map[string]int{}
	if err := o.WriteBatch(context.Background(), makeBatch(keysN(4), 10, 20, next)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ids := o.smap.Load().ids()
		if slices.Equal(ids, []string{"shardId-000000000001"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after a write landed on a shard the map does not know, the map still holds %v (want the new shard): the wall clock stepped back an hour and the re-listing waits for it", ids)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkOrder(t, f.byKey(), next, true)
}
