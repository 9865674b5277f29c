package s3dms

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStopDuringListingLogsNoError: a pipeline stopped while the input
// lists the CDC folder in the middle of a batch (here the listing that
// starts CDC, right after the last full-load rows) is a normal shutdown:
// the rows read are returned and nothing is logged as an ERROR. (Found by
// TestDiffPropertyInputToProcessor: every such stop logged
// `level=ERROR msg="listing s3://...: ... context canceled"`.)
func TestStopDuringListingLogsNoError(t *testing.T) {
	b, _, target := twoLoadFiles(t)
	var armed atomic.Bool
	listing := make(chan struct{}, 1)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if armed.Load() && r.Method == http.MethodGet && r.URL.Query().Get("prefix") == "dms/changes/" {
			select {
			case listing <- struct{}{}:
			default:
			}
			<-r.Context().Done() // answers only once the client gives up
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	yaml := strings.Replace(baseYAML(b, "batch_size: 10\ncheckpoint:\n  store: none\n"), b.ep, srv.URL, 1)
	in, logs := directInput(t, yaml)
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-listing:
		case <-time.After(10 * time.Second):
		}
		cancel() // the engine cancels ReadBatch when the stream stops
	}()
	batch, _, err := in.ReadBatch(ctx)
	if err != nil || len(batch) != 3 {
		t.Fatalf("ReadBatch: %d rows, %v; want the 3 full-load rows", len(batch), err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("a stop during a listing logged an error:\n%s", logs.String())
	}
	// the listing cut short is made again at the next read
	armed.Store(false)
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,4,d\n"))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	batch, _, err = in.ReadBatch(ctx2)
	if err != nil || len(batch) != 1 {
		t.Fatalf("next ReadBatch: %d rows, %v; want the CDC row", len(batch), err)
	}
}
