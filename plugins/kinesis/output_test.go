package kinesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/tests/kinesisproxy"
)

// newTestOutput parses yaml with the real spec and connects an output to
// client.
func newTestOutput(t testing.TB, yaml string, client kinesisAPI) *output {
	t.Helper()
	pc, err := outputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	oc, err := parseOutputConfig(pc)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	o := newOutput(oc, service.MockResources())
	if c, ok := client.(*kinesis.Client); ok {
		// Like newClient: credentials errors typed, PutRecords through
		// the output's own path unless sdk_client is set.
		client = o.clientFor(c)
	}
	if client != nil {
		o.newClient = func(context.Context) (kinesisAPI, error) { return client, nil }
		if err := o.Connect(context.Background()); err != nil {
			t.Fatalf("connect: %v", err)
		}
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	return o
}

// clientModes are the two PutRecords paths: the output's own (default) and
// the SDK's (sdk_client: true).
var clientModes = []struct{ name, yaml string }{{"own", ""}, {"sdk", "sdk_client: true\n"}}

func forEachClient(t *testing.T, test func(t *testing.T, clientYAML string)) {
	for _, m := range clientModes {
		t.Run(m.name, func(t *testing.T) { test(t, m.yaml) })
	}
}

// checkClientMode fails unless o sends PutRecords through the path
// clientYAML selects.
func checkClientMode(t testing.TB, o *output, clientYAML string) {
	t.Helper()
	o.mu.Lock()
	_, own := o.client.(fastPutter)
	o.mu.Unlock()
	if own != (clientYAML == "") {
		t.Fatalf("config %q: client %T", clientYAML, o.client)
	}
}

// testRecord is the payload of record seq of key: "<key>#<seq>#" padded with
// x to size bytes.
func testRecord(key string, seq, size int) []byte {
	b := []byte(key + "#" + strconv.Itoa(seq) + "#")
	for len(b) < size {
		b = append(b, 'x')
	}
	return b
}

func parseTestRecord(t testing.TB, b []byte) (string, int) {
	t.Helper()
	parts := strings.SplitN(string(b), "#", 3)
	if len(parts) != 3 {
		t.Fatalf("record %q is not ours", b)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return parts[0], n
}

// makeBatch builds n messages over keys, records of each key numbered from
// next[key].
func makeBatch(keys []string, n, size int, next map[string]int) service.MessageBatch {
	b := make(service.MessageBatch, n)
	for i := range b {
		k := keys[i%len(keys)]
		m := service.NewMessage(testRecord(k, next[k], size))
		next[k]++
		m.MetaSetMut("dms_partition_key", k)
		b[i] = m
	}
	return b
}

func keysN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("public.orders.%d", i)
	}
	return out
}

// checkOrder checks what a consumer reading the stream per key sees: every
// record 0..want[key]-1 present, and the last copy of each record in order
// (strict mode; copies come from re-sends). It returns the number of copies
// beyond one per record.
func checkOrder(t testing.TB, got map[string][][]byte, want map[string]int, strict bool) int {
	t.Helper()
	extra := 0
	for k, n := range want {
		recs := got[k]
		last := make([]int, n)
		for i := range last {
			last[i] = -1
		}
		var seqs []int
		for i, d := range recs {
			key, seq := parseTestRecord(t, d)
			if key != k {
				t.Fatalf("record of key %q stored under partition key %q", key, k)
			}
			if seq >= n {
				t.Fatalf("key %s: unexpected record %d", k, seq)
			}
			last[seq] = i
			seqs = append(seqs, seq)
		}
		for seq, pos := range last {
			if pos < 0 {
				t.Fatalf("key %s: record %d lost (stream has %v)", k, seq, seqs)
			}
			if strict && seq > 0 && pos < last[seq-1] {
				t.Fatalf("key %s: last copy of record %d precedes the last copy of record %d: %v", k, seq, seq-1, seqs)
			}
		}
		extra += len(recs) - n
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("unexpected key %q in stream", k)
		}
	}
	return extra
}

// batchErrIndexes returns the failed indexes of a batch error; idx must be
// made with Index() before the batch was written.
func batchErrIndexes(t testing.TB, err error, idx *service.Indexer) map[int]error {
	t.Helper()
	var be *service.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("want a *service.BatchError, got %T %v", err, err)
	}
	out := map[int]error{}
	be.WalkMessagesIndexedBy(idx, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			out[i] = err
		}
		return true
	})
	return out
}

const fakeYAML = `
stream: dms-target
region: us-east-1
backoff:
  initial_interval: 5ms
  max_interval: 50ms
  max_elapsed_time: 10s
`

// On the fake: it delays requests and counts PutRecords in flight per shard,
// which neither kinesalite nor the proxy can (kinesalite: TestKinesaliteWritesEveryShardInOrder).
func TestWritesAllRecordsInOrderOverShards(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 4)
	f.latency = 2 * time.Millisecond
	o := newTestOutput(t, fakeYAML+"shard_rate: {records_per_second: 0, bytes_per_second: 0}\n", f.client())
	keys := keysN(40)
	next := map[string]int{}
	for i := 0; i < 3; i++ {
		if err := o.WriteBatch(context.Background(), makeBatch(keys, 1200, 100, next)); err != nil {
			t.Fatal(err)
		}
	}
	if dup := checkOrder(t, f.byKey(), next, true); dup != 0 {
		t.Fatalf("%d copies without any fault", dup)
	}
	if f.maxInflight != 1 {
		t.Fatalf("up to %d PutRecords in flight on one shard", f.maxInflight)
	}
	// Every request holds records of one shard only.
	for _, r := range f.requests {
		sh := f.shardFor(r.entries[0]).id
		for _, e := range r.entries {
			if f.shardFor(e).id != sh {
				t.Fatalf("a request mixes shards %s and %s", sh, f.shardFor(e).id)
			}
		}
	}
	if got := o.st.written.Load(); got != 3600 {
		t.Fatalf("written counter %d", got)
	}
}

// TestSplitsRequestsByCountAndBytes: a batch goes out in PutRecords
// requests of at most 500 records and 5 MiB (partition keys counted), as
// the proxy in front of kinesalite sees them.
func TestSplitsRequestsByCountAndBytes(t *testing.T) {
	stream := newStream(t, 1)
	p := startProxy(t, kinesisproxy.Config{RecordsPerSecond: -1, BytesPerSecond: -1})
	o := connectOutput(t, proxyYAML(t, stream, p.URL(), "shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
	next := map[string]int{}
	small := makeBatch(keysN(7), 501, 10, next)
	if err := o.WriteBatch(context.Background(), small); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.PutRecordsRequests != 2 || st.EntriesIn != 501 || st.MaxPutRecordsEntries != 500 {
		t.Fatalf("501 records went out as %d requests (%d records, at most %d in one)", st.PutRecordsRequests, st.EntriesIn, st.MaxPutRecordsEntries)
	}
	// 12 records of 1000 KiB = ~11.7 MiB: 5 fit in 5 MiB with their keys.
	big := makeBatch(keysN(3), 12, 1000<<10, next)
	if err := o.WriteBatch(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	st2 := p.Stats()
	if n, recs := st2.PutRecordsRequests-st.PutRecordsRequests, st2.EntriesIn-st.EntriesIn; n != 3 || recs != 12 {
		t.Fatalf("12 big records went out in %d requests (%d records)", n, recs)
	}
	if st2.MaxPutRecordsBytes > 5<<20 {
		t.Fatalf("a request of %d bytes (data + partition keys)", st2.MaxPutRecordsBytes)
	}
	recs := readStream(t, stream)
	checkSentOnce(t, recs, small, big)
	if dup := checkOrder(t, byKey(recs), next, true); dup != 0 {
		t.Fatalf("%d copies without any fault", dup)
	}
}

// The 5 MiB request limit counts partition keys: 500 records whose data
// alone fits (500 x 10,485 bytes = 5,242,500) but not with their
// 256-character keys go out in two requests.
func TestRequestSizeCountsPartitionKeys(t *testing.T) {
	stream := newStream(t, 1)
	p := startProxy(t, kinesisproxy.Config{RecordsPerSecond: -1, BytesPerSecond: -1})
	o := connectOutput(t, proxyYAML(t, stream, p.URL(), "shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
	var b service.MessageBatch
	for i := 0; i < 500; i++ {
		m := service.NewMessage(bytes.Repeat([]byte{'a' + byte(i%26)}, 10485))
		m.MetaSetMut("dms_partition_key", fmt.Sprintf("%0256d", i))
		b = append(b, m)
	}
	if err := o.WriteBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.PutRecordsRequests < 2 || st.MaxPutRecordsBytes > 5<<20 || st.EntriesIn != 500 {
		t.Fatalf("%d requests, the largest %d bytes with keys (limit %d), %d records", st.PutRecordsRequests, st.MaxPutRecordsBytes, 5<<20, st.EntriesIn)
	}
	if n := len(readStream(t, stream)); n != 500 {
		t.Fatalf("stream holds %d records, want 500", n)
	}
}

func TestOversizedRecordAndBadKeysFailAlone(t *testing.T) {
	stream := newStream(t, 2)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
	b := service.MessageBatch{}
	add := func(key string, data []byte) {
		m := service.NewMessage(data)
		m.MetaSetMut("dms_partition_key", key)
		b = append(b, m)
	}
	add("k", testRecord("k", 0, 100))
	add("k2", bytes.Repeat([]byte("y"), 1<<20)) // 1 MiB data + 2-byte key: too big
	add("k", testRecord("k", 1, 100))
	add(strings.Repeat("é", 257), []byte("x"))            // 257 characters
	add("", []byte("x"))                                  // empty key
	add(strings.Repeat("é", 256), []byte("256 chars ok")) // 256 characters, 512 bytes
	add("k3", bytes.Repeat([]byte("z"), 1<<20-2))         // exactly 1 MiB with key
	idx := b.Index()
	err := o.WriteBatch(context.Background(), b)
	failed := batchErrIndexes(t, err, idx)
	if len(failed) != 3 {
		t.Fatalf("failed indexes %v, want 1, 3, 4", failed)
	}
	for i, want := range map[int]string{
		1: "record of 1048578 bytes (data 1048576 + partition key 2) exceeds max_record_size 1048576",
		3: "partition key has 257 characters, Kinesis allows at most 256",
		4: "partition key is empty",
	} {
		if failed[i] == nil || !strings.Contains(failed[i].Error(), want) {
			t.Errorf("index %d: error %v, want %q", i, failed[i], want)
		}
	}
	recs := readStream(t, stream)
	checkSentOnce(t, recs, service.MessageBatch{b[0], b[2], b[5], b[6]})
	got := byKey(recs)
	if len(got["k"]) != 2 || len(got[strings.Repeat("é", 256)]) != 1 || len(got["k3"]) != 1 || len(got["k2"]) != 0 {
		t.Fatalf("stored %d/%d/%d/%d", len(got["k"]), len(got[strings.Repeat("é", 256)]), len(got["k3"]), len(got["k2"]))
	}
	if extra := checkOrder(t, map[string][][]byte{"k": got["k"]}, map[string]int{"k": 2}, true); extra != 0 {
		t.Fatalf("%d copies", extra)
	}
}

// throttleFault throttles (or fails with code) a seeded fraction of records.
func throttleFault(rate float64, seed int64, codes ...string) func(int, fakeEntry) string {
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(seed))
	return func(_ int, _ fakeEntry) string {
		mu.Lock()
		defer mu.Unlock()
		if rng.Float64() < rate {
			return codes[rng.Intn(len(codes))]
		}
		return ""
	}
}

func TestStrictOrderUnderPartialFailures(t *testing.T) {
	forEachClient(t, testStrictOrderUnderPartialFailures)
}

func testStrictOrderUnderPartialFailures(t *testing.T, clientYAML string) {
	f := newFakeKinesis(t, "dms-target", 3)
	f.recordFault = throttleFault(0.3, 1, "ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException")
	o := newTestOutput(t, fakeYAML+"shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"+clientYAML, f.client())
	checkClientMode(t, o, clientYAML)
	keys := keysN(8) // few keys: many records of a key share a request
	next := map[string]int{}
	for i := 0; i < 4; i++ {
		if err := o.WriteBatch(context.Background(), makeBatch(keys, 1000, 50, next)); err != nil {
			t.Fatal(err)
		}
	}
	extra := checkOrder(t, f.byKey(), next, true)
	dups := int(o.st.dupOrdering.Load())
	if extra != dups {
		t.Fatalf("stream holds %d extra copies, the duplicates counter says %d", extra, dups)
	}
	if dups == 0 {
		t.Fatal("30% throttling with 8 keys produced no ordering duplicates: the test exercises nothing")
	}
	// Bounded: a copy is made only for a record written after a failed
	// record of its key; with 30% failures that stays well below 4000
	// copies per 4000 records (each record is re-sent at most once per
	// failure of an earlier record in the same request).
	if dups > 4000/4 {
		t.Fatalf("%d duplicates for 4000 records", dups)
	}
	if o.st.written.Load() != 4000 || f.total() != 4000+dups {
		t.Fatalf("written counter %d (want 4000), stream holds %d (want %d)", o.st.written.Load(), f.total(), 4000+dups)
	}
	if o.st.throttled.Load() == 0 || o.st.retries.Load() == 0 {
		t.Fatal("throttle or retry counters not counted")
	}
	t.Logf("4000 records, %d requests, %d ordering copies, %d throttled", o.st.requests.Load(), dups, o.st.throttled.Load())
}

func TestRelaxedResendsOnlyFailedRecords(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 2)
	f.recordFault = throttleFault(0.3, 2, "ProvisionedThroughputExceededException", "InternalFailure")
	o := newTestOutput(t, fakeYAML+"ordering: relaxed\nshard_rate: {records_per_second: 0, bytes_per_second: 0}\n", f.client())
	next := map[string]int{}
	if err := o.WriteBatch(context.Background(), makeBatch(keysN(5), 2000, 50, next)); err != nil {
		t.Fatal(err)
	}
	// Copies can only come from re-sending a request whose outcome was
	// unknown (a transport error), never from ordering.
	if extra := checkOrder(t, f.byKey(), next, false); extra > int(o.st.unknownResends.Load()) {
		t.Fatalf("relaxed mode stored %d copies, %d unknown-outcome re-sends", extra, o.st.unknownResends.Load())
	}
	if o.st.dupOrdering.Load() != 0 {
		t.Fatal("relaxed mode counted ordering duplicates")
	}
}

func TestRequestLevelFaultsAreRetried(t *testing.T) {
	forEachClient(t, testRequestLevelFaultsAreRetried)
}

func testRequestLevelFaultsAreRetried(t *testing.T, clientYAML string) {
	f := newFakeKinesis(t, "dms-target", 2)
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(3))
	f.requestFault = func(int) (int, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		switch x := rng.Float64(); {
		case x < 0.15:
			return 500, "InternalFailure", false
		case x < 0.25:
			return 503, "ServiceUnavailable", true // applied, then failed: ambiguous
		case x < 0.35:
			return 400, "ProvisionedThroughputExceededException", false
		}
		return 0, "", false
	}
	o := newTestOutput(t, fakeYAML+"shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"+clientYAML, f.client())
	checkClientMode(t, o, clientYAML)
	next := map[string]int{}
	for i := 0; i < 5; i++ {
		if err := o.WriteBatch(context.Background(), makeBatch(keysN(6), 600, 40, next)); err != nil {
			t.Fatal(err)
		}
	}
	extra := checkOrder(t, f.byKey(), next, true)
	if unk := int(o.st.unknownResends.Load()); extra > unk {
		t.Fatalf("%d extra copies but only %d records re-sent after an unknown outcome", extra, unk)
	}
	if extra == 0 {
		t.Fatal("no ambiguous failure happened: the test exercises nothing")
	}
}

func TestRetryBudgetFailsOnlyUnwrittenRecords(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 2)
	f.recordFault = func(_ int, e fakeEntry) string {
		if e.PartitionKey == "public.orders.1" && bytes.Contains(e.Data, []byte("#3#")) {
			return "ProvisionedThroughputExceededException"
		}
		return ""
	}
	o := newTestOutput(t, `
stream: dms-target
region: us-east-1
backoff: {initial_interval: 10ms, max_interval: 20ms, max_elapsed_time: 200ms}
shard_rate: {records_per_second: 0, bytes_per_second: 0}
`, f.client())
	next := map[string]int{}
	b := makeBatch(keysN(3), 30, 20, next) // key 1 at indexes 1,4,...,28; its record 3 at index 10
	start := time.Now()
	idx := b.Index()
	err := o.WriteBatch(context.Background(), b)
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("budget of 200ms took %v", el)
	}
	failed := batchErrIndexes(t, err, idx)
	// Strict: record 3 of key 1 and every later record of key 1 are not
	// written (or must be replayed after it); nothing else fails.
	for i := 0; i < 30; i++ {
		want := i%3 == 1 && i >= 10
		if (failed[i] != nil) != want {
			t.Errorf("index %d failed=%v want %v (%v)", i, failed[i] != nil, want, failed[i])
		}
	}
	if !strings.Contains(failed[10].Error(), "retry budget") || !strings.Contains(failed[10].Error(), "ProvisionedThroughputExceededException") {
		t.Errorf("error of the throttled record: %v", failed[10])
	}
	if !strings.Contains(failed[13].Error(), `earlier record of partition key "public.orders.1" failed`) {
		t.Errorf("error of a held-back record: %v", failed[13])
	}
	got := f.byKey()
	if len(got["public.orders.0"]) != 10 || len(got["public.orders.2"]) != 10 {
		t.Fatalf("other keys not fully written: %d, %d", len(got["public.orders.0"]), len(got["public.orders.2"]))
	}
	// Key 1 records 0..2 written once; later ones may have been written
	// out of order, which is why they are failed (and counted).
	for _, d := range got["public.orders.1"][:3] {
		if _, seq := parseTestRecord(t, d); seq > 2 {
			t.Fatalf("record %d of key 1 written before record 3", seq)
		}
	}
}

func TestCredentialErrorsReturnNotConnected(t *testing.T) {
	forEachClient(t, testCredentialErrorsReturnNotConnected)
}

func testCredentialErrorsReturnNotConnected(t *testing.T, clientYAML string) {
	f := newFakeKinesis(t, "dms-target", 1)
	o := newTestOutput(t, fakeYAML+clientYAML, f.client())
	checkClientMode(t, o, clientYAML)
	f.requestFault = func(int) (int, string, bool) { return 400, "ExpiredTokenException", false }
	err := o.WriteBatch(context.Background(), makeBatch(keysN(2), 10, 10, map[string]int{}))
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("expired token gave %v, want ErrNotConnected", err)
	}
	if err := o.WriteBatch(context.Background(), makeBatch(keysN(2), 10, 10, map[string]int{})); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("before reconnecting: %v", err)
	}
	f.requestFault = nil
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := o.WriteBatch(context.Background(), makeBatch(keysN(2), 10, 10, map[string]int{})); err != nil {
		t.Fatal(err)
	}
}

// A connection lost in the middle of a batch (credentials expired after the
// first request went through) returns "not connected", so the engine
// reconnects and retries the batch: the retry sends only what was not
// written, nothing goes to a dead letter and nothing is written twice.
// failAfterFirst makes every request after the first fail with status and
// error type while the returned switch is on.
func failAfterFirst(f *fakeKinesis, status int, typ string) *atomic.Bool {
	on := new(atomic.Bool)
	f.requestFault = func(call int) (int, string, bool) {
		if call > 1 && on.Load() {
			return status, typ, false
		}
		return 0, "", false
	}
	return on
}

func TestConnectionLostMidBatchResumes(t *testing.T) {
	forEachClient(t, testConnectionLostMidBatchResumes)
}

func testConnectionLostMidBatchResumes(t *testing.T, clientYAML string) {
	f := newFakeKinesis(t, "dms-target", 1)
	o := newTestOutput(t, fakeYAML+clientYAML, f.client())
	expired := failAfterFirst(f, 400, "ExpiredTokenException")
	expired.Store(true)
	next := map[string]int{}
	b := makeBatch(keysN(3), 1200, 10, next) // three requests of 500, 500, 200
	if err := o.WriteBatch(context.Background(), b); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("credentials expired after the first request: %v, want ErrNotConnected", err)
	}
	// 500 records went through (a copy of a request is possible when an
	// answer is lost: counted, below).
	if got := f.total(); got < 500 || got >= 1200 {
		t.Fatalf("%d records written before the connection was lost, want the first request's 500", got)
	}
	retryAfterReconnect(t, o, f, b, 500, func() { expired.Store(false) })
	checkCopiesCounted(t, o, f, next)
	// A batch seen for the first time is written whole, even if it holds
	// the same number of records.
	before := f.total()
	b2 := makeBatch(keysN(3), 1200, 10, next)
	if err := o.WriteBatch(context.Background(), b2); err != nil || f.total() < before+1200 {
		t.Fatalf("next batch: %v, %d records", err, f.total()-before)
	}
	checkCopiesCounted(t, o, f, next)
}

// retryAfterReconnect does what the engine does after "not connected":
// once heal has ended the fault, Connect and the same batch again; the
// retry must send only the records after the first written ones.
func retryAfterReconnect(t *testing.T, o *output, f *fakeKinesis, b service.MessageBatch, written int, heal func()) {
	t.Helper()
	f.mu.Lock()
	n0 := len(f.requests)
	f.mu.Unlock()
	heal()
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := o.WriteBatch(context.Background(), b); err != nil {
		t.Fatalf("the retried batch: %v", err)
	}
	checkResumed(t, f, n0, b, written)
}

// checkResumed fails unless the requests from the n0-th on (a batch's
// retry) sent none of the batch's first written records, and all the
// others.
func checkResumed(t *testing.T, f *fakeKinesis, n0 int, b service.MessageBatch, written int) {
	t.Helper()
	first := map[string]bool{}
	for _, m := range b[:written] {
		d, _ := m.AsBytes()
		first[string(d)] = true
	}
	f.mu.Lock()
	resent, sent := 0, 0
	for _, r := range f.requests[n0:] {
		for _, e := range r.entries {
			sent++
			if first[string(e.Data)] {
				resent++
			}
		}
	}
	f.mu.Unlock()
	if resent > 0 || sent < len(b)-written {
		t.Fatalf("the retry sent %d records, %d of them written before the connection was lost; want the %d others only", sent, resent, len(b)-written)
	}
}

// checkCopiesCounted checks per-key order, and that every copy in the
// stream is a counted unknown-outcome re-send (an answer lost in transit).
func checkCopiesCounted(t *testing.T, o *output, f *fakeKinesis, next map[string]int) {
	t.Helper()
	if extra := checkOrder(t, f.byKey(), next, true); extra > int(o.st.unknownResends.Load()) {
		t.Fatalf("%d copies, %d counted unknown-outcome re-sends", extra, o.st.unknownResends.Load())
	}
}

// Kinesis not answering for outageAfter (5 s by default, with no retry
// budget) stops the batch and returns "not connected": the engine then
// reports the output down (/ready 503) and reconnects until Kinesis answers;
// the batch then resumes where it stopped.
func TestOutageReportsNotConnectedAndResumes(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 1)
	o := newTestOutput(t, `
stream: dms-target
region: us-east-1
backoff: {initial_interval: 5ms, max_interval: 20ms, max_elapsed_time: 0s}
`, f.client())
	if o.outageAfter != defaultOutageAfter {
		t.Fatalf("outageAfter %v with no retry budget, want %v", o.outageAfter, defaultOutageAfter)
	}
	o.outageAfter = 300 * time.Millisecond
	down := failAfterFirst(f, 503, "ServiceUnavailable")
	down.Store(true)
	next := map[string]int{}
	b := makeBatch(keysN(3), 900, 10, next)
	start := time.Now()
	err := o.WriteBatch(context.Background(), b)
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("Kinesis down: %v, want ErrNotConnected", err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 5*time.Second {
		t.Fatalf("stopped after %v, want about outageAfter (300ms)", el)
	}
	if got := f.total(); got < 500 || got >= 900 {
		t.Fatalf("%d records written before the outage, want the first request's 500", got)
	}
	retryAfterReconnect(t, o, f, b, 500, func() { down.Store(false) })
	checkCopiesCounted(t, o, f, next)

	// With a retry budget the output keeps retrying inside the write, and
	// fails the records when the budget is spent (see the budget test).
	o2 := newTestOutput(t, fakeYAML, f.client())
	if o2.outageAfter != 0 {
		t.Fatalf("outageAfter %v with a retry budget, want 0", o2.outageAfter)
	}
}

// A Kinesis that stops answering on an open connection (a network
// partition) makes each request time out after request_timeout, and the
// batch then stops as in an outage, instead of hanging until TCP gives up.
// The fake holds the requests unanswered: a fault kinesalite cannot make.
func TestHungConnectionTimesOutAndStops(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 1)
	o := newTestOutput(t, `
stream: dms-target
region: us-east-1
request_timeout: 200ms
backoff: {initial_interval: 5ms, max_interval: 20ms, max_elapsed_time: 0s}
`, f.client())
	o.outageAfter = 300 * time.Millisecond
	next := map[string]int{}
	if err := o.WriteBatch(context.Background(), makeBatch(keysN(3), 300, 10, next)); err != nil {
		t.Fatal(err)
	}
	// From now on Kinesis takes requests and never answers, until release.
	hold := make(chan struct{})
	f.mu.Lock()
	f.hold = hold
	calls0 := f.calls
	f.mu.Unlock()
	var releaseOnce sync.Once
	release := func() {
		releaseOnce.Do(func() {
			f.mu.Lock()
			f.hold = nil
			f.mu.Unlock()
			close(hold)
		})
	}
	t.Cleanup(release) // before the fake's server closes
	b := makeBatch(keysN(3), 300, 10, next)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- o.WriteBatch(context.Background(), b) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("WriteBatch still waiting 15 s on a Kinesis that never answers: request_timeout (200ms) did not cut the requests")
	}
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("Kinesis not answering: %v, want ErrNotConnected", err)
	}
	if el := time.Since(start); el < o.outageAfter {
		t.Fatalf("stopped after %v, before outageAfter (%v)", el, o.outageAfter)
	}
	// Every request sent meanwhile was given up by the output (timed out):
	// the fake sees its client go away while it holds the request.
	var calls, abandoned int
	for deadline := time.Now().Add(10 * time.Second); ; {
		f.mu.Lock()
		calls, abandoned = f.calls-calls0, f.abandoned
		f.mu.Unlock()
		if (calls > 0 && abandoned == calls) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if calls == 0 || abandoned != calls {
		t.Fatalf("%d requests sent to the hung Kinesis, %d of them given up by the output", calls, abandoned)
	}
	// The held requests are carried out now, after the output gave up on
	// them: copies, in order, and counted.
	release()
	for deadline := time.Now().Add(10 * time.Second); !f.idle(); {
		if time.Now().After(deadline) {
			t.Fatal("the released requests are still being handled after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := o.WriteBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	extra := checkOrder(t, f.byKey(), next, true)
	if unk := int(o.st.unknownResends.Load()); extra > unk {
		t.Fatalf("%d copies but %d counted unknown-outcome re-sends", extra, unk)
	}
}

func TestRequestTimeoutMustBePositive(t *testing.T) {
	pc, err := outputSpec().ParseYAML("stream: s\nregion: us-east-1\nrequest_timeout: 0s\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseOutputConfig(pc); err == nil || !strings.Contains(err.Error(), "request_timeout") {
		t.Fatalf("request_timeout 0s: %v", err)
	}
}

// On the fake: kinesalite 3.3.3 requires StreamName and knows no StreamARN.
func TestARNIsSentAsStreamARN(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 2)
	arn := "arn:aws:kinesis:us-east-1:000000000000:stream/dms-target"
	o := newTestOutput(t, "stream: "+arn+"\n", f.client())
	if o.conf.conn.Region != "us-east-1" {
		t.Fatalf("region from ARN: %q", o.conf.conn.Region)
	}
	if err := o.WriteBatch(context.Background(), makeBatch(keysN(2), 4, 10, map[string]int{})); err != nil {
		t.Fatal(err)
	}
	if f.lastARN != arn || f.total() != 4 {
		t.Fatalf("ARN sent %q, %d records", f.lastARN, f.total())
	}
}

// On the fake: it fails every request after the first with HTTP 500 (fault injection).
func TestShutdownDuringBackoffReturnsPromptly(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 2)
	// A backoff of 60 s, jittered to at least 30 s: a shutdown that waits
	// it out cannot pass for a prompt one.
	o := newTestOutput(t, `
stream: dms-target
region: us-east-1
backoff: {initial_interval: 60s, max_interval: 120s, max_elapsed_time: 0s}
`, f.client())
	f.requestFault = func(call int) (int, string, bool) {
		if call > 1 {
			return 500, "InternalFailure", false
		}
		return 0, "", false
	}
	var mu sync.Mutex
	var waits []time.Duration
	o.sleepHook = func(d time.Duration) { mu.Lock(); waits = append(waits, d); mu.Unlock() }
	keys := keysN(2)
	b := makeBatch(keys, 1200, 10, map[string]int{})
	idx := b.Index()
	done := make(chan error, 1)
	go func() { done <- o.WriteBatch(context.Background(), b) }()
	// The shard (both keys hash to the same one) is in its backoff after
	// its second request failed, and the first request's 500 records are
	// taken in as written. Waiting on these, not on a fixed sleep, keeps
	// the test true on a loaded machine.
	for deadline := time.Now().Add(10 * time.Second); ; {
		mu.Lock()
		n := len(waits)
		mu.Unlock()
		if n >= 1 && o.st.written.Load() >= 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d backoff waits, %d records written", n, o.st.written.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	for _, w := range waits {
		if w < 30*time.Second {
			t.Fatalf("backoff wait of %v, want at least 30 s", w)
		}
	}
	mu.Unlock()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		t.Fatalf("Close: %v after %v", err, time.Since(start))
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WriteBatch still in its backoff 10 s after Close")
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("shutdown took %v: the backoff wait was not interrupted", el)
	}
	// Nothing unwritten is acknowledged: exactly the records the fake did
	// not store are failed.
	failed := batchErrIndexes(t, err, idx)
	stored := f.byKey()
	written := len(stored[keys[0]]) + len(stored[keys[1]])
	if written+len(failed) != 1200 || written == 0 || len(failed) == 0 {
		t.Fatalf("%d written + %d failed, want 1200 with both > 0", written, len(failed))
	}
	for i, m := range b {
		data, _ := m.AsBytes()
		k, _ := parseTestRecord(t, data)
		inStream := false
		for _, d := range stored[k] {
			if bytes.Equal(d, data) {
				inStream = true
			}
		}
		if inStream == (failed[i] != nil) {
			t.Fatalf("index %d: in stream %v, failed %v", i, inStream, failed[i])
		}
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for yaml, want := range map[string]string{
		"stream: ''":                                      "stream: stream must not be empty",
		"stream: s\nmax_record_size: 20000000":            "max_record_size must be between 1 and 10485760",
		"stream: s\nmax_request_size: 0":                  "max_request_size must be between 1 and 10485760",
		"stream: s\nmax_record_size: 6000000":             "max_record_size (6000000) must not exceed max_request_size (5242880)",
		"stream: s\nordering: loose":                      "ordering",
		"stream: s\nhash_key: '012'":                      "hash_key: explicit hash key must be a decimal integer",
		"stream: s\npartition_key: ''":                    "partition_key: partition key is empty",
		"stream: s\ncredentials: {id: a}":                 "credentials.id and credentials.secret must be set together",
		"stream: s\ncredentials: {role_external_id: x}":   "credentials.role_external_id needs credentials.role",
		"stream: s\nshard_rate: {records_per_second: -1}": "shard_rate: rates must be >= 0",
		"stream: s\nbackoff: {initial_interval: 0s}":      "backoff: initial_interval must be > 0",
		"stream: s\nbackoff: {max_elapsed_time: -1s}":     "backoff: max_elapsed_time must not be negative (0s retries forever), got -1s",
		"stream: arn:aws:kinesis:us-east-1:1:stream/":     "must end with stream/<name>",
	} {
		pc, err := outputSpec().ParseYAML(yaml, nil)
		if err == nil {
			_, err = parseOutputConfig(pc)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", yaml, err, want)
		}
	}
}

func TestLintAcceptsExamples(t *testing.T) {
	env := service.NewEnvironment()
	linter := env.NewComponentConfigLinter()
	for _, y := range []string{
		"aws_kinesis_streams:\n  stream: dms-target\n",
		"aws_kinesis_streams:\n  stream: dms-target\n  ordering: relaxed\n  max_in_flight: 4\n  batching: {count: 500, period: 1s}\n  shard_rate: {records_per_second: 500}\n",
	} {
		lints, err := linter.LintOutputYAML([]byte(y))
		if err != nil || len(lints) != 0 {
			t.Errorf("%q: %v %v", y, err, lints)
		}
	}
	lints, err := linter.LintOutputYAML([]byte("aws_kinesis_streams:\n  stream: s\n  ordering: sometimes\n"))
	if err != nil || len(lints) == 0 {
		t.Errorf("bad ordering value not linted: %v %v", err, lints)
	}
}

// TestExplicitHashKeyRoutesAndInvalidOnesFailAlone: records land on the
// shard whose hash key range (as kinesalite lists it) holds their
// explicit hash key, not where their partition key would send them; the
// output groups them by that shard (one request per shard, seen by the
// proxy); an invalid hash key fails its record alone.
func TestExplicitHashKeyRoutesAndInvalidOnesFailAlone(t *testing.T) {
	forEachClient(t, func(t *testing.T, clientYAML string) {
		stream := newStream(t, 4)
		p := startProxy(t, kinesisproxy.Config{RecordsPerSecond: -1, BytesPerSecond: -1})
		o := connectOutput(t, proxyYAML(t, stream, p.URL(), clientYAML+"hash_key: ${! @hk }\nshard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
		checkClientMode(t, o, clientYAML)
		hks := []string{"0", "340282366920938463463374607431768211455", "12x", "85070591730234615865843651857942052864", "0"}
		b := service.MessageBatch{}
		for i, hk := range hks {
			m := service.NewMessage(testRecord("k", i, 10))
			m.MetaSetMut("dms_partition_key", "k")
			m.MetaSetMut("hk", hk)
			b = append(b, m)
		}
		idx := b.Index()
		err := o.WriteBatch(context.Background(), b)
		failed := batchErrIndexes(t, err, idx)
		if len(failed) != 1 || failed[2] == nil || !strings.Contains(failed[2].Error(), "hash_key: explicit hash key must be a decimal integer") {
			t.Fatalf("failed: %v", failed)
		}
		shards := listShards(t, stream)
		want := map[string]string{} // record -> shard owning its hash key
		wantCount := map[string]int{}
		for i, hk := range hks {
			if i == 2 {
				continue
			}
			sh := openShardOwning(t, shards, hk)
			want[string(testRecord("k", i, 10))] = sh
			wantCount[sh]++
		}
		// 0 twice -> the first shard, 2^128-1 -> the last, 2^126 -> the
		// second: three shards, none of them chosen by the key "k".
		if len(wantCount) != 3 {
			t.Fatalf("hash keys fall in %d shards of %d: %v", len(wantCount), len(shards), wantCount)
		}
		recs := readStream(t, stream)
		if len(recs) != 4 {
			t.Fatalf("read back %d records, want 4", len(recs))
		}
		for _, r := range recs {
			if want[string(r.data)] != r.shard {
				t.Errorf("record %q stored on %s, its hash key is in %s", r.data, r.shard, want[string(r.data)])
			}
		}
		if st := p.Stats(); st.PutRecordsRequests != 3 || st.MaxPutRecordsEntries != 2 {
			t.Fatalf("%d requests of at most %d records for 4 records on 3 shards: not grouped by the hash key's shard", st.PutRecordsRequests, st.MaxPutRecordsEntries)
		}
	})
}

// TestRequestErrorsBackOffWithJitter: a shard answering only HTTP 500 is
// retried with growing, jittered waits (no tight loop) until the budget,
// then the batch fails with the last error.
func TestRequestErrorsBackOffWithJitter(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 1)
	f.requestFault = func(int) (int, string, bool) { return 500, "InternalFailure", false }
	o := newTestOutput(t, `
stream: dms-target
region: us-east-1
backoff: {initial_interval: 10ms, max_interval: 80ms, max_elapsed_time: 600ms}
`, f.client())
	var mu sync.Mutex
	var waits []time.Duration
	o.sleepHook = func(d time.Duration) { mu.Lock(); waits = append(waits, d); mu.Unlock() }
	b := makeBatch(keysN(3), 20, 10, map[string]int{})
	idx := b.Index()
	err := o.WriteBatch(context.Background(), b)
	failed := batchErrIndexes(t, err, idx)
	if len(failed) != 20 || !strings.Contains(failed[0].Error(), "retry budget (600ms without progress) exhausted") ||
		!strings.Contains(failed[0].Error(), "InternalFailure") {
		t.Fatalf("failed %d: %v", len(failed), failed[0])
	}
	f.mu.Lock()
	calls := f.calls
	f.mu.Unlock()
	if calls > 30 || calls != len(waits)+1 { // the last answer finds the budget spent
		t.Fatalf("%d requests, %d waits in a 600ms budget", calls, len(waits))
	}
	if len(waits) < 3 {
		t.Fatalf("%d requests, %d waits in a 600ms budget: too few to see the backoff (each request took %v on average)", calls, len(waits), 600*time.Millisecond/time.Duration(calls))
	}
	distinct := map[time.Duration]bool{}
	for _, w := range waits {
		if w < 5*time.Millisecond || w > 120*time.Millisecond {
			t.Fatalf("wait %v outside the jittered 10ms..80ms range", w)
		}
		distinct[w] = true
	}
	if len(distinct) < len(waits)/2 || waits[len(waits)-1] < 30*time.Millisecond {
		t.Fatalf("waits not jittered or not growing: %v", waits)
	}
}

// Partition keys that are not valid UTF-8 (Latin-1 bytes from a CSV in
// another encoding) fail alone before anything is sent, with an error
// saying so; the rest of the batch is written. Before, they were routed by
// the MD5 of their bytes but sent as U+FFFD (the JSON body cannot carry the
// bytes), so they landed on other shards than routed and distinct keys
// merged into one.
func TestInvalidUTF8PartitionKeysFailAlone(t *testing.T) {
	forEachClient(t, func(t *testing.T, clientYAML string) {
		stream := newStream(t, 4)
		o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, clientYAML+"shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
		checkClientMode(t, o, clientYAML)
		long := strings.Repeat("é", 200) + "\xff" // 401 bytes, 201 characters: the counting path
		b := service.MessageBatch{
			keyed("k", testRecord("k", 0, 20)),
			keyed("caf\xe9", []byte("latin-1 key")),
			keyed("k", testRecord("k", 1, 20)),
			keyed("caf\xe8", []byte("another latin-1 key")),
			keyed(long, []byte("long invalid key")),
			keyed("café", testRecord("café", 0, 20)), // valid UTF-8: written
		}
		idx := b.Index()
		err := o.WriteBatch(context.Background(), b)
		recs := readStream(t, stream)
		got := byKey(recs)
		for k := range got {
			if strings.ContainsRune(k, utf8.RuneError) {
				t.Errorf("%d records stored under partition key %q", len(got[k]), k)
			}
		}
		failed := batchErrIndexes(t, err, idx)
		if len(failed) != 3 || failed[1] == nil || failed[3] == nil || failed[4] == nil {
			t.Fatalf("failed indexes %v, want 1, 3 and 4", failed)
		}
		for _, i := range []int{1, 3, 4} {
			if msg := failed[i].Error(); !strings.Contains(msg, "not valid UTF-8") {
				t.Errorf("index %d: error %q, want one saying the key is not valid UTF-8", i, msg)
			}
		}
		if msg := failed[1].Error(); !strings.Contains(msg, `"caf\xe9"`) {
			t.Errorf("error %q does not show the key", msg)
		}
		if extra := checkOrder(t, got, map[string]int{"k": 2, "café": 1}, true); extra != 0 {
			t.Fatalf("%d copies", extra)
		}
		checkSentOnce(t, recs, service.MessageBatch{b[0], b[2], b[5]})
	})
}
