package s3dms

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// TestNackWhileWaitingForTheSaveWindow: with checkpoint.interval 0s the
// input emits at most 4 batches beyond the saved checkpoint and then waits
// for a save. When the first of those batches is rejected while it waits
// (here its redelivery is rejected again), no save can come before the
// redelivery is acknowledged: the wait must give way to the redelivery, or
// the pipeline stalls for good. (Found by TestDiffPropertyInputToProcessor:
// a full load stopped delivering after a batch was rejected twice.)
func TestNackWhileWaitingForTheSaveWindow(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n3,c\n4,d\n5,e\n6,f\n"))
	in, _ := directInput(t, baseYAML(b, "mode: full-load\nbatch_size: 1\ncheckpoint:\n  directory: "+t.TempDir()+"\n  interval: 0s\n"))
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func() (string, service.AckFunc) {
		t.Helper()
		batch, ack, err := in.ReadBatch(ctx)
		if err != nil || len(batch) != 1 {
			t.Fatalf("ReadBatch: %d rows, %v", len(batch), err)
		}
		body, _ := batch[0].AsBytes()
		return string(body), ack
	}
	var acks []service.AckFunc
	for range 4 { // the window: 4 batches beyond the saved checkpoint
		_, ack := read()
		acks = append(acks, ack)
	}
	rejected := errors.New("rejected")
	acks[0](ctx, rejected)
	// the rejected batch, then the 3 after it (go-back-N)
	var again []string
	var ack0 service.AckFunc
	for i := range 4 {
		body, ack := read()
		again = append(again, body)
		if i == 0 {
			ack0 = ack
		}
	}
	if strings.Join(again, " ") != "1,a 2,b 3,c 4,d" {
		t.Fatalf("redelivered %q", again)
	}
	// The next read waits for a save (the window is full and nothing is
	// acknowledged). Reject the redelivery while it waits.
	type result struct {
		body string
		err  error
	}
	next := make(chan result, 1)
	go func() {
		batch, _, err := in.ReadBatch(ctx)
		r := result{err: err}
		if len(batch) > 0 {
			b, _ := batch[0].AsBytes()
			r.body = string(b)
		}
		next <- r
	}()
	for !blockedIn("(*input).waitWindow") {
		select {
		case r := <-next:
			t.Fatalf("ReadBatch returned %q, %v with the window full", r.body, r.err)
		case <-time.After(time.Millisecond):
		}
	}
	ack0(ctx, rejected)
	select {
	case r := <-next:
		if r.err != nil || r.body != "1,a" {
			t.Fatalf("after the second rejection ReadBatch returned %q, %v; want the rejected batch again", r.body, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still waits for a save that cannot come: the rejected batch is never redelivered")
	}
}

// blockedIn reports whether a goroutine is in the function named fn.
func blockedIn(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}
