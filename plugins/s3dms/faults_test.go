package s3dms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// TestBadObjects: a row longer than max_row_size is passed over and reported
// (its message holds its first bytes and an error naming the object, line,
// offset and size; the rows after it still come); a truncated gzip is
// reported naming the object; an unterminated quote at the end of an object
// is passed on whole as one row (nothing lost) with a warning; the rows
// before each fault and every other file still arrive, in order.
func TestBadObjects(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		long := "3," + strings.Repeat("x", 100)
		huge := "5," + strings.Repeat("y", 3<<20) // 3 MiB: far more than the limit, and than the kept prefix
		b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,ok\n"))
		b.put(t, "dms/hr/zeta/LOAD2.csv", []byte("2,ok\n"+long+"\n4,after\n"+huge+"\r\n6,after\n"))
		var pad strings.Builder
		for i := 0; i < 20000; i++ {
			fmt.Fprintf(&pad, "7,%x\n", uint64(i)*0x9E3779B97F4A7C15)
		}
		full := gz(t, "5,ok\n6,ok\n"+pad.String())
		b.put(t, "dms/hr/zeta/LOAD3.csv.gz", full[:len(full)/2])
		b.put(t, "dms/hr/zeta/LOAD4.csv", []byte("8,ok\n9,\"open\n10,x\n"))
		b.put(t, "dms/hr/zeta/LOAD5.csv", []byte("11,ok\n"))
		r := startStream(t, baseYAML(b, "mode: full-load\nmax_row_size: 50\ncheckpoint:\n  store: none\n"), nil)
		r.waitDone(t, 20*time.Second)
		var bodies []string
		var flagged []got
		for _, m := range r.snapshot() {
			if m.Err != "" {
				flagged = append(flagged, m)
				continue
			}
			if !strings.HasPrefix(m.Body, "7,") {
				bodies = append(bodies, m.Body)
			}
		}
		if strings.Join(bodies, "|") != "1,ok|2,ok|4,after|6,after|5,ok|6,ok|8,ok|9,\"open\n10,x\n|11,ok" {
			t.Fatalf("got %q", bodies)
		}
		if len(flagged) != 2 {
			t.Fatalf("%d flagged messages, want the 2 long rows: %v", len(flagged), flagged)
		}
		loc := "dms/hr/zeta/LOAD2.csv (etag"
		if b.name() == "versitygw" {
			loc = "s3://" + b.(*s3Backend).bucket + "/" + loc
		}
		for i, w := range []struct {
			body         string
			line, offset int64
			text         string
		}{
			{long, 2, 5, "row at line 2, byte offset 5: row exceeds max_row_size (50 bytes): row of 102 bytes not passed on; the message holds its first 102 bytes"},
			{huge[:4096], 4, 116, fmt.Sprintf("row at line 4, byte offset 116: row exceeds max_row_size (50 bytes): row of %d bytes not passed on; the message holds its first 4096 bytes", len(huge))},
		} {
			m := flagged[i]
			if m.Body != w.body || m.Line != w.line || m.Offset != w.offset || m.Key != "dms/hr/zeta/LOAD2.csv" {
				t.Errorf("long row %d: %s line %d offset %d body %d bytes, want line %d offset %d body %d bytes", i, m.Key, m.Line, m.Offset, len(m.Body), w.line, w.offset, len(w.body))
			}
			if !strings.Contains(m.Err, loc) || !strings.Contains(m.Err, w.text) {
				t.Errorf("long row %d: error %q, want it to name %q and say %q", i, m.Err, loc, w.text)
			}
		}
		logs := r.logText()
		for _, want := range []string{
			"row at line 2, byte offset 5: row exceeds max_row_size (50 bytes): row of 102 bytes",
			"LOAD3.csv.gz", "unexpected EOF",
			"LOAD4.csv", "row at line 2, byte offset 5: unterminated quoted field at end of input",
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %q:\n%s", want, logs)
			}
		}
		if b.name() == "versitygw" && !strings.Contains(logs, "s3://"+b.(*s3Backend).bucket+"/dms/hr/zeta/LOAD3.csv.gz") {
			t.Errorf("logs do not name the bucket:\n%s", logs)
		}
	})
}

func TestBadObjectsStop(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	putTruncatedGzipThenGood(t, b, 20000)
	r := startStream(t, baseYAML(b, "mode: full-load\nbad_files: stop\npoll_interval: 50ms\ncheckpoint:\n  store: none\n"), nil)
	// Stopped on the bad object: its error comes again and again. Wait for
	// the second report rather than a fixed time, which a loaded machine
	// may spend before the first one.
	for deadline := time.Now().Add(20 * time.Second); strings.Count(r.logText(), "LOAD1.csv.gz") < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			break // reported below
		}
	}
	r.stop(t)
	for _, m := range r.snapshot() {
		if m.Body == "3,ok" {
			t.Fatal("the input went on past a bad object with bad_files: stop")
		}
	}
	if n := strings.Count(r.logText(), "LOAD1.csv.gz"); n < 2 {
		t.Fatalf("error reported %d times, want it repeated while stopped:\n%s", n, r.logText())
	}
}

// directInput builds an input outside a stream, with its logs captured.
func directInput(t *testing.T, yaml string) (*input, *lockedBuf) {
	t.Helper()
	pc, err := inputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	lb := &lockedBuf{buf: &bytes.Buffer{}}
	res := service.MockResources(service.MockResourcesOptUseLogger(service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(lb, nil)))))
	in, err := newInput(pc, res)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(context.Background()) })
	return in, lb
}

func readAllDirect(t *testing.T, in *input, n int) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		b, ack, err := in.ReadBatch(ctx)
		if err != nil {
			return out, err
		}
		for _, m := range b {
			body, _ := m.AsBytes()
			out = append(out, string(body))
		}
		ack(ctx, nil)
	}
	return out, nil
}

func TestDeletedBetweenListingAndReading(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
		b.put(t, "dms/hr/zeta/LOAD2.csv", []byte("2,b\n"))
		b.put(t, "dms/hr/zeta/LOAD3.csv", []byte("3,c\n"))
		in, logs := directInput(t, baseYAML(b, "mode: full-load\nbatch_size: 1\ncheckpoint:\n  store: none\n"))
		if err := in.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := readAllDirect(t, in, 1)
		if err != nil {
			t.Fatal(err)
		}
		b.del(t, "dms/hr/zeta/LOAD2.csv") // listed already
		more, err := readAllDirect(t, in, 1)
		got = append(got, more...)
		if err != nil || strings.Join(got, "|") != "1,a|3,c" {
			t.Fatalf("got %q %v", got, err)
		}
		if !strings.Contains(logs.String(), "LOAD2.csv: object no longer exists (deleted between listing and reading?)") {
			t.Fatalf("logs:\n%s", logs.String())
		}
	})
}

func TestBucketErrors(t *testing.T) {
	b := newS3Backend(t)
	for name, c := range map[string]struct{ yaml, want string }{
		"missing bucket": {strings.Replace(b.yaml(), b.bucket, b.bucket+"-missing", 1), "the bucket does not exist"},
		"access denied":  {b.yaml() + "credentials:\n  id: testkey\n  secret: wrong\n", "check the credentials"},
		"wrong region":   {strings.Replace(b.yaml(), "region: "+os.Getenv("AWS_REGION"), "region: eu-west-3", 1), "the bucket is probably in another region"},
	} {
		t.Run(name, func(t *testing.T) {
			in, _ := directInput(t, c.yaml+"bucket_folder: dms\nmode: full-load\ntable_definition: '"+twoTables+"'\ncheckpoint:\n  store: none\n")
			if err := in.Connect(context.Background()); err != nil {
				t.Fatal(err)
			}
			// S3 refuses: the input reports itself not connected, and
			// the next Connect's error (what the engine logs and /ready
			// shows) says why.
			if _, err := readAllDirect(t, in, 1); !errors.Is(err, service.ErrNotConnected) {
				t.Fatalf("ReadBatch: %v, want ErrNotConnected", err)
			}
			err := in.Connect(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "listing s3://"+b.bucket) {
				t.Fatalf("error %v, want it to say %q and name the bucket", err, c.want)
			}
		})
	}
}

// A directory that does not exist (a typo, a volume not mounted, a
// relative path run from another working directory) is refused like a
// bucket that does not exist: the input reports itself not connected and
// says why, naming the directory. It was read as an empty one: a full
// load of 0 files completed every table (drop-table and create-table
// control records emitted, mode full-load exiting 0), and the load was
// never done once the directory appeared.
func TestMissingDirectory(t *testing.T) {
	root := filepath.Join(t.TempDir(), "not-mounted")
	in, _ := directInput(t, "directory: '"+root+"'\nmode: full-load\nemit_table_start: true\ntable_definition: '"+zetaOnly+"'\ncheckpoint:\n  store: none\n")
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rows, err := readAllDirect(t, in, 1); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("ReadBatch: %q %v, want ErrNotConnected", rows, err)
	}
	err := in.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "directory "+root+" does not exist") {
		t.Fatalf("error %v, want it to say that the directory %s does not exist", err, root)
	}
	// Once it is there, the load runs.
	writeFile(t, filepath.Join(root, "hr", "zeta", "LOAD1.csv"), "1,a\n")
	var rows []string
	for i := 0; i < 50 && len(rows) == 0; i++ {
		if err := in.Connect(context.Background()); err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		rows, err = readAllDirect(t, in, 2)
		if err != nil && !errors.Is(err, service.ErrNotConnected) {
			t.Fatal(err)
		}
	}
	if !strings.Contains(strings.Join(rows, "|"), "1,a") {
		t.Fatalf("after the directory appeared: %q", rows)
	}
}

func TestNonUTF8Key(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD\xff.csv", []byte("1,a\n"))
	in, _ := directInput(t, baseYAML(b, "mode: full-load\ncheckpoint:\n  store: none\n"))
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := readAllDirect(t, in, 1)
	if err == nil || !strings.Contains(err.Error(), "is not valid UTF-8") || !strings.Contains(err.Error(), "LOAD\\xff.csv") {
		t.Fatalf("error %v", err)
	}
}

// TestConnectionErrorsRetried reads through a proxy that cuts object bodies
// short and fails some listings: every row arrives exactly once, in order.
func TestConnectionErrorsRetried(t *testing.T) {
	b, want, rp := faultBucket(t)
	var gets, lists, cuts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
			if lists.Add(1)%3 == 1 {
				http.Error(w, "<Error><Code>InternalError</Code></Error>", http.StatusInternalServerError)
				return
			}
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/dms/") && gets.Add(1) <= 6 {
			cuts.Add(1)
			rp.ServeHTTP(&cutWriter{ResponseWriter: w, left: 100000}, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	readAllThrough(t, b, srv.URL, "", want, func() string { return "" })
	if cuts.Load() < 6 {
		t.Fatalf("only %d bodies cut", cuts.Load())
	}
}

// TestStalledS3Retried: S3 that keeps a connection open but stops answering
// (a network partition) — a listing with no answer, a GetObject with no
// answer, a body that stops mid-way — is given up after request_timeout and
// retried; every row arrives once, in order.
func TestStalledS3Retried(t *testing.T) {
	b, want, rp := faultBucket(t)
	var gets, lists, stalls atomic.Int64
	hang := func(r *http.Request) {
		stalls.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Has("list-type") && lists.Add(1) == 2 {
			hang(r) // a listing that gets no answer
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/dms/") {
			switch gets.Add(1) {
			case 1:
				hang(r) // a GetObject that gets no answer
				return
			case 2, 4:
				// a body that stops part of the way (the gzip object is small)
				left := 100000
				if strings.HasSuffix(r.URL.Path, ".gz") {
					left = 2000
				}
				rp.ServeHTTP(&stallWriter{ResponseWriter: w, left: left, hang: func() { hang(r) }}, r)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	start := time.Now()
	readAllThrough(t, b, srv.URL, "request_timeout: 1s\n", want, func() string {
		return fmt.Sprintf("after %d stalls: a stalled request was not given up", stalls.Load())
	})
	if stalls.Load() < 4 {
		t.Fatalf("only %d stalls happened (%d listings, %d GETs): the test exercises less than it says", stalls.Load(), lists.Load(), gets.Load())
	}
	t.Logf("%d stalls, read in %v", stalls.Load(), time.Since(start).Round(time.Millisecond))
}

// stallWriter writes left body bytes, then stops answering (hang) without
// closing the connection.
type stallWriter struct {
	http.ResponseWriter
	left int
	hang func()
	mu   sync.Mutex
	hung bool
}

func (c *stallWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hung {
		return 0, http.ErrAbortHandler
	}
	if len(p) > c.left {
		c.ResponseWriter.Write(p[:c.left])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		c.hung = true
		c.hang()
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

// faultBucket puts two objects of 20,000 rows in a bucket, plain and gzip,
// and returns it with the rows a full read gives, in order, and a proxy to
// it for a faulty server to pass requests on.
func faultBucket(t *testing.T) (*s3Backend, []string, *httputil.ReverseProxy) {
	b := newS3Backend(t)
	var sb strings.Builder
	var want []string
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&sb, "%d,some text to make the rows longer\n", i)
		want = append(want, fmt.Sprintf("%d,some text to make the rows longer", i))
	}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(sb.String()))
	b.put(t, "dms/hr/zeta/LOAD2.csv.gz", gz(t, sb.String()))
	target, _ := url.Parse(b.ep)
	return b, append(want, want...), httputil.NewSingleHostReverseProxy(target)
}

// readAllThrough reads the bucket's full load through the server at url
// (extra: more input YAML) and fails unless every row arrives once, in
// order, within a minute (why tells what a timeout means).
func readAllThrough(t *testing.T, b *s3Backend, url, extra string, want []string, why func() string) {
	t.Helper()
	yaml := strings.Replace(b.yaml(), b.ep, url, 1) + "bucket_folder: dms\nmode: full-load\n" + extra + "table_definition: '" + twoTables + "'\ncheckpoint:\n  store: none\n"
	r := startStream(t, yaml, nil)
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("timeout with %d rows %s", len(r.snapshot()), why())
	}
	if got := bodies(r.snapshot()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %d rows, want %d in order without duplicates", len(got), len(want))
	}
}

// cutWriter aborts the response after left body bytes.
type cutWriter struct {
	http.ResponseWriter
	left int
	mu   sync.Mutex
}

func (c *cutWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) > c.left {
		c.ResponseWriter.Write(p[:c.left])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

func TestCacheCheckpointStore(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	yaml := baseYAML(b, "mode: full-load\ncheckpoint:\n  store: cache\n  cache: ckpt\n  key: job\n")
	pc, err := inputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := service.MockResources(service.MockResourcesOptAddCache("ckpt"))
	in, err := newInput(pc, res)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := readAllDirect(t, in, 2)
	if err != nil || strings.Join(got, "|") != "1,a|2,b" {
		t.Fatalf("%q %v", got, err)
	}
	in.Close(ctx)
	var stored []byte
	res.AccessCache(ctx, "ckpt", func(c service.Cache) { stored, _ = c.Get(ctx, "job") })
	if !strings.Contains(string(stored), `"key":"dms/hr/zeta/LOAD1.csv"`) || !strings.Contains(string(stored), `"offset":8`) {
		t.Fatalf("stored %s", stored)
	}
	// a new instance on the same cache resumes after the last row
	in2, _ := newInput(pc, res)
	if err := in2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer in2.Close(ctx)
	_, _, err = in2.ReadBatch(ctx)
	if !errors.Is(err, service.ErrEndOfInput) {
		t.Fatalf("resumed instance: %v", err)
	}
}

// TestReadBatchReturnsOnCancel: an idle tailing ReadBatch returns promptly
// when its context is cancelled (stream stop or delete).
func TestReadBatchReturnsOnCancel(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		in, _ := directInput(t, b.yaml()+"bucket_folder: dms\ncdc_path: changes\nmode: cdc\npoll_interval: 1h\ntable_definition: '"+twoTables+"'\ncheckpoint:\n  store: none\n")
		if err := in.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		start := time.Now()
		_, _, err := in.ReadBatch(ctx)
		if d := time.Since(start); !errors.Is(err, context.Canceled) || d > time.Second {
			t.Fatalf("ReadBatch returned %v after %s", err, d)
		}
	})
}

// gatedStore is a checkpoint store whose saves wait for the test.
type gatedStore struct {
	checkpoint.Store
	gate  chan struct{}
	open  sync.Once
	saves atomic.Int64
}

// release lets every save through, now and later.
func (g *gatedStore) release() { g.open.Do(func() { close(g.gate) }) }

func (g *gatedStore) Save(ctx context.Context, st *checkpoint.State) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.saves.Add(1)
	return g.Store.Save(ctx, st)
}

// TestUnsavedWindow: with checkpoint.interval 0s the input emits at most
// maxUnsaved batches outside the saved checkpoint: it waits, without
// emitting, until acknowledgements are saved, so a crash can repeat no more.
func TestUnsavedWindow(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	var rows strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&rows, "%d,x\n", i)
	}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(rows.String()))
	in, _ := directInput(t, baseYAML(b, "mode: full-load\nbatch_size: 5\ncheckpoint:\n  directory: "+t.TempDir()+"\n  interval: 0s\n"))
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	gs := &gatedStore{Store: in.store, gate: make(chan struct{})}
	t.Cleanup(gs.release) // runs before the input's Close, whose final save would wait
	in.mu.Lock()
	in.store = gs
	in.mu.Unlock()

	read := func(within time.Duration) (service.MessageBatch, service.AckFunc, error) {
		c, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		return in.ReadBatch(c)
	}
	var acks []service.AckFunc
	for i := 0; i < maxUnsaved; i++ {
		batch, ack, err := read(2 * time.Second)
		if err != nil || len(batch) != 5 {
			t.Fatalf("batch %d: %d rows, %v", i, len(batch), err)
		}
		acks = append(acks, ack)
	}
	// Nothing acknowledged: no more batches.
	if batch, _, err := read(300 * time.Millisecond); err == nil || len(batch) != 0 {
		t.Fatalf("a batch beyond the window of %d unsaved batches: %d rows, %v", maxUnsaved, len(batch), err)
	}
	// Acknowledged but the save cannot finish: still none.
	for _, ack := range acks {
		if err := ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if batch, _, err := read(300 * time.Millisecond); err == nil || len(batch) != 0 {
		t.Fatalf("a batch while the acknowledged ones are not saved: %d rows, %v", len(batch), err)
	}
	// The save completes: reading goes on, with the next rows.
	gs.release()
	batch, _, err := read(2 * time.Second)
	if err != nil || len(batch) != 5 {
		t.Fatalf("after the save: %d rows, %v", len(batch), err)
	}
	if body, _ := batch[0].AsBytes(); string(body) != "20,x" {
		t.Fatalf("after the save the input goes on with %q, want row 20", body)
	}
	if gs.saves.Load() == 0 {
		t.Fatal("no save went through the store")
	}
}

// TestReplacedBeforeReadThenCut: an object replaced between its listing and
// its reading is read as the new version; when that download is cut, the
// input reopens the version it was reading (its ETag, not the listed one's)
// and goes on, instead of looping on "object changed". A cut past the listed
// size is still a cut (the new version is larger), not a bad object skipped.
func TestReplacedBeforeReadThenCut(t *testing.T) {
	var v1, v2 strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&v1, "%d,first version of the row\n", i)
		fmt.Fprintf(&v2, "%d,second version, re-uploaded\n", i)
	}
	want := append([]string{"0,a"}, strings.Split(strings.TrimSuffix(v2.String(), "\n"), "\n")...)
	for name, cutAt := range map[string]int{"within the listed size": 100000, "past the listed size": v1.Len() + 1000} {
		t.Run(name, func(t *testing.T) {
			b := newS3Backend(t)
			b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("0,a\n"))
			b.put(t, "dms/hr/zeta/LOAD2.csv", []byte(v1.String()))
			target, _ := url.Parse(b.ep)
			rp := httputil.NewSingleHostReverseProxy(target)
			var cut, replaced atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/LOAD1.csv") && replaced.CompareAndSwap(false, true) {
					b.put(t, "dms/hr/zeta/LOAD2.csv", []byte(v2.String())) // after the listing
				}
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/LOAD2.csv") && cut.CompareAndSwap(false, true) {
					rp.ServeHTTP(&cutWriter{ResponseWriter: w, left: cutAt}, r)
					return
				}
				rp.ServeHTTP(w, r)
			}))
			defer srv.Close()
			readAllThrough(t, b, srv.URL, "", want, func() string { return "(stuck reopening the listed version?)" })
			if !cut.Load() || !replaced.Load() {
				t.Fatal("the object was not replaced and cut as the test intends")
			}
		})
	}
}

// TestConnectAfterFailedFirstSave: when the first checkpoint write fails
// (here: a directory that refuses new files), Connect fails, and so does the
// engine's next Connect while the store still fails; nothing is read without
// a checkpoint being written, and Close returns.
func TestConnectAfterFailedFirstSave(t *testing.T) {
	const unwritable = "/sys" // sysfs: readable, refuses new files, even to root
	if f, err := os.CreateTemp(unwritable, "probe-*"); err == nil {
		f.Close()
		os.Remove(f.Name())
		t.Fatalf("%s accepts new files on this machine: the test needs a directory that refuses them", unwritable)
	}
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	in, _ := directInput(t, baseYAML(b, "mode: full-load\ncheckpoint:\n  directory: "+unwritable+"\n  interval: 10ms\n"))
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		if err := in.Connect(ctx); err == nil || !strings.Contains(err.Error(), "writing checkpoint") {
			t.Fatalf("Connect %d: %v, want the checkpoint write error", i, err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if batch, _, err := in.ReadBatch(rctx); len(batch) != 0 || !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("ReadBatch while not connected: %d rows, %v", len(batch), err)
	}
	closed := make(chan error, 1)
	go func() { closed <- in.Close(ctx) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
}

// TestHeaderRowCut: with ignore_header_rows, a download cut inside the
// header row (after a byte order mark) is reopened and the header is still
// skipped, not passed on as a row.
func TestHeaderRowCut(t *testing.T) {
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("\xef\xbb\xbfid,v\n1,a\n2,b\n"))
	target, _ := url.Parse(b.ep)
	rp := httputil.NewSingleHostReverseProxy(target)
	var cut atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/LOAD1.csv") && cut.CompareAndSwap(false, true) {
			rp.ServeHTTP(&cutWriter{ResponseWriter: w, left: 5}, r) // the BOM and "id"
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	readAllThrough(t, b, srv.URL, "ignore_header_rows: 1\n", []string{"1,a", "2,b"}, func() string { return "" })
	if !cut.Load() {
		t.Fatal("not cut")
	}
}
