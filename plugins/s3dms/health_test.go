package s3dms

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// A source that refuses the input (the bucket deleted, credentials or a
// policy that no longer allow it: S3 answers 403 or 404 NoSuchBucket) does
// not heal by itself. Before, ReadBatch returned the error and the engine
// logged it and called again, while /ready answered 200 and no metric moved.
// Now the input reports itself not connected, so /ready answers 503 with
// Connect's error, which names the bucket and S3's answer, and makes the
// engine wait before the failing request is tried again; once S3 accepts
// again, reading resumes at the same row.
func TestRefusedSourceReportsNotConnected(t *testing.T) {
	for _, refusal := range []struct {
		status int
		code   string
	}{{403, "AccessDenied"}, {404, "NoSuchBucket"}} {
		t.Run(refusal.code, func(t *testing.T) {
			b := newS3Backend(t)
			b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
			target, _ := url.Parse(b.ep)
			rp := httputil.NewSingleHostReverseProxy(target)
			var refuse atomic.Bool
			var refused atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if refuse.Load() {
					refused.Add(1)
					w.Header().Set("Content-Type", "application/xml")
					w.WriteHeader(refusal.status)
					_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + refusal.code + `</Code><Message>refused by the test</Message></Error>`))
					return
				}
				rp.ServeHTTP(w, r)
			}))
			defer srv.Close()
			yaml := strings.Replace(baseYAML(b, "poll_interval: 20ms\ncheckpoint:\n  store: none\n"), b.ep, srv.URL, 1)
			in, _ := directInput(t, yaml)
			ctx := context.Background()
			if err := in.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := readAllDirect(t, in, 1); err != nil || strings.Join(got, ",") != "1,a" {
				t.Fatalf("full load: %q %v", got, err)
			}
			refuse.Store(true)
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			var err error
			for err == nil || errors.Is(err, context.Canceled) {
				// the full load's end and the CDC start may take calls
				if rctx.Err() != nil {
					break
				}
				var batch service.MessageBatch
				batch, _, err = in.ReadBatch(rctx)
				if len(batch) > 0 {
					t.Fatalf("rows while refused: %d", len(batch))
				}
			}
			if !errors.Is(err, service.ErrNotConnected) {
				t.Fatalf("ReadBatch while S3 refuses: %v, want ErrNotConnected", err)
			}
			err = in.Connect(ctx)
			var bo *service.ErrBackOff
			if !errors.As(err, &bo) || bo.Wait <= 0 {
				t.Fatalf("Connect while S3 refuses: %v, want a back-off error", err)
			}
			if !strings.Contains(err.Error(), "s3://"+b.bucket+"/") || !strings.Contains(err.Error(), refusal.code) {
				t.Fatalf("Connect error %q does not name the bucket and %s", err, refusal.code)
			}
			calls := refused.Load()
			if err := in.Connect(ctx); err == nil {
				t.Fatal("Connect while S3 still refuses succeeded")
			}
			if refused.Load() == calls {
				t.Fatal("the second Connect did not ask S3 again")
			}
			refuse.Store(false)
			b.put(t, "dms/changes/cdc1.csv", []byte("I,hr,zeta,2,b\n"))
			if err := in.Connect(ctx); err != nil {
				t.Fatalf("Connect once S3 answers: %v", err)
			}
			if got, err := readAllDirect(t, in, 1); err != nil || strings.Join(got, ",") != "I,hr,zeta,2,b" {
				t.Fatalf("after the refusal: %q %v", got, err)
			}
		})
	}
}
