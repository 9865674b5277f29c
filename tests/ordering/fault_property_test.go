package ordering

// A randomised end-to-end test of the whole pipeline under Kinesis faults
// (TestFaultPropertyPipeline): aws_s3_dms (a directory, or versitygw one case
// in four) -> dms_csv_to_json -> aws_kinesis_streams into kinesalite, through
// two fault layers: kinesisproxy (per-record ProvisionedThroughputExceeded and
// InternalFailure partial failures) behind an in-test layer that, per request,
// answers HTTP 500 or 503 without forwarding, resets the connection before
// forwarding, or after kinesalite wrote the records (unknown outcome), holds
// the answer past the output's request_timeout, answers about when the
// timeout fires, or sends half the answer and closes; connect's
// DescribeStreamSummary/ListShards get some of those too; in one case in five
// Kinesis answers nothing for 6 s (over the output's 5 s before it reports
// itself not connected). Random: tables, keys (few, so that keys repeat),
// full-load and CDC files with I/U/D rows (one case in eight over a thousand
// rows in batches of up to 1200: requests of 500), pipeline threads 1-4,
// output max_in_flight 1-4, output batching, batch_size, checkpoint interval,
// shards, cdc_partition_key, partition_include_schema_table, transaction
// details, max_request_size (small: many requests per batch), the SDK request
// path or the output's own, fault rates, and up to three stops mid-run, each
// graceful or a kill (Kinesis hears nothing more, nothing in flight, the
// checkpoint file as it was then is put back after the stop).
//
// Checked, from the stream read back: every row is there, each copy exactly as
// rendered (data in column order, metadata but the timestamp, partition key);
// nothing else is there; with transaction details, every copy of a CDC row
// carries the same stream-position and it grows in input order; with threads 1
// and max_in_flight 1, per partition key the last copy of every row is in
// order (README: the last copy of every row is in order); the rows a run
// repeats from earlier runs are within the documented bound (after a kill, or a
// graceful stop whose drain the 20 s stop cut short, with checkpoint.interval
// 0s: 4 x batch_size; after a graceful stop: only rows whose answer was lost);
// the stream holds exactly kinesis_records_written + kinesis_duplicates_ordering
// + the records written whose answer the fault layer withheld (up to the
// records of answers sent as the timeout fired more), and the copies beyond
// one per row are covered by kinesis_duplicates_ordering,
// kinesis_resends_unknown_outcome, lost answers and the kill windows; no
// record failed (kinesis_records_failed, backoff.max_elapsed_time 0s) but in
// runs cut short.
//
// 10 cases by default (about 2-3 minutes on 2 cores); more with
// -rapid.checks=N (80 cases: about 16 minutes).

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"pgregory.net/rapid"

	"github.com/dmsbridge/dmsbridge/tests/kinesisproxy"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// ---- metrics: an exporter that sums each counter over its labels ----

type fpMetrics struct {
	mu sync.Mutex
	c  map[string]int64
}

func (m *fpMetrics) get(name string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.c[name]
}

type fpCounter struct {
	m    *fpMetrics
	name string
}

func (c fpCounter) Incr(n int64) {
	c.m.mu.Lock()
	c.m.c[c.name] += n
	c.m.mu.Unlock()
}
func (c fpCounter) IncrFloat64(n float64) { c.Incr(int64(n)) }

type fpNoop struct{}

func (fpNoop) Set(int64)                         {}
func (fpNoop) SetFloat64(float64)                {}
func (fpNoop) Timing(int64)                      {}
func (m *fpMetrics) Close(context.Context) error { return nil }
func (m *fpMetrics) NewCounterCtor(name string, _ ...string) service.MetricsExporterCounterCtor {
	return func(...string) service.MetricsExporterCounter { return fpCounter{m, name} }
}
func (m *fpMetrics) NewGaugeCtor(string, ...string) service.MetricsExporterGaugeCtor {
	return func(...string) service.MetricsExporterGauge { return fpNoop{} }
}
func (m *fpMetrics) NewTimerCtor(string, ...string) service.MetricsExporterTimerCtor {
	return func(...string) service.MetricsExporterTimer { return fpNoop{} }
}

var fpRegistry sync.Map // name -> *fpMetrics

func init() {
	spec := service.NewConfigSpec().Field(service.NewStringField("name"))
	service.MustRegisterMetricsExporter("fault_prop_metrics", spec, func(c *service.ParsedConfig, _ *service.Logger) (service.MetricsExporter, error) {
		name, _ := c.FieldString("name")
		m := &fpMetrics{c: map[string]int64{}}
		fpRegistry.Store(name, m)
		return m, nil
	})
}

// ---- the request-level fault layer in front of kinesisproxy ----

const (
	fkPass = iota
	fk500
	fk503
	fkResetBefore
	fkResetAfter
	fkSlow
	fkLate
	fkTruncated
	fkKinds
)

var fkNames = [fkKinds]string{"pass", "500", "503", "reset-before", "reset-after", "slow", "late", "truncated"}

type faultLayer struct {
	upstream string
	srv      *httptest.Server
	client   *http.Client
	slow     time.Duration

	mu      sync.Mutex
	rng     *rand.Rand
	weights [fkKinds]int

	paused   atomic.Bool
	outage   atomic.Bool
	inflight atomic.Int64
	lost     atomic.Int64 // records kinesalite wrote whose answer never reached the output
	// records of answers sent as the output's request_timeout fired: the
	// output may have given up on them (then they count as lost)
	raced  atomic.Int64
	counts [fkKinds]atomic.Int64
}

func newFaultLayer(t testing.TB, upstream string, seed int64, weights [fkKinds]int, slow time.Duration) *faultLayer {
	f := &faultLayer{upstream: upstream, rng: rand.New(rand.NewSource(seed)), weights: weights, slow: slow,
		client: &http.Client{Timeout: time.Minute}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faultLayer) pick() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	total := 0
	for _, w := range f.weights {
		total += w
	}
	n := f.rng.Intn(total)
	for k, w := range f.weights {
		if n < w {
			return k
		}
		n -= w
	}
	return fkPass
}

func (f *faultLayer) reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("no hijacker")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func (f *faultLayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.inflight.Add(1)
	defer f.inflight.Add(-1)
	body, err := io.ReadAll(r.Body)
	if err != nil || f.paused.Load() || f.outage.Load() {
		f.reset(w)
		return
	}
	kind := f.pick()
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") && kind != fkPass && kind%2 == 0 {
		// the other calls (DescribeStreamSummary, ListShards at connect)
		// get half the kinds of faults
		kind = fkPass
	}
	f.counts[kind].Add(1)
	switch kind {
	case fk500, fk503:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if kind == fk500 {
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"__type":"InternalFailure","message":"injected"}`))
		} else {
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"__type":"ServiceUnavailable","message":"injected"}`))
		}
		return
	case fkResetBefore:
		f.reset(w)
		return
	}
	req, _ := http.NewRequestWithContext(context.Background(), r.Method, f.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	req.Host = r.Host
	resp, err := f.client.Do(req)
	if err != nil {
		f.reset(w)
		return
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		f.reset(w)
		return
	}
	if kind == fkLate {
		// the answer comes about when the output gives up waiting
		f.mu.Lock()
		d := f.slow - 300*time.Millisecond + time.Duration(f.rng.Intn(100)-50)*time.Millisecond
		f.mu.Unlock()
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
	}
	written := int64(0)
	if resp.StatusCode == 200 && strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
		var pr struct {
			Records []struct{ SequenceNumber string }
		}
		_ = json.Unmarshal(rb, &pr)
		for _, e := range pr.Records {
			if e.SequenceNumber != "" {
				written++
			}
		}
	}
	if kind == fkLate && r.Context().Err() == nil {
		f.raced.Add(written)
		kind = fkPass
	}
	if kind == fkPass && r.Context().Err() == nil {
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(rb)
		return
	}
	// the answer is withheld: the records were written, the output cannot know
	f.lost.Add(written)
	if kind == fkTruncated {
		// the status line, the headers and half the body, then the connection ends
		hj, _ := w.(http.Hijacker)
		conn, bw, err := hj.Hijack()
		if err != nil {
			return
		}
		fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: %d\r\n\r\n", resp.StatusCode, http.StatusText(resp.StatusCode), len(rb))
		_, _ = bw.Write(rb[:len(rb)/2])
		_ = bw.Flush()
		_ = conn.Close()
		return
	}
	if kind == fkSlow {
		select {
		case <-time.After(f.slow):
		case <-r.Context().Done():
		}
	}
	f.reset(w)
}

// quiesce stops answering and waits until no request is in flight, as at the
// moment a process is killed: nothing more reaches Kinesis.
func (f *faultLayer) quiesce(t testing.TB) {
	f.paused.Store(true)
	if err := testutil.WaitFor(30*time.Second, func() bool { return f.inflight.Load() == 0 }); err != nil {
		t.Fatalf("fault layer: requests still in flight 30s after the kill")
	}
}

// ---- the case ----

type fpTable struct{ schema, name string }

type fpRow struct {
	table  fpTable
	op     string // "" full load, I U D
	id     int
	tok    string // the v column: unique, names the row
	seq    int    // order in the input
	pkey   string // expected partition key
	record map[string]any
}

type fpCase struct {
	tables    []fpTable
	load      map[string][]string // file key -> rows
	cdc       map[string][]string
	rows      []*fpRow
	threads   int
	inFlight  int
	batching  int // output batching.count, 0 none
	batchSize int
	interval  string
	shards    int
	cdcKey    string
	txn       bool
	reqSize   int // max_request_size, 0 default
	big       bool
	outageRun int  // the run in which Kinesis answers nothing for 6 s, -1 none
	pkSchema  bool // partition_include_schema_table
	sdk       bool
	s3        bool
	throttle  float64
	internal  float64
	weights   [fkKinds]int
	timeout   time.Duration
	stopAt    []int
	kill      []bool
	seed      int64
}

func (c *fpCase) ordered() bool { return c.threads == 1 && c.inFlight == 1 }

func (c *fpCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tables %v, %d rows, threads %d, max_in_flight %d, batching %d, batch_size %d, interval %s, shards %d, cdc_partition_key %s, partition_include_schema_table %v, txn %v, sdk %v, s3 %v, max_request_size %d\n",
		c.tables, len(c.rows), c.threads, c.inFlight, c.batching, c.batchSize, c.interval, c.shards, c.cdcKey, c.pkSchema, c.txn, c.sdk, c.s3, c.reqSize)
	fmt.Fprintf(&b, "faults: throttle %.2f internal %.2f weights %v timeout %v; stops at %v kill %v; outage in run %d\n", c.throttle, c.internal, c.weights, c.timeout, c.stopAt, c.kill, c.outageRun)
	keys := append(sortedKeys(c.load), sortedKeys(c.cdc)...)
	for _, k := range keys {
		rows := c.load[k]
		if rows == nil {
			rows = c.cdc[k]
		}
		if len(rows) > 30 {
			fmt.Fprintf(&b, "  %s: %q ... (%d rows)\n", k, rows[:30], len(rows))
			continue
		}
		fmt.Fprintf(&b, "  %s: %q\n", k, rows)
	}
	return b.String()
}

func sortedKeys(m map[string][]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (c *fpCase) tableDef() string {
	var ts []string
	for _, t := range c.tables {
		ts = append(ts, fmt.Sprintf(`{"TableName":%q,"TablePath":"%s/%s/","TableOwner":%q,"TableColumns":[{"ColumnName":"id","ColumnType":"INT4","ColumnIsPk":"true"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"}`,
			t.name, t.schema, t.name, t.schema))
	}
	return fmt.Sprintf(`{"TableCount":"%d","Tables":[%s]}`, len(ts), strings.Join(ts, ","))
}

func genFaultCase(t *rapid.T) *fpCase {
	c := &fpCase{load: map[string][]string{}, cdc: map[string][]string{}}
	pool := []fpTable{{"hr", "zeta"}, {"hr", "alpha"}, {"ops", "zeta"}, {"ops", "emp"}}
	perm := rapid.Permutation(pool).Draw(t, "tables")
	c.tables = perm[:rapid.IntRange(1, 3).Draw(t, "ntables")]
	c.cdcKey = rapid.SampledFrom([]string{"schema-table", "primary-key"}).Draw(t, "cdcKey")
	nextTok := 0
	newRow := func(tb fpTable, op string, id int) *fpRow {
		nextTok++
		r := &fpRow{table: tb, op: op, id: id, tok: fmt.Sprintf("r%04d", nextTok)}
		return r
	}
	maxID := rapid.IntRange(1, 6).Draw(t, "maxID")
	c.big = rapid.IntRange(0, 7).Draw(t, "big") == 0
	maxLoadRows := 25
	if c.big {
		// requests of up to 500 records, batches over many requests
		maxLoadRows = 700
	}
	for ti, tb := range c.tables {
		nf := rapid.IntRange(0, 2).Draw(t, fmt.Sprintf("loadFiles%d", ti))
		for fi := 0; fi < nf; fi++ {
			key := fmt.Sprintf("%s/%s/LOAD%08d.csv", tb.schema, tb.name, fi+1)
			nr := rapid.IntRange(1, maxLoadRows).Draw(t, "loadRows")
			for i := 0; i < nr; i++ {
				r := newRow(tb, "", rapid.IntRange(1, maxID).Draw(t, "id"))
				c.load[key] = append(c.load[key], fmt.Sprintf("%d,%s", r.id, r.tok))
				c.rows = append(c.rows, r)
			}
		}
	}
	ncdc := rapid.IntRange(0, 3).Draw(t, "cdcFiles")
	for fi := 0; fi < ncdc; fi++ {
		key := fmt.Sprintf("changes/2026112%d-000000000.csv", fi)
		nr := rapid.IntRange(1, 30).Draw(t, "cdcRows")
		if c.big {
			nr = rapid.IntRange(1, 400).Draw(t, "bigCdcRows")
		}
		for i := 0; i < nr; i++ {
			tb := c.tables[rapid.IntRange(0, len(c.tables)-1).Draw(t, "cdcTable")]
			r := newRow(tb, rapid.SampledFrom([]string{"I", "U", "D"}).Draw(t, "op"), rapid.IntRange(1, maxID).Draw(t, "id"))
			c.cdc[key] = append(c.cdc[key], fmt.Sprintf("%s,%s,%s,%d,%s", r.op, tb.name, tb.schema, r.id, r.tok))
			c.rows = append(c.rows, r)
		}
	}
	if len(c.rows) == 0 {
		tb := c.tables[0]
		r := newRow(tb, "I", 1)
		c.cdc["changes/20261120-000000000.csv"] = []string{fmt.Sprintf("I,%s,%s,1,%s", tb.name, tb.schema, r.tok)}
		c.rows = append(c.rows, r)
	}
	// input order: the full load table by table in definition order, each
	// table's files in key order, then the CDC files in key order
	c.threads = rapid.SampledFrom([]int{1, 1, 1, 2, 4}).Draw(t, "threads")
	c.inFlight = rapid.SampledFrom([]int{1, 1, 1, 2, 4}).Draw(t, "maxInFlight")
	c.batching = rapid.SampledFrom([]int{0, 0, 1, 3, 10}).Draw(t, "batching")
	c.batchSize = rapid.IntRange(1, 8).Draw(t, "batchSize")
	if c.big {
		c.batchSize = rapid.IntRange(50, 1200).Draw(t, "bigBatchSize")
	}
	if rapid.Bool().Draw(t, "smallRequests") {
		c.reqSize = rapid.IntRange(1000, 4000).Draw(t, "maxRequestSize")
	}
	c.interval = rapid.SampledFrom([]string{"0s", "0s", "20ms", "1h"}).Draw(t, "interval")
	c.shards = rapid.IntRange(1, 3).Draw(t, "shards")
	c.txn = rapid.Bool().Draw(t, "txn")
	c.pkSchema = rapid.Bool().Draw(t, "partitionIncludeSchemaTable")
	c.sdk = rapid.IntRange(0, 3).Draw(t, "sdk") == 0
	c.s3 = rapid.IntRange(0, 3).Draw(t, "s3") == 0
	c.throttle = rapid.SampledFrom([]float64{0, 0.05, 0.2, 0.4}).Draw(t, "throttle")
	c.internal = rapid.SampledFrom([]float64{0, 0.05, 0.2}).Draw(t, "internal")
	c.weights[fkPass] = 10
	for k := fk500; k < fkKinds; k++ {
		c.weights[k] = rapid.SampledFrom([]int{0, 0, 1, 2, 4}).Draw(t, "w"+fkNames[k])
	}
	if c.big {
		// a thousand rows under heavy faults take minutes (one key per
		// table keeps few records per request): milder faults
		c.throttle, c.internal = min(c.throttle, 0.2), min(c.internal, 0.05)
		for k := fk500; k < fkKinds; k++ {
			c.weights[k] = min(c.weights[k], 1)
		}
	}
	c.timeout = 300 * time.Millisecond
	nStops := rapid.IntRange(0, 3).Draw(t, "stops")
	for i := 0; i < nStops; i++ {
		c.stopAt = append(c.stopAt, rapid.IntRange(0, 60).Draw(t, "stopAt"))
		c.kill = append(c.kill, rapid.Bool().Draw(t, "kill"))
	}
	c.outageRun = -1
	if rapid.IntRange(0, 4).Draw(t, "outage") == 0 {
		c.outageRun = rapid.IntRange(0, nStops).Draw(t, "outageRun")
	}
	c.seed = rapid.Int64().Draw(t, "seed")
	return c
}

// order rebuilds c.rows in input order and computes every row's expected
// record. rowsByKey maps each file row back to its fpRow.
func (c *fpCase) order(all []*fpRow) {
	byTok := map[string]*fpRow{}
	for _, r := range all {
		byTok[r.tok] = r
	}
	take := func(line string) {
		f := strings.Split(line, ",")
		r := byTok[f[len(f)-1]]
		r.seq = len(c.rows)
		c.rows = append(c.rows, r)
	}
	for _, tb := range c.tables {
		for _, k := range sortedKeys(c.load) {
			if strings.HasPrefix(k, tb.schema+"/"+tb.name+"/") {
				for _, l := range c.load[k] {
					take(l)
				}
			}
		}
	}
	for _, k := range sortedKeys(c.cdc) {
		for _, l := range c.cdc[k] {
			take(l)
		}
	}
	for _, r := range c.rows {
		md := map[string]any{
			"record-type": "data", "schema-name": r.table.schema, "table-name": r.table.name,
		}
		switch r.op {
		case "":
			md["operation"] = "load"
			md["partition-key-type"] = "primary-key"
		default:
			md["operation"] = map[string]string{"I": "insert", "U": "update", "D": "delete"}[r.op]
			md["partition-key-type"] = c.cdcKey
		}
		switch {
		case md["partition-key-type"] == "primary-key" && c.pkSchema:
			r.pkey = fmt.Sprintf("%s.%s.%d", r.table.schema, r.table.name, r.id)
		case md["partition-key-type"] == "primary-key":
			r.pkey = fmt.Sprint(r.id)
		default:
			r.pkey = r.table.schema + "." + r.table.name
		}
		r.record = map[string]any{
			"data":     map[string]any{"id": json.Number(fmt.Sprint(r.id)), "v": r.tok},
			"metadata": md,
		}
	}
}

// ---- running ----

type fpRun struct {
	stream  *service.Stream
	done    chan error
	logs    *lockedSB
	metrics *fpMetrics
}

func (c *fpCase) start(t testing.TB, input, proc, output string) *fpRun {
	sb := service.NewStreamBuilder()
	logs := &lockedSB{}
	sb.SetLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	name := fmt.Sprintf("m%d", time.Now().UnixNano())
	if err := sb.SetMetricsYAML("fault_prop_metrics: {name: " + name + "}"); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInputYAML(input); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddProcessorYAML(proc); err != nil {
		t.Fatal(err)
	}
	sb.SetThreads(c.threads)
	if err := sb.AddOutputYAML(output); err != nil {
		t.Fatal(err)
	}
	s, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := fpRegistry.Load(name)
	if !ok {
		t.Fatal("metrics exporter not built")
	}
	r := &fpRun{stream: s, done: make(chan error, 1), logs: logs, metrics: m.(*fpMetrics)}
	go func() { r.done <- s.Run(context.Background()) }()
	return r
}

// stop stops the stream within d and waits for Run to return.
func (r *fpRun) stop(t testing.TB, d time.Duration) {
	err := r.stream.StopWithin(d)
	for i := 0; err != nil && strings.Contains(err.Error(), "not been run yet") && i < 1000; i++ {
		time.Sleep(time.Millisecond)
		err = r.stream.StopWithin(d)
	}
	select {
	case <-r.done:
	case <-time.After(d + 10*time.Second):
		t.Fatalf("the stream did not end %v after a stop (stop: %v)\nlogs:\n%s", d+10*time.Second, err, r.logs.text())
	}
}

func readAllRecords(t testing.TB, stream string) []testutil.Record {
	return testutil.ReadStream(t, stream)
}

func TestFaultPropertyPipeline(t *testing.T) {
	checksSet := false
	flag.Visit(func(f *flag.Flag) { checksSet = checksSet || f.Name == "rapid.checks" })
	if !checksSet {
		old := flag.Lookup("rapid.checks").Value.String()
		flag.Set("rapid.checks", "10")
		t.Cleanup(func() { flag.Set("rapid.checks", old) })
	}
	rapid.Check(t, func(rt *rapid.T) {
		runFaultCase(t, rt, genFaultCase(rt))
	})
}

func runFaultCase(t *testing.T, rt *rapid.T, c *fpCase) {
	// genFaultCase appended rows per file as drawn; put them in input order
	all := c.rows
	c.rows = nil
	c.order(all)
	describe := c.String()

	stream := testutil.NewStream(t, c.shards)
	proxy, err := kinesisproxy.Start(kinesisproxy.Config{
		Upstream: testutil.MustEnv(t, "KINESIS_ENDPOINT"), RecordsPerSecond: -1, BytesPerSecond: -1,
		ThrottleRate: c.throttle, InternalFailureRate: c.internal, Seed: c.seed,
	})
	if err != nil {
		rt.Fatal(err)
	}
	defer proxy.Close()
	fl := newFaultLayer(t, proxy.URL(), c.seed, c.weights, c.timeout+300*time.Millisecond)
	defer fl.srv.Close()

	root := t.TempDir()
	ck := t.TempDir()
	def := c.tableDef()
	src := fmt.Sprintf("  directory: %q\n", root)
	put := func(key string, rows []string) { writeFile(t, root, key, strings.Join(rows, "\n")+"\n") }
	if c.s3 {
		bucket := testutil.NewBucket(t)
		src = fmt.Sprintf("  bucket: %s\n  endpoint: %s\n  force_path_style: true\n  region: %s\n  credentials: {id: %s, secret: %s}\n",
			bucket, testutil.MustEnv(t, "S3_ENDPOINT"), testutil.MustEnv(t, "AWS_REGION"), testutil.MustEnv(t, "AWS_ACCESS_KEY_ID"), testutil.MustEnv(t, "AWS_SECRET_ACCESS_KEY"))
		put = func(key string, rows []string) {
			testutil.PutObject(t, bucket, key, []byte(strings.Join(rows, "\n")+"\n"))
		}
	}
	for _, k := range sortedKeys(c.load) {
		put(k, c.load[k])
	}
	for _, k := range sortedKeys(c.cdc) {
		put(k, c.cdc[k])
	}
	input := fmt.Sprintf(`aws_s3_dms:
%s  cdc_path: changes
  mode: full-load-and-cdc
  cdc_start: beginning
  poll_interval: 50ms
  batch_size: %d
  table_definition: '%s'
  checkpoint: {store: file, directory: %q, interval: %s}
`, src, c.batchSize, def, ck, c.interval)
	proc := fmt.Sprintf("dms_csv_to_json:\n  table_definition: '%s'\n  message_format: json-unformatted\n  cdc_partition_key: %s\n  include_transaction_details: %v\n  partition_include_schema_table: %v\n", def, c.cdcKey, c.txn, c.pkSchema)
	reqSize := ""
	if c.reqSize > 0 {
		reqSize = fmt.Sprintf("  max_record_size: 1000\n  max_request_size: %d\n", c.reqSize)
	}
	batching := ""
	if c.batching > 0 {
		batching = fmt.Sprintf("  batching: {count: %d, period: 20ms}\n", c.batching)
	}
	output := fmt.Sprintf(`aws_kinesis_streams:
  stream: %s
  region: %s
  endpoint: %s
  credentials: {id: %s, secret: %s}
  max_in_flight: %d
  ordering: strict
  sdk_client: %v
  request_timeout: %s
%s  shard_rate: {records_per_second: 0, bytes_per_second: 0}
  backoff: {initial_interval: 5ms, max_interval: 50ms, max_elapsed_time: 0s}
%s`, stream, testutil.MustEnv(t, "AWS_REGION"), fl.srv.URL, testutil.MustEnv(t, "AWS_ACCESS_KEY_ID"), testutil.MustEnv(t, "AWS_SECRET_ACCESS_KEY"),
		c.inFlight, c.sdk, c.timeout, reqSize, batching)

	byTok := map[string]*fpRow{}
	for _, r := range c.rows {
		byTok[r.tok] = r
	}
	tokOf := func(rec testutil.Record) string {
		var j struct {
			Data struct{ V string } `json:"data"`
		}
		_ = json.Unmarshal(rec.Data, &j)
		return j.Data.V
	}

	var (
		sumWritten, sumOrdDup, sumUnknown, sumFailed int64
		seenBefore                                   = map[string]bool{}
		prevShardLen                                 = map[string]int{}
		lostBefore                                   int64
		leftover                                     int
		logsAll                                      strings.Builder
	)
	runs := len(c.stopAt) + 1
	cutShort := make([]bool, runs)
	for ri := 0; ri < runs; ri++ {
		last := ri == runs-1
		fl.paused.Store(false)
		lostAtStart := fl.lost.Load()
		r := c.start(t, input, proc, output)
		kill := false
		if ri == c.outageRun {
			// Kinesis answers nothing for 6 s (over the output's 5 s
			// before it reports itself not connected), then comes back
			_ = testutil.WaitFor(10*time.Second, func() bool { return r.metrics.get("kinesis_records_written") >= int64(len(c.rows)/3) })
			fl.outage.Store(true)
			time.Sleep(6 * time.Second)
			fl.outage.Store(false)
		}
		if !last {
			want := int64(c.stopAt[ri] * len(c.rows) / 60)
			_ = testutil.WaitFor(20*time.Second, func() bool { return r.metrics.get("kinesis_records_written") >= want })
			kill = c.kill[ri]
			if kill {
				// the process dies: Kinesis hears nothing more, the
				// checkpoint file is what was saved until now
				fl.quiesce(t)
				saved := diffCheckpointFiles(t, ck)
				r.stop(t, 2*time.Second)
				restoreCheckpointFiles(t, ck, saved)
			} else {
				r.stop(t, 20*time.Second)
				// a drain longer than the stop's 20 s is cut short: the
				// rest is replayed, as after a kill
				cutShort[ri] = r.metrics.get("kinesis_records_failed") > 0
			}
		} else {
			// until every row is there; a failure when nothing came for
			// 30 s (heavy faults with one key per table are slow, not
			// stuck). Progress is any record reaching the stream, copies
			// included: a run that starts again from an early checkpoint
			// first re-sends rows the stream already holds, which on a
			// loaded machine takes longer than 30 s before the first row
			// not seen before comes.
			//
			// Every row seen is not enough when earlier runs delivered them
			// all: this run starts again from its checkpoint and re-sends,
			// and stopping it part way leaves the last copies of a key out
			// of order (the rows re-sent first, the rest not again). So
			// the run also has to have caught up: at least 5 s in, every
			// row it converted written, and neither count moving for 2 s
			// (the output retries for ever here, so nothing it took is
			// handed back to the input).
			runStart := time.Now()
			lastWritten, lastRows, lastMove := int64(-1), int64(-1), time.Now()
			caughtUp := func() bool {
				w, n := r.metrics.get("kinesis_records_written"), r.metrics.get("dms_csv_to_json_rows")
				if w != lastWritten || n != lastRows {
					lastWritten, lastRows, lastMove = w, n, time.Now()
				}
				return time.Since(runStart) > 5*time.Second && w >= n && time.Since(lastMove) > 2*time.Second
			}
			lastCount, lastRecords, lastChange := -1, -1, time.Now()
			ok := testutil.WaitFor(10*time.Minute, func() bool {
				seen := map[string]bool{}
				recs := readAllRecords(t, stream)
				for _, rec := range recs {
					seen[tokOf(rec)] = true
				}
				if len(seen) != lastCount || len(recs) != lastRecords {
					lastCount, lastRecords, lastChange = len(seen), len(recs), time.Now()
				}
				if time.Since(lastChange) > 30*time.Second {
					return true
				}
				return len(seen) == len(c.rows) && caughtUp()
			}) == nil && lastCount == len(c.rows)
			r.stop(t, 20*time.Second)
			if !ok {
				recs := readAllRecords(t, stream)
				var missing []string
				got := map[string]bool{}
				for _, rec := range recs {
					got[tokOf(rec)] = true
				}
				for _, row := range c.rows {
					if !got[row.tok] {
						missing = append(missing, row.tok)
					}
				}
				rt.Fatalf("run %d: rows never reached the stream (no record came for 30s): %v\nfault layer: %v\nlogs:\n%s%s\n%s", ri, missing, fl.stats(), logsAll.String(), r.logs.text(), describe)
			}
		}
		logsAll.WriteString(fmt.Sprintf("--- run %d (kill %v) ---\n%s", ri, kill, r.logs.text()))
		m := r.metrics
		sumWritten += m.get("kinesis_records_written")
		sumOrdDup += m.get("kinesis_duplicates_ordering")
		sumUnknown += m.get("kinesis_resends_unknown_outcome")
		if !kill && !cutShort[ri] {
			// (a kill cuts writes short: those records fail, for the input to replay)
			sumFailed += m.get("kinesis_records_failed")
		}
		// the records this run added, shard by shard
		recs := readAllRecords(t, stream)
		shardLen := map[string]int{}
		runToks := map[string]bool{}
		for _, rec := range recs {
			shardLen[rec.Shard]++
			if shardLen[rec.Shard] > prevShardLen[rec.Shard] {
				runToks[tokOf(rec)] = true
			}
		}
		repeated := 0
		for tok := range runToks {
			if seenBefore[tok] {
				repeated++
			}
		}
		if ri > 0 {
			// Repeats allowed: the rows whose answer was lost in the
			// previous run, the window of a kill (or of a graceful stop cut
			// short) before it, and what earlier windows left unused (a run
			// stopped before it replayed them all).
			bound := int(lostBefore) + leftover
			what := "a graceful stop"
			if c.kill[ri-1] || cutShort[ri-1] {
				what = "a kill (or a graceful stop cut short)"
				if c.interval == "0s" {
					bound += 4 * c.batchSize
				} else {
					bound = len(c.rows)
				}
			}
			if repeated > bound {
				rt.Fatalf("run %d repeats %d rows written before, after %s (bound %d)\nfault layer: %v\nlogs:\n%s\n%s", ri, repeated, what, bound, fl.stats(), logsAll.String(), describe)
			}
			leftover = bound - repeated
		}
		for tok := range runToks {
			seenBefore[tok] = true
		}
		prevShardLen = shardLen
		lostBefore = fl.lost.Load() - lostAtStart
	}

	recs := readAllRecords(t, stream)
	fail := func(format string, args ...any) {
		rt.Fatalf(format+"\nfault layer: %v\nmetrics: written %d ordering dups %d unknown resends %d failed %d\nlogs:\n%s\n%s",
			append(args, fl.stats(), sumWritten, sumOrdDup, sumUnknown, sumFailed, logsAll.String(), describe)...)
	}
	// every copy exactly as rendered
	copies := map[string]int{}
	perKey := map[string][]int{}
	for i, rec := range recs {
		tok := tokOf(rec)
		row := byTok[tok]
		if row == nil {
			fail("record %d on %s is no row of the case: %s", i, rec.Shard, rec.Data)
		}
		copies[tok]++
		if rec.PartitionKey != row.pkey {
			fail("row %s (%s) has partition key %q, want %q", tok, rec.Data, rec.PartitionKey, row.pkey)
		}
		if msg := checkRecord(c, row, rec.Data); msg != "" {
			fail("row %s: %s\nbody %s", tok, msg, rec.Data)
		}
		perKey[rec.Shard+"|"+rec.PartitionKey] = append(perKey[rec.Shard+"|"+rec.PartitionKey], row.seq)
	}
	// with include_transaction_details, the stream-position of a CDC row
	// (its dms_position) is the same on every copy and grows in input order
	if c.txn {
		pos := map[string]string{}
		for _, rec := range recs {
			var j struct {
				Data     struct{ V string }
				Metadata map[string]any
			}
			_ = json.Unmarshal(rec.Data, &j)
			sp, _ := j.Metadata["stream-position"].(string)
			if byTok[j.Data.V].op == "" {
				continue
			}
			if p, ok := pos[j.Data.V]; ok && p != sp {
				fail("row %s: copies carry stream-position %q and %q", j.Data.V, p, sp)
			}
			pos[j.Data.V] = sp
		}
		prev, prevTok := "", ""
		for _, row := range c.rows {
			if row.op == "" {
				continue
			}
			if p := pos[row.tok]; p <= prev {
				fail("row %s has stream-position %q, not above %q of the row before it (%s)", row.tok, p, prev, prevTok)
			}
			prev, prevTok = pos[row.tok], row.tok
		}
	}
	for _, row := range c.rows {
		if copies[row.tok] == 0 {
			fail("row %s (seq %d) is not on the stream", row.tok, row.seq)
		}
	}
	// per key, the last copy of every row in order
	if c.ordered() {
		for key, seqs := range perKey {
			lastAt := map[int]int{}
			for i, s := range seqs {
				lastAt[s] = i
			}
			prev := -1
			for i, s := range seqs {
				if lastAt[s] != i {
					continue
				}
				if s < prev {
					fail("key %s: the last copies are out of order: %v (input order)", key, seqs)
				}
				prev = s
			}
		}
	}
	// metrics against the stream
	// kinesis_records_written counts a row once; a copy written ahead of an
	// earlier record of its key is a kinesis_duplicates_ordering
	if d := int64(len(recs)) - (sumWritten + sumOrdDup + fl.lost.Load()); d < 0 || d > fl.raced.Load() {
		fail("the stream holds %d records; kinesis_records_written %d + kinesis_duplicates_ordering %d + %d written with their answer withheld = %d (+ up to %d answered as the timeout fired)",
			len(recs), sumWritten, sumOrdDup, fl.lost.Load(), sumWritten+sumOrdDup+fl.lost.Load(), fl.raced.Load())
	}
	if sumFailed != 0 {
		fail("kinesis_records_failed = %d with max_elapsed_time 0s", sumFailed)
	}
	extra := len(recs) - len(c.rows)
	if c.interval == "0s" || !anyKill(c) {
		allowed := sumOrdDup + sumUnknown + fl.lost.Load()
		for i, k := range c.kill {
			if cutShort[i] && !k && c.interval != "0s" {
				allowed = int64(len(recs))
			}
			if k || cutShort[i] {
				allowed += int64(4 * c.batchSize)
			}
		}
		if int64(extra) > allowed {
			fail("%d copies beyond one per row; ordering re-sends %d + unknown-outcome re-sends %d + answers withheld %d + 4 x batch_size per kill allow %d",
				extra, sumOrdDup, sumUnknown, fl.lost.Load(), allowed)
		}
	}
}

func anyKill(c *fpCase) bool {
	for _, k := range c.kill {
		if k {
			return true
		}
	}
	return false
}

func (f *faultLayer) stats() string {
	var parts []string
	for k := 0; k < fkKinds; k++ {
		parts = append(parts, fmt.Sprintf("%s=%d", fkNames[k], f.counts[k].Load()))
	}
	return strings.Join(parts, " ") + fmt.Sprintf(" lost=%d", f.lost.Load())
}

// checkRecord compares a record with the row's expected rendering: data and
// metadata, but the timestamp; on CDC records the transaction-id, and with
// include_transaction_details the stream-position, are only required.
func checkRecord(c *fpCase, row *fpRow, data []byte) string {
	var got map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		return "not JSON: " + err.Error()
	}
	md, _ := got["metadata"].(map[string]any)
	if md == nil {
		return "no metadata"
	}
	if _, ok := md["timestamp"].(string); !ok {
		return "no timestamp"
	}
	delete(md, "timestamp")
	if row.op != "" {
		if _, ok := md["transaction-id"].(json.Number); !ok {
			return "no transaction-id on a CDC record"
		}
		if c.txn {
			if _, ok := md["stream-position"].(string); !ok {
				return "no stream-position with include_transaction_details"
			}
		}
		for _, k := range []string{"transaction-id", "transaction-record-id", "prev-transaction-id", "prev-transaction-record-id", "commit-timestamp", "stream-position"} {
			delete(md, k)
		}
	}
	if !bytes.Contains(data, []byte(fmt.Sprintf(`"data":{"id":%d,"v":%q}`, row.id, row.tok))) {
		return "data not rendered in column order"
	}
	want, _ := json.Marshal(row.record)
	gotB, _ := json.Marshal(got)
	if !bytes.Equal(want, gotB) {
		return fmt.Sprintf("got %s, want %s", gotB, want)
	}
	return ""
}

func diffCheckpointFiles(t testing.TB, dir string) map[string][]byte {
	out := map[string][]byte{}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.IsDir() || strings.Contains(de.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			continue
		}
		out[de.Name()] = b
	}
	return out
}

func restoreCheckpointFiles(t testing.TB, dir string, saved map[string][]byte) {
	for name := range diffCheckpointFiles(t, dir) {
		if _, ok := saved[name]; !ok {
			os.Remove(filepath.Join(dir, name))
		}
	}
	for name, b := range saved {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (l *lockedSB) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
