package kinesis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/tests/kinesisproxy"
)

// Tests through the fault and shard-limit proxy in front of kinesalite:
// kinesalite never throttles, the proxy enforces the per-shard limits and
// injects per-record errors, HTTP 500s, dropped connections and outages.

func startProxy(t testing.TB, cfg kinesisproxy.Config) *kinesisproxy.Proxy {
	t.Helper()
	cfg.Upstream = mustEnv(t, "KINESIS_ENDPOINT")
	p, err := kinesisproxy.Start(cfg)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// connectOutput connects like the engine does: a failed Connect (the proxy
// also injects faults into DescribeStreamSummary and ListShards) is retried.
func connectOutput(t testing.TB, yaml string) *output {
	t.Helper()
	o := newTestOutput(t, yaml, nil)
	var err error
	for i := 0; i < 20; i++ {
		if err = o.Connect(context.Background()); err == nil {
			return o
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("connect: %v", err)
	return nil
}

func proxyYAML(t testing.TB, stream, endpoint, extra string) string {
	return fmt.Sprintf(`
stream: %s
region: %s
endpoint: %s
credentials: {id: %s, secret: %s}
%s`, stream, mustEnv(t, "AWS_REGION"), endpoint, mustEnv(t, "AWS_ACCESS_KEY_ID"), mustEnv(t, "AWS_SECRET_ACCESS_KEY"), extra)
}

// TestProxyFaultsStrict: 30 % of records throttled or failed, HTTP 500s,
// dropped connections and a 30 s outage: nothing lost, per-key order kept,
// copies exactly the counted ordering duplicates.
func TestProxyFaultsStrict(t *testing.T) {
	stream := newStream(t, 4)
	faults := kinesisproxy.Config{
		RecordsPerSecond: -1, BytesPerSecond: -1, // this test is about faults, pacing has its own
		ThrottleRate: 0.2, InternalFailureRate: 0.1, HTTP500Rate: 0.05, DropRate: 0.05, Seed: 7,
	}
	p := startProxy(t, faults)
	o := connectOutput(t, proxyYAML(t, stream, p.URL(), `
backoff: {initial_interval: 50ms, max_interval: 1s, max_elapsed_time: 2m}
`))
	checkClientMode(t, o, "") // the own PutRecords path
	keys := keysN(40)
	next := map[string]int{}
	t0 := time.Now()
	write := func(n int) {
		b := makeBatch(keys, n, 120, next)
		idx := b.Index()
		if err := o.WriteBatch(context.Background(), b); err != nil {
			t.Fatalf("batch: %v; every distinct record error: %v", err, distinctErrors(t, err, idx))
		}
	}
	for i := 0; i < 4; i++ {
		write(500)
	}
	t.Logf("before the outage: %v", time.Since(t0))
	// A 30 s outage in the middle of a batch.
	outageDone := make(chan struct{})
	go func() {
		defer close(outageDone)
		time.Sleep(100 * time.Millisecond)
		p.Pause()
		time.Sleep(30 * time.Second)
		p.Resume()
	}()
	start := time.Now()
	for time.Since(start) < 31*time.Second {
		write(100)
	}
	<-outageDone
	t.Logf("outage over: %v", time.Since(t0))
	write(300)
	t.Logf("after the outage: %v", time.Since(t0))
	total := 0
	for _, n := range next {
		total += n
	}
	recs := readStream(t, stream)
	extra := checkOrder(t, byKey(recs), next, true)
	dups := int(o.st.dupOrdering.Load())
	st := p.Stats()
	// The proxy forwards nothing of a 500 or a dropped request, so every
	// copy in the stream is a counted ordering duplicate.
	if extra != dups {
		t.Fatalf("%d records written, stream holds %d copies, ordering-duplicate counter %d", total, extra, dups)
	}
	// Copies come from the records of a key behind a failed one in the
	// same request; the per-key cap shrinks to the in-order run after the
	// first such request per shard (most copies come from those first
	// requests), so they stay a fraction of the records.
	if dups > total/3 {
		t.Fatalf("%d ordering duplicates for %d records", dups, total)
	}
	if st.Throttled == 0 || st.InternalFailures == 0 || st.HTTP500 == 0 || st.Dropped == 0 {
		t.Fatalf("a fault was never injected: %+v", st)
	}
	t.Logf("%d records, %d ordering copies, proxy %+v", total, dups, st)
}

// TestProxyFaultsRelaxed: the same per-record faults in relaxed mode write
// every record exactly once.
func TestProxyFaultsRelaxed(t *testing.T) {
	stream := newStream(t, 3)
	p := startProxy(t, kinesisproxy.Config{RecordsPerSecond: -1, BytesPerSecond: -1,
		ThrottleRate: 0.2, InternalFailureRate: 0.1, HTTP500Rate: 0.05, DropRate: 0.05, Seed: 9})
	o := connectOutput(t, proxyYAML(t, stream, p.URL(), `
ordering: relaxed
backoff: {initial_interval: 20ms, max_interval: 500ms, max_elapsed_time: 1m}
`))
	checkClientMode(t, o, "") // the own PutRecords path
	next := map[string]int{}
	for i := 0; i < 2; i++ {
		if err := o.WriteBatch(context.Background(), makeBatch(keysN(30), 500, 100, next)); err != nil {
			t.Fatal(err)
		}
	}
	recs := readStream(t, stream)
	if extra := checkOrder(t, byKey(recs), next, false); extra != 0 || len(recs) != 1000 {
		t.Fatalf("relaxed: %d records read back, %d copies", len(recs), extra)
	}
	if o.st.dupOrdering.Load() != 0 {
		t.Fatal("relaxed mode made ordering duplicates")
	}
}

// TestProxyPacingKeepsThrottlingRare: against real shard limits (1000
// records/s per shard) the pacing keeps throttling rare and lose nothing.
func TestProxyPacingKeepsThrottlingRare(t *testing.T) {
	stream := newStream(t, 2)
	p := startProxy(t, kinesisproxy.Config{Seed: 3}) // default limits: 1000 records/s, 1 MiB/s per shard
	o := connectOutput(t, proxyYAML(t, stream, p.URL(), `
backoff: {initial_interval: 50ms, max_interval: 1s, max_elapsed_time: 1m}
`))
	checkClientMode(t, o, "") // the own PutRecords path
	next := map[string]int{}
	start := time.Now()
	for i := 0; i < 12; i++ {
		if err := o.WriteBatch(context.Background(), makeBatch(keysN(50), 500, 100, next)); err != nil {
			t.Fatal(err)
		}
	}
	el := time.Since(start)
	st := p.Stats()
	recs := readStream(t, stream)
	checkOrder(t, byKey(recs), next, true)
	if len(recs) != 6000+int(o.st.dupOrdering.Load()) {
		t.Fatalf("read back %d, want 6000 + %d copies", len(recs), o.st.dupOrdering.Load())
	}
	if float64(st.Throttled) > 0.05*6000 {
		t.Fatalf("%d of 6000 records throttled by the shard limits", st.Throttled)
	}
	t.Logf("6000 records in %v, %d throttled", el, st.Throttled)
}

// distinctErrors lists the distinct errors of the records of a batch error.
func distinctErrors(t testing.TB, err error, idx *service.Indexer) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range batchErrIndexes(t, err, idx) {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
