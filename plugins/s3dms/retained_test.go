package s3dms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// TestRetainedBatchesBound: batches are kept for redelivery until the
// checkpoint passes them, so one batch never acknowledged (an output stuck
// on it) would keep every later batch in memory. The input stops reading at
// maxRetained kept batches, reads on once the first is acknowledged, and a
// nack of the first at the bound still re-sends it and all later batches.
func TestRetainedBatchesBound(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	var sb strings.Builder
	rows := maxRetained + 10
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&sb, "%d,v\n", i)
	}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(sb.String()))
	in, _ := directInput(t, baseYAML(b, "mode: full-load\nbatch_size: 1\ncheckpoint:\n  directory: "+t.TempDir()+"\n  interval: 1s\n"))
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	read := func(timeout time.Duration) (string, service.AckFunc, error) {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		batch, ack, err := in.ReadBatch(rctx)
		if err != nil {
			return "", nil, err
		}
		if len(batch) != 1 {
			t.Fatalf("batch of %d rows, want 1", len(batch))
		}
		body, _ := batch[0].AsBytes()
		return string(body), ack, nil
	}
	var first service.AckFunc
	for i := 0; i < maxRetained; i++ {
		row, ack, err := read(10 * time.Second)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if want := fmt.Sprintf("%d,v", i); row != want {
			t.Fatalf("read %d: %q, want %q", i, row, want)
		}
		if i == 0 {
			first = ack
			continue
		}
		if err := ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Batch 0 is not acknowledged: 1024 batches are kept, the next read waits.
	if row, _, err := read(400 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read past %d kept batches returned %q, %v; want it to wait", maxRetained, row, err)
	}
	// A nack of batch 0 at the bound: it and every later batch come back in order.
	if err := first(ctx, errors.New("rejected")); err != nil {
		t.Fatal(err)
	}
	var again service.AckFunc
	for i := 0; i < maxRetained; i++ {
		row, ack, err := read(10 * time.Second)
		if err != nil {
			t.Fatalf("redelivery %d: %v", i, err)
		}
		if want := fmt.Sprintf("%d,v", i); row != want {
			t.Fatalf("redelivery %d: %q, want %q", i, row, want)
		}
		if i == 0 {
			again = ack
			continue
		}
		if err := ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if row, _, err := read(400 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read past %d kept redeliveries returned %q, %v; want it to wait", maxRetained, row, err)
	}
	// Acknowledged: the kept batches are dropped and reading goes on.
	if err := again(ctx, nil); err != nil {
		t.Fatal(err)
	}
	row, ack, err := read(10 * time.Second)
	if err != nil || row != fmt.Sprintf("%d,v", maxRetained) {
		t.Fatalf("after the acknowledgement: %q, %v; want %d,v", row, err, maxRetained)
	}
	_ = ack(ctx, nil)
	in.mu.Lock()
	kept := len(in.emitted)
	in.mu.Unlock()
	if kept > 1 {
		t.Fatalf("%d batches still kept after every batch was acknowledged", kept)
	}
}
