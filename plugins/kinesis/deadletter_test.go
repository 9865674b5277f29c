package kinesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// dlqYAML is a dead_letter writing one JSON line per message to path: the
// error text the output attached, the message's own error flag, the row.
func dlqYAML(path string) string {
	return `dead_letter:
  file:
    path: ` + path + `
    codec: lines
  processors:
    - mapping: |
        root.fallback_error = @fallback_error
        root.flag = if errored() { error() } else { null }
        root.row = content().string()
`
}

type dlqLine struct {
	FallbackError string  `json:"fallback_error"`
	Flag          *string `json:"flag"`
	Row           string  `json:"row"`
}

func readDLQ(t *testing.T, path string) []dlqLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []dlqLine
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var d dlqLine
		if err := json.Unmarshal(l, &d); err != nil {
			t.Fatalf("dead-letter line %q: %v", l, err)
		}
		out = append(out, d)
	}
	return out
}

func keyed(key string, data []byte) *service.Message {
	m := service.NewMessage(data)
	m.MetaSetMut("dms_partition_key", key)
	return m
}

// A message flagged by a processor and a record Kinesis can never take go
// to the dead letter, in batch order, with the error text; every other
// record reaches Kinesis in order, and the batch is acknowledged whole.
func TestDeadLetterTakesFlaggedAndFailedMessages(t *testing.T) {
	forEachClient(t, func(t *testing.T, clientYAML string) {
		stream := newStream(t, 2)
		path := filepath.Join(t.TempDir(), "dlq.jsonl")
		o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, clientYAML+"shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"+dlqYAML(path)))
		checkClientMode(t, o, clientYAML)
		flagged := keyed("k", []byte("1,not-a-number"))
		flagged.SetError(errorString("row 2 column id: not an INT8"))
		b := service.MessageBatch{
			keyed("k", testRecord("k", 0, 50)),
			flagged,
			keyed("k", testRecord("k", 1, 50)),
			keyed("k2", bytes.Repeat([]byte("y"), 1<<20)), // too big for Kinesis
			keyed("k", testRecord("k", 2, 50)),
		}
		if err := o.WriteBatch(context.Background(), b); err != nil {
			t.Fatalf("WriteBatch: %v, want the batch acknowledged", err)
		}
		recs := readStream(t, stream)
		if extra := checkOrder(t, byKey(recs), map[string]int{"k": 3}, true); extra != 0 {
			t.Fatalf("%d copies", extra)
		}
		checkSentOnce(t, recs, service.MessageBatch{b[0], b[2], b[4]})
		got := readDLQ(t, path)
		if len(got) != 2 {
			t.Fatalf("dead letter holds %d messages, want 2: %+v", len(got), got)
		}
		if got[0].Row != "1,not-a-number" || got[0].Flag == nil || *got[0].Flag != "row 2 column id: not an INT8" ||
			got[0].FallbackError != "row 2 column id: not an INT8" {
			t.Errorf("flagged message in the dead letter: %+v", got[0])
		}
		if got[1].Flag != nil || !strings.Contains(got[1].FallbackError, "exceeds max_record_size 1048576") || len(got[1].Row) != 1<<20 {
			t.Errorf("oversized record in the dead letter: flag %v error %q row of %d bytes", got[1].Flag, got[1].FallbackError, len(got[1].Row))
		}
		if _, ok := b[3].MetaGet("fallback_error"); ok {
			t.Error("the engine's message was changed: the dead letter must get copies")
		}
		if n, f := o.st.deadLettered.Load(), o.st.failed.Load(); n != 2 || f != 1 {
			t.Errorf("dead-lettered %d, failed %d; want 2 and 1", n, f)
		}
	})
}

// A dead letter that fails holds the batch: the good records are written
// once, WriteBatch reports not connected, and Connect names the dead
// letter's error (the engine then retries the same batch after a wait).
func TestDeadLetterRefusalHoldsTheBatch(t *testing.T) {
	stream := newStream(t, 1)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "dead_letter:\n  reject: dead letter is down\n"))
	flagged := keyed("k", []byte("bad row"))
	flagged.SetError(errorString("malformed CSV row"))
	b := service.MessageBatch{keyed("k", testRecord("k", 0, 20)), flagged, keyed("k", testRecord("k", 1, 20))}
	if err := o.WriteBatch(context.Background(), b); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("WriteBatch: %v, want not connected", err)
	}
	if err := o.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "dead letter is down") || !strings.Contains(err.Error(), "its 2 records written to Kinesis are not written again") {
		t.Errorf("Connect: %v, want the dead letter's error", err)
	}
	recs := readStream(t, stream)
	if extra := checkOrder(t, byKey(recs), map[string]int{"k": 2}, true); extra != 0 {
		t.Fatalf("%d copies", extra)
	}
	checkSentOnce(t, recs, service.MessageBatch{b[0], b[2]})
	if n := o.st.deadLettered.Load(); n != 0 {
		t.Errorf("dead-lettered %d, want 0", n)
	}
}

// Without a dead letter, a flagged message is written like any other (the
// engine's fallback/reject_errored route it, when configured).
func TestWithoutDeadLetterFlaggedMessagesAreWritten(t *testing.T) {
	stream := newStream(t, 1)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, ""))
	m := keyed("k", testRecord("k", 0, 20))
	m.SetError(errorString("flagged"))
	if err := o.WriteBatch(context.Background(), service.MessageBatch{m}); err != nil {
		t.Fatal(err)
	}
	recs := readStream(t, stream)
	if extra := checkOrder(t, byKey(recs), map[string]int{"k": 1}, true); extra != 0 {
		t.Fatalf("%d copies", extra)
	}
	checkSentOnce(t, recs, service.MessageBatch{m})
}

func TestDeadLetterConfigErrorNamesTheField(t *testing.T) {
	pc, err := outputSpec().ParseYAML("stream: s\ndead_letter:\n  no_such_output: {}\n", nil)
	if err == nil {
		_, err = parseOutputConfig(pc)
	}
	if err == nil || !strings.Contains(err.Error(), "dead_letter") {
		t.Fatalf("error %v, want one naming dead_letter", err)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// Closing the output closes its dead letter promptly, also when nothing was
// ever written to it.
func TestCloseWithUnusedDeadLetterIsPrompt(t *testing.T) {
	o := newKinesaliteOutput(t, kinesaliteYAML(t, newStream(t, 1), dlqYAML(filepath.Join(t.TempDir(), "dlq.jsonl"))))
	if err := o.WriteBatch(context.Background(), service.MessageBatch{keyed("k", testRecord("k", 0, 20))}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := o.Close(ctx); err != nil {
		t.Fatalf("Close: %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// A write the engine cancels (a stream stop timing out) while Kinesis keeps
// failing sends nothing to the dead letter: its unwritten records are not
// failed for good, they all go back to the engine (batch error) to be
// replayed. Before, about half of them were written to the dead letter and
// nacked too, so they reached both the dead letter and Kinesis.
func TestCancelledWriteDoesNotFeedDeadLetter(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 1)
	var calls atomic.Int64
	f.requestFault = func(int) (int, string, bool) { calls.Add(1); return 500, "InternalFailure", false }
	path := filepath.Join(t.TempDir(), "dlq.jsonl")
	o := newTestOutput(t, "\nstream: dms-target\nregion: us-east-1\nbackoff: {initial_interval: 30s, max_interval: 60s, max_elapsed_time: 10m}\n"+dlqYAML(path), f.client())
	acked := 0
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		before := calls.Load()
		b := makeBatch(keysN(2), 4, 10, map[string]int{})
		idx := b.Index()
		done := make(chan error, 1)
		go func() { done <- o.WriteBatch(ctx, b) }()
		for calls.Load() == before {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond)
		cancel()
		err := <-done
		if err == nil {
			acked++
			continue
		}
		if failed := batchErrIndexes(t, err, idx); len(failed) != 4 {
			t.Fatalf("write %d: %d of 4 unwritten records reported failed: %v", i, len(failed), err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	b, _ := os.ReadFile(path)
	if len(b) > 0 || acked > 0 || o.st.deadLettered.Load() > 0 {
		t.Fatalf("20 cancelled writes: %d acked, %d dead-lettered, dead letter holds %d lines", acked, o.st.deadLettered.Load(), len(readDLQ(t, path)))
	}

	// Not cancelled, the same output still routes what failed for good:
	// a flagged message, a record too large, a record Kinesis rejects.
	f.requestFault = nil
	f.recordFault = func(_ int, e fakeEntry) string {
		if e.PartitionKey == "bad" {
			return "InvalidArgumentException"
		}
		return ""
	}
	flagged := keyed("k", []byte("bad row"))
	flagged.SetError(errorString("malformed CSV row"))
	batch := service.MessageBatch{
		keyed("k", testRecord("k", 0, 20)),
		flagged,
		keyed("k2", bytes.Repeat([]byte("y"), 1<<20)),
		keyed("bad", []byte("rejected")),
		keyed("k", testRecord("k", 1, 20)),
	}
	if err := o.WriteBatch(context.Background(), batch); err != nil {
		t.Fatalf("WriteBatch: %v, want the batch acknowledged", err)
	}
	if extra := checkOrder(t, f.byKey(), map[string]int{"k": 2}, true); extra != 0 {
		t.Fatalf("%d copies", extra)
	}
	got := readDLQ(t, path)
	if len(got) != 3 || got[0].Row != "bad row" || !strings.Contains(got[1].FallbackError, "exceeds max_record_size") ||
		got[2].Row != "rejected" || !strings.Contains(got[2].FallbackError, "rejected by Kinesis: InvalidArgumentException") {
		t.Fatalf("dead letter holds %+v, want the flagged, the oversized and the rejected message", got)
	}
}

// A record still unwritten when the retry budget runs out failed for good:
// with the context alive it goes to the dead letter and the batch is
// acknowledged.
func TestDeadLetterTakesRecordsOutOfRetryBudget(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 1)
	f.recordFault = func(_ int, e fakeEntry) string {
		if e.PartitionKey == "hot" {
			return "ProvisionedThroughputExceededException"
		}
		return ""
	}
	path := filepath.Join(t.TempDir(), "dlq.jsonl")
	o := newTestOutput(t, "\nstream: dms-target\nregion: us-east-1\nbackoff: {initial_interval: 5ms, max_interval: 20ms, max_elapsed_time: 200ms}\n"+dlqYAML(path), f.client())
	b := service.MessageBatch{keyed("k", testRecord("k", 0, 20)), keyed("hot", testRecord("hot", 0, 20)), keyed("k", testRecord("k", 1, 20))}
	if err := o.WriteBatch(context.Background(), b); err != nil {
		t.Fatalf("WriteBatch: %v, want the batch acknowledged", err)
	}
	checkOrder(t, f.byKey(), map[string]int{"k": 2}, true)
	got := readDLQ(t, path)
	if len(got) != 1 || !strings.Contains(got[0].FallbackError, "retry budget") || !strings.HasPrefix(got[0].Row, "hot#0#") {
		t.Fatalf("dead letter holds %+v, want the throttled record with the retry-budget error", got)
	}
}

// Closing the output while writes are routing messages to the dead letter
// neither panics (a send on the dead letter's closed channel) nor loses a
// message: each is dead-lettered or reported failed.
func TestCloseWhileDeadLettering(t *testing.T) {
	stream := newStream(t, 1)
	for i := 0; i < 200; i++ {
		o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "dead_letter:\n  drop: {}\n"))
		var wg sync.WaitGroup
		var taken, failed atomic.Int64
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := keyed("k", []byte("bad row"))
				m.SetError(errorString("flagged"))
				if err := o.WriteBatch(context.Background(), service.MessageBatch{m}); err != nil {
					failed.Add(1)
				} else {
					taken.Add(1)
				}
			}()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := o.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		cancel()
		wg.Wait()
		if taken.Load() != o.st.deadLettered.Load() || taken.Load()+failed.Load() != 4 {
			t.Fatalf("%d acknowledged, %d failed, %d dead-lettered", taken.Load(), failed.Load(), o.st.deadLettered.Load())
		}
	}
	// Flagged messages go to the dead letter or back to the engine, never
	// to Kinesis.
	if recs := readStream(t, stream); len(recs) != 0 {
		t.Fatalf("%d flagged messages reached the stream", len(recs))
	}
}
