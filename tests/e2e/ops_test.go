package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// opsBase is a complete pipeline on the sample directory whose parts the
// cases below replace with one bad value each.
const opsBase = `
http: {enabled: false}
input:
  aws_s3_dms:
    directory: config/sample
    table_definition: config/sample/table-definition.json
    cdc_path: cdcfile
    INPUT_EXTRA
pipeline:
  processors:
    - dms_csv_to_json:
        table_definition: config/sample/table-definition.json
        PROC_EXTRA
output:
  aws_kinesis_streams:
    stream: ops-never-written
    region: us-east-1
    endpoint: http://127.0.0.1:1
    OUTPUT_EXTRA
metrics:
  prometheus: {METRICS_EXTRA}
`

func opsConfig(input, proc, output, metrics string) string {
	if !strings.HasPrefix(input, "checkpoint:") {
		input = "checkpoint: {store: none}\n    " + input
	}
	base := opsBase
	if strings.HasPrefix(output, "endpoint:") {
		base = strings.Replace(base, "    endpoint: http://127.0.0.1:1\n", "", 1)
	}
	return strings.NewReplacer("INPUT_EXTRA", input, "PROC_EXTRA", proc, "OUTPUT_EXTRA", output, "METRICS_EXTRA", metrics).Replace(base)
}

// A value the component refuses at start is refused by `dmsbridge lint` too,
// with the same error naming the field, and `run` stops at once with it: an
// operator linting configs before a deploy must not learn about a negative
// size or an unordered bucket list from a failed start (or, for
// histogram_buckets, a panic mid-load).
func TestLintRefusesWhatStartRefuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(opsConfig("", "", "", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	lint := exec.Command(binPath, "lint", good)
	lint.Dir = repoRoot()
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("the base config does not lint, so the cases prove nothing: %v\n%s", err, out)
	}
	cases := []struct{ input, proc, output, metrics, want string }{
		{input: "batch_size: 0", want: "batch_size: must be positive"},
		{input: "poll_interval: -1s", want: "poll_interval must be positive"},
		{input: "bucket: b", want: "exactly one of bucket and directory must be set"},
		{input: "list_page_size: 5000", want: "list_page_size: must be 1..1000"},
		{input: "ignore_header_rows: 2", want: "ignore_header_rows: must be 0 or 1"},
		{input: `csv_row_delimiter: "x"`, want: "csv_row_delimiter"},
		{input: "checkpoint: {store: cache}", want: "checkpoint.cache: required"},
		{input: "endpoint: ftp://u:Pa55w0rdXYZ@h", want: "endpoint: must be an absolute http(s) URL"},
		{input: `endpoint: "http://127.0.0.1:1/?X-Api-Key=Pa55w0rdXYZ"`, want: "endpoint: must not hold a query string or fragment"},
		{proc: "max_workers: -1", want: "max_workers"},
		{proc: `task_id: ""`, want: "task_id must not be empty"},
		{proc: `csv_delimiter: ""`, want: "csv_delimiter must not be empty"},
		{proc: "table_definition: /nonexistent/def.json", want: "table_definition"},
		{output: "max_record_size: 0", want: "max_record_size must be between 1 and"},
		{output: "max_in_flight: 0", want: "max_in_flight must be at least 1"},
		{output: "shard_rate: {records_per_second: -1}", want: "shard_rate: rates must be >= 0"},
		{output: "request_timeout: 0s", want: "request_timeout must be > 0"},
		{output: "backoff: {initial_interval: 2s, max_interval: 1s}", want: "backoff: initial_interval must be > 0 and <= max_interval"},
		{output: "credentials: {id: AKID}", want: "credentials.id and credentials.secret must be set together"},
		{output: `endpoint: "http://127.0.0.1:1/?X-Api-Key=Pa55w0rdXYZ"`, want: "endpoint: must not hold a query string or fragment"},
		{metrics: "use_histogram_timing: true, histogram_buckets: [1, 0.5]", want: "histogram_buckets: must be strictly increasing"},
	}
	for i, c := range cases {
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte(opsConfig(c.input, c.proc, c.output, c.metrics)), 0o600); err != nil {
			t.Fatal(err)
		}
		lint := exec.Command(binPath, "lint", path)
		lint.Dir = repoRoot()
		out, err := lint.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("case %d (%s%s%s%s): lint: %v, want an error with %q:\n%s", i, c.input, c.proc, c.output, c.metrics, err, c.want, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, binPath, "run", path)
		cmd.Dir = repoRoot()
		out, err = cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut || !strings.Contains(string(out), c.want) {
			t.Errorf("case %d (%s%s%s%s): run: %v, want a stop with %q:\n%s", i, c.input, c.proc, c.output, c.metrics, err, c.want, tail(string(out), 1500))
		}
		if strings.Contains(string(out), "Pa55w0rdXYZ") {
			t.Errorf("case %d: the output shows the endpoint's secret:\n%s", i, out)
		}
	}
}

// Streams mode: a POST /streams/{id} refused because of a bad value in the
// output must leave nothing running. Benthos builds the input first and does
// not close it when a later component fails, so an input built for the
// refused config kept its checkpoint for the life of the process and the
// corrected POST of the same stream never read a row ("checkpoint ... already
// used by the aws_s3_dms input ... in this process").
func TestStreamsRefusedCreateThenCorrectedCreateRuns(t *testing.T) {
	dir := t.TempDir()
	p := startStreamsAPI(t)
	outPath := filepath.Join(dir, "out.jsonl")
	stream := func(output string) string {
		return `
input:
  aws_s3_dms:
    directory: config/sample
    table_definition: config/sample/table-definition.json
    mode: full-load
    checkpoint: {store: file, directory: ` + dir + `, key: ops-refused}
pipeline:
  threads: 1
  processors:
    - dms_csv_to_json:
        table_definition: config/sample/table-definition.json
        message_format: json-unformatted
output:
` + output
	}
	bad := stream("  aws_kinesis_streams: {stream: s, region: us-east-1, endpoint: 'http://127.0.0.1:1', max_record_size: 0}\n")
	code, body, err := p.do(http.MethodPost, "/streams/orders", bad)
	if err != nil || code == 200 || !strings.Contains(body, "max_record_size") {
		t.Fatalf("bad stream: %d %s %v", code, body, err)
	}
	good := stream("  file: {path: " + outPath + ", codec: lines}\n")
	if code, body, err := p.do(http.MethodPost, "/streams/orders", good); err != nil || code != 200 {
		t.Fatalf("corrected stream: %d %s %v", code, body, err)
	}
	want := 0
	for _, f := range []string{"config/sample/schema01/table01/full_000", "config/sample/schema01/table01/full_001", "config/sample/hr/employee/LOAD001.csv"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(), f))
		if err != nil {
			t.Fatal(err)
		}
		want += strings.Count(string(b), "\n")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(outPath)
		if n := strings.Count(string(b), "\n"); n >= want {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(outPath)
			t.Fatalf("the corrected stream wrote %d of %d rows in 30 s; logs:\n%s", strings.Count(string(b), "\n"), want, tail(p.Stdout.String()+p.Stderr.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
