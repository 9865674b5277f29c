package s3dms

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/dmsbridge/dmsbridge/plugins/dmscsv"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// writeRowsFile writes about size bytes of CSV rows to a file, streaming.
func writeRowsFile(t testing.TB, dir string, size int64) (string, int64) {
	p := filepath.Join(dir, "big.csv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var n, rows int64
	for n < size {
		k, _ := fmt.Fprintf(w, "%d,\"Smith, Bob\",2014-06-04 10:11:12.123456,New York,%016x,some more text here\n", rows, uint64(rows)*0x9E3779B97F4A7C15)
		n += int64(k)
		rows++
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p, rows
}

func uploadFile(t testing.TB, b *s3Backend, key, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := b.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &b.bucket, Key: &key, Body: f}); err != nil {
		t.Fatal(err)
	}
}

// drain reads every row of a full-load-only input, acknowledging each batch,
// and returns the rows and body bytes read.
func drain(t testing.TB, in *input, onBatch func()) (rows, bytes int64) {
	ctx := context.Background()
	for {
		b, ack, err := in.ReadBatch(ctx)
		if err != nil {
			if err.Error() == "end of input" || strings.Contains(err.Error(), "end of input") {
				return
			}
			if err == context.Canceled {
				continue
			}
			t.Fatal(err)
		}
		for _, m := range b {
			body, _ := m.AsBytes()
			bytes += int64(len(body)) + 1
		}
		rows += int64(len(b))
		ack(ctx, nil)
		if onBatch != nil {
			onBatch()
		}
	}
}

func benchInput(t testing.TB, yaml string) *input {
	pc, err := inputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newInput(pc, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return in
}

// BenchmarkReadThroughput compares the input reading one object from
// versitygw (rows, metadata, batches) with a raw GetObject + io.Copy of the
// same object in the same run. Size: BENCH_MB (default 256).
func BenchmarkReadThroughput(b *testing.B) {
	mb := int64(256)
	if v, err := strconv.Atoi(os.Getenv("BENCH_MB")); err == nil {
		mb = int64(v)
	}
	be := newS3Backend(b)
	path, nrows := writeRowsFile(b, b.TempDir(), mb<<20)
	fi, _ := os.Stat(path)
	uploadFile(b, be, "dms/hr/zeta/LOAD001.csv", path)
	os.Remove(path)
	yaml := be.yaml() + "bucket_folder: dms\nmode: full-load\ntable_definition: '" + twoTables + "'\ncheckpoint:\n  store: none\n"
	var rawTime, splitTime, inTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		out, err := be.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &be.bucket, Key: stringPtr("dms/hr/zeta/LOAD001.csv")})
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, out.Body)
		out.Body.Close()
		if err != nil || n != fi.Size() {
			b.Fatalf("raw copy %d of %d: %v", n, fi.Size(), err)
		}
		rawTime += time.Since(start)

		// the row splitter alone on the same object
		start = time.Now()
		out, err = be.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &be.bucket, Key: stringPtr("dms/hr/zeta/LOAD001.csv")})
		if err != nil {
			b.Fatal(err)
		}
		rr := dmscsv.NewRowReader(out.Body, dmscsv.DefaultSettings(), dmscsv.RowOptions{})
		var split int64
		for {
			if _, err := rr.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			split++
		}
		out.Body.Close()
		splitTime += time.Since(start)
		if split != nrows {
			b.Fatalf("split %d rows, want %d", split, nrows)
		}

		start = time.Now()
		in := benchInput(b, yaml)
		rows, _ := drain(b, in, nil)
		inTime += time.Since(start)
		in.Close(context.Background())
		if rows != nrows {
			b.Fatalf("read %d rows, want %d", rows, nrows)
		}
	}
	size := float64(fi.Size()) * float64(b.N)
	b.ReportMetric(size/rawTime.Seconds()/(1<<20), "raw_MB/s")
	b.ReportMetric(size/inTime.Seconds()/(1<<20), "input_MB/s")
	b.ReportMetric(float64(nrows)*float64(b.N)/inTime.Seconds(), "input_rows/s")
	b.ReportMetric(size/splitTime.Seconds()/(1<<20), "split_MB/s")
	b.ReportMetric(rawTime.Seconds()/splitTime.Seconds(), "split_ratio_vs_raw")
	b.ReportMetric(rawTime.Seconds()/inTime.Seconds(), "ratio_vs_raw")
}

func stringPtr(s string) *string { return &s }

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkRSSGrowth reads a BENCH_RSS_MB (default 1024) object from
// versitygw and reports the peak RSS growth of the process while reading.
func BenchmarkRSSGrowth(b *testing.B) {
	mb := int64(1024)
	if v, err := strconv.Atoi(os.Getenv("BENCH_RSS_MB")); err == nil {
		mb = int64(v)
	}
	be := newS3Backend(b)
	path, nrows := writeRowsFile(b, b.TempDir(), mb<<20)
	uploadFile(b, be, "dms/hr/zeta/LOAD001.csv", path)
	os.Remove(path)
	yaml := be.yaml() + "bucket_folder: dms\nmode: full-load\ntable_definition: '" + twoTables + "'\ncheckpoint:\n  store: none\n"
	var peak int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		base := rssBytes()
		in := benchInput(b, yaml)
		var max atomic.Int64
		n := 0
		rows, _ := drain(b, in, func() {
			if n++; n%64 == 0 {
				if r := rssBytes(); r > max.Load() {
					max.Store(r)
				}
			}
		})
		in.Close(context.Background())
		if rows != nrows {
			b.Fatalf("rows %d want %d", rows, nrows)
		}
		if g := max.Load() - base; g > peak {
			peak = g
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "rss_growth_MiB")
	b.ReportMetric(float64(mb), "object_MiB")
	b.ReportMetric(float64(peak)/(64<<20), "ratio_vs_64MiB_target")
}

// TestStreamsLargeObjectWithFlatMemory reads a 96 MiB object from versitygw
// and checks the Go heap stays small (the input never holds the object).
func TestStreamsLargeObjectWithFlatMemory(t *testing.T) {
	be := newS3Backend(t)
	path, nrows := writeRowsFile(t, t.TempDir(), 96<<20)
	uploadFile(t, be, "dms/hr/zeta/LOAD001.csv", path)
	os.Remove(path)
	in := benchInput(t, be.yaml()+"bucket_folder: dms\nmode: full-load\ntable_definition: '"+twoTables+"'\ncheckpoint:\n  store: none\n")
	defer in.Close(context.Background())
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	var mu sync.Mutex
	n := 0
	rows, _ := drain(t, in, func() {
		if n++; n%50 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			mu.Lock()
			if m.HeapInuse > peak {
				peak = m.HeapInuse
			}
			mu.Unlock()
		}
	})
	if rows != nrows {
		t.Fatalf("rows %d want %d", rows, nrows)
	}
	growth := int64(peak) - int64(base)
	t.Logf("96 MiB object: heap in use grew by at most %.1f MiB", float64(growth)/(1<<20))
	if growth > 32<<20 {
		t.Fatalf("heap grew by %d MiB while streaming a 96 MiB object", growth>>20)
	}
}

// BenchmarkCDCPickupLatency uploads CDC files at random moments and reports
// the median delay from upload to emitted row, against poll_interval+200ms.
func BenchmarkCDCPickupLatency(b *testing.B) {
	be := newS3Backend(b)
	poll := 500 * time.Millisecond
	yaml := be.yaml() + fmt.Sprintf("bucket_folder: dms\nmode: cdc\ncdc_path: changes\npoll_interval: %s\ntable_definition: '%s'\ncheckpoint:\n  store: none\n", poll, twoTables)
	in := benchInput(b, yaml)
	defer in.Close(context.Background())
	type ev struct {
		at  time.Time
		key string
	}
	got := make(chan ev, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			batch, ack, err := in.ReadBatch(ctx)
			if err != nil {
				continue
			}
			now := time.Now()
			for _, m := range batch {
				k, _ := m.MetaGet("s3_key")
				got <- ev{now, k}
			}
			ack(ctx, nil)
		}
	}()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Duration(i%7) * poll / 7) // spread uploads over the poll cycle
		key := fmt.Sprintf("dms/changes/CDC%06d.csv", i)
		start := time.Now()
		be.put(b, key, []byte("I,zeta,hr,1,a\n"))
		e := <-got
		if e.key != key {
			b.Fatalf("got %s want %s", e.key, key)
		}
		lat = append(lat, e.at.Sub(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	med := lat[len(lat)/2]
	b.ReportMetric(float64(med.Milliseconds()), "median_ms")
	b.ReportMetric(float64(poll.Milliseconds()+200), "target_ms")
	b.ReportMetric(float64(med)/float64(poll+200*time.Millisecond), "ratio_vs_target")
}

// BenchmarkIdleListRequests counts LIST requests while the CDC folder is
// idle, per minute, against 60/poll_interval.
func BenchmarkIdleListRequests(b *testing.B) {
	be := newS3Backend(b)
	be.put(b, "dms/changes/CDC000001.csv", []byte("I,zeta,hr,1,a\n"))
	poll := 200 * time.Millisecond
	yaml := be.yaml() + fmt.Sprintf("bucket_folder: dms\nmode: cdc\ncdc_path: changes\npoll_interval: %s\ntable_definition: '%s'\ncheckpoint:\n  store: none\n", poll, twoTables)
	in := benchInput(b, yaml)
	defer in.Close(context.Background())
	var lists atomic.Int64
	in.src.(*s3Source).lists = func() { lists.Add(1) }
	ctx := context.Background()
	if _, ack, err := in.ReadBatch(ctx); err != nil {
		b.Fatal(err)
	} else {
		ack(ctx, nil)
	}
	b.ResetTimer()
	var idle time.Duration
	for i := 0; i < b.N; i++ {
		lists.Store(0)
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		for rctx.Err() == nil {
			in.ReadBatch(rctx)
		}
		cancel()
		idle = time.Since(start)
	}
	perMin := float64(lists.Load()) / idle.Minutes()
	b.ReportMetric(perMin, "lists_per_idle_minute")
	b.ReportMetric(60/poll.Seconds(), "expected")
	b.ReportMetric(perMin/(60/poll.Seconds()), "ratio_vs_expected")
}

// BenchmarkLocalRowsVsSplit reads a BENCH_MB (default 64) local file through
// the input and through the row splitter alone, in the same run.
func BenchmarkLocalRowsVsSplit(b *testing.B) {
	mb := int64(64)
	if v, err := strconv.Atoi(os.Getenv("BENCH_MB")); err == nil {
		mb = int64(v)
	}
	dir := b.TempDir()
	path, nrows := writeRowsFile(b, dir, mb<<20)
	if err := os.MkdirAll(filepath.Join(dir, "dms", "hr", "zeta"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(path, filepath.Join(dir, "dms", "hr", "zeta", "LOAD1.csv")); err != nil {
		b.Fatal(err)
	}
	yaml := fmt.Sprintf("directory: %s\nbucket_folder: dms\nmode: full-load\ntable_definition: '%s'\ncheckpoint:\n  store: none\n", dir, twoTables)
	var splitTime, inTime time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		f, err := os.Open(filepath.Join(dir, "dms", "hr", "zeta", "LOAD1.csv"))
		if err != nil {
			b.Fatal(err)
		}
		rr := dmscsv.NewRowReader(f, dmscsv.DefaultSettings(), dmscsv.RowOptions{})
		for {
			if _, err := rr.Next(); err != nil {
				break
			}
		}
		f.Close()
		splitTime += time.Since(start)
		start = time.Now()
		in := benchInput(b, yaml)
		rows, _ := drain(b, in, nil)
		in.Close(context.Background())
		inTime += time.Since(start)
		if rows != nrows {
			b.Fatalf("rows %d want %d", rows, nrows)
		}
	}
	b.ReportMetric(float64(inTime.Nanoseconds())/float64(nrows*int64(b.N)), "input_ns/row")
	b.ReportMetric(float64(splitTime.Nanoseconds())/float64(nrows*int64(b.N)), "split_ns/row")
	b.ReportMetric(splitTime.Seconds()/inTime.Seconds(), "input_ratio_vs_split")
}

// BenchmarkDirectoryPoll: one CDC poll of directory mode over a folder of
// 20,000 processed files with nothing new after the mark (the steady state
// of a long tail), next to a bare os.ReadDir of the same folder in the same
// run. A poll must not stat the files at or below the mark.
func BenchmarkDirectoryPoll(b *testing.B) {
	root := b.TempDir()
	dir := filepath.Join(root, "dms", "changes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	const n = 20000
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%08d.csv", i)), []byte("I,zeta,hr,1,a\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	d := &dirSource{root: root}
	mark := fmt.Sprintf("dms/changes/%08d.csv", n-1)
	var raw, poll time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		ents, err := os.ReadDir(dir)
		raw += time.Since(t0)
		if err != nil || len(ents) != n {
			b.Fatalf("ReadDir: %d entries, %v", len(ents), err)
		}
		t0 = time.Now()
		objs, _, err := d.list(context.Background(), "dms/changes/", mark, "")
		poll += time.Since(t0)
		if err != nil || len(objs) != 0 {
			b.Fatalf("list: %d objects, %v", len(objs), err)
		}
	}
	b.ReportMetric(float64(poll.Microseconds())/float64(b.N)/1000, "poll_ms")
	b.ReportMetric(float64(raw.Microseconds())/float64(b.N)/1000, "readdir_ms")
	b.ReportMetric(poll.Seconds()/raw.Seconds(), "ratio_vs_readdir")
}
