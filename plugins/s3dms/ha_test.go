package s3dms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// ckGate is an S3 endpoint in front of versitygw that, once closed, holds
// every PUT of a checkpoint object (S3 slow or unreachable for the
// checkpoint writes only) until it is opened again.
type ckGate struct {
	mu     sync.Mutex
	closed chan struct{} // nil: open
	held   chan struct{} // signalled when a PUT is held
}

func (g *ckGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == nil {
		g.closed = make(chan struct{})
	}
}

func (g *ckGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

func newCkGate(t *testing.T, target string) (*ckGate, string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &ckGate{held: make(chan struct{}, 100)}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/ha/") {
			g.mu.Lock()
			c := g.closed
			g.mu.Unlock()
			if c != nil {
				select {
				case g.held <- struct{}{}:
				default:
				}
				select {
				case <-c:
				case <-r.Context().Done():
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return g, srv.URL
}

// TestLapsedLeaseStopsEmitting: an instance whose checkpoint writes stall
// (S3 slow for them, a network partition, a long pause) loses its lease,
// and a standby takes over once it runs out. The first instance must notice
// that its lease ran out before emitting more rows: the standby is reading
// the same rows from the same checkpoint, and "two instances never
// double-process" is what the s3 store promises.
func TestLapsedLeaseStopsEmitting(t *testing.T) {
	b := newS3Backend(t)
	var sb strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&sb, "%d,row\n", i)
	}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(sb.String()))
	gate, ep := newCkGate(t, b.ep)
	extra := "mode: full-load\nbatch_size: 5\ncheckpoint:\n  store: s3\n  key: ha/job.json\n  interval: 100ms\n  lease: 1s\n"
	yamlA := strings.Replace(baseYAML(b, extra), "endpoint: "+b.ep, "endpoint: "+ep, 1)
	a, _ := directInput(t, yamlA)
	t.Cleanup(gate.open) // before a's Close, whose last write the gate would hold
	ctx := context.Background()
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, err := readAllDirect(t, a, 10); err != nil || len(rows) != 10 {
		t.Fatalf("a reads: %d rows, %v", len(rows), err)
	}

	gate.close()
	<-gate.held // a's heartbeat is stuck: its lease runs out

	bIn, _ := directInput(t, baseYAML(b, extra))
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := bIn.Connect(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, checkpoint.ErrHeld) || time.Now().After(deadline) {
			t.Fatalf("standby connect: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the engine's reconnect backoff
	}
	// b has taken over, and reads from the checkpoint a last saved.
	if rows, err := readAllDirect(t, bIn, 5); err != nil || len(rows) != 5 {
		t.Fatalf("b reads: %d rows, %v", len(rows), err)
	}

	// a is alive, its checkpoint write still stalled. It must not emit.
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	batch, _, err := a.ReadBatch(rctx)
	if len(batch) > 0 {
		first, _ := batch[0].AsBytes()
		t.Fatalf("a emitted %d rows (from %q) after its lease ran out and b took over: both instances process the same rows", len(batch), first)
	}
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("a's ReadBatch after its lease ran out: %v, want not connected", err)
	}
	if err := a.Connect(ctx); err == nil || !strings.Contains(err.Error(), "lease") {
		t.Fatalf("a's Connect after its lease ran out: %v, want an error about the lease", err)
	}

	// Once a's stalled write goes through, it is fenced and stops for good.
	gate.open()
	for deadline := time.Now().Add(10 * time.Second); ; {
		a.mu.Lock()
		fatal := a.fatal
		a.mu.Unlock()
		if fatal != nil {
			if !errors.Is(fatal, checkpoint.ErrFenced) {
				t.Fatalf("a stopped with %v, want fenced", fatal)
			}
			// and says so where an operator looks (/ready: Connect's error)
			var bo *service.ErrBackOff
			if err := a.Connect(ctx); !errors.As(err, &bo) || !errors.Is(bo.Err, checkpoint.ErrFenced) {
				t.Fatalf("a's Connect once fenced: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a was never fenced")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
