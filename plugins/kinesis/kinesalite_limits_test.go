package kinesis

import (
	"context"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Kinesis counts a partition key's length like Java (and kinesalite, which
// mirrors its validation) does: in UTF-16 code units. A character outside
// the Basic Multilingual Plane (an emoji, a rare CJK ideograph) counts twice,
// so 129 of them is over the 256 limit although it is 129 characters.
func TestPartitionKeyLengthCountsUTF16Units(t *testing.T) {
	stream := newStream(t, 2)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
	okKey := strings.Repeat("😀", 128)                           // 256 UTF-16 units: the limit
	longKey := strings.Repeat("😀", 129)                         // 258 UTF-16 units
	mixed := strings.Repeat("a", 200) + strings.Repeat("𠀀", 29) // 258 units, 229 characters
	b := service.MessageBatch{}
	add := func(key string, data string) {
		m := service.NewMessage([]byte(data))
		m.MetaSetMut("dms_partition_key", key)
		b = append(b, m)
	}
	for i := 0; i < 20; i++ {
		add("k", "k#"+string(rune('a'+i)))
	}
	add(longKey, "too long")
	add(okKey, "at the limit")
	add(mixed, "too long too")
	idx := b.Index()
	err := o.WriteBatch(context.Background(), b)
	failed := batchErrIndexes(t, err, idx)
	if len(failed) != 2 || failed[20] == nil || failed[22] == nil {
		t.Fatalf("failed indexes %v, want 20 and 22", failed)
	}
	for _, i := range []int{20, 22} {
		for _, want := range []string{"partition key has 258 UTF-16 code units", "Kinesis allows at most 256"} {
			if !strings.Contains(failed[i].Error(), want) {
				t.Errorf("index %d: %v, want %q (checked before sending)", i, failed[i], want)
			}
		}
	}
	recs := readStream(t, stream)
	checkSentOnce(t, recs, append(append(service.MessageBatch{}, b[:20]...), b[21]))
	// Nothing was sent for Kinesis to reject: one request per shard used.
	if n := o.st.requests.Load(); n > 2 {
		t.Fatalf("%d PutRecords requests for 21 valid records on 2 shards: a request was rejected", n)
	}
}

// openShards lists the open shards of the stream as kinesalite reports them.
func openShards(t testing.TB, stream string) []types.Shard {
	var open []types.Shard
	for _, s := range listShards(t, stream) {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, s)
		}
	}
	sort.Slice(open, func(i, j int) bool {
		a, _ := new(big.Int).SetString(*open[i].HashKeyRange.StartingHashKey, 10)
		b, _ := new(big.Int).SetString(*open[j].HashKeyRange.StartingHashKey, 10)
		return a.Cmp(b) < 0
	})
	return open
}

// TestKinesaliteReshardDuringWrites splits and merges shards while batches
// are being written (not between them): 2 -> 3 -> 4 -> 3 -> 2 -> 3 open
// shards, the way UpdateShardCount works through splits and merges. A
// consumer reading parents before children (as KCL does) sees every record
// once, in order per key, and the output's map ends up like the stream's.
func TestKinesaliteReshardDuringWrites(t *testing.T) {
	stream := newStream(t, 2)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
	c := kinesaliteClient(t)
	keys := keysN(40)
	next := map[string]int{}
	written := make(chan int, 1000)
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := o.WriteBatch(context.Background(), makeBatch(keys, 200, 80, next)); err != nil {
				errc <- err
				return
			}
			written <- i
		}
	}()
	waitBatches := func(n int) {
		for k := 0; k < n; k++ {
			select {
			case <-written:
			case err := <-errc:
				t.Fatalf("write: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("writer stuck")
			}
		}
	}
	split := func(s types.Shard) {
		lo, _ := new(big.Int).SetString(*s.HashKeyRange.StartingHashKey, 10)
		hi, _ := new(big.Int).SetString(*s.HashKeyRange.EndingHashKey, 10)
		mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
		if _, err := c.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String(stream),
			ShardToSplit: s.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
			t.Fatalf("split: %v", err)
		}
		waitActive(t, c, stream)
	}
	merge := func(a, b types.Shard) {
		if _, err := c.MergeShards(context.Background(), &kinesis.MergeShardsInput{StreamName: aws.String(stream),
			ShardToMerge: a.ShardId, AdjacentShardToMerge: b.ShardId}); err != nil {
			t.Fatalf("merge: %v", err)
		}
		waitActive(t, c, stream)
	}
	waitBatches(3)
	split(openShards(t, stream)[0])
	waitBatches(3)
	split(openShards(t, stream)[2])
	waitBatches(3)
	s := openShards(t, stream)
	merge(s[1], s[2])
	waitBatches(3)
	s = openShards(t, stream)
	merge(s[0], s[1])
	waitBatches(3)
	split(openShards(t, stream)[1])
	waitBatches(3)
	close(stop)
	for err := range errc {
		t.Fatalf("write: %v", err)
	}
	// The map catches up with the stream (refresh on unexpected shards).
	want := []string{}
	for _, s := range openShards(t, stream) {
		want = append(want, *s.ShardId)
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Join(o.smap.Load().ids(), ",") != strings.Join(want, ",") {
		if time.Now().After(deadline) {
			t.Fatalf("output's shard map %v, stream's open shards %v", o.smap.Load().ids(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	recs := readStream(t, stream)
	total := 0
	for _, n := range next {
		total += n
	}
	if len(recs) != total {
		t.Fatalf("read back %d of %d records", len(recs), total)
	}
	if dup := checkOrder(t, byKey(recs), next, true); dup != 0 {
		t.Fatalf("%d copies", dup)
	}
	if got := o.st.written.Load(); got != int64(total) {
		t.Fatalf("kinesis_records_written %d, %d records in the stream", got, total)
	}
}

// A stream deleted under the output stops the batch with "not connected";
// Connect fails naming the stream while it is missing, succeeds once it is
// re-created, and the retried batch writes the records not written yet, in
// order, to the new stream.
func TestKinesaliteStreamDeletedAndRecreated(t *testing.T) {
	stream := newStream(t, 2)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
	c := kinesaliteClient(t)
	next := map[string]int{}
	if err := o.WriteBatch(context.Background(), makeBatch(keysN(10), 100, 50, next)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(stream)}); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			break
		}
		t.Logf("stream %s", out.StreamDescriptionSummary.StreamStatus)
		time.Sleep(20 * time.Millisecond)
	}
	second := map[string]int{}
	b := makeBatch(keysN(10), 100, 50, second)
	if err := o.WriteBatch(context.Background(), b); err != service.ErrNotConnected {
		t.Fatalf("write to a deleted stream: %v, want ErrNotConnected", err)
	}
	if err := o.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("connect to a deleted stream: %v", err)
	}
	if _, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, stream)
	if err := o.Connect(context.Background()); err != nil {
		t.Fatalf("connect to the re-created stream: %v", err)
	}
	if err := o.WriteBatch(context.Background(), b); err != nil {
		t.Fatalf("retried batch: %v", err)
	}
	if err := o.WriteBatch(context.Background(), makeBatch(keysN(10), 100, 50, second)); err != nil {
		t.Fatal(err)
	}
	recs := readStream(t, stream)
	if dup := checkOrder(t, byKey(recs), second, true); dup != 0 {
		t.Fatalf("%d copies", dup)
	}
	if len(o.smap.Load().shards) != 3 {
		t.Fatalf("shard map %v after re-creation with 3 shards", o.smap.Load().ids())
	}
}
