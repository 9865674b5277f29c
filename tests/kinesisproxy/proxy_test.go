package kinesisproxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// --- helpers (stream set-up and read-back use the shared tests/testutil) ---

// client builds a Kinesis client for base (the proxy's URL); retry=false disables the SDK's retries so each call is
// one request.
func client(t testing.TB, base string, retry bool) *kinesis.Client {
	t.Helper()
	return kinesis.NewFromConfig(testutil.AWSConfig(t), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(base)
		if !retry {
			o.Retryer = aws.NopRetryer{}
		}
		o.HTTPClient = testutil.BufferedBody{C: awshttp.NewBuildableClient()}
	})
}

func waitActive(t testing.TB, c *kinesis.Client, name string) {
	t.Helper()
	err := testutil.WaitFor(10*time.Second, func() bool {
		out, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: &name})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
	if err != nil {
		t.Fatalf("stream %s not ACTIVE after 10s", name)
	}
}

func startProxy(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	cfg.Upstream = testutil.MustEnv(t, "KINESIS_ENDPOINT")
	p, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func entries(n int, prefix string, dataLen int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		d := fmt.Sprintf("%s-%06d", prefix, i)
		if dataLen > 0 {
			d = (d + strings.Repeat("x", dataLen))[:dataLen]
		}
		out[i] = types.PutRecordsRequestEntry{Data: []byte(d), PartitionKey: aws.String(fmt.Sprintf("pk-%s-%d", prefix, i))}
	}
	return out
}

var rateMsg = regexp.MustCompile(`^Rate exceeded for shard (shardId-\d{12}) in stream (\S+) under account 000000000000\.$`)

// --- tests ---

func TestStartValidatesConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Upstream is required"},
		{Config{Upstream: "127.0.0.1:4567"}, "not an http(s) base URL"},
		{Config{Upstream: "http://127.0.0.1:1", ThrottleRate: 1.5}, "ThrottleRate 1.5 is outside [0,1]"},
		{Config{Upstream: "http://127.0.0.1:1", DropRate: -0.1}, "DropRate -0.1 is outside [0,1]"},
		{Config{Upstream: "http://127.0.0.1:1", Latency: -time.Second}, "must not be negative"},
	} {
		p, err := Start(c.cfg)
		if err == nil {
			_ = p.Close()
			t.Errorf("Start(%+v) succeeded, want error containing %q", c.cfg, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Start(%+v) error %q, want it to contain %q", c.cfg, err, c.want)
		}
	}
}

// (1) Entries the proxy rejects are not written; the accepted ones are, at the answered shard and sequence number.
func TestRejectedEntriesAreNotWritten(t *testing.T) {
	stream := testutil.NewStream(t, 3)
	p := startProxy(t, Config{RecordsPerSecond: -1, BytesPerSecond: -1, ThrottleRate: 0.3,
		InternalFailureRate: 0.05, Seed: 42})
	c := client(t, p.URL(), false)

	in := entries(500, "r", 0)
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &stream, Records: in})
	if err != nil {
		t.Fatalf("PutRecords: %v", err)
	}
	if len(out.Records) != 500 {
		t.Fatalf("answer has %d records, want 500", len(out.Records))
	}
	accepted := map[string]types.PutRecordsResultEntry{}
	throttled, internal := 0, 0
	perShard := map[string]int64{}
	for i, r := range out.Records {
		data := string(in[i].Data)
		switch aws.ToString(r.ErrorCode) {
		case "":
			if r.ShardId == nil || r.SequenceNumber == nil {
				t.Fatalf("entry %d: no error and no ShardId/SequenceNumber", i)
			}
			accepted[data] = r
		case "ProvisionedThroughputExceededException":
			throttled++
			m := rateMsg.FindStringSubmatch(aws.ToString(r.ErrorMessage))
			if m == nil || m[2] != stream {
				t.Fatalf("entry %d: ErrorMessage %q", i, aws.ToString(r.ErrorMessage))
			}
			want, err := p.ShardFor(context.Background(), stream, *in[i].PartitionKey, "")
			if err != nil || want != m[1] {
				t.Fatalf("entry %d: message names %s, ShardFor says %s (%v)", i, m[1], want, err)
			}
			perShard[stream+"/"+m[1]]++
		case "InternalFailure":
			internal++
			if aws.ToString(r.ErrorMessage) != "Internal service failure." {
				t.Fatalf("entry %d: ErrorMessage %q", i, aws.ToString(r.ErrorMessage))
			}
		default:
			t.Fatalf("entry %d: unexpected ErrorCode %q", i, *r.ErrorCode)
		}
	}
	if got := int(aws.ToInt32(out.FailedRecordCount)); got != throttled+internal {
		t.Errorf("FailedRecordCount %d, want %d", got, throttled+internal)
	}
	// 500 draws at 30 % and 5 %: far outside these bounds only if the rates are not applied.
	if throttled < 110 || throttled > 190 || internal < 8 || internal > 45 {
		t.Errorf("throttled %d (want ~150), internal failures %d (want ~25)", throttled, internal)
	}

	got := testutil.ReadStream(t, stream)
	if len(got) != len(accepted) {
		t.Errorf("stream holds %d records, %d were accepted", len(got), len(accepted))
	}
	for _, r := range got {
		a, ok := accepted[string(r.Data)]
		if !ok {
			t.Errorf("record %q is in the stream but was answered as failed", string(r.Data))
			continue
		}
		if *a.ShardId != r.Shard || *a.SequenceNumber != r.SequenceNumber {
			t.Errorf("record %q stored at %s/%s, answer said %s/%s", string(r.Data), r.Shard, r.SequenceNumber, *a.ShardId, *a.SequenceNumber)
		}
	}

	st := p.Stats()
	if st.EntriesIn != 500 || st.EntriesForwarded != int64(len(accepted)) || st.Throttled != int64(throttled) ||
		st.InternalFailures != int64(internal) || st.RateLimited != 0 || st.PutRecordsRequests != 1 {
		t.Errorf("stats %+v, want in 500, forwarded %d, throttled %d, internal %d", st, len(accepted), throttled, internal)
	}
	for k, v := range perShard {
		if st.PerShardThrottled[k] != v {
			t.Errorf("PerShardThrottled[%s] = %d, want %d (all %v)", k, st.PerShardThrottled[k], v, st.PerShardThrottled)
		}
	}

	// Every entry rejected: nothing is forwarded, the answer is still a 200 with 10 errors.
	p.SetFaults(Config{RecordsPerSecond: -1, BytesPerSecond: -1, ThrottleRate: 1})
	out, err = c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(10, "all", 0)})
	if err != nil {
		t.Fatalf("PutRecords with ThrottleRate 1: %v", err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 10 || len(out.Records) != 10 ||
		aws.ToString(out.Records[9].ErrorCode) != "ProvisionedThroughputExceededException" {
		t.Errorf("ThrottleRate 1 answer: FailedRecordCount %d, %d records", aws.ToInt32(out.FailedRecordCount), len(out.Records))
	}
	if n := len(testutil.ReadStream(t, stream)); n != len(accepted) {
		t.Errorf("after a fully throttled call the stream holds %d records, want %d", n, len(accepted))
	}

	// A producer that resends only the failed entries ends with every record written exactly once.
	p.SetFaults(Config{RecordsPerSecond: -1, BytesPerSecond: -1, ThrottleRate: 0.3, InternalFailureRate: 0.05})
	retryStream := testutil.NewStream(t, 2)
	pending := entries(500, "retry", 0)
	for attempt := 1; len(pending) > 0; attempt++ {
		if attempt > 30 {
			t.Fatalf("%d entries still failing after 30 attempts", len(pending))
		}
		out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &retryStream, Records: pending})
		if err != nil {
			t.Fatalf("PutRecords attempt %d: %v", attempt, err)
		}
		var next []types.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				next = append(next, pending[i])
			}
		}
		pending = next
	}
	seen := map[string]int{}
	for _, r := range testutil.ReadStream(t, retryStream) {
		seen[string(r.Data)]++
	}
	if len(seen) != 500 {
		t.Errorf("retry loop: %d distinct records in the stream, want 500", len(seen))
	}
	for d, n := range seen {
		if n != 1 {
			t.Errorf("retry loop: record %q written %d times", d, n)
		}
	}

	// Upstream errors are passed through: an unknown stream gives kinesalite's typed error.
	missing := stream + "-missing"
	_, err = c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &missing, Records: entries(2, "m", 0)})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) || !strings.Contains(rnf.ErrorMessage(), missing) {
		t.Errorf("PutRecords to a missing stream: %v, want ResourceNotFoundException naming it", err)
	}
}

// lastJudged is the time the proxy last judged an entry against the bucket of its only shard (the proxy of the
// token bucket tests writes to one stream of one shard).
func lastJudged(t *testing.T, p *Proxy) time.Time {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buckets) != 1 {
		t.Fatalf("%d shard buckets, want the one of the test stream", len(p.buckets))
	}
	for _, b := range p.buckets {
		return b.last
	}
	return time.Time{}
}

// saturate measures what a bucket lets through. It sends one entry (batch(0, -1)'s first, which the full bucket
// accepts), then PutRecords requests of the entries batch(sender, request) returns from 2 concurrent senders for d,
// and returns the entries accepted after the first one and the time between the proxy's judging the first entry
// and its judging the last: the window in which the bucket refilled, taken from the proxy itself. Measured from the
// client, the window would include the answer to the last request (kinesalite storing the accepted entries, slow on
// a loaded machine) during which no token can be taken, and the rate seen would fall below the bucket's.
//
// The load offered must also exceed the rate at every moment, or the test measures the client instead of the
// bucket: each request offers more than the bucket's depth (1 s of the rate), so it takes every token that
// accumulated since the one before as long as requests come less than a second apart, and a second sender keeps
// them coming while one waits for kinesalite. With 25-entry requests (1/8 s of the rate), a round trip of more than
// 125 ms left tokens unused.
func saturate(t *testing.T, p *Proxy, stream string, d time.Duration,
	batch func(sender, request int) []types.PutRecordsRequestEntry) (accepted int, window time.Duration) {
	t.Helper()
	c := client(t, p.URL(), false)
	first := batch(0, -1)[:1]
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &stream, Records: first})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("first entry on a full bucket: %v (failed %d)", err, aws.ToInt32(out.FailedRecordCount))
	}
	t0 := lastJudged(t, p)
	start := time.Now()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for s := 0; s < 2; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc := 0
			defer func() { mu.Lock(); accepted += acc; mu.Unlock() }()
			for b := 0; time.Since(start) < d; b++ {
				out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &stream, Records: batch(s, b)})
				if err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, fmt.Errorf("PutRecords: %w", err))
					mu.Unlock()
					return
				}
				for _, r := range out.Records {
					switch aws.ToString(r.ErrorCode) {
					case "":
						acc++
					case "ProvisionedThroughputExceededException":
					default:
						mu.Lock()
						firstErr = cmp.Or(firstErr, fmt.Errorf("unexpected ErrorCode %q", *r.ErrorCode))
						mu.Unlock()
						return
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return accepted, lastJudged(t, p).Sub(t0)
}

// (2) The token buckets let through their rate (+ what was left of the
// initial burst): never more than 10 % above it, and at least 80 % of it (a
// client stalled for more than the burst on a loaded machine can leave tokens
// unused).
func TestTokenBucketRates(t *testing.T) {
	t.Run("records", func(t *testing.T) {
		stream := testutil.NewStream(t, 1)
		const rate = 200.0
		p := startProxy(t, Config{RecordsPerSecond: rate, BytesPerSecond: -1, Burst: time.Second})
		// 250 entries a request: more than the bucket's depth (200).
		acc, el := saturate(t, p, stream, 3*time.Second, func(s, b int) []types.PutRecordsRequestEntry {
			return entries(250, fmt.Sprint("s", s, "b", b), 0)
		})
		got := (float64(acc) - (rate*1 - 1)) / el.Seconds()
		t.Logf("accepted 1 + %d records in %v: %.1f records/s after the %v burst", acc, el, got, rate)
		if got < rate*0.8 || got > rate*1.1 {
			t.Errorf("rate %.1f records/s, want %v (-20 %%, +10 %%)", got, rate)
		}
		st := p.Stats()
		if st.EntriesForwarded != int64(acc+1) || st.RateLimited != st.EntriesIn-int64(acc+1) || st.RateLimited == 0 {
			t.Errorf("stats %+v do not match 1 + %d accepted", st, acc)
		}
		if n := len(testutil.ReadStream(t, stream)); n != acc+1 {
			t.Errorf("stream holds %d records, 1 + %d were accepted", n, acc)
		}
	})

	t.Run("bytes", func(t *testing.T) {
		stream := testutil.NewStream(t, 1)
		const rate = 20000.0 // bytes/s; each entry is 92 data + 8 key bytes
		p := startProxy(t, Config{RecordsPerSecond: -1, BytesPerSecond: rate, Burst: time.Second})
		// 92-byte data and fixed 8-byte keys: every entry costs exactly 100 bytes; 250 entries a request are
		// 25000 bytes, more than the bucket's depth (20000).
		acc, el := saturate(t, p, stream, 3*time.Second, func(s, b int) []types.PutRecordsRequestEntry {
			recs := entries(250, fmt.Sprint("s", s, "b", b), 92)
			for i := range recs {
				recs[i].PartitionKey = aws.String(fmt.Sprintf("k%07d", (s*5000000+(b+1)*250+i)%10000000))
			}
			return recs
		})
		got := (float64(acc*100) - (rate*1 - 100)) / el.Seconds()
		t.Logf("accepted 1 + %d x 100 bytes in %v: %.0f bytes/s after the 1 s burst", acc, el, got)
		if got < rate*0.8 || got > rate*1.1 {
			t.Errorf("rate %.0f bytes/s, want %v (-20 %%, +10 %%)", got, rate)
		}
		if n := len(testutil.ReadStream(t, stream)); n != acc+1 {
			t.Errorf("stream holds %d records, 1 + %d were accepted", n, acc)
		}
	})
}

// (3) The proxy's shard for each key is the shard kinesalite stores it in, before and after a SplitShard; buckets
// are per shard.
func TestShardRouting(t *testing.T) {
	ctx := context.Background()
	direct := testutil.KinesisClient(t)
	stream := testutil.NewStream(t, 4)
	p := startProxy(t, Config{RecordsPerSecond: -1, BytesPerSecond: -1, ShardRefresh: 100 * time.Millisecond})
	c := client(t, p.URL(), false)

	maxKey := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	explicit := map[string]string{} // data -> explicit hash key
	put := func(prefix string) {
		t.Helper()
		in := entries(200, prefix, 0)
		for i := 0; i < 20; i++ {
			h := new(big.Int).Div(new(big.Int).Mul(maxKey, big.NewInt(int64(i))), big.NewInt(19))
			in[i].ExplicitHashKey = aws.String(h.String())
			explicit[string(in[i].Data)] = h.String()
		}
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: in})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: %v (failed %d)", err, aws.ToInt32(out.FailedRecordCount))
		}
	}
	check := func(prefix string) map[string]int {
		t.Helper()
		perShard := map[string]int{}
		n := 0
		for _, r := range testutil.ReadStream(t, stream) {
			if !strings.HasPrefix(string(r.Data), prefix+"-") {
				continue
			}
			n++
			want, err := p.ShardFor(ctx, stream, r.PartitionKey, explicit[string(r.Data)])
			if err != nil {
				t.Fatalf("ShardFor: %v", err)
			}
			if want != r.Shard {
				t.Errorf("record %q (key %q, explicit %q): proxy maps it to %s, kinesalite stored it in %s",
					string(r.Data), r.PartitionKey, explicit[string(r.Data)], want, r.Shard)
			}
			perShard[r.Shard]++
		}
		if n != 200 {
			t.Fatalf("read %d records with prefix %s, want 200", n, prefix)
		}
		return perShard
	}

	put("before")
	before := check("before")
	if len(before) != 4 {
		t.Errorf("records spread over %v, want all 4 shards", before)
	}

	// Split shard 0 at the middle of its range through the proxy; after ShardRefresh the proxy routes to the children.
	ls, err := direct.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &stream})
	if err != nil {
		t.Fatal(err)
	}
	s0 := ls.Shards[0]
	lo, _ := new(big.Int).SetString(*s0.HashKeyRange.StartingHashKey, 10)
	hi, _ := new(big.Int).SetString(*s0.HashKeyRange.EndingHashKey, 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &stream, ShardToSplit: s0.ShardId,
		NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatalf("SplitShard through the proxy: %v", err)
	}
	waitActive(t, direct, stream)
	time.Sleep(150 * time.Millisecond)
	put("after")
	after := check("after")
	if after[*s0.ShardId] != 0 || after["shardId-000000000004"] == 0 || after["shardId-000000000005"] == 0 {
		t.Errorf("after splitting %s records went to %v, want the closed shard empty and both children used",
			*s0.ShardId, after)
	}

	// Buckets are per shard: depth 10 records, 40 entries per shard in one call -> exactly 10 accepted per shard,
	// and every throttle message names the entry's shard.
	p.SetFaults(Config{RecordsPerSecond: 10, BytesPerSecond: -1, Burst: time.Second, ShardRefresh: time.Minute})
	var in []types.PutRecordsRequestEntry
	count := map[string]int{}
	for i := 0; len(in) < 200; i++ {
		key := fmt.Sprintf("limit-%d", i)
		sh, err := p.ShardFor(ctx, stream, key, "")
		if err != nil {
			t.Fatal(err)
		}
		if count[sh] < 40 {
			count[sh]++
			in = append(in, types.PutRecordsRequestEntry{Data: []byte(key), PartitionKey: aws.String(key)})
		}
	}
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: in})
	if err != nil {
		t.Fatal(err)
	}
	acceptedPer := map[string]int{}
	for i, r := range out.Records {
		sh, _ := p.ShardFor(ctx, stream, *in[i].PartitionKey, "")
		if r.ErrorCode == nil {
			acceptedPer[sh]++
			if *r.ShardId != sh {
				t.Errorf("entry %d answered in %s, proxy routed it to %s", i, *r.ShardId, sh)
			}
			continue
		}
		if m := rateMsg.FindStringSubmatch(aws.ToString(r.ErrorMessage)); m == nil || m[1] != sh {
			t.Errorf("entry %d (shard %s): %s %s", i, sh, *r.ErrorCode, aws.ToString(r.ErrorMessage))
		}
	}
	for sh, n := range count {
		if n != 40 || acceptedPer[sh] != 10 {
			t.Errorf("shard %s: %d sent, %d accepted, want 40 and 10 (all %v)", sh, n, acceptedPer[sh], acceptedPer)
		}
	}
	if len(count) != 5 {
		t.Errorf("entries went to %d open shards, want 5: %v", len(count), count)
	}
}

// (4) Request-level faults as an SDK client sees them.
func TestRequestFaults(t *testing.T) {
	ctx := context.Background()
	noLimit := Config{RecordsPerSecond: -1, BytesPerSecond: -1}

	t.Run("http500", func(t *testing.T) {
		stream := testutil.NewStream(t, 1)
		cfg := noLimit
		cfg.HTTP500Rate = 1
		p := startProxy(t, cfg)
		c := client(t, p.URL(), false)
		_, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(5, "h", 0)})
		var ae smithy.APIError
		var re *awshttp.ResponseError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InternalFailure" || !errors.As(err, &re) ||
			re.HTTPStatusCode() != http.StatusInternalServerError {
			t.Fatalf("PutRecords error %v, want HTTP 500 InternalFailure", err)
		}
		_, err = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &stream})
		if !errors.As(err, &ae) || ae.ErrorCode() != "InternalFailure" {
			t.Fatalf("DescribeStreamSummary error %v, want InternalFailure", err)
		}
		// The SDK's default retryer retries 500s: 3 attempts, all answered 500.
		_, err = client(t, p.URL(), true).PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(5, "h2", 0)})
		if err == nil {
			t.Fatal("PutRecords with retries succeeded through HTTP500Rate 1")
		}
		if st := p.Stats(); st.HTTP500 != 5 || st.EntriesForwarded != 0 {
			t.Errorf("stats %+v, want HTTP500 5 (1 + 1 + 3 attempts), nothing forwarded", st)
		}
		if n := len(testutil.ReadStream(t, stream)); n != 0 {
			t.Errorf("stream holds %d records, want 0", n)
		}
	})

	t.Run("drop", func(t *testing.T) {
		stream := testutil.NewStream(t, 1)
		cfg := noLimit
		cfg.DropRate = 1
		p := startProxy(t, cfg)
		c := client(t, p.URL(), false)
		_, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(5, "d", 0)})
		assertTransportError(t, err)
		if st := p.Stats(); st.Dropped != 1 || st.Requests != 1 || st.EntriesForwarded != 0 {
			t.Errorf("stats %+v, want 1 request dropped, nothing forwarded", st)
		}
		if n := len(testutil.ReadStream(t, stream)); n != 0 {
			t.Errorf("stream holds %d records, want 0", n)
		}
		// Half the requests dropped, the rest get through.
		cfg.DropRate, cfg.Seed = 0.5, 7
		p.SetFaults(cfg)
		ok := 0
		for i := 0; i < 40; i++ {
			if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(1, fmt.Sprint("h", i), 0)}); err == nil {
				ok++
			}
		}
		if ok < 8 || ok > 32 {
			t.Errorf("%d of 40 calls succeeded at DropRate 0.5", ok)
		}
		if n := len(testutil.ReadStream(t, stream)); n != ok {
			t.Errorf("stream holds %d records, %d calls succeeded", n, ok)
		}
	})

	t.Run("latency", func(t *testing.T) {
		stream := testutil.NewStream(t, 1)
		cfg := noLimit
		cfg.Latency = 1500 * time.Millisecond // far above a loaded machine's own delays
		p := startProxy(t, cfg)
		c := client(t, p.URL(), false)
		start := time.Now()
		if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(1, "slow", 0)}); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 1500*time.Millisecond || el > 6*time.Second {
			t.Errorf("PutRecords took %v with 1.5s latency", el)
		}
		// A client that gives up during the delay lost the answer, but the record was written.
		tctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		_, err := c.PutRecords(tctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(1, "lost", 0)})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("PutRecords with a 150ms deadline: %v, want deadline exceeded", err)
		}
		p.SetFaults(noLimit)
		start = time.Now()
		if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(1, "fast", 0)}); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el >= 1500*time.Millisecond {
			t.Errorf("PutRecords took %v after latency was set to 0", el)
		}
		var data []string
		for _, r := range testutil.ReadStream(t, stream) {
			data = append(data, string(r.Data))
		}
		sort.Strings(data)
		if want := "fast-000000 lost-000000 slow-000000"; strings.Join(data, " ") != want {
			t.Errorf("stream holds %v, want %s", data, want)
		}
	})

	t.Run("pause", func(t *testing.T) {
		stream := testutil.NewStream(t, 2)
		p := startProxy(t, noLimit)
		c := client(t, p.URL(), false)
		p.Pause()
		_, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(5, "paused", 0)})
		assertTransportError(t, err)
		_, err = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &stream})
		assertTransportError(t, err)
		if st := p.Stats(); st.Dropped != 2 || st.EntriesIn != 0 || st.EntriesForwarded != 0 {
			t.Errorf("stats while paused %+v, want 2 dropped, nothing forwarded", st)
		}
		if n := len(testutil.ReadStream(t, stream)); n != 0 {
			t.Errorf("stream holds %d records after a paused PutRecords, want 0", n)
		}
		p.Resume()
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(5, "resumed", 0)})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords after Resume: %v", err)
		}
		got := testutil.ReadStream(t, stream)
		if len(got) != 5 {
			t.Fatalf("stream holds %d records, want the 5 sent after Resume", len(got))
		}
		for _, r := range got {
			if !strings.HasPrefix(string(r.Data), "resumed-") {
				t.Errorf("unexpected record %q", string(r.Data))
			}
		}
	})

	t.Run("putrecord", func(t *testing.T) {
		stream := testutil.NewStream(t, 1)
		p := startProxy(t, Config{RecordsPerSecond: 1, BytesPerSecond: -1, Burst: time.Second})
		c := client(t, p.URL(), false)
		put := func(d string) error {
			_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &stream, Data: []byte(d), PartitionKey: aws.String(d)})
			return err
		}
		if err := put("first"); err != nil {
			t.Fatalf("first PutRecord: %v", err)
		}
		err := put("second")
		var pe *types.ProvisionedThroughputExceededException
		var re *awshttp.ResponseError
		if !errors.As(err, &pe) || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
			t.Fatalf("second PutRecord: %v, want HTTP 400 ProvisionedThroughputExceededException", err)
		}
		if m := rateMsg.FindStringSubmatch(pe.ErrorMessage()); m == nil || m[1] != "shardId-000000000000" || m[2] != stream {
			t.Errorf("message %q", pe.ErrorMessage())
		}
		p.SetFaults(Config{RecordsPerSecond: -1, BytesPerSecond: -1, InternalFailureRate: 1})
		err = put("third")
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InternalFailure" || !errors.As(err, &re) ||
			re.HTTPStatusCode() != http.StatusInternalServerError {
			t.Fatalf("third PutRecord: %v, want HTTP 500 InternalFailure", err)
		}
		got := testutil.ReadStream(t, stream)
		if len(got) != 1 || string(got[0].Data) != "first" {
			t.Errorf("stream holds %v, want only \"first\"", got)
		}
		if st := p.Stats(); st.PutRecordRequests != 3 || st.Throttled != 1 || st.RateLimited != 1 ||
			st.InternalFailures != 1 || st.EntriesForwarded != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

// assertTransportError checks that err is a failed call with no HTTP answer (the connection was closed).
func assertTransportError(t *testing.T, err error) {
	t.Helper()
	var ae smithy.APIError
	var re *awshttp.ResponseError
	var oe *smithy.OperationError
	if err == nil || errors.As(err, &ae) || !errors.As(err, &oe) || (errors.As(err, &re) && re.HTTPStatusCode() != 0) {
		t.Fatalf("error %v (%T), want a transport error with no HTTP answer", err, err)
	}
	if s := err.Error(); !strings.Contains(s, "request send failed") {
		t.Errorf("error %q does not say the request failed without an answer", s)
	}
}

// BenchmarkProxyOverhead compares PutRecords throughput (500 x 200-byte records per call, 4 shards, one caller)
// straight to kinesalite and through the proxy with unlimited buckets, so benchmark authors know what the proxy costs.
func BenchmarkProxyOverhead(b *testing.B) {
	direct := testutil.KinesisClient(b)
	stream := testutil.NewStream(b, 4)
	p := startProxy(b, Config{RecordsPerSecond: -1, BytesPerSecond: -1})
	via := client(b, p.URL(), true)
	run := func(c *kinesis.Client, calls int) float64 {
		start := time.Now()
		for i := 0; i < calls; i++ {
			out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &stream,
				Records: entries(500, fmt.Sprint("bench", i), 200)})
			if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
				b.Fatalf("PutRecords: %v", err)
			}
		}
		return float64(calls*500) / time.Since(start).Seconds()
	}
	var d, v float64
	for b.Loop() {
		d += run(direct, 10)
		v += run(via, 10)
	}
	b.ReportMetric(d/float64(b.N), "direct-records/s")
	b.ReportMetric(v/float64(b.N), "proxy-records/s")
	b.ReportMetric(v/d, "proxy/direct")
}

// TestClientGoneUpstreamCompletes: a client that gives up does not abort the
// upstream call (kinesalite crashes on aborted requests; real Kinesis carries
// a received request out).
func TestClientGoneUpstreamCompletes(t *testing.T) {
	finished := make(chan error, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // the server notices a closed connection only after the body
		select {
		case <-time.After(300 * time.Millisecond):
			w.Write([]byte("{}"))
			finished <- nil
		case <-r.Context().Done():
			finished <- r.Context().Err()
		}
	}))
	defer up.Close()
	p, err := Start(Config{Upstream: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := &http.Client{Timeout: 50 * time.Millisecond}
	req, _ := http.NewRequest(http.MethodPost, p.URL(), strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.DescribeStream")
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the client did not time out")
	}
	select {
	case err := <-finished:
		if err != nil {
			t.Fatalf("the upstream call was aborted when the client went away: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call never finished")
	}
}

// The largest PutRecords call is recorded, entries and bytes (decoded data plus partition key), also for a call
// the stand-in rejects as a whole.
func TestMaxPutRecordsSize(t *testing.T) {
	stream := testutil.NewStream(t, 1)
	p := startProxy(t, Config{RecordsPerSecond: -1, BytesPerSecond: -1})
	c := client(t, p.URL(), false)
	in := entries(3, "m", 1000)
	want := 0
	for _, e := range in {
		want += len(e.Data) + len(*e.PartitionKey)
	}
	if _, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &stream, Records: in}); err != nil {
		t.Fatalf("PutRecords: %v", err)
	}
	if st := p.Stats(); st.MaxPutRecordsEntries != 3 || st.MaxPutRecordsBytes != int64(want) {
		t.Fatalf("after 3 entries of %d bytes: max entries %d, max bytes %d", want, st.MaxPutRecordsEntries, st.MaxPutRecordsBytes)
	}
	_, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &stream, Records: entries(501, "n", 10)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Fatalf("501 entries: %v, want the stand-in's ValidationException", err)
	}
	if st := p.Stats(); st.MaxPutRecordsEntries != 501 || st.MaxPutRecordsBytes < 501*10 {
		t.Fatalf("after 501 entries: max entries %d, max bytes %d", st.MaxPutRecordsEntries, st.MaxPutRecordsBytes)
	}
}
