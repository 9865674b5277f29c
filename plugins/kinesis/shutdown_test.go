package kinesis

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// TestCloseWithDeadLetterThatCannotConnect: a dead_letter output that cannot
// connect (a socket to a port nobody listens on, a broker that is down)
// holds a batch: the engine's writes wait, then it stops the stream. Close
// must end promptly and leave no goroutine behind. It waited for the dead
// letter to close with no deadline, and the dead letter, retrying its
// connection, never closed: the stream's stop timed out (the process exits
// 1 after shutdown_timeout; in streams mode a DELETE left the output's
// goroutines running for good).
func TestCloseWithDeadLetterThatCannotConnect(t *testing.T) {
	stream := newStream(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused
	before := runtime.NumGoroutine()
	// Built without newTestOutput's cleanup, which would wait for ever
	// on a Close that hangs.
	pc, err := outputSpec().ParseYAML(kinesaliteYAML(t, stream, "dead_letter:\n  socket:\n    network: tcp\n    address: "+dead+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := parseOutputConfig(pc)
	if err != nil {
		t.Fatal(err)
	}
	o := newOutput(oc, service.MockResources())
	if err := o.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	flagged := keyed("k", []byte("bad row"))
	flagged.SetError(errorString("malformed CSV row"))
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
	err = o.WriteBatch(wctx, service.MessageBatch{keyed("k", testRecord("k", 0, 20)), flagged})
	wcancel()
	if err == nil {
		t.Fatal("batch acknowledged although the dead letter took nothing")
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- o.Close(context.Background()) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Close with a dead letter that cannot connect has not returned after %v", time.Since(start))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	settleGoroutines(t, before)
}

// settleGoroutines fails the test unless the goroutines fall back to at
// most before (plus the HTTP client's idle connections, closed here) within
// a few seconds.
func settleGoroutines(t *testing.T, before int) {
	t.Helper()
	var n int
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n = runtime.NumGoroutine()
		if n <= before || time.Now().After(end) {
			break
		}
	}
	if n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
