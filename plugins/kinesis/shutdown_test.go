package kinesis

import (
	"context"
	"net"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/tests/tcpproxy"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
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

// TestCloseInEveryState closes the output in each state of its life with
// Kinesis down (connecting, a write retrying, a write waiting out a long
// back-off) and idle: the engine first cancels what runs (its soft stop),
// then calls Close. Each must return promptly and leave no goroutine of
// the output behind.
func TestCloseInEveryState(t *testing.T) {
	for _, st := range []string{"connecting", "writing", "backing off", "idle"} {
		t.Run(st, func(t *testing.T) {
			stream := newStream(t, 2)
			u, err := url.Parse(mustEnv(t, "KINESIS_ENDPOINT"))
			if err != nil {
				t.Fatal(err)
			}
			p, err := tcpproxy.Start("", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			yaml := strings.Replace(kinesaliteYAML(t, stream, ""), mustEnv(t, "KINESIS_ENDPOINT"), p.URL(), 1)
			yaml = strings.Replace(yaml, "max_elapsed_time: 30s", "max_elapsed_time: 0s", 1)
			if st == "backing off" {
				yaml = strings.Replace(yaml, "initial_interval: 20ms, max_interval: 500ms", "initial_interval: 30s, max_interval: 60s", 1)
			}
			pc, err := outputSpec().ParseYAML(yaml, nil)
			if err != nil {
				t.Fatal(err)
			}
			oc, err := parseOutputConfig(pc)
			if err != nil {
				t.Fatal(err)
			}
			o := newOutput(oc, service.MockResources())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			if st == "connecting" {
				p.Pause()
				go func() {
					// The engine calls Connect again after each failure.
					for ctx.Err() == nil {
						_ = o.Connect(ctx)
					}
					done <- nil
				}()
				for end := time.Now().Add(10 * time.Second); p.Stats().Refused < 3; time.Sleep(20 * time.Millisecond) {
					if time.Now().After(end) {
						t.Fatalf("Connect was not tried against the stopped Kinesis: %+v", p.Stats())
					}
				}
			} else {
				if err := o.Connect(ctx); err != nil {
					t.Fatal(err)
				}
				if st != "idle" {
					p.Pause()
					go func() { done <- o.WriteBatch(ctx, makeBatch(keysN(8), 40, 20, map[string]int{})) }()
					time.Sleep(300 * time.Millisecond) // into its retries (or its back-off)
					for end := time.Now().Add(10 * time.Second); p.Stats().Refused+p.Stats().Cut < 1; time.Sleep(20 * time.Millisecond) {
						if time.Now().After(end) {
							t.Fatalf("no write was tried against the stopped Kinesis: %+v", p.Stats())
						}
					}
				} else {
					done <- nil
				}
			}
			start := time.Now()
			cancel() // the engine's soft stop
			select {
			case err := <-done:
				if (st == "writing" || st == "backing off") && err == nil {
					t.Fatal("a batch not written to the stopped Kinesis was acknowledged")
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: still running 5 s after its context was cancelled", st)
			}
			cdone := make(chan error, 1)
			go func() { cdone <- o.Close(context.Background()) }()
			select {
			case <-cdone:
			case <-time.After(10 * time.Second):
				t.Fatal("Close has not returned after 10 s")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("stop took %v", d)
			}
			testutil.WaitNoPluginGoroutines(t, "output")
		})
	}
}
