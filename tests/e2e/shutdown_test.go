package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// benthosShutdownTimeout is Benthos' default shutdown_timeout (the shipped
// configs do not set it): the engine exits by itself (code 1) one second
// after it.
const benthosShutdownTimeout = 20 * time.Second

// stopWith sends sig (twice when twice is set, the second 1 s after the
// first) and waits for the exit, returning how long it took and the exit
// code (-1: still running after limit, then killed).
func stopWith(t *testing.T, p *Proc, sig syscall.Signal, twice bool, limit time.Duration) (time.Duration, int) {
	t.Helper()
	t0 := time.Now()
	_ = p.cmd.Process.Signal(sig)
	if twice {
		select {
		case <-p.done:
		case <-time.After(time.Second):
			_ = p.cmd.Process.Signal(sig)
		}
	}
	select {
	case <-p.done:
	case <-time.After(limit):
		p.Kill()
		return time.Since(t0), -1
	}
	took := time.Since(t0)
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return took, 0
	case errors.As(p.err, &ee):
		return took, ee.ExitCode()
	default:
		t.Fatalf("waiting for dmsbridge: %v", p.err)
		return took, -1
	}
}

// TestSigtermResume stops dmsbridge with SIGTERM (and once SIGINT) in the
// middle of the full load and of the CDC phase, restarting it on the same
// checkpoint each time: every stop ends well within shutdown_timeout with
// exit code 0, and since the checkpoint of every acknowledged row is saved
// on close, the stream ends with every record once, in per-key order: a
// graceful stop repeats nothing.
func TestSigtermResume(t *testing.T) {
	t.Parallel()
	files, manifest := refdata.Generate(refdata.Scaled(0.03))
	full, cdc := split(files)
	loads := 0
	for _, e := range manifest {
		if e.Operation == "load" {
			loads++
		}
	}
	total := len(manifest)
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	upload(t, bucket, full)
	upload(t, bucket, cdc)
	// progress: how many manifest records the saved checkpoint covers (it
	// holds the key and line of the next row; every row is a record).
	perFile := map[string]int{}
	for _, e := range manifest {
		perFile[e.File]++
	}
	fileStart := map[string]int{}
	n := 0
	for _, f := range files {
		fileStart[f.Key] = n
		n += perFile[f.Key]
	}

	dir := t.TempDir()
	env := pipelineEnv(t, bucket, stream, dir)
	env["CHECKPOINT_STORE"] = "file"
	env["KINESIS_ENDPOINT"] = kinesisProxy(t).URL()
	// Slow enough that a stop lands while batches are in flight.
	env["KINESIS_SHARD_RECORDS_PER_SECOND"] = "2000"

	ckDir := filepath.Join(dir, "checkpoints")
	progress := func() int {
		ents, _ := filepath.Glob(filepath.Join(ckDir, "*.json"))
		if len(ents) != 1 {
			t.Fatalf("checkpoint files: %v", ents)
		}
		b, err := os.ReadFile(ents[0])
		if err != nil {
			t.Fatal(err)
		}
		var ck struct {
			Position struct {
				Key  string `json:"key"`
				Line int    `json:"line"`
			} `json:"position"`
		}
		if err := json.Unmarshal(b, &ck); err != nil {
			t.Fatal(err)
		}
		if at, ok := fileStart[ck.Position.Key]; ok && ck.Position.Line > 0 {
			return at + ck.Position.Line - 1
		}
		return 0
	}
	// Stop points, in records covered by the checkpoint: three in the full
	// load, two in CDC.
	type stop struct {
		at  int
		sig syscall.Signal
	}
	stops := []stop{{loads / 10, syscall.SIGTERM}, {loads * 3 / 10, syscall.SIGINT}, {loads * 6 / 10, syscall.SIGTERM},
		{loads + (total-loads)/5, syscall.SIGTERM}, {loads + (total-loads)*3/5, syscall.SIGTERM}}
	for i, s := range stops {
		done := 0
		if i > 0 {
			done = progress()
		}
		p := start(t, env, "run", "config/s3-to-kinesis.yaml")
		p.WaitReady(t, 30*time.Second)
		waitWritten(t, p, s.at-done, 90*time.Second)
		n, _ := p.Metric("kinesis_records_written")
		took, code := stopWith(t, p, s.sig, false, benthosShutdownTimeout+5*time.Second)
		t.Logf("stop %d (%v) after %.0f records written from %d: exit %d in %s, checkpoint at %d of %d", i, s.sig, n, done, code, took.Round(time.Millisecond), progress(), total)
		if code != 0 || took > benthosShutdownTimeout {
			t.Fatalf("stop %d (%v): exit code %d after %s, want 0 within %s\n%s", i, s.sig, code, took, benthosShutdownTimeout, tail(p.Stdout.String(), 3000))
		}
	}
	p := start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)
	rep := awaitDelivery(t, p, stream, manifest, 120*time.Second)
	if !rep.OK() {
		t.Fatalf("after %d graceful stops: %s", len(stops), rep)
	}
	if rep.Duplicates != 0 {
		t.Errorf("after %d graceful stops (SIGTERM/SIGINT), %d records were written twice: a graceful stop must save the checkpoint of every acknowledged row (%s)", len(stops), rep.Duplicates, rep)
	}
	if dl := lines(t, filepath.Join(dir, "dead-letter.jsonl")); len(dl) != 0 {
		t.Errorf("%d dead letters from clean data: %s", len(dl), dl[0])
	}
}

// TestSigtermDuringKinesisOutage stops dmsbridge with SIGTERM, then a
// second SIGTERM, while Kinesis does not answer and the output retries
// forever (backoff max_elapsed_time 0s): the process still ends within
// shutdown_timeout, and the checkpoint it saved passes no row that was not
// written, so after Kinesis is back a restart delivers every record, with
// at most the in-flight bound (4 x batch_size with checkpoint.interval 0s)
// repeated.
func TestSigtermDuringKinesisOutage(t *testing.T) {
	t.Parallel()
	files, manifest := refdata.Generate(refdata.Scaled(0.02))
	full, cdc := split(files)
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	upload(t, bucket, full)
	upload(t, bucket, cdc)
	loads := 0
	for _, e := range manifest {
		if e.Operation == "load" {
			loads++
		}
	}

	kp := kinesisProxy(t)
	dir := t.TempDir()
	env := pipelineEnv(t, bucket, stream, dir)
	env["CHECKPOINT_STORE"] = "file"
	env["CHECKPOINT_INTERVAL"] = "0s"
	env["KINESIS_ENDPOINT"] = kp.URL()
	env["KINESIS_SHARD_RECORDS_PER_SECOND"] = "2000"
	p := start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)
	waitWritten(t, p, loads/3, 90*time.Second)
	kp.Pause()
	// Let the output run into the outage (every request dropped, retried).
	for end := time.Now().Add(20 * time.Second); kp.Stats().Dropped < 3; {
		if time.Now().After(end) {
			t.Fatalf("the output sent no request to the paused proxy: %+v", kp.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	took, code := stopWith(t, p, syscall.SIGTERM, true, benthosShutdownTimeout+10*time.Second)
	t.Logf("SIGTERM x2 during the outage: exit %d in %s", code, took.Round(time.Millisecond))
	if code < 0 || took > benthosShutdownTimeout+2*time.Second {
		t.Errorf("SIGTERM x2 during a Kinesis outage: exit code %d after %s, want an exit within shutdown_timeout (%s)\n%s", code, took, benthosShutdownTimeout, tail(p.Stdout.String(), 4000))
	}
	kp.Resume()

	p = start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)
	rep := awaitDelivery(t, p, stream, manifest, 120*time.Second)
	if !rep.OK() {
		t.Fatalf("after SIGTERM during a Kinesis outage: %s", rep)
	}
	if bound := configBatchSize(t) * crashStagesInFlight; rep.Duplicates > bound {
		t.Errorf("%d duplicates after one stop during an outage, more than the bound %d", rep.Duplicates, bound)
	}
	t.Logf("%s", rep)
}

// TestStreamsCreateDeleteReleasesResources creates a stream through the
// streams API, lets it write, deletes it while rows are in flight, and
// repeats: once the connections a deleted stream left idle are closed (by
// the servers' or the client's idle timeout: they are not closed at the
// delete), the process holds no more goroutines and open files than before
// the first stream: nothing is kept per deleted stream.
func TestStreamsCreateDeleteReleasesResources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, _ := refdata.Generate(refdata.Scaled(0.01))
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	upload(t, bucket, files)
	root := filepath.Join(dir, "root.yaml")
	if err := os.WriteFile(root, []byte("http:\n  address: ${HTTP_ADDRESS}\n  debug_endpoints: true\nmetrics:\n  prometheus: {}\nlogger:\n  level: WARN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, nil, "streams", "-o", root)
	p.WaitReady(t, 30*time.Second)
	tmpl, err := os.ReadFile(filepath.Join(repoRoot(), "config", "streams", "table01.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vars := pipelineEnv(t, bucket, stream, dir)
	vars["KINESIS_SHARD_RECORDS_PER_SECOND"] = "1000" // rows still in flight at the delete
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
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	g0, f0 := goroutines(), fds()
	const cycles = 15
	var gs, fs []int
	for i := 0; i < cycles; i++ {
		id := fmt.Sprintf("s%d", i)
		vars["DEAD_LETTER_PATH"] = filepath.Join(dir, id+".jsonl")
		body := strings.Replace(expand(string(tmpl), vars), "key: table01", "key: "+id, 1)
		if code, resp, err := p.do(http.MethodPost, "/streams/"+id, body); err != nil || code != 200 {
			t.Fatalf("create stream %s: %d %s %v", id, code, resp, err)
		}
		waitStreamMetric(t, p, id, "kinesis_records_written", 500, 60*time.Second)
		if code, resp, err := p.do(http.MethodDelete, "/streams/"+id+"?timeout=20s", ""); err != nil || code != 200 {
			t.Fatalf("delete stream %s: %d %s %v", id, code, resp, err)
		}
		gs, fs = append(gs, goroutines()), append(fs, fds())
	}
	// kinesalite and versitygw close idle connections after a few seconds.
	var g, f int
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		g, f = goroutines(), fds()
		if (g <= g0+4 && f <= f0+2) || time.Now().After(end) {
			break
		}
	}
	_, metrics, _ := p.Get("/metrics")
	t.Logf("before the first stream: %d goroutines, %d open files; after each delete: goroutines %v, open files %v; at the end %d, %d; /metrics still has %d series of the deleted streams",
		g0, f0, gs, fs, g, f, strings.Count(metrics, `stream="s`))
	if g > g0+4 || f > f0+2 {
		_, prof, _ := p.Get("/debug/pprof/goroutine?debug=1")
		t.Errorf("after %d create/delete cycles and 30 s idle: %d goroutines (%d before), %d open files (%d before)\n%s", cycles, g, g0, f, f0, prof)
	}
}

// TestSigtermReleasesS3Checkpoint: with checkpoint.store s3, an instance
// stopped by SIGTERM releases its claim when it saves at close, so a new
// instance (a new owner id) takes over at once instead of
// being refused until the 30 s lease runs out, as after a crash.
func TestSigtermReleasesS3Checkpoint(t *testing.T) {
	t.Parallel()
	files, manifest := refdata.Generate(refdata.Scaled(0.01))
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 1)
	upload(t, bucket, files)
	dir := t.TempDir()
	env := pipelineEnv(t, bucket, stream, dir)
	env["CHECKPOINT_STORE"] = "s3"
	env["KINESIS_ENDPOINT"] = kinesisProxy(t).URL()
	env["KINESIS_SHARD_RECORDS_PER_SECOND"] = "1000"
	p := start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)
	waitWritten(t, p, 1000, 60*time.Second)
	if took, code := stopWith(t, p, syscall.SIGTERM, false, benthosShutdownTimeout+5*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d after %s", code, took)
	}
	t0 := time.Now()
	p = start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)
	waitWritten(t, p, 1, 60*time.Second)
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("the instance started after a SIGTERM wrote its first record after %s: the claim was not released at close\n%s", d, tail(p.Stdout.String(), 3000))
	}
	rep := waitForStream(t, stream, manifest, 90*time.Second)
	if rep.Duplicates != 0 {
		t.Errorf("%d duplicates after a graceful stop: %s", rep.Duplicates, rep)
	}
}
