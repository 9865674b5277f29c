package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/tcpproxy"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// groupCount is the count of a group of goroutines in a debug=1 profile.
var groupCount = regexp.MustCompile(`(?m)^(\d+) @ `)

// TestStreamsDeleteAndReplaceDuringOutages: in streams mode, a stream is
// deleted while Kinesis is down, replaced (PUT) while S3 is down, and
// deleted while S3 is down. Each call returns within its timeout, the
// stream created again after each resumes where the last one stopped, every
// record arrives (duplicates bounded by the rows in flight at each stop), and
// once idle the process holds no more goroutines than before the first
// stream.
func TestStreamsDeleteAndReplaceDuringOutages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, manifest := refdata.Generate(refdata.Scaled(0.01))
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	upload(t, bucket, files)
	kp := kinesisProxy(t)
	s3u, err := url.Parse(testutil.MustEnv(t, "S3_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := tcpproxy.Start("", s3u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	root := filepath.Join(dir, "root.yaml")
	if err := os.WriteFile(root, []byte("http:\n  address: ${HTTP_ADDRESS}\n  debug_endpoints: true\nmetrics:\n  prometheus: {}\nlogger:\n  level: WARN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, nil, "streams", "-o", root)
	p.WaitReady(t, 30*time.Second)
	goroutines := func() int {
		_, body, err := p.Get("/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if _, err := fmt.Sscanf(body, "goroutine profile: total %d", &n); err != nil {
			t.Fatalf("goroutine profile: %v: %.100s", err, body)
		}
		// Idle keep-alive connections of the HTTP clients (the proxies
		// here do not close them as the servers do) are not the stream's.
		for _, g := range strings.Split(body, "\n\n") {
			if m := groupCount.FindStringSubmatch(g); m != nil && strings.Contains(g, "net/http.(*persistConn)") {
				k, _ := strconv.Atoi(m[1])
				n -= k
			}
		}
		return n
	}
	g0 := goroutines()
	tmpl, err := os.ReadFile(filepath.Join(repoRoot(), "config", "streams", "table01.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vars := pipelineEnv(t, bucket, stream, dir)
	vars["KINESIS_ENDPOINT"] = kp.URL()
	vars["S3_ENDPOINT"] = sp.URL()
	vars["KINESIS_SHARD_RECORDS_PER_SECOND"] = "300" // rows still to come at each stop
	body := expand(string(tmpl), vars)
	call := func(what, method, path string, within time.Duration) {
		t.Helper()
		began := time.Now()
		code, resp, err := p.do(method, path, body)
		if err != nil || code != 200 {
			t.Fatalf("%s: %d %s %v\n%s", what, code, resp, err, tail(p.Stdout.String()+p.Stderr.String(), 3000))
		}
		if d := time.Since(began); d > within {
			t.Errorf("%s took %s", what, d)
		}
	}
	written := func() float64 { return p.MustMetric(t, "kinesis_records_written", "") }

	call("create", http.MethodPost, "/streams/s", 10*time.Second)
	waitStreamMetric(t, p, "s", "kinesis_records_written", 300, 60*time.Second)

	kp.Pause() // Kinesis down
	time.Sleep(2 * time.Second)
	call("delete while Kinesis is down", http.MethodDelete, "/streams/s?timeout=10s", 12*time.Second)
	kp.Resume()

	call("create again", http.MethodPost, "/streams/s", 10*time.Second)
	w := written()
	for end := time.Now().Add(60 * time.Second); written() < w+300; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the stream created again wrote nothing: %s", tail(p.Stdout.String()+p.Stderr.String(), 3000))
		}
	}
	sp.Pause() // S3 down
	time.Sleep(2 * time.Second)
	call("replace while S3 is down", http.MethodPut, "/streams/s?timeout=10s", 12*time.Second)
	time.Sleep(2 * time.Second)
	call("delete while S3 is down", http.MethodDelete, "/streams/s?timeout=10s", 12*time.Second)
	sp.Resume()

	call("create once both are back", http.MethodPost, "/streams/s", 10*time.Second)
	rep := waitForStream(t, stream, manifest, 180*time.Second)
	if bound := 3 * 4 * configBatchSize(t); rep.Duplicates > bound { // 3 stops, 4 x batch_size each (checkpoint.interval 0s)
		t.Errorf("%d duplicates, more than the rows in flight at 3 stops (%d): %s", rep.Duplicates, bound, rep)
	}
	call("delete at the end", http.MethodDelete, "/streams/s?timeout=10s", 12*time.Second)
	var g int
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if g = goroutines(); g <= g0+4 || time.Now().After(end) {
			break
		}
	}
	if g > g0+4 {
		_, prof, _ := p.Get("/debug/pprof/goroutine?debug=1")
		t.Errorf("after the streams were deleted and 30 s idle: %d goroutines (%d before)\n%s", g, g0, prof)
	}
	t.Logf("%s", rep)
}
