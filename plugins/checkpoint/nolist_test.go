package checkpoint

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/dmsbridge/dmsbridge/plugins/awsconf"
)

// withoutListBucket is a front to versitygw answering as Amazon S3 answers
// credentials that may get and put objects but lack s3:ListBucket on the
// bucket: a GET of a key that does not exist is 403 AccessDenied, not 404
// NoSuchKey ("If you don't have the s3:ListBucket permission, Amazon S3
// returns an HTTP status code 403"). With denyAll set every GET is denied
// (no s3:GetObject either).
func withoutListBucket(t *testing.T, c *s3.Client, bucket string, denyAll *atomic.Bool) *s3.Client {
	t.Helper()
	target, _ := url.Parse(os.Getenv("S3_ENDPOINT"))
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.RawQuery == "x-id=GetObject" {
			key := strings.TrimPrefix(r.URL.Path, "/"+bucket+"/")
			_, err := c.HeadObject(r.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
			if err != nil || denyAll.Load() {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>R</RequestId><HostId>H</HostId></Error>`))
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	conf, err := awsconf.Load(context.Background(), awsconf.Config{Endpoint: srv.URL, Region: os.Getenv("AWS_REGION")})
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(conf, func(o *s3.Options) { o.UsePathStyle = true; o.DisableLogOutputChecksumValidationSkipped = true })
}

// TestS3StoreWithoutListBucket: a checkpoint bucket (or prefix) on which the
// credentials may only get and put objects, as a least-privilege policy
// grants, answers the first start's read of the checkpoint, which does not
// exist yet, with 403 AccessDenied. The store took that for a refusal, so
// the input never connected. A 403 on the first read is now followed by the
// create-only write (If-None-Match: *): it succeeds when the checkpoint
// does not exist, and can never overwrite one that does, whose refusal is
// then reported.
func TestS3StoreWithoutListBucket(t *testing.T) {
	ctx := context.Background()
	c := s3Client(t)
	bucket := newBucket(t, c)
	var denyAll atomic.Bool
	front := withoutListBucket(t, c, bucket, &denyAll)
	key := "dmsbridge-checkpoints/job.json"
	a := &S3{Client: front, Bucket: bucket, Key: key, Owner: "instance-a", Lease: 30 * time.Second}
	st, err := a.Load(ctx)
	if err != nil || st != nil {
		t.Fatalf("first start: state %+v, error %v; want no state and no error", st, err)
	}
	want := &State{Position: Position{Phase: PhaseCDC, Key: "cdc/CDC1.csv", ETag: `"e"`, Offset: 7, Line: 2}}
	if err := a.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	// A second instance finds it held (the object now exists: it is read).
	b := &S3{Client: front, Bucket: bucket, Key: key, Owner: "instance-b", Lease: 30 * time.Second}
	if _, err := b.Load(ctx); !errors.Is(err, ErrHeld) {
		t.Fatalf("second instance: %v, want ErrHeld", err)
	}
	// Credentials that may not read it at all never overwrite it: the
	// refusal is reported.
	denyAll.Store(true)
	a2 := &S3{Client: front, Bucket: bucket, Key: key, Owner: "instance-c", Lease: time.Millisecond}
	if _, err := a2.Load(ctx); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("unreadable checkpoint: %v, want the AccessDenied reported", err)
	}
	got, _, err := (&S3{Client: c, Bucket: bucket, Key: key, Owner: "reader"}).current(ctx)
	if err != nil || got == nil || got.Owner != "instance-a" || got.Position != want.Position {
		t.Fatalf("checkpoint after the refused start: %+v %v", got, err)
	}
}
