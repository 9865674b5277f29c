package s3dms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
			// the full load's end and the CDC start may take calls
			err := readUntilErr(t, in, 3*time.Second, func(batch service.MessageBatch) {
				if len(batch) > 0 {
					t.Fatalf("rows while refused: %d", len(batch))
				}
			})
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

// A checkpoint store that fails while the pipeline runs (the directory
// gone or read-only, the store's bucket deleted) does not stop the pipeline,
// by design, but every row acknowledged since the last save comes again
// after a crash, so an operator must be able to see it and alert on it:
// dms_checkpoint_save_errors counts the failed saves and
// dms_checkpoint_save_failing is 1 while the last one failed. Before, there
// was no metric at all, and the error was logged at every attempt (every
// checkpoint.interval, with 0s after every batch) forever; now it is logged
// once, then at most every 10 s with the count, and the recovery once.
func TestCheckpointFailureIsCountedAndLoggedSparingly(t *testing.T) {
	bin := buildBinary(t)
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	ckDir := filepath.Join(t.TempDir(), "ck")
	addr := freeAddr(t)
	conf := fmt.Sprintf(`
http:
  address: %s
logger:
  level: INFO
  format: logfmt
metrics:
  prometheus: {}
input:
  aws_s3_dms:
%s    bucket_folder: dms
    cdc_path: changes
    table_definition: '%s'
    poll_interval: 20ms
    checkpoint:
      directory: %s
      interval: 20ms
output:
  drop: {}
`, addr, indent(indent(b.yaml())), twoTables, ckDir)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfg)
	var logs lockedBuf
	logs.buf = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	metric, waitMetric := metricReader(t, "http://"+addr, logs.String)
	waitMetric("dms_table_state", "2") // the full load is done and saved
	waitMetric("dms_checkpoint_save_errors", "0")
	waitMetric("dms_checkpoint_save_failing", "0")

	breakCheckpointDir(t, ckDir)
	b.put(t, "dms/changes/CDC1.csv", []byte("I,hr,zeta,2,b\n")) // a position to save
	waitMetric("dms_checkpoint_save_failing", "1")
	time.Sleep(2 * time.Second) // about 100 attempts at a 20ms interval
	n, _ := strconv.Atoi(metric("dms_checkpoint_save_errors"))
	if n < 20 {
		t.Fatalf("dms_checkpoint_save_errors %d after 2 s of failing saves every 20ms", n)
	}
	if lines := strings.Count(logs.String(), "saving checkpoint"); lines < 1 || lines > 2 {
		t.Fatalf("%d log lines about %d failed saves in 2 s, want 1 (then one per 10 s):\n%s", lines, n, logs.String())
	}
	if !strings.Contains(logs.String(), ckDir) {
		t.Fatalf("the log does not name the checkpoint path:\n%s", logs.String())
	}

	if err := os.Remove(ckDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ckDir, 0o755); err != nil {
		t.Fatal(err)
	}
	waitMetric("dms_checkpoint_save_failing", "0")
	if !strings.Contains(logs.String(), "checkpoint saved again") {
		t.Fatalf("the recovery is not logged:\n%s", logs.String())
	}
}

// An s3 checkpoint store whose writes stall or fail (its bucket deleted,
// S3 unreachable for them) lets the instance's lease run out, and the input
// then emits nothing, by design, until a write confirms the claim. Before,
// ReadBatch returned an error the engine logged every second while /ready
// answered 200: a pipeline stopped for good looked ready. Now the input
// reports itself not connected while the lease is lapsed: Connect fails
// (cheaply, no request) with the lapse named, so /ready answers 503 with it,
// until a write confirms the claim; reading then goes on. An instance whose
// checkpoint was taken over (fenced) stays not connected, saying so.
func TestLapsedLeaseReportsNotConnected(t *testing.T) {
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n3,c\n"))
	gate, ep := newCkGate(t, b.ep)
	extra := "batch_size: 1\npoll_interval: 50ms\ncheckpoint:\n  store: s3\n  key: ha/job.json\n  interval: 100ms\n  lease: 1s\n"
	in, _ := directInput(t, strings.Replace(baseYAML(b, extra), "endpoint: "+b.ep, "endpoint: "+ep, 1))
	t.Cleanup(gate.open)
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, err := readAllDirect(t, in, 1); err != nil || len(rows) != 1 {
		t.Fatalf("reads: %q, %v", rows, err)
	}
	gate.close()
	<-gate.held                                    // the heartbeat is stuck: the lease runs out
	err := readUntilErr(t, in, 5*time.Second, nil) // batches emitted before the lease ran out are acknowledged
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("ReadBatch with the lease lapsed: %v, want ErrNotConnected", err)
	}
	err = in.Connect(ctx)
	var bo *service.ErrBackOff
	if !errors.As(err, &bo) || bo.Wait <= 0 || !strings.Contains(err.Error(), "lease") || !strings.Contains(err.Error(), "ha/job.json") {
		t.Fatalf("Connect with the lease lapsed: %v, want a back-off error naming the checkpoint and the lease", err)
	}
	gate.open() // the held write goes through: the claim is confirmed
	deadline := time.Now().Add(10 * time.Second)
	for in.Connect(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still not connected after the writes went through: %v", in.Connect(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.put(t, "dms/changes/cdc1.csv", []byte("I,hr,zeta,4,d\n"))
	if rows, err := readAllDirect(t, in, 1); err != nil || strings.Join(rows, ",") != "I,hr,zeta,4,d" {
		t.Fatalf("reads after the lease was confirmed: %q, %v", rows, err)
	}
}

// With bad_files: stop the input stops on a bad object for good (until a
// restart after an operator replaced or removed it). Before, a truncated gzip
// object (the bad object bad_files exists for) counted as S3 not answering
// (unexpected EOF): the input reported itself not connected, Connect's probe
// succeeded at once and the object was read again, in a loop without any
// wait: thousands of log lines, re-reads and dms_bad_files counts per second.
// Now the stop is reported as such: ReadBatch reports the input not
// connected, Connect returns the error naming the object with a wait of
// poll_interval (so /ready answers 503 with it and the engine logs it once
// per wait), and the object is not read again.
func TestBadFilesStopReportsNotConnected(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	putTruncatedGzipThenGood(t, b, 2000)
	in, logs := directInput(t, baseYAML(b, "mode: full-load\nbad_files: stop\nbatch_size: 100000\npoll_interval: 1s\ncheckpoint:\n  store: none\n"))
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	err := readUntilErr(t, in, 5*time.Second, func(batch service.MessageBatch) {
		for _, m := range batch {
			if body, _ := m.AsBytes(); string(body) == "3,ok" {
				t.Fatal("went on past the bad object")
			}
		}
	})
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("ReadBatch stopped on a bad object: %v, want ErrNotConnected", err)
	}
	// What the engine does, a few times: Connect, and ReadBatch if it
	// succeeded.
	for i := 0; i < 5; i++ {
		err = in.Connect(ctx)
		var bo *service.ErrBackOff
		if !errors.As(err, &bo) || bo.Wait < time.Second || !strings.Contains(err.Error(), "LOAD1.csv.gz") || !strings.Contains(err.Error(), "bad_files: stop") {
			t.Fatalf("Connect %d while stopped: %v, want a back-off of poll_interval naming the object and bad_files: stop", i, err)
		}
	}
	if n := strings.Count(logs.String(), "LOAD1.csv.gz"); n > 2 {
		t.Fatalf("%d log lines about the bad object, want it said once (then by the engine at each wait):\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "unreachable"); n > 0 {
		t.Fatalf("a bad object reported as the source unreachable:\n%s", logs.String())
	}
}

// S3 that answers listings but keeps failing the GET of an object (a 5xx
// for that object, e.g. SlowDown on reads only) is "unreachable" for the
// input, and the reconnection probe, a listing, succeeds at once. Before,
// the engine then read again with no wait at all: about 50 failing GETs (each
// retried by the SDK) and a hundred log lines per second, for as long as it
// lasted. Now the repeats wait, from 1 s growing to 10 s, and /ready shows why
// meanwhile; once the GET succeeds, reading goes on at once.
func TestRepeatedReadFailureWaits(t *testing.T) {
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	target, _ := url.Parse(b.ep)
	rp := httputil.NewSingleHostReverseProxy(target)
	var gets atomic.Int64
	var failing atomic.Bool
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/LOAD1.csv") && failing.Load() {
			gets.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`<Error><Code>InternalError</Code><Message>failed by the test</Message></Error>`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	yaml := strings.Replace(baseYAML(b, "poll_interval: 50ms\ncheckpoint:\n  store: none\n"), b.ep, srv.URL, 1)
	r := startStream(t, yaml, nil)
	time.Sleep(3 * time.Second)
	n, lines := gets.Load(), strings.Count(r.logText(), "\n")
	// 3 s is at most 4 attempts (at 0, 0, 1 and 3 s), each a GET the SDK
	// tries 3 times.
	if n > 15 || lines > 40 {
		t.Fatalf("%d failing GETs and %d log lines in 3 s: the input reads again without waiting\n%.3000s", n, lines, r.logText())
	}
	failing.Store(false)
	if got := r.waitFor(t, 1, 15*time.Second); got[0].Body != "1,a" {
		t.Fatalf("after the GETs succeed: %v", got)
	}
	r.stop(t)
}

// An object replaced while it was being read, when the download was cut
// (so the input must reopen the version it was reading, at its last row),
// cannot be read on: the input stops at that row until the original is put
// back or the input is restarted with restart_changed_files. Before, each
// ReadBatch returned the error (logged each second) while /ready answered
// 200. Now the input reports itself not connected: Connect returns the error,
// naming the object and the way out, as a growing back-off (/ready 503 with
// it), and the reopen is tried again after each wait.
func TestChangedObjectMidReadReportsNotConnected(t *testing.T) {
	b := newS3Backend(t)
	var v1 strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&v1, "%d,first version\n", i)
	}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(v1.String()))
	target, _ := url.Parse(b.ep)
	rp := httputil.NewSingleHostReverseProxy(target)
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/LOAD1.csv") {
			switch gets.Add(1) {
			case 1:
				rp.ServeHTTP(&cutWriter{ResponseWriter: w, left: 20000}, r)
				return
			case 2:
				b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("0,second version\n")) // before the reopen
			}
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	in, _ := directInput(t, strings.Replace(baseYAML(b, "mode: full-load\nbatch_size: 100\ncheckpoint:\n  store: none\n"), b.ep, srv.URL, 1))
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	for rctx.Err() == nil {
		var ack service.AckFunc
		_, ack, err = in.ReadBatch(rctx)
		if ack != nil {
			_ = ack(ctx, nil)
		}
		if errors.Is(err, service.ErrNotConnected) {
			if gets.Load() < 2 {
				// the cut: the engine reconnects (the probe succeeds)
				if cerr := in.Connect(ctx); cerr != nil {
					t.Fatalf("Connect after the cut: %v", cerr)
				}
				continue
			}
			break
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			break
		}
	}
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("ReadBatch with the object changed under the reopen: %v, want ErrNotConnected", err)
	}
	err = in.Connect(ctx)
	var bo *service.ErrBackOff
	if !errors.As(err, &bo) || bo.Wait <= 0 || !strings.Contains(err.Error(), "LOAD1.csv") || !strings.Contains(err.Error(), "ETag") {
		t.Fatalf("Connect with the object changed: %v, want a back-off error naming the object and the ETag change", err)
	}
}

// readUntilErr reads batches, showing each to check (when not nil) and
// acknowledging it, until ReadBatch returns an error other than a
// cancelled context, and returns that error (the deadline's when within
// passes first).
func readUntilErr(t *testing.T, in *input, within time.Duration, check func(service.MessageBatch)) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		batch, ack, err := in.ReadBatch(ctx)
		if check != nil {
			check(batch)
		}
		if ack != nil {
			_ = ack(context.Background(), nil)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// breakCheckpointDir turns the checkpoint directory into a file, so that
// every save fails (as root, a mode change would not stop a write). A save
// may write into the directory, or make it again, in between: retried.
func breakCheckpointDir(t *testing.T, ckDir string) {
	t.Helper()
	for i := 0; ; i++ {
		err := os.RemoveAll(ckDir)
		if err == nil {
			err = os.WriteFile(ckDir, nil, 0o644)
		}
		if err == nil {
			return
		}
		if i == 100 {
			t.Fatal(err)
		}
	}
}
