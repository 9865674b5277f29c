package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"

	"github.com/dmsbridge/dmsbridge/tests/kinesisproxy"
	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startStreamsAPI runs `dmsbridge streams` with the shipped root config and
// no stream, and waits for its API.
func startStreamsAPI(t *testing.T) *Proc {
	t.Helper()
	p := start(t, nil, "streams", "-o", "config/streams-root.yaml")
	waitStreamsAPI(t, p)
	return p
}

// waitStreamsAPI waits until the streams API answers GET /streams (the HTTP
// server answers 404 before streams mode registers it).
func waitStreamsAPI(t *testing.T, p *Proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, err := p.Get("/streams"); err == nil && code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the streams API never answered")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStreamListed waits until GET /streams lists the stream id. In streams
// mode the HTTP server (and /ready, which answers 200 while no stream
// exists) starts before the streams of the config directory are created:
// /ready alone does not tell they are there.
func waitStreamListed(t *testing.T, p *Proc, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := p.Get("/streams")
		if err == nil && code == 200 {
			var list map[string]json.RawMessage
			if json.Unmarshal([]byte(body), &list) == nil && list[id] != nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /streams does not list %q after 30 s: %d %s %v", id, code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sampleStream is a stream on the sample directory, checkpointed in
// ckDir under key, with output as its output (YAML, indented by two).
func sampleStream(ckDir, key, input, output string) string {
	return `
input:
  aws_s3_dms:
    directory: config/sample
    table_definition: config/sample/table-definition.json
    mode: full-load
    checkpoint: {store: file, directory: ` + ckDir + `, key: ` + key + `}
` + input + `
pipeline:
  threads: 1
  processors:
    - dms_csv_to_json:
        table_definition: config/sample/table-definition.json
        message_format: json-unformatted
output:
` + output
}

// sampleRows is the number of rows of the sample's full load.
func sampleRows(t *testing.T) int {
	t.Helper()
	n := 0
	for _, f := range []string{"config/sample/schema01/table01/full_000", "config/sample/schema01/table01/full_001", "config/sample/hr/employee/LOAD001.csv"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(), f))
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(b), "\n")
	}
	return n
}

func waitLines(t *testing.T, p *Proc, path string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, _ := os.ReadFile(path)
		if n := strings.Count(string(b), "\n"); n >= want {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("%s has %d of %d lines after %s; logs:\n%s", path, strings.Count(string(b), "\n"), want, within, tail(p.Stdout.String()+p.Stderr.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Streams mode: a POST whose only mistake is an empty value that dmsbridge's
// lint left to the start (the output's stream, the input's bucket and
// directory: placeholders for unset variables under `lint
// --skip-env-var-check`) must be refused with a 4xx naming the field before
// anything is built. The streams API replaces variables before it lints (an
// unset one is refused), so there the empty value is the user's: when it
// reached the build, the output failed after the input was built, which
// Benthos never closes, and the input kept the stream's checkpoint for the
// life of the process: the corrected POST never read a row ("checkpoint ...
// already used ... in this process"), against the README's promise that
// dmsbridge's own mistakes are refused before anything is built.
func TestStreamsEmptyRequiredValueRefusedBeforeBuild(t *testing.T) {
	dir := t.TempDir()
	p := startStreamsAPI(t)
	outPath := filepath.Join(dir, "out.jsonl")
	cases := []struct{ input, output, field string }{
		{"", "  aws_kinesis_streams: {stream: '', region: us-east-1, endpoint: 'http://127.0.0.1:1'}\n", "stream"},
		{"    directory: ''\n", "  file: {path: " + outPath + ", codec: lines}\n", "directory"},
	}
	for _, c := range cases {
		body := sampleStream(dir, "empty-value", c.input, c.output)
		if c.input != "" { // the directory given twice: the last one counts
			body = strings.Replace(body, "    directory: config/sample\n", "", 1)
		}
		code, resp, err := p.do(http.MethodPost, "/streams/orders", body)
		if err != nil || code < 400 || code >= 500 || !strings.Contains(resp, c.field) {
			t.Fatalf("POST with an empty %s: %d %s %v; want a 4xx naming the field", c.field, code, resp, err)
		}
	}
	good := sampleStream(dir, "empty-value", "", "  file: {path: "+outPath+", codec: lines}\n")
	if code, resp, err := p.do(http.MethodPost, "/streams/orders", good); err != nil || code != 200 {
		t.Fatalf("corrected stream: %d %s %v", code, resp, err)
	}
	waitLines(t, p, outPath, sampleRows(t), 30*time.Second)
}

// s3Stream is a stream reading the sample uploaded to bucket, checkpointed
// in the bucket under key (store s3), into a file.
func s3Stream(bucket, key, out string) string {
	return `
input:
  aws_s3_dms:
    bucket: ` + bucket + `
    endpoint: ` + os.Getenv("S3_ENDPOINT") + `
    force_path_style: true
    region: us-east-1
    table_definition: config/sample/table-definition.json
    cdc_path: cdcfile
    poll_interval: 200ms
    batch_size: 1
    checkpoint: {store: s3, key: ` + key + `, interval: 0s}
pipeline:
  threads: 1
  processors:
    - sleep: {duration: 5ms}
    - dms_csv_to_json:
        table_definition: config/sample/table-definition.json
        message_format: json-unformatted
output:
  file: {path: ` + out + `, codec: lines}
`
}

func uploadSample(t *testing.T, bucket string) int {
	t.Helper()
	rows := 0
	for _, f := range []string{"schema01/table01/full_000", "schema01/table01/full_001", "hr/employee/LOAD001.csv", "cdcfile/cdc_000"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(), "config/sample", f))
		if err != nil {
			t.Fatal(err)
		}
		testutil.PutObject(t, bucket, f, b)
		rows += strings.Count(string(b), "\n")
	}
	// And a file of 400 more rows, so that streams deleted in turn each
	// stop mid-load.
	var sb strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&sb, "2026-01-02 00:00:%02d,10.1000/more.%d,%d,1.00,ffff%06d\n", i%60, i, 5000+i, i)
	}
	testutil.PutObject(t, bucket, "schema01/table01/full_002", []byte(sb.String()))
	return rows + 400
}

// Streams mode, checkpoint store s3: a stream created, deleted and created
// again at once, several times, on one id and key: each delete releases the
// claim, so each new stream takes over at once (not after the 30 s lease)
// and the rows, read across all of them, arrive once each.
func TestStreamsS3RapidCreateDeleteCreate(t *testing.T) {
	dir := t.TempDir()
	bucket := testutil.NewBucket(t)
	want := uploadSample(t, bucket)
	p := startStreamsAPI(t)
	var outs []string
	for i := 0; i < 6; i++ {
		out := filepath.Join(dir, fmt.Sprintf("out%d.jsonl", i))
		outs = append(outs, out)
		if code, resp, err := p.do(http.MethodPost, "/streams/s", s3Stream(bucket, "ck/s.json", out)); err != nil || code != 200 {
			t.Fatalf("create %d: %d %s %v", i, code, resp, err)
		}
		time.Sleep(time.Duration(i*50) * time.Millisecond) // from at once to mid-load
		if code, resp, err := p.do(http.MethodDelete, "/streams/s?timeout=10s", ""); err != nil || code != 200 {
			t.Fatalf("delete %d: %d %s %v", i, code, resp, err)
		}
	}
	last := filepath.Join(dir, "last.jsonl")
	outs = append(outs, last)
	start := time.Now()
	if code, resp, err := p.do(http.MethodPost, "/streams/s", s3Stream(bucket, "ck/s.json", last)); err != nil || code != 200 {
		t.Fatalf("last create: %d %s %v", code, resp, err)
	}
	count := func() (int, map[string]int) {
		seen := map[string]int{}
		n := 0
		for _, o := range outs {
			b, _ := os.ReadFile(o)
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if l != "" {
					seen[l]++
					n++
				}
			}
		}
		return n, seen
	}
	for {
		n, seen := count()
		if n >= want {
			for l, c := range seen {
				if c > 1 && !strings.Contains(l, `"record-type":"control"`) {
					t.Fatalf("row written %d times: %s", c, l)
				}
			}
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("%d of %d rows 15 s after the last create (lease 30 s); logs:\n%s", n, want, tail(p.Stdout.String()+p.Stderr.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var per []int
	for _, o := range outs {
		b, _ := os.ReadFile(o)
		per = append(per, strings.Count(string(b), "\n"))
	}
	t.Logf("all rows %s after the last create; rows per stream: %v", time.Since(start).Round(time.Millisecond), per)
}

// Streams mode, checkpoint store cache: the cache resources of the root
// config are shared by every stream, so two streams given the same cache
// and key overwrite each other's position, as two streams on one checkpoint
// file would (and the one restarted later resumes where the other stopped,
// skipping rows). The second must be refused at connect, visibly (/ready
// names it, the log says why), and read nothing, as with the file store.
func TestStreamsSameCacheCheckpointRefused(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.yaml")
	res := filepath.Join(dir, "resources.yaml")
	if err := os.WriteFile(res, []byte("cache_resources:\n  - label: ck\n    memory: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root, []byte("http:\n  address: ${HTTP_ADDRESS}\nlogger:\n  level: INFO\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, nil, "streams", "-o", root, "-r", res)
	waitStreamsAPI(t, p)
	stream := func(out string) string {
		s := sampleStream(dir, "x", "", "  file: {path: "+out+", codec: lines}\n")
		s = strings.Replace(s, "mode: full-load\n", "mode: full-load-and-cdc\n    cdc_path: cdcfile\n", 1) // runs on, tailing
		return strings.Replace(s, "checkpoint: {store: file, directory: "+dir+", key: x}", "checkpoint: {store: cache, cache: ck, key: shared}", 1)
	}
	one, two := filepath.Join(dir, "one.jsonl"), filepath.Join(dir, "two.jsonl")
	if code, resp, err := p.do(http.MethodPost, "/streams/one", stream(one)); err != nil || code != 200 {
		t.Fatalf("create one: %d %s %v", code, resp, err)
	}
	waitLines(t, p, one, sampleRows(t)+6, 30*time.Second) // and the CDC file's 6 rows
	if code, resp, err := p.do(http.MethodPost, "/streams/two", stream(two)); err != nil || code != 200 {
		t.Fatalf("create two: %d %s %v", code, resp, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, _ := p.Get("/ready")
		logs := p.Stdout.String() + p.Stderr.String()
		if code == 503 && strings.Contains(body, "two") && strings.Contains(logs, "already used") {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(two)
			t.Fatalf("second stream on the same cache key: /ready %d %q, %d rows written; want it refused (503 naming it, \"already used\" in the log, nothing read); logs:\n%s", code, body, strings.Count(string(b), "\n"), tail(logs, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b, _ := os.ReadFile(two); len(b) != 0 {
		t.Fatalf("the refused stream wrote rows:\n%s", b)
	}
}

// tablesOf runs `dmsbridge tables --format json` against p and returns the
// rows of stream id, by schema.table.
func tablesOf(t *testing.T, p *Proc, id string) map[string]map[string]any {
	t.Helper()
	out, err := exec.Command(binPath, "tables", "--url", "http://"+p.Addr, "--format", "json").Output()
	if err != nil {
		t.Fatalf("dmsbridge tables: %v\n%s", err, out)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("dmsbridge tables: %v\n%s", err, out)
	}
	got := map[string]map[string]any{}
	for _, r := range rows {
		if r["stream"] == id {
			got[fmt.Sprint(r["schema"], ".", r["table"])] = r
		}
	}
	return got
}

// Streams mode: `dmsbridge tables` after PUT /streams/{id}. Updated on the
// same checkpoint, the stream's tables carry on (completed, 100 %, their
// rows and times). Updated onto a new checkpoint in cdc mode (no full load),
// they are "Before load" and must show no full-load figures: the new input
// published only the state, so the previous input's rows, 100 % and times
// stayed in /metrics under the same labels and were shown next to "Before
// load".
func TestStreamsTablesAfterUpdate(t *testing.T) {
	dir := t.TempDir()
	p := startStreamsAPI(t)
	out := filepath.Join(dir, "out.jsonl")
	cdc := func(s string) string {
		return strings.Replace(s, "mode: full-load\n", "mode: full-load-and-cdc\n    cdc_path: cdcfile\n", 1)
	}
	first := cdc(sampleStream(dir, "k1", "", "  file: {path: "+out+", codec: lines}\n"))
	if code, resp, err := p.do(http.MethodPost, "/streams/s", first); err != nil || code != 200 {
		t.Fatalf("create: %d %s %v", code, resp, err)
	}
	waitLines(t, p, out, sampleRows(t)+6, 30*time.Second)
	check := func(when string, want func(r map[string]any) string) {
		t.Helper()
		var got map[string]map[string]any
		deadline := time.Now().Add(10 * time.Second)
		for {
			got = tablesOf(t, p, "s")
			bad := ""
			for _, tb := range []string{"schema01.table01", "hr.employee"} {
				if r, ok := got[tb]; !ok {
					bad += tb + ": missing; "
				} else if w := want(r); w != "" {
					bad += tb + ": " + w + "; "
				}
			}
			if bad == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s\n%v", when, bad, got)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	completed := func(r map[string]any) string {
		if r["table_state"] != "Table completed" || r["full_load_percent"] != 100.0 || r["full_load_rows"] == 0.0 || r["full_load_end"] == nil {
			return fmt.Sprintf("want completed, 100 %%, its rows and end: %v", r)
		}
		return ""
	}
	check("after the full load", completed)

	// The same checkpoint: it carries on.
	if code, resp, err := p.do(http.MethodPut, "/streams/s?timeout=20s", first); err != nil || code != 200 {
		t.Fatalf("update: %d %s %v", code, resp, err)
	}
	check("updated on the same checkpoint", completed)

	// A new checkpoint, CDC only: nothing of a full load.
	second := strings.Replace(sampleStream(dir, "k2", "", "  file: {path: "+out+", codec: lines}\n"), "mode: full-load\n", "mode: cdc\n    cdc_path: cdcfile\n", 1)
	if code, resp, err := p.do(http.MethodPut, "/streams/s?timeout=20s", second); err != nil || code != 200 {
		t.Fatalf("update: %d %s %v", code, resp, err)
	}
	check("updated onto a new checkpoint in cdc mode", func(r map[string]any) string {
		if r["table_state"] != "Before load" || r["full_load_rows"] != 0.0 || r["full_load_percent"] != 0.0 || r["full_load_start"] != nil || r["full_load_end"] != nil {
			return fmt.Sprintf("want Before load with no full-load rows, percent or times: %v", r)
		}
		return ""
	})
}

// Streams mode: a stream updated (PUT) with a table definition that drops
// a table (accepted on its checkpoint once the full load is done) no longer
// reads that table, and `dmsbridge tables` must no longer list it for the
// stream: its series stay in /metrics (never removed), and it was shown
// with its last figures for the life of the process.
func TestStreamsTablesAfterUpdateDroppingATable(t *testing.T) {
	dir := t.TempDir()
	p := startStreamsAPI(t)
	out := filepath.Join(dir, "out.jsonl")
	def, err := os.ReadFile(filepath.Join(repoRoot(), "config/sample/table-definition.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(def, &d); err != nil {
		t.Fatal(err)
	}
	d["Tables"] = d["Tables"].([]any)[:1] // schema01.table01 only
	d["TableCount"] = "1"
	one, _ := json.Marshal(d)
	oneDef := filepath.Join(dir, "one-table.json")
	if err := os.WriteFile(oneDef, one, 0o644); err != nil {
		t.Fatal(err)
	}
	stream := sampleStream(dir, "k", "", "  file: {path: "+out+", codec: lines}\n")
	stream = strings.Replace(stream, "mode: full-load\n", "mode: full-load-and-cdc\n    cdc_path: cdcfile\n", 1)
	if code, resp, err := p.do(http.MethodPost, "/streams/s", stream); err != nil || code != 200 {
		t.Fatalf("create: %d %s %v", code, resp, err)
	}
	waitLines(t, p, out, sampleRows(t)+6, 30*time.Second)
	if got := tablesOf(t, p, "s"); len(got) != 2 {
		t.Fatalf("before the update: %v", got)
	}
	updated := strings.ReplaceAll(stream, "config/sample/table-definition.json", oneDef)
	if code, resp, err := p.do(http.MethodPut, "/streams/s?timeout=20s", updated); err != nil || code != 200 {
		t.Fatalf("update: %d %s %v", code, resp, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, _ := p.Get("/ready")
		got := tablesOf(t, p, "s")
		_, t1 := got["schema01.table01"]
		_, emp := got["hr.employee"]
		if code == 200 && t1 && !emp && got["schema01.table01"]["table_state"] == "Table completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the update dropping hr.employee (/ready %d), tables shows: %v", code, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The README's streams mode must say what the streams API (Benthos core)
// does not do, since each surprised us in this review: changes made
// through the API are not kept across a restart (a stream created through
// it does not come back); a DELETE or PUT without ?timeout waits for the
// rows in flight for as long as it takes (a Kinesis outage: until the
// client gives up); PATCH (and ?chilled=true) is not linted at all, so a mistake in it deletes
// the running stream and, failing after the input is built, leaves that
// input holding the checkpoint until a restart; and a PUT refused at build
// has deleted the running stream already.
func TestReadmeSaysWhatTheStreamsAPIDoesNot(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		"a stream created through the API does not come back",
		"`?timeout=20s`",
		"`PATCH /streams/{id}` is not linted",
		"a PUT refused there has deleted the running stream",
		"nor is a POST or PUT with `?chilled=true`",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not say %q", want)
		}
	}
}

// Streams mode: dms_cdc_lag_seconds of a stream updated onto a new
// checkpoint is the new input's (0 until it has processed a CDC file, as
// documented: the input's gauges start at 0), not the lag of the input
// before it, which stayed in /metrics, frozen, for the whole full load the
// new one does first (an alert on the lag kept firing).
func TestStreamsCDCLagAfterUpdate(t *testing.T) {
	dir := t.TempDir()
	p := startStreamsAPI(t)
	out := filepath.Join(dir, "out.jsonl")
	// A copy of the sample whose CDC file was written an hour ago.
	sample := filepath.Join(dir, "sample")
	if err := os.CopyFS(sample, os.DirFS(filepath.Join(repoRoot(), "config/sample"))); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(sample, "cdcfile/cdc_000"), old, old); err != nil {
		t.Fatal(err)
	}
	stream := func(key, sleep string) string {
		// batch_size 1 and checkpoint.interval 0s: the input emits at most
		// 4 rows ahead of the output, so with a 1 s sleep per row its full
		// load lasts at least 8 s.
		s := sampleStream(dir, key, "    batch_size: 1\n", "  file: {path: "+out+", codec: lines}\n")
		s = strings.Replace(s, "key: "+key+"}", "key: "+key+", interval: 0s}", 1)
		s = strings.Replace(s, "directory: config/sample\n", "directory: "+sample+"\n", 1)
		s = strings.Replace(s, "mode: full-load\n", "mode: full-load-and-cdc\n    cdc_path: cdcfile\n", 1)
		return strings.Replace(s, "  processors:\n", "  processors:\n    - sleep: {duration: "+sleep+"}\n", 1)
	}
	if code, resp, err := p.do(http.MethodPost, "/streams/s", stream("k1", "0s")); err != nil || code != 200 {
		t.Fatalf("create: %d %s %v", code, resp, err)
	}
	waitLines(t, p, out, sampleRows(t)+6, 30*time.Second)
	lag := func() float64 {
		_, body, err := p.Get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		v, n := countMetricWhere(body, "dms_cdc_lag_seconds", `stream="s"`)
		if n != 1 {
			t.Fatalf("%d series dms_cdc_lag_seconds{stream=\"s\"}", n)
		}
		return v
	}
	if l := lag(); l < 3000 {
		t.Fatalf("lag after reading an hour-old CDC file: %v", l)
	}
	// A new checkpoint, with a full load of at least 8 s to do first.
	if code, resp, err := p.do(http.MethodPut, "/streams/s?timeout=20s", stream("k2", "1s")); err != nil || code != 200 {
		t.Fatalf("update: %d %s %v", code, resp, err)
	}
	// The new input is built when the PUT answers; its full load takes 8 s.
	if l := lag(); l != 0 {
		t.Fatalf("during the updated stream's full load, dms_cdc_lag_seconds is %v, want 0 (no CDC file processed by it)", l)
	}
}

// Streams mode: a stream deleted (or updated: PUT deletes first) with
// ?timeout while Kinesis throttles every record, the output retrying
// forever (the shipped backoff): the DELETE answers within the timeout, the
// deleted stream leaves nothing behind that keeps writing to Kinesis or
// holds goroutines, and the stream created again on the same checkpoint,
// once Kinesis takes records again, delivers every record, repeating at
// most the rows in flight.
func TestStreamsDeleteDuringThrottlingLeavesNothingWriting(t *testing.T) {
	dir := t.TempDir()
	files, manifest := refdata.Generate(refdata.Scaled(0.01))
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 1)
	upload(t, bucket, files)
	kp := kinesisProxy(t)
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
		return n
	}
	g0 := goroutines()
	tmpl, err := os.ReadFile(filepath.Join(repoRoot(), "config", "streams", "table01.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vars := pipelineEnv(t, bucket, stream, dir)
	vars["KINESIS_ENDPOINT"] = kp.URL()
	vars["KINESIS_SHARD_RECORDS_PER_SECOND"] = "1000"
	body := expand(string(tmpl), vars)
	if code, resp, err := p.do(http.MethodPost, "/streams/s", body); err != nil || code != 200 {
		t.Fatalf("create: %d %s %v", code, resp, err)
	}
	waitStreamMetric(t, p, "s", "kinesis_records_written", 300, 60*time.Second)
	kp.SetFaults(kinesisproxy.Config{RecordsPerSecond: -1, BytesPerSecond: -1, ThrottleRate: 1})
	for before := kp.Stats().Throttled; kp.Stats().Throttled < before+50; {
		time.Sleep(50 * time.Millisecond) // the output is retrying throttled records
	}
	began := time.Now()
	if code, resp, err := p.do(http.MethodDelete, "/streams/s?timeout=5s", ""); err != nil || code != 200 {
		t.Fatalf("delete: %d %s %v", code, resp, err)
	}
	if d := time.Since(began); d > 8*time.Second {
		t.Fatalf("DELETE ?timeout=5s took %s", d)
	}
	// Nothing of the deleted stream goes on: no more requests to Kinesis,
	// goroutines back to where they were (idle connections aside).
	var g int
	var reqs int64
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		r1 := kp.Stats().Requests
		time.Sleep(3 * time.Second) // longer than the output's longest back-off step here
		reqs = kp.Stats().Requests - r1
		if g = goroutines(); (reqs == 0 && g <= g0+4) || time.Now().After(end) {
			break
		}
	}
	if reqs != 0 || g > g0+4 {
		_, prof, _ := p.Get("/debug/pprof/goroutine?debug=1")
		t.Fatalf("after the delete: %d requests to Kinesis in 3 s, %d goroutines (%d before the stream)\n%s", reqs, g, g0, prof)
	}
	// Kinesis takes records again: the stream created again resumes.
	kp.SetFaults(kinesisproxy.Config{RecordsPerSecond: -1, BytesPerSecond: -1})
	if code, resp, err := p.do(http.MethodPost, "/streams/s", body); err != nil || code != 200 {
		t.Fatalf("re-create: %d %s %v", code, resp, err)
	}
	rep := waitForStream(t, stream, manifest, 120*time.Second)
	if rep.Duplicates > 4*500 { // 4 x batch_size (checkpoint.interval 0s)
		t.Fatalf("%d duplicates, more than the rows in flight: %s", rep.Duplicates, rep)
	}
	t.Logf("after delete during throttling and re-create: %s", rep)
}
