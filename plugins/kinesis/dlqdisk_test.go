package kinesis

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// TestDeadLetterDownHoldsTheBatch: the dead letter cannot take a flagged
// message (its file's directory is not a directory: a disk gone, full or
// read-only behaves alike). Nothing may be lost or acknowledged, and the
// batch's good records, already written to Kinesis, must not be written
// again at every retry: with aws_s3_dms a batch error makes the input
// redeliver the whole batch (and every batch after it), so the stream got one
// more copy of every good record per retry, for as long as the disk stayed
// full. The output must hold the batch instead (not connected, Connect
// naming the dead letter's error), and finish it once the dead letter
// takes the message: each good record in the stream once, the flagged one in
// the dead letter once.
func TestDeadLetterDownHoldsTheBatch(t *testing.T) {
	o, stream, dir, path := outputWithDeadLetterDown(t)
	flagged := keyed("k", []byte("1,not-a-number"))
	flagged.SetError(errorString("row 2 column id: not an INT8"))
	b := service.MessageBatch{keyed("k", testRecord("k", 0, 20)), flagged, keyed("k", testRecord("k", 1, 20))}
	ctx := context.Background()
	// What the engine does while the dead letter is down: a batch error
	// goes back to the input, which delivers the batch again; "not
	// connected" makes it call Connect, then write the same batch again.
	for i := 0; i < 3; i++ {
		err := o.WriteBatch(ctx, b)
		switch {
		case err == nil:
			t.Fatal("batch acknowledged although the dead letter did not take its flagged message")
		case errors.Is(err, service.ErrNotConnected):
			cerr := o.Connect(ctx)
			if cerr == nil || !strings.Contains(cerr.Error(), "dead_letter") || !strings.Contains(cerr.Error(), "not a directory") {
				t.Fatalf("Connect while the dead letter is down: %v", cerr)
			}
		default: // a batch error: the input redelivers the batch
		}
	}
	if err := os.Remove(dir); err != nil { // the disk is back
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		err := o.WriteBatch(ctx, b)
		if err == nil {
			break
		}
		if i == 5 {
			t.Fatalf("WriteBatch once the dead letter works: %v", err)
		}
		if errors.Is(err, service.ErrNotConnected) {
			_ = o.Connect(ctx)
		}
	}
	checkSentOnce(t, readStream(t, stream), service.MessageBatch{b[0], b[2]})
	if got := readDLQ(t, path); len(got) != 1 || got[0].Row != "1,not-a-number" {
		t.Fatalf("dead letter holds %+v, want the flagged row once", got)
	}
}

// outputWithDeadLetterDown is an output to a new 1-shard kinesalite stream
// whose dead letter (the file path) cannot be written: its directory (dir)
// is a file, as a disk gone, full or read-only would behave. Removing dir
// brings the dead letter back.
func outputWithDeadLetterDown(t *testing.T) (o *output, stream, dir, path string) {
	t.Helper()
	stream = newStream(t, 1)
	dir = filepath.Join(t.TempDir(), "dl")
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "dlq.jsonl")
	return newKinesaliteOutput(t, kinesaliteYAML(t, stream, dlqYAML(path))), stream, dir, path
}
