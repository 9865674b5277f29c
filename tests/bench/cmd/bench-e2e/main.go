// Command bench-e2e is the measuring half of `make bench-e2e` (run it through
// tests/bench-e2e.sh, which builds the binaries it needs and starts the test
// servers). It puts the reference data set (tests/refdata) in a fresh
// versitygw bucket and measures, in one run:
//
//   - dmsbridge (config/s3-to-kinesis.yaml, unchanged) into the
//     immediately-acknowledging Kinesis endpoint tests/acksink (-runs times,
//     the median run is reported);
//   - dmsbridge into kinesalite, a 2-shard stream;
//   - the core-components baseline (tests/bench/baseline-core.yaml run by a
//     Benthos binary with only core components) into acksink over HTTP,
//     -runs times too, each right after a dmsbridge run (the median run is
//     reported, and the ratio of every pair).
//
// For each it prints wall time from process start to the last record
// acknowledged, rows/s, CPU seconds (utime+stime) and CPU seconds per million
// rows, and peak RSS (VmHWM), with the dmsbridge/baseline ratios and the
// targets; it rewrites the results section of docs/benchmarks.md and the
// throughput chart docs/bench-e2e.svg.
//
// It exits 1 when a run fails (a process dies, a record count differs from
// the data set, rows reach the dead-letter file, a run times out) and 0
// otherwise, including when a performance target is missed (then it says so).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
)

// Targets of the issue: rows/s of dmsbridge into the acknowledging endpoint,
// and the throughput ratio against the core-components baseline.
const (
	targetRowsPerSec = 250_000
	targetRatio      = 10
)

type options struct {
	root, work, dmsbridge, core, acksink string
	scale                                float64
	runs                                 int
	poll                                 time.Duration
	timeout                              time.Duration
	md, svg                              string
	cpuprofile                           string
	profileSecs                          int
	kinesalite, baseline                 bool
}

func main() {
	var o options
	flag.StringVar(&o.root, "root", ".", "repository root (configs are read from it)")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new temp dir)")
	flag.StringVar(&o.dmsbridge, "dmsbridge", "bin/dmsbridge", "dmsbridge binary")
	flag.StringVar(&o.core, "core", "", "Benthos binary with only core components (tests/bench/cmd/benthos-core)")
	flag.StringVar(&o.acksink, "acksink", "", "acksink binary (tests/acksink/cmd/acksink)")
	flag.Float64Var(&o.scale, "scale", 1, "reference data set scale (1: ~500k rows)")
	flag.IntVar(&o.runs, "runs", 3, "dmsbridge -> acksink repetitions, each followed by a baseline run (the medians are reported)")
	flag.DurationVar(&o.poll, "poll", 50*time.Millisecond, "progress sampling interval")
	flag.DurationVar(&o.timeout, "timeout", 4*time.Minute, "longest a single run may take")
	flag.StringVar(&o.md, "md", "docs/benchmarks.md", "markdown file whose results section is rewritten ('' for none)")
	flag.StringVar(&o.svg, "svg", "docs/bench-e2e.svg", "throughput chart to write ('' for none)")
	flag.BoolVar(&o.kinesalite, "kinesalite", true, "also measure dmsbridge -> kinesalite")
	flag.BoolVar(&o.baseline, "baseline", true, "also measure the core-components baseline")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the first dmsbridge -> acksink run to this file (through Benthos' debug endpoint, for -cpuprofile-seconds from its start: use a -scale that makes the run last longer)")
	flag.IntVar(&o.profileSecs, "cpuprofile-seconds", 3, "length of the -cpuprofile profile")
	flag.Parse()
	if o.core == "" || o.acksink == "" || o.runs < 1 || o.scale <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e: FAILED:", err)
		os.Exit(1)
	}
}

// sample is the number of records acknowledged t seconds after the start.
type sample struct {
	t float64
	n int64
}

// result is one measured run.
type result struct {
	job, sink string
	rows      int64   // records acknowledged (= the data set's count)
	wall      float64 // seconds, process start to last record acknowledged
	cpu       float64 // seconds of utime+stime of the pipeline process
	rss       int64   // bytes, VmHWM
	sinkCPU   float64 // seconds of CPU of acksink (0 for kinesalite)
	dups      int64   // records the sink received more than once
	samples   []sample
}

func (r result) rate() float64     { return float64(r.rows) / r.wall }
func (r result) cpuPerM() float64  { return r.cpu / float64(r.rows) * 1e6 }
func (r result) rssMiB() float64   { return float64(r.rss) / (1 << 20) }
func (r result) sinkPerM() float64 { return r.sinkCPU / float64(r.rows) * 1e6 }
func (r result) label() string     { return r.job + " → " + r.sink }
func (r result) String() string    { return fmt.Sprintf("%s: %.0f rows/s", r.label(), r.rate()) }
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
func mustAbs(p string) string { a, _ := filepath.Abs(p); return a }
func inRoot(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}
func env(k, v string) string { return k + "=" + v }

// cpuProfile waits for the HTTP server at addr, then takes a CPU profile of
// the process's next seconds s into file. The run must last longer than
// that: a profile cut short by the process ending is lost.
func cpuProfile(addr, file string, secs int) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond) // not listening yet
				continue
			}
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("debug endpoint answered %s", resp.Status)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("%w (did the run end before the %d s profile? use a larger -scale)", err, secs)
		}
		return os.WriteFile(file, b, 0o644)
	}
}
func ck(err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func run(o options) error {
	for _, v := range []string{"S3_ENDPOINT", "KINESIS_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if os.Getenv(v) == "" {
			return fmt.Errorf("%s is not set: run through tests/services.sh run (make bench-e2e)", v)
		}
	}
	if os.Getenv("AWS_REGION") == "" {
		os.Setenv("AWS_REGION", "us-east-1")
	}
	var err error
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "bench-e2e"); err != nil {
			return err
		}
		defer os.RemoveAll(o.work)
	}
	o.root, o.work, o.dmsbridge, o.core, o.acksink = mustAbs(o.root), mustAbs(o.work), mustAbs(o.dmsbridge), mustAbs(o.core), mustAbs(o.acksink)
	facts := machineFacts()
	facts.loadStart = loadAvg()
	fmt.Printf("bench-e2e: %s, %d cores, %s, load %s\n", facts.cpuModel, facts.cores, facts.goVersion, facts.loadStart)

	// The data set: local files (the baseline reads them) and a bucket.
	data := filepath.Join(o.work, "data")
	rows, err := writeDataSet(data, o.scale)
	if err != nil {
		return err
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	s3c := s3.NewFromConfig(cfg, func(so *s3.Options) {
		so.BaseEndpoint = aws.String(os.Getenv("S3_ENDPOINT"))
		so.UsePathStyle = true
	})
	kc := kinesis.NewFromConfig(cfg, func(ko *kinesis.Options) {
		ko.BaseEndpoint = aws.String(os.Getenv("KINESIS_ENDPOINT"))
	})
	bucket := fmt.Sprintf("bench-e2e-%d", time.Now().UnixNano())
	if err := uploadDataSet(ctx, s3c, bucket, data); err != nil {
		return err
	}
	defer deleteBucket(context.Background(), s3c, bucket)
	fmt.Printf("bench-e2e: %d rows (scale %g) in s3://%s\n", rows, o.scale, bucket)

	// dmsbridge and the baseline run in turns (dmsbridge, baseline, dmsbridge,
	// ...), so that a change of the machine's load while the benchmark runs
	// falls on both alike; each is reported by its median run, and the
	// ratio of every pair is listed too.
	var all []result
	var acks, bases []result
	for i := 0; i < o.runs; i++ {
		r, err := runDMS(ctx, o, kc, bucket, data, rows, "acksink", i)
		if err != nil {
			return err
		}
		fmt.Printf("  run %d/%d %s, %.1f CPU s/M rows\n", i+1, o.runs, r, r.cpuPerM())
		acks = append(acks, r)
		if o.baseline {
			r, err := runBaseline(o, data, rows)
			if err != nil {
				return err
			}
			fmt.Printf("  baseline run %d/%d %s\n", i+1, o.runs, r)
			bases = append(bases, r)
		}
	}
	var pairs []float64 // dmsbridge rows/s over the baseline's right after it
	for i := range bases {
		pairs = append(pairs, acks[i].rate()/bases[i].rate())
	}
	all = append(all, median(acks))
	if o.kinesalite {
		r, err := runDMS(ctx, o, kc, bucket, data, rows, "kinesalite", 0)
		if err != nil {
			return err
		}
		fmt.Printf("  %s\n", r)
		all = append(all, r)
	}
	var base *result
	if o.baseline {
		all = append(all, median(bases))
		base = &all[len(all)-1]
	}
	facts.loadEnd = loadAvg()

	rep := report(facts, o, rows, all, acks, bases, pairs, base)
	fmt.Println()
	fmt.Print(rep)
	if o.svg != "" {
		p := inRoot(o.root, o.svg)
		if err := os.WriteFile(p, []byte(chart(all)), 0o644); err != nil {
			return err
		}
		fmt.Println("bench-e2e: chart written to", o.svg)
	}
	if o.md != "" {
		if err := writeMarkdown(inRoot(o.root, o.md), rep); err != nil {
			return err
		}
		fmt.Println("bench-e2e: results written to", o.md)
	}
	return nil
}

// median is the run of median wall time (runs is reordered, fastest first).
func median(runs []result) result {
	sort.Slice(runs, func(i, j int) bool { return runs[i].wall < runs[j].wall })
	return runs[len(runs)/2]
}

// writeDataSet writes the reference data set into dir and returns its number
// of records.
func writeDataSet(dir string, scale float64) (int64, error) {
	files, manifest := refdata.Generate(refdata.Scaled(scale))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "table-definition.json"), []byte(refdata.Definition), 0o644); err != nil {
		return 0, err
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(p, f.Body, 0o644); err != nil {
			return 0, err
		}
	}
	return int64(len(manifest)), nil
}

// dataKeys are the object keys of the data set under dir (everything but the
// table definition), slash-separated.
func dataKeys(dir string) ([]string, error) {
	var keys []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "table-definition.json" {
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

func uploadDataSet(ctx context.Context, c *s3.Client, bucket, dir string) error {
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucket, err)
	}
	keys, err := dataKeys(dir)
	if err != nil {
		return err
	}
	for _, k := range keys {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil {
			return err
		}
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: f})
		f.Close()
		if err != nil {
			return fmt.Errorf("uploading %s: %w", k, err)
		}
	}
	return nil
}

func deleteBucket(ctx context.Context, c *s3.Client, bucket string) {
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err == nil {
		for _, obj := range out.Contents {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: obj.Key})
		}
	}
	_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
}

// startSink starts an acksink and returns it with its base URL.
func startSink(o options, dir string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc("acksink", filepath.Join(dir, "acksink.log"), nil, o.acksink, "-listen", addr, "-shards", "2")
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	if err := waitHTTP(p, url+"/count", 10*time.Second); err != nil {
		_ = p.stop(time.Second)
		return nil, "", err
	}
	return p, url, nil
}

// createStream makes a 2-shard kinesalite stream and waits until ACTIVE.
func createStream(ctx context.Context, kc *kinesis.Client, name string) error {
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)}); err != nil {
		return fmt.Errorf("creating stream %s: %w", name, err)
	}
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == "ACTIVE" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("stream %s not ACTIVE after 30s", name)
}

// track samples progress() every o.poll until it reaches rows, and returns
// the samples and the interpolated time the last record was acknowledged.
// onSample runs after each sample (to read /proc while the process lives).
func track(o options, p *proc, t0 time.Time, rows int64, progress func() (int64, error), onSample func()) ([]sample, float64, error) {
	var samples []sample
	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	deadline := t0.Add(o.timeout)
	for {
		n, err := progress()
		t := time.Since(t0).Seconds()
		if err == nil {
			samples = append(samples, sample{t, n})
			if n >= rows {
				// Interpolate between the last two samples.
				done := t
				if len(samples) > 1 {
					a := samples[len(samples)-2]
					if n > a.n {
						done = a.t + (t-a.t)*float64(rows-a.n)/float64(n-a.n)
					}
				}
				return samples, done, nil
			}
		}
		if onSample != nil {
			onSample()
		}
		if p.exited() {
			last := int64(0)
			if len(samples) > 0 {
				last = samples[len(samples)-1].n
			}
			return samples, 0, fmt.Errorf("%s exited (%v) after %d of %d records\n%s", p.name, p.err, last, rows, p.logTail(3000))
		}
		if time.Now().After(deadline) {
			last := int64(0)
			if len(samples) > 0 {
				last = samples[len(samples)-1].n
			}
			return samples, 0, fmt.Errorf("%s: only %d of %d records after %s\n%s", p.name, last, rows, o.timeout, p.logTail(3000))
		}
		<-tick.C
	}
}

// runDMS runs dmsbridge with config/s3-to-kinesis.yaml into acksink or
// kinesalite until every record is acknowledged.
func runDMS(ctx context.Context, o options, kc *kinesis.Client, bucket, data string, rows int64, sinkKind string, i int) (res result, err error) {
	dir := filepath.Join(o.work, fmt.Sprintf("dmsbridge-%s-%d", sinkKind, i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	res = result{job: "dmsbridge", sink: sinkKind, rows: rows}
	var sink *proc
	var sinkURL string
	endpoint := os.Getenv("KINESIS_ENDPOINT")
	stream := fmt.Sprintf("bench-e2e-%d", time.Now().UnixNano())
	if sinkKind == "acksink" {
		if sink, sinkURL, err = startSink(o, dir); err != nil {
			return res, err
		}
		defer func() { _ = sink.stop(5 * time.Second) }()
		endpoint = sinkURL
	} else {
		if err := createStream(ctx, kc, stream); err != nil {
			return res, err
		}
		defer func() {
			_, _ = kc.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
		}()
	}
	addr, err := freeAddr()
	if err != nil {
		return res, err
	}
	deadLetter := filepath.Join(dir, "dead-letter.jsonl")
	envs := []string{
		env("BUCKET", bucket), env("STREAM", stream), env("KINESIS_ENDPOINT", endpoint),
		env("S3_FORCE_PATH_STYLE", "true"), env("CHECKPOINT_DIR", filepath.Join(dir, "checkpoints")),
		env("DEAD_LETTER_PATH", deadLetter), env("TABLE_DEFINITION", filepath.Join(data, "table-definition.json")),
		// acksink and kinesalite have no shard limits: pacing off.
		env("KINESIS_SHARD_RECORDS_PER_SECOND", "1000000000"), env("KINESIS_SHARD_BYTES_PER_SECOND", "1000000000000"),
		env("HTTP_ADDRESS", addr), env("LOG_LEVEL", "INFO"),
	}
	if sinkKind == "kinesalite" {
		// kinesalite truncates CBOR answers over 16 KiB.
		envs = append(envs, env("KINESIS_PROTOCOL", "json"))
	}
	args := []string{"run", filepath.Join(o.root, "config/s3-to-kinesis.yaml")}
	profile := o.cpuprofile != "" && sinkKind == "acksink" && i == 0
	if profile {
		args = []string{"run", "--set", "http.debug_endpoints=true", filepath.Join(o.root, "config/s3-to-kinesis.yaml")}
	}
	t0 := time.Now()
	p, err := startProc("dmsbridge", filepath.Join(dir, "dmsbridge.log"), envs, o.dmsbridge, args...)
	if err != nil {
		return res, err
	}
	defer func() { _ = p.stop(5 * time.Second) }()
	if profile {
		profDone := make(chan error, 1)
		go func() { profDone <- cpuProfile(addr, o.cpuprofile, o.profileSecs) }()
		defer func() {
			if perr := <-profDone; perr != nil {
				fmt.Fprintf(os.Stderr, "bench-e2e: no CPU profile: %v\n", perr)
			} else {
				fmt.Fprintf(os.Stderr, "bench-e2e: CPU profile written to %s (that run's figures include the profiling)\n", o.cpuprofile)
			}
		}()
	}
	metricsURL := "http://" + addr + "/metrics"
	written := func() (int64, error) {
		page, err := get(metricsURL)
		if err != nil {
			return 0, err
		}
		return int64(metricSum(page, "kinesis_records_written")), nil
	}
	var done float64
	if res.samples, done, err = track(o, p, t0, rows, written, nil); err != nil {
		return res, err
	}
	res.wall = done
	if sink != nil {
		res.wall = ackedWall(sinkURL, t0, done, res.samples)
	}
	if res.cpu, err = cpuSeconds(p.pid()); err != nil {
		return res, err
	}
	if res.rss, err = peakRSS(p.pid()); err != nil {
		return res, err
	}
	// Nothing more may arrive: a count above the data set means records
	// were read twice.
	time.Sleep(300 * time.Millisecond)
	n, err := written()
	if err != nil {
		return res, ck(err, "final /metrics")
	}
	if n != rows {
		return res, fmt.Errorf("dmsbridge -> %s: %d records written, the data set has %d", sinkKind, n, rows)
	}
	page, _ := get(metricsURL)
	if dl := metricSum(page, "processor_error"); dl > 0 {
		return res, fmt.Errorf("dmsbridge -> %s: %v processor errors", sinkKind, dl)
	}
	if err := p.stop(10 * time.Second); err != nil {
		return res, fmt.Errorf("dmsbridge -> %s: stopping: %v\n%s", sinkKind, err, p.logTail(3000))
	}
	if b, err := os.ReadFile(deadLetter); err == nil && len(b) > 0 {
		return res, fmt.Errorf("dmsbridge -> %s: %d bytes in the dead-letter file, first: %.500s", sinkKind, len(b), b)
	}
	if sink != nil {
		got, err := sinkCount(sinkURL)
		if err != nil {
			return res, err
		}
		if got < rows {
			return res, fmt.Errorf("dmsbridge -> acksink: acksink received %d records, the data set has %d", got, rows)
		}
		res.dups = got - rows
		if res.sinkCPU, err = cpuSeconds(sink.pid()); err != nil {
			return res, err
		}
	}
	return res, nil
}

// runBaseline runs tests/bench/baseline-core.yaml with the core-components
// binary into acksink (plain HTTP); the file input ends and Benthos exits.
func runBaseline(o options, data string, rows int64) (res result, err error) {
	dir := filepath.Join(o.work, "baseline")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	res = result{job: "core baseline", sink: "acksink (HTTP)", rows: rows}
	sink, sinkURL, err := startSink(o, dir)
	if err != nil {
		return res, err
	}
	defer func() { _ = sink.stop(5 * time.Second) }()
	addr, err := freeAddr()
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	p, err := startProc("benthos-core", filepath.Join(dir, "benthos-core.log"),
		[]string{env("DATA_DIR", data), env("SINK_URL", sinkURL)},
		o.core, "run", "--set", "http.address="+addr, filepath.Join(o.root, "tests/bench/baseline-core.yaml"))
	if err != nil {
		return res, err
	}
	defer func() { _ = p.stop(5 * time.Second) }()
	// CPU and RSS come from the process's rusage once it has exited (it
	// ends by itself when the files are read), which includes its shutdown.
	var done float64
	if res.samples, done, err = track(o, p, t0, rows, func() (int64, error) { return sinkCount(sinkURL) }, nil); err != nil {
		return res, err
	}
	res.wall = ackedWall(sinkURL, t0, done, res.samples)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		return res, fmt.Errorf("benthos-core did not exit within 30s of its last record\n%s", p.logTail(3000))
	}
	if p.err != nil {
		return res, fmt.Errorf("benthos-core: %v\n%s", p.err, p.logTail(3000))
	}
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscallRusage)
	if !ok {
		return res, errors.New("no rusage for benthos-core")
	}
	res.cpu = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	res.rss = ru.Maxrss * 1024
	got, err := sinkCount(sinkURL)
	if err != nil {
		return res, err
	}
	if got < rows {
		return res, fmt.Errorf("core baseline: acksink received %d records, the data set has %d", got, rows)
	}
	res.dups = got - rows
	if res.sinkCPU, err = cpuSeconds(sink.pid()); err != nil {
		return res, err
	}
	return res, nil
}

type facts struct {
	cores                       int
	goVersion, cpuModel, kernel string
	date                        string
	loadStart, loadEnd          string
}

func machineFacts() facts {
	f := facts{cores: runtime.NumCPU(), goVersion: runtime.Version(), date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i >= 0 {
					f.cpuModel = strings.TrimSpace(l[i+1:])
					break
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		f.kernel = strings.TrimSpace(string(b))
	}
	return f
}

func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
