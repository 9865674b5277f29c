package kinesis

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/tests/kinesisproxy"
)

// naiveWriter is the baseline: one PutRecords at a time with up to 500
// records of any shard, failed records re-sent at the front of the next
// request, a fixed 100 ms pause after a request with throttled records (what
// a simple producer does).
type naiveWriter struct {
	client  kinesisAPI
	stream  string
	written int
}

func (w *naiveWriter) write(ctx context.Context, batch service.MessageBatch) error {
	pending := make([]types.PutRecordsRequestEntry, 0, len(batch))
	for _, m := range batch {
		d, _ := m.AsBytes()
		k, _ := m.MetaGetMut("dms_partition_key")
		pending = append(pending, types.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String(k.(string))})
	}
	for len(pending) > 0 {
		n := min(500, len(pending))
		out, err := w.client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(w.stream), Records: pending[:n]})
		if err != nil {
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		var failed []types.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed = append(failed, pending[i])
			}
		}
		w.written += n - len(failed)
		pending = append(failed, pending[n:]...)
		if len(failed) > 0 {
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCapacity writes through the proxy set to 2 shards x 1000
// records/s and reports sustained records/s divided by the 2000 records/s
// the stream takes (2 shards: on the 2-core test machine kinesalite itself
// tops out near 2500 records/s, so more shards would measure kinesalite), for the output and for the naive writer, after a warm-up
// that empties the proxy's (and the writer's) one-second buckets. Zero loss
// is checked against the proxy's forwarded-entries counter.
func BenchmarkCapacity(b *testing.B) {
	const shards, perShard = 2, 1000
	capacity := float64(shards * perShard)
	const batchSize = 1000
	keys := keysN(4000)
	batchOf := func(next map[string]int) service.MessageBatch { return makeBatch(keys, batchSize, 100, next) }

	var warmN int
	run := func(write func(service.MessageBatch) error) float64 {
		next := map[string]int{}
		// Warm-up: two seconds of writing drain the one-second buckets of
		// the proxy (and of the writer), so the measure is the sustained
		// rate, not the burst.
		warm := time.Now()
		for time.Since(warm) < 2*time.Second {
			if err := write(batchOf(next)); err != nil {
				b.Fatal(err)
			}
			warmN += batchSize
		}
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := write(batchOf(next)); err != nil {
				b.Fatal(err)
			}
		}
		return float64(b.N*batchSize) / time.Since(start).Seconds()
	}

	// The output.
	stream := newStream(b, shards)
	p := startProxy(b, kinesisproxy.Config{Seed: 1})
	o := connectOutput(b, proxyYAML(b, stream, p.URL(), "backoff: {initial_interval: 50ms, max_interval: 1s, max_elapsed_time: 1m}\n"))
	b.ResetTimer()
	ours := run(func(m service.MessageBatch) error { return o.WriteBatch(context.Background(), m) })
	b.StopTimer()
	total := int64(warmN + b.N*batchSize)
	if st := p.Stats(); st.EntriesForwarded != total+o.st.dupOrdering.Load() || o.st.written.Load() != total {
		b.Fatalf("output: %d records, %d written, %d ordering copies, proxy forwarded %d", total, o.st.written.Load(), o.st.dupOrdering.Load(), st.EntriesForwarded)
	}
	throttledShare := float64(p.Stats().Throttled) / float64(total)

	// The naive writer, same limits, fresh stream and proxy.
	stream2 := newStream(b, shards)
	p2 := startProxy(b, kinesisproxy.Config{Seed: 1})
	nw := &naiveWriter{stream: stream2, client: kinesis.New(kinesis.Options{
		Region: mustEnv(b, "AWS_REGION"), BaseEndpoint: aws.String(p2.URL()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(mustEnv(b, "AWS_ACCESS_KEY_ID"), mustEnv(b, "AWS_SECRET_ACCESS_KEY"), ""),
	})}
	warmN = 0
	b.StartTimer()
	naive := run(func(m service.MessageBatch) error { return nw.write(context.Background(), m) })
	b.StopTimer()
	total = int64(warmN + b.N*batchSize)
	if st := p2.Stats(); st.EntriesForwarded != total || int64(nw.written) != total {
		b.Fatalf("naive: %d records, %d written, proxy forwarded %d", total, nw.written, st.EntriesForwarded)
	}

	b.ReportMetric(ours/capacity, "capacity_ratio")
	b.ReportMetric(naive/capacity, "naive_capacity_ratio")
	b.ReportMetric(ours/naive, "ratio_vs_naive")
	b.ReportMetric(throttledShare, "throttled_share")
	b.ReportMetric(float64(p2.Stats().Throttled)/float64(total), "naive_throttled_share")
	b.ReportMetric(0, "ns/op")
}

// startAckSink runs the immediately-acknowledging Kinesis endpoint as its own
// process, so that the CPU time measured here is the writer's alone.
func startAckSink(b *testing.B, shards int) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "acksink")
	build := exec.Command("go", "build", "-o", bin, "github.com/dmsbridge/dmsbridge/tests/acksink/cmd/acksink")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("building acksink: %v", err)
	}
	cmd := exec.Command(bin, "-shards", strconv.Itoa(shards))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	url, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("acksink: %v", err)
	}
	return strings.TrimSpace(url)
}

// BenchmarkEncode measures the whole WriteBatch path (interpolation, checks,
// routing, JSON encoding and signing, HTTP, response decoding) against an
// endpoint that acknowledges at once, as records per CPU-second of this
// process (the endpoint runs in another process): the output with its own
// PutRecords path (the default), the output with sdk_client: true (the
// SDK's PutRecords), and the naive writer (bare SDK PutRecords calls of 500
// records), on the same records in the same run.
func BenchmarkEncode(b *testing.B) {
	url := startAckSink(b, 4)
	keys := keysN(1000)
	batch := makeBatch(keys, 2000, 200, map[string]int{})
	conf := "stream: sink\nregion: us-east-1\nendpoint: " + url +
		"\ncredentials: {id: k, secret: s}\nshard_rate: {records_per_second: 0, bytes_per_second: 0}\n"
	connect := func(yaml string) *output {
		o := newTestOutput(b, yaml, nil)
		if err := o.Connect(context.Background()); err != nil {
			b.Fatal(err)
		}
		return o
	}
	fast := connect(conf)
	if _, ok := fast.client.(fastPutter); !ok {
		b.Fatalf("default client %T has no own PutRecords path", fast.client)
	}
	cborOut := connect(conf + "protocol: cbor\n")
	if fc, ok := cborOut.client.(*fastClient); !ok || !fc.cbor {
		b.Fatalf("protocol: cbor client %T does not send CBOR", cborOut.client)
	}
	sdk := connect(conf + "sdk_client: true\n")
	if _, ok := sdk.client.(fastPutter); ok {
		b.Fatal("sdk_client: true still uses the own path")
	}
	nw := &naiveWriter{stream: "sink", client: kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})}
	measure := func(write func() error) (perCPU, perSec float64) {
		runtime.GC()
		c0, t0 := cpuTime(), time.Now()
		for i := 0; i < b.N; i++ {
			if err := write(); err != nil {
				b.Fatal(err)
			}
		}
		n := float64(b.N * len(batch))
		return n / (cpuTime() - c0).Seconds(), n / time.Since(t0).Seconds()
	}
	b.ResetTimer()
	fastCPU, fastWall := measure(func() error { return fast.WriteBatch(context.Background(), batch) })
	cborCPU, _ := measure(func() error { return cborOut.WriteBatch(context.Background(), batch) })
	sdkCPU, _ := measure(func() error { return sdk.WriteBatch(context.Background(), batch) })
	naiveCPU, _ := measure(func() error { return nw.write(context.Background(), batch) })
	b.StopTimer()
	for name, o := range map[string]*output{"fast": fast, "cbor": cborOut, "sdk": sdk} {
		if o.st.written.Load() != int64(b.N*len(batch)) {
			b.Fatalf("%s: written %d of %d", name, o.st.written.Load(), b.N*len(batch))
		}
	}
	b.ReportMetric(fastCPU, "records/cpu-s")
	b.ReportMetric(fastWall, "records/s")
	b.ReportMetric(cborCPU, "cbor_records/cpu-s")
	b.ReportMetric(cborCPU/fastCPU, "cbor_ratio_vs_json")
	b.ReportMetric(sdkCPU, "sdk_records/cpu-s")
	b.ReportMetric(naiveCPU, "naive_records/cpu-s")
	b.ReportMetric(fastCPU/sdkCPU, "ratio_vs_sdk_path")
	b.ReportMetric(fastCPU/naiveCPU, "ratio_vs_naive")
	b.ReportMetric(fastCPU/300000, "ratio_vs_target_300k")
	b.ReportMetric(sdkCPU/300000, "sdk_ratio_vs_target_300k")
}
