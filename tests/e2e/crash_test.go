package e2e

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// Rows that can be written to Kinesis but not yet covered by a saved
// checkpoint when the process dies, from config/s3-to-kinesis.yaml: the
// input's batch_size (read from the file), and checkpoint interval 0s (set
// here), with which the input never has more than 4 emitted batches outside
// the saved checkpoint (it waits for a save before emitting more): the batch
// waiting for the pipeline, the processor's (threads: 1), the one being
// written to Kinesis (max_in_flight: 1), or acknowledged ones whose save is
// under way.
const crashStagesInFlight = 4

// configBatchSize is the input's batch_size in config/s3-to-kinesis.yaml.
func configBatchSize(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "config/s3-to-kinesis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^    batch_size: (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("config/s3-to-kinesis.yaml: no input batch_size")
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCrashResume kills dmsbridge with SIGKILL at random moments spread over
// the full load and the CDC phase (CDC files arriving while it runs) and
// restarts it on the same checkpoint directory each time: every record
// reaches the stream in per-key order, and the duplicates stay within the
// rows that can be in flight at each kill.
func TestCrashResume(t *testing.T) {
	// Mostly waiting (outages, restarts): runs beside the other long e2e test.
	t.Parallel()
	seed := uint64(20261128)
	if s := os.Getenv("E2E_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("E2E_CRASH_SEED: %v", err)
		}
		seed = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kill schedule seed %d (rerun with E2E_CRASH_SEED=%d)", seed, seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 1))

	files, manifest := refdata.Generate(refdata.Scaled(0.05))
	full, cdc := split(files)
	perFile := map[string]int{}
	loads := 0
	for _, e := range manifest {
		perFile[e.File]++
		if e.Operation == "load" {
			loads++
		}
	}
	total := len(manifest)

	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	upload(t, bucket, full)
	upload(t, bucket, cdc[:1])
	// The other CDC files are uploaded while it runs, each when the
	// previous one is half done.
	uploadAt := make([]int, len(cdc))
	done := loads
	for i, f := range cdc {
		if i > 0 {
			uploadAt[i] = done - perFile[cdc[i-1].Key]/2
		}
		done += perFile[f.Key]
	}
	nextUpload := 1

	// Kill points: one at a random checkpointed record count in each of
	// `kills` equal slices of the run, so they cover the full load and CDC alike, plus a
	// random delay so the kill lands anywhere in a batch's life.
	const kills = 12
	type killPoint struct {
		at    int
		delay time.Duration
	}
	var points []killPoint
	for i := 0; i < kills; i++ {
		lo := total * i / kills
		hi := total * (i + 1) / kills
		points = append(points, killPoint{at: lo + rng.IntN(hi-lo), delay: time.Duration(rng.IntN(400)) * time.Millisecond})
	}
	sort.Slice(points, func(i, j int) bool { return points[i].at < points[j].at })
	inCDC := 0
	for _, k := range points {
		if k.at >= loads {
			inCDC++
		}
	}
	if inCDC < 2 || kills-inCDC < 2 {
		t.Fatalf("seed %d puts %d of %d kills in CDC: want at least 2 in each phase", seed, inCDC, kills)
	}
	t.Logf("seed %d: %d records (%d full load), %d kills (%d in CDC) at %v", seed, total, loads, kills, inCDC, points)

	dir := t.TempDir()
	env := pipelineEnv(t, bucket, stream, dir)
	env["CHECKPOINT_STORE"] = "file"
	env["CHECKPOINT_INTERVAL"] = "0s" // the strict bound below; the default 1s bounds by time
	// SIGKILL mid-PutRecords aborts the request: through the proxy, so that
	// kinesalite (which crashes on aborted requests) never sees it.
	env["KINESIS_ENDPOINT"] = kinesisProxy(t).URL()

	// progress: how many manifest records the saved checkpoint covers (the
	// resume point), so kill points and upload cues count each record once
	// however often it was replayed. The checkpoint holds the key and line of
	// the next row to read; every row of these files is a manifest record.
	fileStart := map[string]int{}
	n := 0
	for _, f := range files {
		fileStart[f.Key] = n
		n += perFile[f.Key]
	}
	ckDir := filepath.Join(dir, "checkpoints")
	progress := 0
	readProgress := func() int {
		ents, _ := filepath.Glob(filepath.Join(ckDir, "*.json"))
		for _, e := range ents {
			b, err := os.ReadFile(e)
			if err != nil {
				continue
			}
			var ck struct {
				Position struct {
					Key  string `json:"key"`
					Line int    `json:"line"`
				} `json:"position"`
			}
			if json.Unmarshal(b, &ck) != nil {
				continue
			}
			if at, ok := fileStart[ck.Position.Key]; ok && ck.Position.Line > 0 {
				progress = max(progress, at+ck.Position.Line-1)
			}
		}
		return progress
	}
	var p *Proc
	restart := func() {
		p = start(t, env, "run", "config/s3-to-kinesis.yaml")
		p.WaitReady(t, 30*time.Second)
	}
	// advance polls until the checkpoint covers n records, uploading CDC
	// files on cue.
	advance := func(n int, timeout time.Duration) {
		t.Helper()
		end := time.Now().Add(timeout)
		for {
			now := readProgress()
			for nextUpload < len(cdc) && now >= uploadAt[nextUpload] {
				upload(t, bucket, cdc[nextUpload:nextUpload+1])
				nextUpload++
			}
			if now >= n {
				return
			}
			if exited, err := p.Exited(); exited {
				t.Fatalf("dmsbridge exited by itself (%v) with the checkpoint at %d of %d records\n%s", err, now, total, tail(p.Stdout.String(), 3000))
			}
			if time.Now().After(end) {
				t.Fatalf("checkpoint stuck at %d records, waiting for %d", now, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	start := time.Now()
	restart()
	for _, k := range points {
		advance(k.at, 90*time.Second)
		time.Sleep(k.delay)
		p.Kill()
		restart()
	}
	advance(total, 120*time.Second)
	for nextUpload < len(cdc) { // only if the kills outran the cues
		upload(t, bucket, cdc[nextUpload:nextUpload+1])
		nextUpload++
	}

	// Everything delivered: read until nothing is missing or time is up.
	rep := awaitDelivery(t, p, stream, manifest, 60*time.Second)
	if !rep.OK() {
		t.Fatalf("after %d kills: %s", kills, rep)
	}
	batchSize := configBatchSize(t)
	dupBoundPerCrash := batchSize * crashStagesInFlight
	bound := kills * dupBoundPerCrash
	t.Logf("after %d kills in %s: %s; duplicates %d (%.0f per kill), bound %d (%d per kill = batch %d x %d stages)",
		kills, time.Since(start).Round(time.Second), rep, rep.Duplicates, float64(rep.Duplicates)/kills, bound, dupBoundPerCrash, batchSize, crashStagesInFlight)
	if rep.Duplicates > bound {
		t.Errorf("%d duplicates after %d kills, more than the bound %d", rep.Duplicates, kills, bound)
	}
	if dl := lines(t, filepath.Join(dir, "dead-letter.jsonl")); len(dl) != 0 {
		t.Errorf("%d dead letters from clean data: %s", len(dl), dl[0])
	}
}
