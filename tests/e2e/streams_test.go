package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

var envRef = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::([^}]*))?\}`)

// expand resolves ${VAR} and ${VAR:default} the way dmsbridge does, from vars.
func expand(s string, vars map[string]string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		parts := envRef.FindStringSubmatch(m)
		if v, ok := vars[parts[1]]; ok {
			return v
		}
		return parts[2]
	})
}

func (p *Proc) do(method, path, body string) (int, string, error) {
	req, err := http.NewRequest(method, "http://"+p.Addr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Streams mode over HTTP: the config/streams/ stream started from the
// directory, a second stream created through the API with another checkpoint
// key, stats and /metrics read per stream, the second deleted mid-run and
// re-created: it resumes where it stopped and nothing is lost.
func TestStreamsModeOverHTTP(t *testing.T) {
	dir := t.TempDir()
	files1, manifest1 := refdata.Generate(refdata.Scaled(0.01))
	o2 := refdata.Scaled(0.04)
	o2.Seed = 2
	files2, manifest2 := refdata.Generate(o2)
	bucket1, bucket2 := testutil.NewBucket(t), testutil.NewBucket(t)
	stream1, stream2 := testutil.NewStream(t, 2), testutil.NewStream(t, 1)
	upload(t, bucket1, files1)
	full2, cdc2 := split(files2)
	upload(t, bucket2, full2)

	env1 := pipelineEnv(t, bucket1, stream1, dir)
	env1["DEAD_LETTER_PATH"] = filepath.Join(dir, "dl1.jsonl")
	p := start(t, env1, "streams", "-o", "config/streams-root.yaml", "config/streams")
	waitStreamListed(t, p, "table01") // the directory's stream: /ready is 200 before it exists
	p.WaitReady(t, 30*time.Second)

	// The second stream comes through the API, from the same file with its own values.
	tmpl, err := os.ReadFile(filepath.Join(repoRoot(), "config", "streams", "table01.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vars2 := pipelineEnv(t, bucket2, stream2, dir)
	vars2["DEAD_LETTER_PATH"] = filepath.Join(dir, "dl2.jsonl")
	vars2["KINESIS_SHARD_RECORDS_PER_SECOND"] = "3000" // slow enough to delete it mid-run
	body2 := strings.Replace(expand(string(tmpl), vars2), "key: table01", "key: second", 1)
	if code, resp, err := p.do(http.MethodPost, "/streams/second", body2); err != nil || code != 200 {
		t.Fatalf("create stream: %d %s %v", code, resp, err)
	}
	code, list, err := p.Get("/streams")
	if err != nil || code != 200 || !strings.Contains(list, `"table01"`) || !strings.Contains(list, `"second"`) {
		t.Fatalf("GET /streams: %d %s %v", code, list, err)
	}

	// Delete the second stream part-way through its full load.
	waitStreamMetric(t, p, "second", "kinesis_records_written", 2000, 60*time.Second)
	if code, resp, err := p.do(http.MethodDelete, "/streams/second?timeout=20s", ""); err != nil || code != 200 {
		t.Fatalf("delete stream: %d %s %v", code, resp, err)
	}
	writtenBefore := len(testutil.ReadStream(t, stream2))
	if writtenBefore >= len(manifest2) {
		t.Fatalf("stream finished (%d records) before it could be deleted mid-run", writtenBefore)
	}
	upload(t, bucket2, cdc2) // arrives while the stream is gone
	if code, resp, err := p.do(http.MethodPost, "/streams/second", body2); err != nil || code != 200 {
		t.Fatalf("re-create stream: %d %s %v", code, resp, err)
	}

	// Per-stream stats and the shared /metrics.
	code, stats, err := p.Get("/streams/table01/stats")
	if err != nil || code != 200 {
		t.Fatalf("stats: %d %v", code, err)
	}
	var flat map[string]any
	if err := json.Unmarshal([]byte(stats), &flat); err != nil || len(flat) == 0 {
		t.Fatalf("stats are not JSON counters: %.300s", stats)
	}

	got1 := waitForStream(t, stream1, manifest1, 90*time.Second)
	got2 := waitForStream(t, stream2, manifest2, 120*time.Second)
	t.Logf("second stream: %d records written before the delete; after re-create: %s", writtenBefore, got2)
	// A delete is a graceful stop: the input saves the position of every
	// acknowledged record at Close, so the re-created stream resumes right
	// after them and repeats nothing (OK() above allows duplicates).
	if got1.Duplicates != 0 || got2.Duplicates != 0 {
		t.Fatalf("duplicates: %d on the first stream, %d on the re-created one (want none: it resumes from its checkpoint)", got1.Duplicates, got2.Duplicates)
	}

	_, metrics, err := p.Get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`stream="table01"`, `stream="second"`} {
		if !strings.Contains(metrics, "dms_csv_to_json_rows{") || !strings.Contains(metrics, s) {
			t.Fatalf("/metrics lacks per-stream series %s", s)
		}
	}
	// dmsbridge tables shows both streams' statistics.
	out, err := exec.Command(binPath, "tables", "--url", "http://"+p.Addr).CombinedOutput()
	if err != nil {
		t.Fatalf("dmsbridge tables: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "STREAM") || !strings.Contains(text, "second") || !strings.Contains(text, "table01") {
		t.Fatalf("dmsbridge tables output:\n%s", text)
	}
	t.Logf("dmsbridge tables:\n%s", text)
}

func waitStreamMetric(t *testing.T, p *Proc, stream, name string, min float64, timeout time.Duration) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + `\{[^}]*stream="` + regexp.QuoteMeta(stream) + `"[^}]*\} ([0-9.eE+]+)$`)
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if _, body, err := p.Get("/metrics"); err == nil {
			var sum float64
			for _, m := range re.FindAllStringSubmatch(body, -1) {
				var v float64
				fmt.Sscan(m[1], &v)
				sum += v
			}
			if sum >= min {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("stream %s: %s did not reach %.0f in %s", stream, name, min, timeout)
}

// waitForStream polls the Kinesis stream until the manifest is delivered, then
// checks the delivery (no loss, no unexpected record, per-key order).
func waitForStream(t *testing.T, stream string, manifest []refdata.Expected, timeout time.Duration) refdata.Report {
	t.Helper()
	end := time.Now().Add(timeout)
	var rep refdata.Report
	for {
		rep = refdata.Compare(manifest, delivered(t, stream))
		if rep.OK() || time.Now().After(end) {
			break
		}
		time.Sleep(time.Second)
	}
	if !rep.OK() {
		t.Fatalf("stream %s: %s", stream, rep)
	}
	return rep
}
