package s3dms

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// An s3 checkpoint store whose writes stall (S3 unreachable for them) lapses
// the lease, and the input reports itself not connected until a write
// confirms the claim. Before, Connect returned the lapse with a wait of at
// most 1 s, and the engine logged it at every attempt: an ERROR line a
// second for as long as the writes stalled. Now the lapse is still checked
// every second, but said at once, then after 10 s (and at growing intervals),
// with how long it has lasted; reading goes on once a write goes through.
func TestLapsedLeaseLoggedSparingly(t *testing.T) {
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	gate, ep := newCkGate(t, b.ep)
	t.Cleanup(gate.open)
	extra := "batch_size: 1\npoll_interval: 50ms\ncheckpoint:\n  store: s3\n  key: ha/job.json\n  interval: 100ms\n  lease: 1s\n"
	r := startStream(t, strings.Replace(baseYAML(b, extra), "endpoint: "+b.ep, "endpoint: "+ep, 1), nil)
	r.waitFor(t, 1, 10*time.Second)
	gate.close()
	<-gate.held
	time.Sleep(14 * time.Second) // lapsed after about 1 s: 13 s of it
	logs := r.logText()
	n := strings.Count(logs, "Failed to connect to aws_s3_dms")
	// at once, after 10 s (and one for timing)
	if n == 0 || n > 3 || !strings.Contains(logs, "ran out") {
		t.Fatalf("%d lines \"Failed to connect\" in 13 s of a lapsed lease, want 1 to 3 naming the lapse:\n%s", n, logs)
	}
	if n > 1 && !strings.Contains(logs, "failing for ") {
		t.Fatalf("the repeated line does not say for how long it has failed:\n%s", logs)
	}
	gate.open()
	b.put(t, "dms/changes/cdc1.csv", []byte("I,hr,zeta,2,b\n"))
	if got := r.waitFor(t, 2, 15*time.Second); got[1].Body != "I,hr,zeta,2,b" {
		t.Fatalf("after the writes went through: %v", got)
	}
	r.stop(t)
}

// A batch the output keeps rejecting (a record it can never write, no dead
// letter) is redelivered until it goes through. Before, the wait between two
// redeliveries stopped growing at 3.2 s: a warning from the input and an
// error from the engine every 3.2 s, for as long as nobody intervened (over
// 2,000 lines an hour). Now the wait keeps doubling, up to 30 s, so the
// lines thin out to four a minute, the warning counting the attempts; once
// the output takes the batch, reading goes on.
func TestRejectedBatchRedeliveryThinsOut(t *testing.T) {
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	var rejecting atomic.Bool
	rejecting.Store(true)
	r := startStream(t, baseYAML(b, "batch_size: 1\npoll_interval: 50ms\ncheckpoint:\n  store: none\n"), func(batch []got) error {
		if rejecting.Load() && batch[0].Body == "1,a" {
			return errors.New("rejected by the test")
		}
		return nil
	})
	time.Sleep(40 * time.Second)
	logs := r.logText()
	n := strings.Count(logs, "was rejected downstream")
	// nacks at 0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3, 12.7, 25.5 s (then 51.1):
	// 9; before, 16 or more.
	if n == 0 || n > 10 {
		t.Fatalf("%d warnings about the rejected batch in 40 s, want at most 10:\n%.4000s", n, logs)
	}
	if !strings.Contains(logs, "redelivering it in 25.6s (attempt 9)") {
		t.Fatalf("the waits do not grow to 25.6 s by the 9th attempt, or the attempts are not counted:\n%.4000s", logs)
	}
	rejecting.Store(false)
	if got := r.waitFor(t, 1, 40*time.Second); got[0].Body != "1,a" {
		t.Fatalf("after the output takes the batch: %v", got)
	}
	r.stop(t)
}

// A download cut once mid-body (a connection reset, common on long S3
// reads) is reopened at its last whole row and reading goes on: nothing for
// an operator to act on. Before, the cut was logged at error level (as was
// "unreachable" when no row of the batch had been read yet), the same level
// as an outage that lasts. Now it is a warning naming the object and what
// happens next; an outage that lasts still gets an error line, from the
// first reconnection that fails.
func TestCutDownloadThatResumesIsAWarning(t *testing.T) {
	b := newS3Backend(t)
	var body strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&body, "%d,row\n", i)
	}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(body.String()))
	target, _ := url.Parse(b.ep)
	rp := httputil.NewSingleHostReverseProxy(target)
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/LOAD1.csv") && gets.Add(1) == 1 {
			rp.ServeHTTP(&cutWriter{ResponseWriter: w, left: 20000}, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	yaml := strings.Replace(baseYAML(b, "mode: full-load\nbatch_size: 100\ncheckpoint:\n  store: none\n"), b.ep, srv.URL, 1)
	r := startStream(t, yaml, nil)
	got := r.waitFor(t, 5000, 30*time.Second)
	for i, g := range got {
		if g.Body != fmt.Sprintf("%d,row", i) {
			t.Fatalf("row %d: %q", i, g.Body)
		}
	}
	r.waitDone(t, 10*time.Second)
	logs := r.logText()
	if gets.Load() < 2 {
		t.Fatalf("the download was not reopened (%d GETs)", gets.Load())
	}
	if strings.Contains(logs, "level=ERROR") {
		t.Fatalf("a cut download that resumed at once is logged at error level:\n%s", logs)
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "LOAD1.csv") {
		t.Fatalf("the cut is not logged as a warning naming the object:\n%s", logs)
	}
}
