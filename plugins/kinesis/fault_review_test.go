package kinesis

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// AccessDenied and the KMS key states are stream-level conditions an
// operator fixes (an IAM policy being deployed, a KMS key disabled and
// re-enabled), not properties of the records: the request is retried with
// backoff within the retry budget like any other request-level error. Before,
// the first AccessDeniedException failed every record of the shard for good,
// so with a dead letter the whole stream drained into it at full speed, even
// with max_elapsed_time: 0 (retry forever).
func TestAccessDeniedAndKMSStatesAreRetried(t *testing.T) {
	for _, code := range []string{"AccessDeniedException", "KMSDisabledException", "KMSInvalidStateException", "KMSAccessDeniedException", "KMSNotFoundException", "KMSOptInRequired"} {
		t.Run(code, func(t *testing.T) {
			f := newFakeKinesis(t, "dms-target", 2)
			var faults atomic.Int64
			f.requestFault = func(int) (int, string, bool) {
				if faults.Add(1) <= 6 {
					return 400, code, false
				}
				return 0, "", false
			}
			path := filepath.Join(t.TempDir(), "dlq.jsonl")
			o := newTestOutput(t, fakeYAML+dlqYAML(path), f.client())
			next := map[string]int{}
			b := makeBatch(keysN(10), 100, 30, next)
			if err := o.WriteBatch(context.Background(), b); err != nil {
				t.Fatalf("WriteBatch: %v", err)
			}
			if extra := checkOrder(t, f.byKey(), next, true); extra != 0 {
				t.Fatalf("%d copies", extra)
			}
			if d, _ := os.ReadFile(path); len(d) > 0 || o.st.deadLettered.Load() != 0 || o.st.failed.Load() != 0 {
				t.Fatalf("%d dead-lettered, %d failed: %s", o.st.deadLettered.Load(), o.st.failed.Load(), d)
			}
		})
	}
}

// When the budget runs out, the records fail naming the error.
func TestAccessDeniedFailsAfterRetryBudget(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 1)
	f.requestFault = func(int) (int, string, bool) { return 400, "AccessDeniedException", false }
	o := newTestOutput(t, strings.Replace(fakeYAML, "max_elapsed_time: 10s", "max_elapsed_time: 200ms", 1), f.client())
	b := makeBatch(keysN(2), 4, 10, map[string]int{})
	idx := b.Index()
	failed := batchErrIndexes(t, o.WriteBatch(context.Background(), b), idx)
	if len(failed) != 4 {
		t.Fatalf("%d of 4 failed", len(failed))
	}
	for i, err := range failed {
		if !strings.Contains(err.Error(), "retry budget") || !strings.Contains(err.Error(), "AccessDeniedException") {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if f.calls < 2 {
		t.Fatalf("%d PutRecords calls: not retried", f.calls)
	}
}

// A stream ARN of one region with region set to another cannot work
// (Kinesis streams are regional; the requests would go to the other
// region's endpoint): a config error, not a connect error saying the stream
// does not exist.
func TestARNRegionMismatchIsAConfigError(t *testing.T) {
	pc, err := outputSpec().ParseYAML("stream: arn:aws:kinesis:eu-west-1:123456789012:stream/s\nregion: us-east-1\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseOutputConfig(pc)
	if err == nil || !strings.Contains(err.Error(), `stream ARN is in region eu-west-1 but region is us-east-1`) {
		t.Fatalf("config error %v", err)
	}
	pc, _ = outputSpec().ParseYAML("stream: arn:aws:kinesis:eu-west-1:123456789012:stream/s\nregion: eu-west-1\n", nil)
	if _, err := parseOutputConfig(pc); err != nil {
		t.Fatal(err)
	}
}

// A stream name that Kinesis does not know in the configured region: the
// connect error names the region, the usual cause when the stream exists.
func TestMissingStreamErrorNamesTheRegion(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 1)
	o := newTestOutput(t, "stream: other\nregion: eu-west-1\nendpoint: "+f.srv.URL+"\ncredentials: {id: a, secret: b}\n", nil)
	err := o.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), `kinesis stream "other" does not exist in region eu-west-1`) {
		t.Fatalf("connect: %v", err)
	}
}

// With no retry budget (max_elapsed_time: 0s, the reference config) a stream
// that refuses writes (AccessDenied on PutRecords only, a KMS key disabled)
// must show where an operator looks: the batch stops with "not connected", so
// the engine reports the output down (/ready 503) with Connect's error, which
// names the stream and the refusal, and Connect asks the engine to wait
// (growing with each refusal) before the batch is tried again. Before, the
// output retried inside the write forever while /ready answered 200 and no
// engine metric moved. Nothing is failed or dead-lettered, and once the
// refusal ends the batch resumes after the records already written.
func TestRefusalWithoutBudgetReportsNotConnected(t *testing.T) {
	for _, code := range []string{"AccessDeniedException", "KMSDisabledException"} {
		t.Run(code, func(t *testing.T) {
			f := newFakeKinesis(t, "dms-target", 1)
			path := filepath.Join(t.TempDir(), "dlq.jsonl")
			o := newTestOutput(t, `
stream: dms-target
region: us-east-1
backoff: {initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0s}
`+dlqYAML(path), f.client())
			denied := failAfterFirst(f, 400, code)
			denied.Store(true)
			next := map[string]int{}
			b := makeBatch(keysN(3), 900, 10, next)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := o.WriteBatch(ctx, b); !errors.Is(err, service.ErrNotConnected) {
				t.Fatalf("refused: %v, want ErrNotConnected", err)
			}
			var waits []time.Duration
			for range 6 {
				err := o.Connect(context.Background())
				var bo *service.ErrBackOff
				if !errors.As(err, &bo) {
					t.Fatalf("Connect after a refusal: %v, want a back-off error", err)
				}
				if !strings.Contains(err.Error(), `"dms-target"`) || !strings.Contains(err.Error(), code) {
					t.Fatalf("Connect error %q does not name the stream and %s", err, code)
				}
				waits = append(waits, bo.Wait)
				if err := o.Connect(context.Background()); err != nil {
					t.Fatalf("Connect after the wait: %v", err)
				}
				if err := o.WriteBatch(ctx, b); !errors.Is(err, service.ErrNotConnected) {
					t.Fatalf("still refused: %v, want ErrNotConnected", err)
				}
			}
			// Jittered (randomization 0.5, multiplier 1.5): the first wait is
			// 50ms ± 50 %, the sixth is past the cap, 200ms ± 50 %, so it is
			// longer than any first wait can be; none is over max_interval
			// plus its jitter.
			for _, w := range waits {
				if w <= 0 || w > 200*time.Millisecond*3/2 {
					t.Fatalf("waits %v: want each within max_interval plus its jitter", waits)
				}
			}
			if waits[0] > 50*time.Millisecond*3/2 || waits[5] <= 50*time.Millisecond*3/2 {
				t.Fatalf("waits %v: want growing from initial_interval up to max_interval", waits)
			}
			retryAfterReconnect(t, o, f, b, 500, func() {
				denied.Store(false)
				if err := o.Connect(context.Background()); err == nil {
					t.Fatal("the last refusal was not reported by Connect")
				}
			})
			if extra := checkOrder(t, f.byKey(), next, true); extra != 0 {
				t.Fatalf("%d copies", extra)
			}
			if d, _ := os.ReadFile(path); len(d) > 0 || o.st.failed.Load() != 0 {
				t.Fatalf("%d failed, dead letter: %s", o.st.failed.Load(), d)
			}
		})
	}
}
