// Package e2e runs the dmsbridge binary, built once per test run, against the
// real S3 (versitygw) and Kinesis (kinesalite) servers started by
// tests/services.sh, with the repository's own config files.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/kinesisproxy"
	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dmsbridge-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "dmsbridge")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/dmsbridge")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dmsbridge:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a goroutine-safe output capture.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a running dmsbridge.
type Proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	Addr   string // host:port of its HTTP server
	Stdout *syncBuffer
	Stderr *syncBuffer
	done   chan struct{}
	err    error
}

// start runs dmsbridge with args in the repository root, with env added to
// the test's environment. HTTP_ADDRESS is set to a free port.
func start(t testing.TB, env map[string]string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Addr: freePort(t), Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Dir = repoRoot()
	p.cmd.Env = append(os.Environ(), "HTTP_ADDRESS="+p.Addr)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.Stdout, p.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start dmsbridge: %v", err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("dmsbridge %v output (last 4000 bytes):\n%s\n%s", args, tail(p.Stdout.String(), 4000), tail(p.Stderr.String(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// Kill sends SIGKILL and waits for the process to go.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to d for a graceful exit.
func (p *Proc) Stop(d time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.Kill()
		return fmt.Errorf("dmsbridge did not stop within %s", d)
	}
}

// Exited reports whether the process has ended, and its error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Get fetches a path of the process's HTTP server.
func (p *Proc) Get(path string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.Addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// WaitReady waits until /ready answers 200.
func (p *Proc) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		if code, _, err := p.Get("/ready"); err == nil && code == 200 {
			return
		}
		if done, err := p.Exited(); done {
			t.Fatalf("dmsbridge exited before ready: %v\n%s", err, tail(p.Stderr.String(), 3000))
		}
		if time.Now().After(end) {
			code, body, err := p.Get("/ready")
			t.Fatalf("dmsbridge not ready after %s: %d %s %v", timeout, code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Metric sums every series of a metric in the process's /metrics.
func (p *Proc) Metric(name string) (float64, error) {
	code, body, err := p.Get("/metrics")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("/metrics: %d", code)
	}
	return sumMetric(body, name), nil
}

// MetricWhere sums the series of a metric whose labels include label, e.g.
// `outcome="error"`.
func (p *Proc) MetricWhere(name, label string) (float64, error) {
	code, body, err := p.Get("/metrics")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("/metrics: %d", code)
	}
	return sumMetricWhere(body, name, label), nil
}

// MustMetric is Metric for a metric that must be exported (a missing or
// renamed one, or /metrics not answering, fails the test instead of
// reading as 0), matching label when it is not empty.
func (p *Proc) MustMetric(t testing.TB, name, label string) float64 {
	t.Helper()
	code, body, err := p.Get("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	v, n := countMetricWhere(body, name, label)
	if n == 0 {
		t.Fatalf("/metrics has no series %s{%s}", name, label)
	}
	return v
}

func sumMetric(body, name string) float64 { return sumMetricWhere(body, name, "") }

func sumMetricWhere(body, name, label string) float64 {
	v, _ := countMetricWhere(body, name, label)
	return v
}

// countMetricWhere sums the series of a metric matching label, and counts
// them.
func countMetricWhere(body, name, label string) (sum float64, series int) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.eE+-]+)$`)
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		if label != "" && !strings.Contains(m[1], label) {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
		series++
	}
	return sum, series
}

// upload puts the files under the bucket.
func upload(t testing.TB, bucket string, files []refdata.File) {
	t.Helper()
	for _, f := range files {
		testutil.PutObject(t, bucket, f.Key, f.Body)
	}
}

// split returns the full-load files and the CDC files.
func split(files []refdata.File) (full, cdc []refdata.File) {
	for _, f := range files {
		if strings.HasPrefix(f.Key, "cdcfile/") {
			cdc = append(cdc, f)
		} else {
			full = append(full, f)
		}
	}
	return full, cdc
}

// delivered reads every record of the stream as a consumer would.
func delivered(t testing.TB, stream string) []refdata.Delivered {
	t.Helper()
	var out []refdata.Delivered
	for _, r := range testutil.ReadStream(t, stream) {
		out = append(out, refdata.Delivered{PartitionKey: r.PartitionKey, Data: r.Data})
	}
	return out
}

// waitWritten waits until the process reports at least n records written to
// Kinesis (or the deadline passes), failing early if it exits.
func waitWritten(t testing.TB, p *Proc, n int, timeout time.Duration) {
	t.Helper()
	end := time.Now().Add(timeout)
	var last float64
	for time.Now().Before(end) {
		if done, err := p.Exited(); done {
			t.Fatalf("dmsbridge exited (%v) after writing %.0f of %d records\n%s", err, last, n, tail(p.Stderr.String(), 3000))
		}
		v, err := p.Metric("kinesis_records_written")
		if err == nil {
			last = v
			if int(v) >= n {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("only %.0f of %d records written after %s", last, n, timeout)
}

// lines counts the lines of a file (0 when it does not exist).
func lines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// pipelineEnv is the environment config/s3-to-kinesis.yaml reads.
func pipelineEnv(t testing.TB, bucket, stream, dir string) map[string]string {
	return map[string]string{
		"BUCKET":              bucket,
		"STREAM":              stream,
		"S3_ENDPOINT":         testutil.MustEnv(t, "S3_ENDPOINT"),
		"KINESIS_ENDPOINT":    testutil.MustEnv(t, "KINESIS_ENDPOINT"),
		"S3_FORCE_PATH_STYLE": "true",
		"POLL_INTERVAL":       "200ms",
		"CHECKPOINT_DIR":      filepath.Join(dir, "checkpoints"),
		"DEAD_LETTER_PATH":    filepath.Join(dir, "dead-letter.jsonl"),
		"TABLE_DEFINITION":    "config/table-definition.json",
		"LOG_LEVEL":           "INFO",
		// kinesalite truncates CBOR answers over 16 KiB: JSON against it
		// (TestReferencePipelineCBOR runs the config's CBOR on kinesis-mock).
		"KINESIS_PROTOCOL": "json",
		// kinesalite has no shard limits; pace well above what it can take.
		"KINESIS_SHARD_RECORDS_PER_SECOND": "100000",
		"KINESIS_SHARD_BYTES_PER_SECOND":   "104857600",
	}
}

// kinesisProxy starts a kinesisproxy in front of kinesalite without shard
// limits or faults (closed at cleanup). Tests that kill dmsbridge or cut its
// connections write through it: the proxy finishes every request it
// received, whereas kinesalite crashes when a client aborts one.
func kinesisProxy(t testing.TB) *kinesisproxy.Proxy {
	t.Helper()
	kp, err := kinesisproxy.Start(kinesisproxy.Config{
		Upstream:         testutil.MustEnv(t, "KINESIS_ENDPOINT"),
		RecordsPerSecond: -1, BytesPerSecond: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kp.Close() })
	return kp
}

// awaitDelivery reads the stream until no record of the manifest is
// missing or within has passed, failing the test if p exits by itself
// meanwhile, and returns the last comparison (the caller judges it).
func awaitDelivery(t *testing.T, p *Proc, stream string, manifest []refdata.Expected, within time.Duration) refdata.Report {
	t.Helper()
	end := time.Now().Add(within)
	for {
		rep := refdata.Compare(manifest, delivered(t, stream))
		if len(rep.Missing) == 0 || time.Now().After(end) {
			return rep
		}
		if exited, err := p.Exited(); exited {
			t.Fatalf("dmsbridge exited by itself (%v)", err)
		}
		time.Sleep(2 * time.Second)
	}
}
