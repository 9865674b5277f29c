package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var timestampRe = regexp.MustCompile(`"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"`)

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The README's first command: config/local.yaml over config/sample prints the
// DMS records of the full load then the CDC file, one per line, then tails the
// directory: a CDC file dropped in shows up (within a second:
// BenchmarkCDCPickupLatency).
func TestDemoLocalDirectory(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, filepath.Join(repoRoot(), "config", "sample"), filepath.Join(dir, "sample"))
	p := start(t, map[string]string{"DMSBRIDGE_CONFIG_DIR": dir}, "run", "config/local.yaml")

	want, err := os.ReadFile(filepath.Join(repoRoot(), "tests", "e2e", "testdata", "demo.golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	wantLines := strings.Split(strings.TrimSpace(string(want)), "\n")
	normalized := func() []string {
		out := strings.TrimSpace(timestampRe.ReplaceAllString(p.Stdout.String(), `"timestamp":"T"`))
		if out == "" {
			return nil
		}
		return strings.Split(out, "\n")
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(normalized()) < len(wantLines) && time.Now().Before(deadline) {
		if done, err := p.Exited(); done {
			t.Fatalf("demo exited: %v\n%s", err, p.Stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := normalized()
	if strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Fatalf("demo output differs from testdata/demo.golden.jsonl\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	// Tailing: a new CDC file appears on stdout within a second.
	row := "INSERT,employee,hr,103,Lee,Kim,2026-11-28,Austin\n"
	tmp := filepath.Join(dir, "cdc_001.tmp")
	if err := os.WriteFile(tmp, []byte(row), 0o644); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	if err := os.Rename(tmp, filepath.Join(dir, "sample", "cdcfile", "cdc_001")); err != nil {
		t.Fatal(err)
	}
	wantNew := `{"data":{"Id":103,"LastName":"Lee","FirstName":"Kim","HireDate":"2026-11-28T00:00:00Z","OfficeLocation":"Austin"},"metadata":{"timestamp":"T","record-type":"data","operation":"insert","partition-key-type":"schema-table","schema-name":"hr","table-name":"employee","transaction-id":1506339527138403}}`
	shown := false
	// How fast (under a second: poll_interval 500ms) is measured by
	// BenchmarkCDCPickupLatency, not timed here on a shared machine.
	for !shown && time.Since(dropped) < 10*time.Second {
		if g := normalized(); len(g) > len(wantLines) {
			if g[len(wantLines)] != wantNew {
				t.Fatalf("new CDC row printed as\n%s\nwant\n%s", g[len(wantLines)], wantNew)
			}
			t.Logf("dropped CDC file printed after %s", time.Since(dropped).Round(time.Millisecond))
			shown = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !shown {
		t.Fatalf("the dropped CDC file never showed up; output:\n%s", p.Stdout.String())
	}

	// A bad row: not on stdout (which holds only the records), a warning
	// saying where it is, and the demo's dead letter, a log line on stderr
	// with the error, the row and its position; the good row after it goes
	// on.
	bad := "INSERT,employee,hr,104,Ng,Ann,2026-13-01,Reno\nINSERT,employee,hr,105,Roe,Max,2026-11-29,Waco\n"
	if err := os.WriteFile(tmp, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "sample", "cdcfile", "cdc_002")); err != nil {
		t.Fatal(err)
	}
	wantGood := `{"data":{"Id":105,"LastName":"Roe","FirstName":"Max","HireDate":"2026-11-29T00:00:00Z","OfficeLocation":"Waco"},"metadata":{"timestamp":"T","record-type":"data","operation":"insert","partition-key-type":"schema-table","schema-name":"hr","table-name":"employee","transaction-id":1507439038766614}}`
	wantDead := `msg="dead letter: cdcfile/cdc_002 line 1 table hr.employee column HireDate: \"2026-13-01\" is not a DATETIME`
	wantWarn := "1 row flagged as bad (hr.employee bad_value 1), the first at cdcfile/cdc_002 line 1"
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		g := normalized()
		if len(g) > len(wantLines)+1 && strings.Contains(p.Stderr.String(), wantDead) && strings.Contains(p.Stderr.String(), wantWarn) {
			if len(g) != len(wantLines)+2 || g[len(wantLines)+1] != wantGood {
				t.Fatalf("after the bad file, stdout ends with\n%s\nwant only\n%s", strings.Join(g[len(wantLines)+1:], "\n"), wantGood)
			}
			for i, l := range g {
				var v map[string]any
				if err := json.Unmarshal([]byte(l), &v); err != nil {
					t.Fatalf("stdout line %d is not a JSON record (%v): %s", i+1, err, l)
				}
			}
			for _, f := range []string{`key=cdcfile/cdc_002`, `line=1`, `row="INSERT,employee,hr,104,Ng,Ann,2026-13-01,Reno"`} {
				if !strings.Contains(p.Stderr.String(), f) {
					t.Fatalf("the dead-letter line lacks %s:\n%s", f, p.Stderr.String())
				}
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("bad row: stdout\n%s\nstderr\n%s", p.Stdout.String(), p.Stderr.String())
}
