package e2e

import (
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, err := p.Get("/streams"); err == nil && code == 200 {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatal("the streams API never answered")
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, err := p.Get("/streams"); err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the streams API never answered")
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	deadline = time.Now().Add(10 * time.Second)
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
