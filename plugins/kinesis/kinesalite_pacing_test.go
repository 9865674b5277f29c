package kinesis

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

type arrival struct {
	at    time.Time
	bytes int
}

// readArrivals reads every record of the stream with kinesalite's arrival
// time (millisecond precision) and its size (data plus partition key).
func readArrivals(t testing.TB, name string) []arrival {
	t.Helper()
	c := kinesaliteClient(t)
	ctx := context.Background()
	var out []arrival
	for _, s := range listShards(t, name) {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name),
			ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			r, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range r.Records {
				out = append(out, arrival{at: *rec.ApproximateArrivalTimestamp, bytes: len(rec.Data) + len(*rec.PartitionKey)})
			}
			if len(r.Records) == 0 {
				break
			}
			iter = r.NextShardIterator
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// maxPerSecond is the most records and bytes that arrived within any one
// second (a window [t, t+1s) starting at an arrival).
func maxPerSecond(a []arrival) (recs, bytes int) {
	j, b := 0, 0
	for i := range a {
		b += a[i].bytes
		for a[i].at.Sub(a[j].at) >= time.Second {
			b -= a[j].bytes
			j++
		}
		recs, bytes = max(recs, i-j+1), max(bytes, b)
	}
	return recs, bytes
}

// With shard_rate at the Kinesis limits, a shard never gets more than the
// limit within any second, also when a burst follows an idle shard, and the
// sustained rate is close to it.
func TestKinesalitePacingStaysUnderShardLimits(t *testing.T) {
	t.Run("records", func(t *testing.T) {
		stream := newStream(t, 1)
		o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, ""))
		next := map[string]int{}
		start := time.Now()
		for i := 0; i < 8; i++ {
			if err := o.WriteBatch(context.Background(), makeBatch(keysN(20), 500, 60, next)); err != nil {
				t.Fatal(err)
			}
		}
		took := time.Since(start)
		a := readArrivals(t, stream)
		recs, _ := maxPerSecond(a)
		span := a[len(a)-1].at.Sub(a[0].at).Seconds()
		t.Logf("4000 records in %v (arrivals over %.2fs): max %d records in a second, %.0f records/s sustained", took, span, recs, float64(len(a)-500)/span)
		if recs > 1000 {
			t.Errorf("%d records arrived within one second, the shard limit is 1000", recs)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		stream := newStream(t, 1)
		o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, ""))
		next := map[string]int{}
		for i := 0; i < 6; i++ {
			if err := o.WriteBatch(context.Background(), makeBatch(keysN(4), 16, 64<<10, next)); err != nil {
				t.Fatal(err)
			}
		}
		a := readArrivals(t, stream)
		_, b := maxPerSecond(a)
		span := a[len(a)-1].at.Sub(a[0].at).Seconds()
		t.Logf("%d records of 64 KiB over %.2fs: max %d bytes in a second", len(a), span, b)
		if b > 1<<20 {
			t.Errorf("%d bytes arrived within one second, the shard limit is 1 MiB", b)
		}
	})
}
