package kinesis

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// kinesis_records_failed counts records that failed for good, once each:
// here one record Kinesis can never take (an empty partition key) in a batch
// held while the dead letter is down (the engine writes the same batch again
// after each Connect), then dead-lettered once it is back. An operator
// comparing kinesis_records_failed with kinesis_dead_lettered and the dead
// letter file saw one failure per attempt (4 here; one per reconnection, for
// as long as the disk stayed full) for a single record.
func TestRecordsFailedCountedOncePerRecord(t *testing.T) {
	o, stream, dir, path := outputWithDeadLetterDown(t)
	b := service.MessageBatch{keyed("k", testRecord("k", 0, 20)), keyed("", []byte("no key")), keyed("k", testRecord("k", 1, 20))}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		err := o.WriteBatch(ctx, b)
		if !errors.Is(err, service.ErrNotConnected) {
			t.Fatalf("WriteBatch while the dead letter is down: %v, want not connected", err)
		}
		_ = o.Connect(ctx)
	}
	if err := os.Remove(dir); err != nil { // the disk is back
		t.Fatal(err)
	}
	if err := o.WriteBatch(ctx, b); err != nil {
		t.Fatalf("WriteBatch once the dead letter works: %v", err)
	}
	if got := readDLQ(t, path); len(got) != 1 || got[0].Row != "no key" {
		t.Fatalf("dead letter holds %+v, want the record without a key once", got)
	}
	checkSentOnce(t, readStream(t, stream), service.MessageBatch{b[0], b[2]})
	if f, d, w := o.st.failed.Load(), o.st.deadLettered.Load(), o.st.written.Load(); f != 1 || d != 1 || w != 2 {
		t.Errorf("kinesis_records_failed %d, kinesis_dead_lettered %d, kinesis_records_written %d; want 1, 1 and 2", f, d, w)
	}
}
