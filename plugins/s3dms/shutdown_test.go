package s3dms

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// TestCloseWhileCheckpointWritesStall: S3 stops answering the checkpoint
// writes (a network partition: the requests get no answer) while the input
// is connected, then the stream stops. Close must return promptly: it
// waited for the saver's stalled write (up to 30 s) and then made its last
// write with the engine's Close context, which has no deadline, so it hung
// for as long as S3 did not answer: the process exited 1 after
// shutdown_timeout, and in streams mode a deleted stream kept its goroutines
// and its hold on the checkpoint key, refusing the same stream created
// again. The next start resumes from the last write that went through:
// nothing acknowledged after it is lost (it is read again).
func TestCloseWhileCheckpointWritesStall(t *testing.T) {
	b := newS3Backend(t)
	var sb strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&sb, "%d,row\n", i)
	}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(sb.String()))
	gate, ep := newCkGate(t, b.ep)
	extra := "mode: full-load\nbatch_size: 5\nrequest_timeout: 2s\ncheckpoint:\n  store: s3\n  key: ha/job.json\n  interval: 100ms\n  lease: 1s\n"
	yamlA := strings.Replace(baseYAML(b, extra), "endpoint: "+b.ep, "endpoint: "+ep, 1)
	a, _ := directInput(t, yamlA)
	t.Cleanup(gate.open) // runs before directInput's Close
	ctx := context.Background()
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, err := readAllDirect(t, a, 10); err != nil || len(rows) != 10 {
		t.Fatalf("a reads: %d rows, %v", len(rows), err)
	}
	gate.close()
	<-gate.held // the saver's write is stalled
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- a.Close(ctx) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("Close with stalled checkpoint writes has not returned after %v", time.Since(start))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with request_timeout 2s", d)
	}
	testutil.WaitNoPluginGoroutines(t, "input")

	// S3 answers again: the next start resumes at the last saved
	// position, at or before the first row a did not read.
	gate.open()
	bIn, _ := directInput(t, baseYAML(b, extra))
	var err error
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = bIn.Connect(ctx); err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	rows, err := readAllDirect(t, bIn, 1)
	if err != nil || len(rows) == 0 {
		t.Fatalf("restart reads: %v %v", rows, err)
	}
	var first int
	fmt.Sscanf(rows[0], "%d,", &first)
	if first > 10 {
		t.Fatalf("restart resumes at row %q: rows 10..%d, read by the first instance, are lost", rows[0], first-1)
	}
}

// silentS3 is an endpoint that accepts connections and never answers (S3
// behind a network partition). Closed at the end of the test.
func silentS3(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String()
}

// TestConnectWhileS3DoesNotAnswer: S3 does not answer at all (a network
// partition) when the input starts, with the checkpoint in S3. Each Connect
// must fail within request_timeout, so that the engine logs the failure and
// /ready says why, and stop at once when the stream stops.
func TestConnectWhileS3DoesNotAnswer(t *testing.T) {
	ep := silentS3(t)
	b := &s3Backend{bucket: "silent", ep: ep}
	in, _ := directInput(t, baseYAML(b, "request_timeout: 1s\ncheckpoint:\n  store: s3\n  key: ck/job.json\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err := in.connect(ctx)
	if err == nil {
		t.Fatal("connect succeeded against an endpoint that never answers")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a Connect attempt against an S3 that does not answer took %v (request_timeout 1s): %v", d, err)
	}
	t.Logf("connect: %v after %v", err, time.Since(start))
}

// TestFirstStartWhileS3ListingDoesNotAnswer: a first start under a default
// s3 checkpoint key lists the checkpoints' prefix for this job's checkpoint
// under an earlier default key. When S3 stops answering then (it answered
// the checkpoint's read and write a moment before), Connect must fail after
// request_timeout, as every other request of the s3 store does, not hang
// until TCP gives up.
func TestFirstStartWhileS3ListingDoesNotAnswer(t *testing.T) {
	err := firstStartAgainst(t, func(w http.ResponseWriter, r *http.Request) bool {
		return r.URL.Query().Get("list-type") != "2" // the listing is not answered
	})
	if !strings.Contains(err.Error(), "request_timeout") {
		t.Errorf("the error does not say S3 did not answer within request_timeout: %v", err)
	}
}

// TestFirstStartWhileS3CheckpointReadDoesNotAnswer: likewise when S3 lists
// a checkpoint under another default key but does not answer its read: the
// first start fails after request_timeout instead of hanging, and does not
// pass it over (which could start over under the new key).
func TestFirstStartWhileS3CheckpointReadDoesNotAnswer(t *testing.T) {
	err := firstStartAgainst(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("list-type") == "2" {
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>quiet</Name><IsTruncated>false</IsTruncated><Contents><Key>dmsbridge-checkpoints/aws_s3_dms-quiet-0000000000000000.json</Key><Size>10</Size></Contents></ListBucketResult>`)
			return true
		}
		return !strings.HasSuffix(r.URL.Path, "0000000000000000.json") // that read is not answered
	})
	for _, want := range []string{"request_timeout", "aws_s3_dms-quiet-0000000000000000.json"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

// firstStartAgainst runs a first start (default s3 checkpoint key,
// request_timeout 1s) of bucket "quiet" against an S3 whose GETs go to get
// first: get answers and returns true, or returns false and the request is
// never answered. Other GETs are NoSuchKey, PUTs succeed. It fails the test
// unless Connect fails within 5 s, and returns Connect's error.
func firstStartAgainst(t *testing.T, get func(w http.ResponseWriter, r *http.Request) bool) error {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			if !get(w, r) {
				select { // no answer
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			if r.URL.Query().Get("list-type") != "2" && !strings.HasSuffix(r.URL.Path, "0000000000000000.json") {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>none</Message></Error>`)
			}
		case http.MethodPut:
			w.Header().Set("ETag", `"e1"`)
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	b := &s3Backend{bucket: "quiet", ep: srv.URL}
	in, _ := directInput(t, baseYAML(b, "request_timeout: 1s\ncheckpoint:\n  store: s3\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err := in.connect(ctx)
	if d := time.Since(start); err == nil || d > 5*time.Second {
		t.Fatalf("a first start against an S3 that does not answer one request returned %v after %v (request_timeout 1s)", err, d)
	}
	return err
}
