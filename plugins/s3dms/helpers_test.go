package s3dms

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/awsconf"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// backend is a bucket on versitygw or a local directory.
type backend interface {
	name() string
	put(t testing.TB, key string, body []byte)
	del(t testing.TB, key string)
	// yaml is the input's storage configuration.
	yaml() string
}

type dirBackend struct{ root string }

func (d *dirBackend) name() string { return "dir" }
func (d *dirBackend) put(t testing.TB, key string, body []byte) {
	t.Helper()
	p := filepath.Join(d.root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(d.root, ".tmp-upload")
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}
func (d *dirBackend) del(t testing.TB, key string) {
	if err := os.Remove(filepath.Join(d.root, filepath.FromSlash(key))); err != nil {
		t.Fatal(err)
	}
}
func (d *dirBackend) yaml() string { return fmt.Sprintf("directory: %q\n", d.root) }

type s3Backend struct {
	client *s3.Client
	bucket string
	ep     string
}

func (b *s3Backend) name() string { return "versitygw" }
func (b *s3Backend) put(t testing.TB, key string, body []byte) {
	t.Helper()
	if _, err := b.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &b.bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}
func (b *s3Backend) del(t testing.TB, key string) {
	if _, err := b.client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}
}
func (b *s3Backend) yaml() string {
	return fmt.Sprintf("bucket: %s\nendpoint: %s\nforce_path_style: true\nregion: %s\n", b.bucket, b.ep, os.Getenv("AWS_REGION"))
}

func s3TestClient(t testing.TB) (*s3.Client, string) {
	t.Helper()
	ep := os.Getenv("S3_ENDPOINT")
	if ep == "" || os.Getenv("AWS_ACCESS_KEY_ID") == "" || os.Getenv("AWS_REGION") == "" {
		t.Fatal("S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_REGION must be set: run tests/services.sh start and source .cache/services.env (versitygw)")
	}
	conf, err := awsconf.Load(context.Background(), awsconf.Config{Endpoint: ep})
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(conf, func(o *s3.Options) { o.UsePathStyle = true; o.DisableLogOutputChecksumValidationSkipped = true }), ep
}

func newS3Backend(t testing.TB) *s3Backend {
	c, ep := s3TestClient(t)
	bucket := fmt.Sprintf("s3dms-%d-%d", time.Now().UnixNano()%1e12, rand.IntN(1e6))
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				break
			}
			for _, o := range page.Contents {
				c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key})
			}
		}
		c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	})
	return &s3Backend{client: c, bucket: bucket, ep: ep}
}

// eachBackend runs f against versitygw and a local directory.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("versitygw", func(t *testing.T) { f(t, newS3Backend(t)) })
	t.Run("dir", func(t *testing.T) { f(t, &dirBackend{root: t.TempDir()}) })
}

func gz(t testing.TB, s string) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write([]byte(s))
	w.Close()
	return buf.Bytes()
}

// got is one received message.
type got struct {
	Body                                    string
	Phase, Schema, Table, Bucket, Key, Etag string
	LastModified, Position, Control         string
	Line, Offset                            int64
	Err                                     string // the message's error, if flagged
}

func (g got) String() string { return fmt.Sprintf("%s %q", g.Key, g.Body) }

func toGot(m *service.Message) got {
	b, _ := m.AsBytes()
	s := func(k string) string { v, _ := m.MetaGet(k); return v }
	i := func(k string) int64 {
		v, _ := m.MetaGetMut(k)
		n, _ := v.(int64)
		return n
	}
	return got{Body: string(b), Phase: s("dms_phase"), Schema: s("dms_schema"), Table: s("dms_table"), Bucket: s("s3_bucket"),
		Key: s("s3_key"), Etag: s("s3_etag"), LastModified: s("s3_last_modified"), Position: s("dms_position"),
		Control: s("dms_control"), Line: i("dms_line"), Offset: i("dms_offset"), Err: errText(m.GetError())}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runner runs one stream with the input and a consumer function.
type runner struct {
	mu      sync.Mutex
	msgs    []got
	batches [][]got
	stream  *service.Stream
	done    chan error
	// handle may reject a batch (a nack); called before recording.
	handle func(batch []got) error
	logs   *bytes.Buffer
	lb     *lockedBuf
}

func (r *runner) logText() string {
	r.lb.mu.Lock()
	defer r.lb.mu.Unlock()
	return r.logs.String()
}

type lockedBuf struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// startStream runs aws_s3_dms (with procs, processor YAMLs, in the
// pipeline) into handle.
func startStream(t testing.TB, inputYAML string, handle func([]got) error, procs ...string) *runner {
	t.Helper()
	r := &runner{done: make(chan error, 1), handle: handle, logs: &bytes.Buffer{}}
	sb := service.NewStreamBuilder()
	r.lb = &lockedBuf{buf: r.logs}
	sb.SetLogger(slog.New(slog.NewTextHandler(r.lb, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err := sb.AddInputYAML("aws_s3_dms:\n" + indent(inputYAML)); err != nil {
		t.Fatalf("input config: %v\n%s", err, inputYAML)
	}
	for _, p := range procs {
		if err := sb.AddProcessorYAML(p); err != nil {
			t.Fatalf("processor config: %v\n%s", err, p)
		}
	}
	sb.SetThreads(1)
	if err := sb.AddBatchConsumerFunc(func(ctx context.Context, b service.MessageBatch) error {
		batch := make([]got, len(b))
		for i, m := range b {
			batch[i] = toGot(m)
		}
		if r.handle != nil {
			if err := r.handle(batch); err != nil {
				return err
			}
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, batch...)
		r.batches = append(r.batches, batch)
		r.mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	r.stream = s
	go func() { r.done <- s.Run(context.Background()) }()
	return r
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// waitDone waits for the stream to end by itself (full-load mode) and fails
// the test on an error or after within.
func (r *runner) waitDone(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(within):
		t.Fatal("timeout")
	}
}

func (r *runner) snapshot() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.msgs...)
}

// waitFor waits until n messages arrived.
func (r *runner) waitFor(t testing.TB, n int, within time.Duration) []got {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m := r.snapshot(); len(m) >= n {
			return m
		}
		select {
		case err := <-r.done:
			t.Fatalf("stream ended early (%v) with %d of %d messages", err, len(r.snapshot()), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
	m := r.snapshot()
	t.Fatalf("timed out with %d of %d messages; last: %v", len(m), n, tail(m, 3))
	return nil
}

func tail(m []got, n int) []got {
	if len(m) > n {
		return m[len(m)-n:]
	}
	return m
}

func (r *runner) stop(t testing.TB) {
	t.Helper()
	if err := r.stream.StopWithin(10 * time.Second); err != nil {
		select {
		case derr := <-r.done:
			r.done <- derr
			return // it had ended already
		default:
		}
		t.Fatalf("stop: %v\nlogs:\n%s", err, r.logText())
	}
}

func bodies(m []got) []string {
	out := make([]string, len(m))
	for i, g := range m {
		out[i] = g.Body
	}
	return out
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// putGzipEncoded stores gzipped bytes under key with Content-Encoding: gzip
// (no .gz suffix): the input must decompress it by its encoding.
func (b *s3Backend) putGzipEncoded(t testing.TB, key string, gzipped []byte) {
	t.Helper()
	if _, err := b.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &b.bucket, Key: &key, Body: bytes.NewReader(gzipped), ContentEncoding: aws.String("gzip")}); err != nil {
		t.Fatal(err)
	}
}

// freeAddr is a loopback address with a port free at the time of the call,
// for a binary's HTTP server.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// putTruncatedGzipThenGood puts a bad object, LOAD1.csv.gz: a gzip of
// "1,ok" and pad rows (incompressible) cut in half, so that it ends in an
// unexpected EOF after its first rows; then a good one, LOAD2.csv ("3,ok").
func putTruncatedGzipThenGood(t testing.TB, b backend, pad int) {
	t.Helper()
	var rows strings.Builder
	rows.WriteString("1,ok\n")
	for i := 0; i < pad; i++ {
		fmt.Fprintf(&rows, "2,%x\n", uint64(i)*0x9E3779B97F4A7C15)
	}
	full := gz(t, rows.String())
	b.put(t, "dms/hr/zeta/LOAD1.csv.gz", full[:len(full)/2])
	b.put(t, "dms/hr/zeta/LOAD2.csv", []byte("3,ok\n"))
}

// metricReader reads the value of a metric's first series from base's
// /metrics ("" when absent or unreachable), and waits up to 15 s for one to
// read want, failing the test with logs() otherwise.
func metricReader(t *testing.T, base string, logs func() string) (metric func(name string) string, waitMetric func(name, want string)) {
	metric = func(name string) string {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, name+"{") {
				return line[strings.LastIndexByte(line, ' ')+1:]
			}
		}
		return ""
	}
	waitMetric = func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for metric(name) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s is %q, want %s; log:\n%s", name, metric(name), want, logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return metric, waitMetric
}
