package kinesis

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// Integration tests against kinesalite (the real Kinesis wire protocol),
// started by tests/services.sh; they need KINESIS_ENDPOINT,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION.

func mustEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: start the test services (tests/services.sh start, or make test) and export their env", name)
	}
	return v
}

func kinesaliteClient(t testing.TB) *kinesis.Client {
	t.Helper()
	return clientAt(t, mustEnv(t, "KINESIS_ENDPOINT"))
}

// clientAt is an SDK client of the Kinesis server at endpoint.
func clientAt(t testing.TB, endpoint string) *kinesis.Client {
	t.Helper()
	return kinesis.New(kinesis.Options{
		Region:       mustEnv(t, "AWS_REGION"),
		BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(
			mustEnv(t, "AWS_ACCESS_KEY_ID"), mustEnv(t, "AWS_SECRET_ACCESS_KEY"), ""),
	})
}

var streamSeq atomic.Int64

// newStream creates an ACTIVE stream with n shards, deleted at cleanup.
func newStream(t testing.TB, n int) string {
	t.Helper()
	return newStreamAt(t, kinesaliteClient(t), n)
}

// newStreamAt is newStream on the server of c.
func newStreamAt(t testing.TB, c *kinesis.Client, n int) string {
	t.Helper()
	name := fmt.Sprintf("out-%s-%d-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), time.Now().UnixNano()%1e9, streamSeq.Add(1))
	if len(name) > 128 {
		name = name[len(name)-128:]
	}
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	waitActive(t, c, name)
	return name
}

func waitActive(t testing.TB, c *kinesis.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s not ACTIVE: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type streamRecord struct {
	shard, key string
	data       []byte
}

// readStream reads every record of every shard from TRIM_HORIZON, parents
// (lower shard ids) before their children.
func readStream(t testing.TB, name string) []streamRecord {
	t.Helper()
	return readStreamAt(t, kinesaliteClient(t), name)
}

// readStreamAt is readStream on the server of c.
func readStreamAt(t testing.TB, c *kinesis.Client, name string) []streamRecord {
	t.Helper()
	ctx := context.Background()
	shards := listShardsAt(t, c, name)
	var recs []streamRecord
	for _, s := range shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name),
			ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("iterator: %v", err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatalf("get records: %v", err)
			}
			for _, r := range out.Records {
				recs = append(recs, streamRecord{shard: *s.ShardId, key: *r.PartitionKey, data: r.Data})
			}
			if len(out.Records) == 0 && (out.MillisBehindLatest == nil || *out.MillisBehindLatest == 0) {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return recs
}

// listShards lists every shard of the stream (open and closed) as the
// server reports it, by shard id.
func listShards(t testing.TB, name string) []types.Shard {
	t.Helper()
	return listShardsAt(t, kinesaliteClient(t), name)
}

func listShardsAt(t testing.TB, c *kinesis.Client, name string) []types.Shard {
	t.Helper()
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(name)}
	for {
		out, err := c.ListShards(context.Background(), in)
		if err != nil {
			t.Fatalf("list shards: %v", err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	sort.Slice(shards, func(i, j int) bool { return *shards[i].ShardId < *shards[j].ShardId })
	return shards
}

// openShardOwning returns the id of the open shard whose hash key range, as
// ListShards reports it, holds the decimal hash key h.
func openShardOwning(t testing.TB, shards []types.Shard, h string) string {
	t.Helper()
	v, ok := new(big.Int).SetString(h, 10)
	if !ok {
		t.Fatalf("hash key %q", h)
	}
	for _, s := range shards {
		lo, _ := new(big.Int).SetString(*s.HashKeyRange.StartingHashKey, 10)
		hi, _ := new(big.Int).SetString(*s.HashKeyRange.EndingHashKey, 10)
		if s.SequenceNumberRange.EndingSequenceNumber == nil && lo.Cmp(v) <= 0 && hi.Cmp(v) >= 0 {
			return *s.ShardId
		}
	}
	t.Fatalf("no open shard holds hash key %s", h)
	return ""
}

// checkSentOnce fails unless every record of the batches is in recs
// exactly once, byte for byte, and recs holds nothing else.
func checkSentOnce(t testing.TB, recs []streamRecord, batches ...service.MessageBatch) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.data)]++
	}
	n := 0
	for _, b := range batches {
		for _, m := range b {
			d, _ := m.AsBytes()
			if seen[string(d)] != 1 {
				t.Fatalf("record %.40q read back %d times", d, seen[string(d)])
			}
			n++
		}
	}
	if len(recs) != n {
		t.Fatalf("stream holds %d records, %d were sent", len(recs), n)
	}
}

func kinesaliteYAML(t testing.TB, stream, extra string) string {
	return fmt.Sprintf(`
stream: %s
region: %s
endpoint: %s
credentials: {id: %s, secret: %s}
backoff: {initial_interval: 20ms, max_interval: 500ms, max_elapsed_time: 30s}
%s`, stream, mustEnv(t, "AWS_REGION"), mustEnv(t, "KINESIS_ENDPOINT"), mustEnv(t, "AWS_ACCESS_KEY_ID"), mustEnv(t, "AWS_SECRET_ACCESS_KEY"), extra)
}

// newKinesaliteOutput builds the output the way the engine does (real
// client from the config) and connects it.
func newKinesaliteOutput(t testing.TB, yaml string) *output {
	t.Helper()
	o := newTestOutput(t, yaml, nil)
	if err := o.Connect(context.Background()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return o
}

func byKey(recs []streamRecord) map[string][][]byte {
	out := map[string][][]byte{}
	for _, r := range recs {
		out[r.key] = append(out[r.key], r.data)
	}
	return out
}

func TestKinesaliteWritesEveryShardInOrder(t *testing.T) {
	forEachClient(t, testKinesaliteWritesEveryShardInOrder)
}

func testKinesaliteWritesEveryShardInOrder(t *testing.T, clientYAML string) {
	stream := newStream(t, 4)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, clientYAML))
	checkClientMode(t, o, clientYAML)
	keys := keysN(60)
	next := map[string]int{}
	var sent [][]byte
	for i := 0; i < 6; i++ {
		b := makeBatch(keys, 500, 200, next)
		for _, m := range b {
			d, _ := m.AsBytes()
			sent = append(sent, d)
		}
		if err := o.WriteBatch(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	recs := readStream(t, stream)
	if len(recs) != 3000 {
		t.Fatalf("read back %d records, wrote 3000", len(recs))
	}
	if dup := checkOrder(t, byKey(recs), next, true); dup != 0 {
		t.Fatalf("%d copies", dup)
	}
	// Same bytes: every record sent is in the stream exactly once.
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.data)]++
	}
	for _, d := range sent {
		if seen[string(d)] != 1 {
			t.Fatalf("record %.30q read back %d times", d, seen[string(d)])
		}
	}
	// Kinesalite routed every record where our shard map said.
	m := o.smap.Load()
	shardsUsed := map[string]bool{}
	for _, r := range recs {
		if got := m.route(hashPartitionKey(r.key)); got != r.shard {
			t.Fatalf("key %s: routed to %s, stored in %s", r.key, got, r.shard)
		}
		shardsUsed[r.shard] = true
	}
	if len(shardsUsed) != 4 {
		t.Fatalf("records spread over %d of 4 shards", len(shardsUsed))
	}
}

func TestKinesaliteSplitsLargeBatches(t *testing.T) {
	stream := newStream(t, 1)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
	next := map[string]int{}
	// 501 small records, then 7 records of 900 KiB (6.2 MiB), then one
	// record exactly at the 1 MiB limit (data + key) and one over it.
	small := makeBatch(keysN(5), 501, 50, next)
	if err := o.WriteBatch(context.Background(), small); err != nil {
		t.Fatal(err)
	}
	big := makeBatch(keysN(2), 7, 900<<10, next)
	if err := o.WriteBatch(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	k := "public.orders.0"
	exact := testRecord(k, next[k], 1<<20-len(k))
	next[k]++
	over := testRecord("public.orders.1", 999999, 1<<20-len(k)+1)
	edge := service.MessageBatch{}
	for _, d := range [][]byte{exact, over} {
		m := newKeyed(d)
		edge = append(edge, m)
	}
	idx := edge.Index()
	err := o.WriteBatch(context.Background(), edge)
	failed := batchErrIndexes(t, err, idx)
	if len(failed) != 1 || failed[1] == nil || !strings.Contains(failed[1].Error(), "exceeds max_record_size 1048576") {
		t.Fatalf("edge batch: %v", err)
	}
	recs := readStream(t, stream)
	if len(recs) != 501+7+1 {
		t.Fatalf("read back %d records, want 509", len(recs))
	}
	if dup := checkOrder(t, byKey(recs), next, true); dup != 0 {
		t.Fatalf("%d copies without any fault", dup)
	}
	if o.st.requests.Load() < 2+2+1 {
		t.Fatalf("only %d requests: batches were not split", o.st.requests.Load())
	}
}

// newKeyed makes a message whose partition key is the key inside the test
// record.
func newKeyed(d []byte) *service.Message {
	k := strings.SplitN(string(d), "#", 2)[0]
	m := service.NewMessage(d)
	m.MetaSetMut("dms_partition_key", k)
	return m
}

func TestKinesaliteReshardWhileWriting(t *testing.T) {
	stream := newStream(t, 2)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
	c := kinesaliteClient(t)
	var parent string // the shard split
	keys := keysN(40)
	next := map[string]int{}
	// After each refresh, the records written with the new map (from, to)
	// must land on the shards that map routes them to.
	type phase struct {
		m        *shardMap
		from, to map[string]int
	}
	var phases []*phase
	snapshot := func() map[string]int {
		c := map[string]int{}
		for k, v := range next {
			c[k] = v
		}
		return c
	}
	for i := 0; i < 8; i++ {
		if i == 5 {
			phases[0].to = snapshot()
		}
		if i == 2 {
			// Split shard 0 at the middle of its range.
			m := o.smap.Load()
			s0 := m.shards[0]
			parent = s0.id
			lo, _ := new(big.Int).SetString(s0.start.String(), 10)
			hi, _ := new(big.Int).SetString(s0.end.String(), 10)
			mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
			if _, err := c.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String(stream),
				ShardToSplit: aws.String(s0.id), NewStartingHashKey: aws.String(mid.String())}); err != nil {
				t.Fatalf("split: %v", err)
			}
			waitActive(t, c, stream)
		}
		if i == 5 {
			// Merge the two children back.
			m := o.smap.Load()
			if len(m.shards) != 3 || m.has(parent) {
				t.Fatalf("shard map not refreshed after the split of %s: %v", parent, m.ids())
			}
			t.Logf("after split: %v", m.ids())
			if _, err := c.MergeShards(context.Background(), &kinesis.MergeShardsInput{StreamName: aws.String(stream),
				ShardToMerge: aws.String(m.shards[0].id), AdjacentShardToMerge: aws.String(m.shards[1].id)}); err != nil {
				t.Fatalf("merge: %v", err)
			}
			waitActive(t, c, stream)
		}
		if err := o.WriteBatch(context.Background(), makeBatch(keys, 400, 100, next)); err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{2: 3, 5: 2}[i]; want > 0 {
			// The write hit shards the map did not know: the refresher
			// re-lists (at most once a second).
			deadline := time.Now().Add(5 * time.Second)
			for len(o.smap.Load().shards) != want && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			m := o.smap.Load()
			if len(m.shards) != want || m.has(parent) {
				t.Fatalf("shard map after write %d: %v, want %d shards without %s", i, m.ids(), want, parent)
			}
			phases = append(phases, &phase{m: m, from: snapshot()})
		}
	}
	if ids := o.smap.Load().ids(); len(ids) != 2 {
		t.Fatalf("shard map after split and merge: %v", ids)
	}
	phases[1].to = snapshot()
	recs := readStream(t, stream)
	// The refreshed maps route like kinesalite: every record written with
	// one went to the shard it routed the record to.
	for _, r := range recs {
		_, seq := parseTestRecord(t, r.data)
		for _, ph := range phases {
			if seq >= ph.from[r.key] && seq < ph.to[r.key] {
				if want := ph.m.route(hashPartitionKey(r.key)); want != r.shard {
					t.Fatalf("key %s record %d: routed to %s (map %v), stored on %s", r.key, seq, want, ph.m.ids(), r.shard)
				}
			}
		}
	}
	if len(recs) != 8*400 {
		t.Fatalf("read back %d of %d records", len(recs), 8*400)
	}
	if dup := checkOrder(t, byKey(recs), next, true); dup != 0 {
		t.Fatalf("%d copies", dup)
	}
	shardsUsed := map[string]bool{}
	for _, r := range recs {
		shardsUsed[r.shard] = true
	}
	if len(shardsUsed) < 5 {
		t.Fatalf("records in %d shards; parent, children and merged shard should all hold some", len(shardsUsed))
	}
}

func TestKinesaliteMissingStream(t *testing.T) {
	o := newTestOutput(t, kinesaliteYAML(t, "no-such-stream-dmsbridge", ""), nil)
	err := o.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), `kinesis stream "no-such-stream-dmsbridge" does not exist`) {
		t.Fatalf("connect: %v", err)
	}
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("the AWS error is not wrapped: %T", err)
	}
}

// TestKinesaliteThroughTheEngine runs the registered output in a Benthos
// stream (generate input -> aws_kinesis_streams) and reads the records back.
func TestKinesaliteThroughTheEngine(t *testing.T) {
	stream := newStream(t, 2)
	sb := service.NewStreamBuilder()
	if err := sb.SetLoggerYAML("level: warn"); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInputYAML(`
generate:
  count: 300
  interval: ""
  batch_size: 50
  mapping: |
    root = "k%d#%d#payload".format(counter() % 7, ((counter() - 1) / 7).floor())
    meta dms_partition_key = "k%d".format(counter() % 7)
`); err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf(`
aws_kinesis_streams:
  stream: %s
  region: %s
  endpoint: %s
  credentials: {id: %s, secret: %s}
  batching: {count: 100, period: 50ms}
`, stream, mustEnv(t, "AWS_REGION"), mustEnv(t, "KINESIS_ENDPOINT"), mustEnv(t, "AWS_ACCESS_KEY_ID"), mustEnv(t, "AWS_SECRET_ACCESS_KEY"))
	if err := sb.AddOutputYAML(out); err != nil {
		t.Fatal(err)
	}
	testutil.RunStream(t, sb, 60*time.Second)
	recs := readStream(t, stream)
	if len(recs) != 300 {
		t.Fatalf("read back %d of 300", len(recs))
	}
	want := map[string]int{}
	for n := 1; n <= 300; n++ {
		want[fmt.Sprintf("k%d", n%7)]++
	}
	if dup := checkOrder(t, byKey(recs), want, true); dup != 0 {
		t.Fatalf("%d copies", dup)
	}
}
