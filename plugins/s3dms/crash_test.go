package s3dms

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds cmd/dmsbridge once per test process.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if binDir, binErr = os.MkdirTemp("", "s3dms-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "dmsbridge")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/dmsbridge")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestMetricsThroughBinary runs the binary with the prometheus exporter and
// reads the per-table statistics from /metrics and `dmsbridge tables`.
func TestMetricsThroughBinary(t *testing.T) {
	bin := buildBinary(t)
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	b.put(t, "dms/hr/zeta/LOAD2.csv", []byte("3,c\n"))
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,4,d\n"))
	addr := freeAddr(t)
	conf := fmt.Sprintf(`
http:
  address: %s
logger:
  level: WARN
metrics:
  prometheus: {}
input:
  aws_s3_dms:
%s    bucket_folder: dms
    cdc_path: changes
    table_definition: '%s'
    poll_interval: 100ms
    checkpoint:
      store: none
output:
  drop: {}
`, addr, indent(indent(b.yaml())), twoTables)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte(conf), 0o644)
	cmd := exec.Command(bin, "-c", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	want := []string{
		`dms_table_state{label="",path="root.input",schema="hr",table="zeta"} 2`,
		`dms_table_state{label="",path="root.input",schema="hr",table="alpha"} 2`,
		`dms_full_load_rows{label="",path="root.input",schema="hr",table="zeta"} 3`,
		`dms_full_load_files_total{label="",path="root.input",schema="hr",table="zeta"} 2`,
		`dms_full_load_bytes_done{label="",path="root.input",schema="hr",table="zeta"} 12`,
		`dms_cdc_files_processed{label="",path="root.input"} 1`,
	}
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			bb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(bb)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(body, w)
			}
			if ok {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			var dms []string
			for _, line := range strings.Split(body, "\n") {
				if strings.HasPrefix(line, "dms_") {
					dms = append(dms, line)
				}
			}
			t.Fatalf("/metrics lacks %s; dms lines:\n%s\nstderr: %s", w, strings.Join(dms, "\n"), stderr.String())
		}
	}
	out, err := exec.Command(bin, "tables", "--url", "http://"+addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Table completed") || !strings.Contains(string(out), "zeta") {
		t.Fatalf("dmsbridge tables: %v\n%s", err, out)
	}
	t.Logf("dmsbridge tables:\n%s", out)
}

// TestCrashSafety runs the dmsbridge binary (this input, a mapping that
// appends dms_position, a file output), kills it with SIGKILL at points of
// observed progress spread over the full load and CDC, restarts it, and
// checks the union of the outputs: every row, per-file order within each
// run, and few duplicates. Each kill waits until the distinct rows output so
// far reach a target (one random target in each of equal slices of the rows)
// and the run has output rows of its own, plus a random delay, so that the
// kills land after progress however slow the machine is; the killed runs'
// outputs must show that most kills came after output, in both phases. The
// schedule's seed is logged; S3DMS_CRASH_SEED reruns one.
func TestCrashSafety(t *testing.T) {
	seed := uint64(20260517)
	if s := os.Getenv("S3DMS_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("S3DMS_CRASH_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("kill schedule seed %d (rerun with S3DMS_CRASH_SEED=%d)", seed, seed)
	eachBackend(t, func(t *testing.T, b backend) {
		bin := buildBinary(t)
		work := t.TempDir()
		rnd := rand.New(rand.NewPCG(seed, 7))
		expected := map[string]bool{}
		file := func(key string, rows int, gzipped bool) {
			var sb strings.Builder
			for i := 0; i < rows; i++ {
				fmt.Fprintf(&sb, "%s#%d,\"v\n%d\"\n", key, i, i)
				expected[fmt.Sprintf("%s#%d,\"v\n%d\"", key, i, i)] = true
			}
			body := []byte(sb.String())
			if gzipped {
				key += ".gz"
				body = gz(t, sb.String())
			}
			b.put(t, key, body)
		}
		const (
			loadRows = 6000
			cdcRows  = 3000
		)
		for i := 0; i < 4; i++ {
			file(fmt.Sprintf("dms/hr/zeta/LOAD%03d.csv", i), loadRows, i == 2)
			file(fmt.Sprintf("dms/hr/alpha/LOAD%03d.csv", i), loadRows, i == 1)
		}
		cdcN := 0
		addCDC := func(n int) {
			for i := 0; i < n; i++ {
				cdcN++
				file(fmt.Sprintf("dms/changes/CDC%05d.csv", cdcN), cdcRows, false)
			}
		}
		addCDC(3)
		// CDC files appear between crashes: 2 after these kills.
		addAfterKill := map[int]bool{6: true, 10: true}
		total := len(expected) + len(addAfterKill)*2*cdcRows
		conf := fmt.Sprintf(`
http:
  enabled: false
logger:
  level: WARN
input:
  aws_s3_dms:
%s    bucket_folder: dms
    cdc_path: changes
    table_definition: '%s'
    poll_interval: 100ms
    batch_size: 50
    checkpoint:
      directory: %s
      interval: 0s
pipeline:
  threads: 1
  processors:
    - mapping: 'root = content().string().replace_all("\n", "\\n") + " " + meta("dms_position")'
output:
  file:
    path: ${OUT}
    codec: lines
`, indent(indent(b.yaml())), twoTables, filepath.Join(work, "ckpt"))
		cfg := filepath.Join(work, "config.yaml")
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		type proc struct {
			cmd    *exec.Cmd
			out    string
			stderr *lockedBuf
			exited chan struct{}
			err    error
		}
		run := func(i int) *proc {
			p := &proc{out: filepath.Join(work, fmt.Sprintf("out-%02d.txt", i)), stderr: &lockedBuf{buf: &bytes.Buffer{}}, exited: make(chan struct{})}
			p.cmd = exec.Command(bin, "-c", cfg)
			p.cmd.Env = append(os.Environ(), "OUT="+p.out)
			p.cmd.Stderr = p.stderr
			if err := p.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { p.err = p.cmd.Wait(); close(p.exited) }()
			t.Cleanup(func() { p.cmd.Process.Kill(); <-p.exited })
			return p
		}
		kill := func(p *proc) {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.exited
		}

		// Progress: the distinct rows output by all runs so far, read from
		// the outputs as they grow (complete lines only).
		progress := map[string]bool{}
		var offset int64
		runLines := 0 // complete lines of the current run
		follow := func(p *proc) {
			f, err := os.Open(p.out)
			if err != nil {
				return // not created yet
			}
			defer f.Close()
			data, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<40))
			if err != nil {
				t.Fatal(err)
			}
			end := bytes.LastIndexByte(data, '\n')
			if end < 0 {
				return
			}
			for _, line := range strings.Split(string(data[:end]), "\n") {
				if i := strings.LastIndex(line, " "); i > 0 {
					if j := strings.LastIndex(line[:i], " "); j >= 0 {
						progress[line[:j]] = true
					}
				}
				runLines++
			}
			offset += int64(end) + 1
		}

		// One kill target in each of `kills` equal slices of the rows but
		// the last CDC file's worth (so that the last runs have rows left to
		// output), and a short delay after reaching it (the input does tens
		// of thousands of rows a second) so that the kill lands anywhere in
		// a batch's life.
		const kills = 14
		type killPoint struct {
			at    int
			delay time.Duration
		}
		var points []killPoint
		span := total - cdcRows
		for i := 0; i < kills; i++ {
			lo, hi := span*i/kills, span*(i+1)/kills
			points = append(points, killPoint{at: lo + rnd.IntN(hi-lo), delay: time.Duration(rnd.IntN(25000)) * time.Microsecond})
		}
		var outs []string
		var targets, killedAt []int
		for _, k := range points {
			targets = append(targets, k.at)
		}
		start := time.Now()
		for i, k := range points {
			p := run(i)
			outs = append(outs, p.out)
			offset, runLines = 0, 0
			// Until the target is reached and this run has output rows (or
			// has none left to output: an earlier run overshot).
			for deadline := time.Now().Add(60 * time.Second); ; {
				follow(p)
				if len(progress) >= k.at && (runLines > 0 || len(progress) >= len(expected)) {
					break
				}
				select {
				case <-p.exited:
					t.Fatalf("run %d exited by itself (%v) at %d of %d rows\n%s", i, p.err, len(progress), total, p.stderr.String())
				case <-time.After(5 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("run %d: %d lines, %d of %d rows, waiting for %d\n%s", i, runLines, len(progress), total, k.at, p.stderr.String())
				}
			}
			time.Sleep(k.delay)
			kill(p)
			follow(p)
			killedAt = append(killedAt, len(progress))
			if addAfterKill[i] {
				addCDC(2)
			}
		}
		if len(expected) != total {
			t.Fatalf("%d rows uploaded, planned %d", len(expected), total)
		}
		// final run: until every row is there
		p := run(99)
		outs = append(outs, p.out)
		deadline := time.Now().Add(60 * time.Second)
		for {
			seen, _ := readOutputs(t, outs)
			missing := 0
			for k := range expected {
				if seen[k] == 0 {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d rows missing after %d kills", missing, len(expected), kills)
			}
			time.Sleep(200 * time.Millisecond)
		}
		kill(p)
		seen, perRun := readOutputs(t, outs)
		dups := 0
		for k, n := range seen {
			if !expected[k] {
				t.Fatalf("unexpected row %q", k)
			}
			dups += n - 1
		}
		// within each run, positions strictly increase (order per file and
		// across files is kept)
		for i, lines := range perRun {
			prev := ""
			for _, pos := range lines {
				if pos <= prev {
					t.Fatalf("run %d: position %q after %q", i, pos, prev)
				}
				prev = pos
			}
		}
		// The kills, from the killed runs only (not the final one, which
		// outputs both phases whatever the kills did): at least half after
		// their run had output rows, and at least 2 of those in each phase
		// (the phase of the run's last row before the kill).
		afterOutput, inPhase := 0, map[string]int{}
		for _, lines := range perRun[:kills] {
			if len(lines) > 0 {
				afterOutput++
				inPhase[lines[len(lines)-1][:1]]++
			}
		}
		t.Logf("%s: %d kills in %s, targets %v, rows output at the kills %v; %d after their run's output, by phase %v",
			b.name(), kills, time.Since(start).Round(time.Millisecond), targets, killedAt, afterOutput, inPhase)
		if afterOutput < kills/2 || inPhase["1"] < 2 || inPhase["2"] < 2 {
			t.Fatalf("the kills did not land after progress in both phases: %d of %d after the run's output, by phase (1 full load, 2 CDC) %v", afterOutput, kills, inPhase)
		}
		// Duplicates come only from rows emitted but not yet in a saved
		// checkpoint at each kill, which interval 0s caps at maxUnsaved
		// batches (the input waits for a save before emitting more): 4
		// batches of 50 rows per kill, far below a restart of a file (3000
		// rows) or a table.
		limit := kills * maxUnsaved * 50
		t.Logf("%s: %d rows, %d kills, %d duplicates (limit %d)", b.name(), len(expected), kills, dups, limit)
		if dups > limit {
			t.Fatalf("%d duplicates after %d kills, more than the in-flight window allows (%d)", dups, kills, limit)
		}
	})
}

// readOutputs returns how often each row was output, and each run's
// positions in output order.
func readOutputs(t *testing.T, outs []string) (map[string]int, [][]string) {
	seen := map[string]int{}
	var perRun [][]string
	for _, o := range outs {
		f, err := os.Open(o)
		if os.IsNotExist(err) {
			perRun = append(perRun, nil)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var pos []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		torn := 0
		for sc.Scan() {
			line := sc.Text()
			// "<row> <position>", the position being "<...key> <20-digit offset>"
			i := strings.LastIndex(line, " ")
			j := -1
			if i > 0 {
				j = strings.LastIndex(line[:i], " ")
			}
			if i < 0 || j < 0 || len(line)-i-1 != 20 {
				torn++ // only the last line of a killed run may be torn
				if torn > 1 {
					t.Fatalf("%s: malformed line %q", o, line)
				}
				continue
			}
			p := line[j+1:]
			row := strings.ReplaceAll(line[:j], `\n`, "\n")
			seen[row]++
			pos = append(pos, p)
		}
		f.Close()
		perRun = append(perRun, pos)
	}
	return seen, perRun
}

// TestStreamsModeDeleteAndRecreate runs the binary in streams mode, creates
// a stream through the HTTP API, deletes it mid-load, re-creates it, and
// checks that the union of its output is every row exactly once (a deleted
// stream saves its checkpoint on close).
func TestStreamsModeDeleteAndRecreate(t *testing.T) {
	bin := buildBinary(t)
	b := &dirBackend{root: t.TempDir()}
	expected := map[string]bool{}
	for f := 0; f < 3; f++ {
		var sb strings.Builder
		for i := 0; i < 1000; i++ {
			row := fmt.Sprintf("%d-%d,x", f, i)
			sb.WriteString(row + "\n")
			expected[row] = true
		}
		b.put(t, fmt.Sprintf("dms/hr/zeta/LOAD%d.csv", f), []byte(sb.String()))
	}
	work := t.TempDir()
	addr := freeAddr(t)
	root := filepath.Join(work, "root.yaml")
	os.WriteFile(root, []byte(fmt.Sprintf("http:\n  address: %s\nlogger:\n  level: WARN\n", addr)), 0o644)
	cmd := exec.Command(bin, "streams", "-o", root)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	stream := func(out string) string {
		return fmt.Sprintf(`input:
  aws_s3_dms:
%s    bucket_folder: dms
    cdc_path: changes
    table_definition: '%s'
    batch_size: 20
    checkpoint:
      directory: %s
      key: stream-s1.json
pipeline:
  threads: 1
  processors:
    - sleep:
        duration: 1ms
output:
  file:
    path: %s
    codec: lines
`, indent(indent(b.yaml())), twoTables, filepath.Join(work, "ckpt"), out)
	}
	call := func(method, path, body string) int {
		var resp *http.Response
		var err error
		for i := 0; i < 100; i++ {
			req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
			if resp, err = http.DefaultClient.Do(req); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, stderr.String())
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, rb)
		}
		return resp.StatusCode
	}
	lines := func(p string) []string {
		data, _ := os.ReadFile(p)
		s := strings.TrimSuffix(string(data), "\n")
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	out1, out2 := filepath.Join(work, "out1.txt"), filepath.Join(work, "out2.txt")
	// The HTTP server answers (404) before the streams API is registered.
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/streams")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 200 {
			t.Fatalf("GET /streams never answered 200: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	call("POST", "/streams/s1", stream(out1))
	deadline := time.Now().Add(20 * time.Second)
	for len(lines(out1)) < 300 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	call("DELETE", "/streams/s1?timeout=10s", "")
	first := lines(out1)
	if len(first) < 300 || len(first) >= len(expected) {
		t.Fatalf("first stream wrote %d rows; the test needs it deleted mid-load", len(first))
	}
	call("POST", "/streams/s1", stream(out2))
	deadline = time.Now().Add(60 * time.Second)
	for len(first)+len(lines(out2)) < len(expected) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // nothing more may come
	all := append(first, lines(out2)...)
	seen := map[string]int{}
	for _, r := range all {
		seen[r]++
		if seen[r] > 1 {
			t.Fatalf("row %q output twice after delete and re-create", r)
		}
	}
	for r := range expected {
		if seen[r] == 0 {
			t.Fatalf("row %q missing (%d of %d rows)", r, len(all), len(expected))
		}
	}
	if all[len(first)] != nextRow(first[len(first)-1]) {
		t.Fatalf("re-created stream started at %q after %q", all[len(first)], first[len(first)-1])
	}
}

// nextRow is the row after "f-i,x" in the fixture above.
func nextRow(r string) string {
	var f, i int
	fmt.Sscanf(r, "%d-%d,x", &f, &i)
	if i == 999 {
		return fmt.Sprintf("%d-0,x", f+1)
	}
	return fmt.Sprintf("%d-%d,x", f, i+1)
}
