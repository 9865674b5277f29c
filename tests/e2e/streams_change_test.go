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
