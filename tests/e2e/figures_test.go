package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// tableRow is one row of `dmsbridge tables --format json`.
type tableRow struct {
	Schema       string  `json:"schema"`
	Table        string  `json:"table"`
	State        string  `json:"table_state"`
	FullLoadRows int64   `json:"full_load_rows"`
	Inserts      int64   `json:"inserts"`
	Updates      int64   `json:"updates"`
	Deletes      int64   `json:"deletes"`
	Errors       int64   `json:"errors"`
	Percent      float64 `json:"full_load_percent"`
	Start        string  `json:"full_load_start"`
	End          string  `json:"full_load_end"`
	LastUpdate   string  `json:"last_update_time"`
}

func tablesJSON(t *testing.T, p *Proc) []tableRow {
	t.Helper()
	out, err := exec.Command(binPath, "tables", "--url", "http://"+p.Addr, "--format", "json").Output()
	if err != nil {
		t.Fatalf("dmsbridge tables: %v\n%s", err, out)
	}
	var rows []tableRow
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("dmsbridge tables: %v\n%s", err, out)
	}
	return rows
}

// loadFigures are the input's per-table full-load gauges of schema01.table01.
func loadFigures(t *testing.T, p *Proc) string {
	t.Helper()
	var s string
	for _, m := range []string{"dms_full_load_files_done", "dms_full_load_files_total", "dms_full_load_bytes_done", "dms_full_load_bytes_total", "dms_full_load_rows", "dms_table_state"} {
		s += fmt.Sprintf("%s %.0f\n", m, p.MustMetric(t, m, `table="table01"`))
	}
	return s
}

// TestTableFiguresAfterRestart: a completed table's figures read the same
// after a restart, graceful or kill -9, as before it, when nothing new
// arrived: its files and bytes (not 0 of 0), its full-load rows, and a
// LastUpdateTime (when its statistics last changed: at least its full-load
// end), in /metrics and in `dmsbridge tables`.
func TestTableFiguresAfterRestart(t *testing.T) {
	files, manifest := refdata.Generate(refdata.Scaled(0.01))
	full, cdc := split(files)
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 1)
	upload(t, bucket, full)
	upload(t, bucket, cdc[:1])
	want := 0
	for _, e := range manifest {
		if e.File <= cdc[0].Key {
			want++
		}
	}
	dir := t.TempDir()
	env := pipelineEnv(t, bucket, stream, dir)
	p := start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)
	waitWritten(t, p, want, 60*time.Second)
	time.Sleep(1500 * time.Millisecond) // the last acknowledgement is saved (interval 1s)
	before := loadFigures(t, p)
	rows := tablesJSON(t, p)
	if len(rows) != 1 || rows[0].State != "Table completed" || rows[0].Percent != 100 || rows[0].LastUpdate == "" {
		t.Fatalf("before the restart: %+v", rows)
	}
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		if how == "SIGTERM" {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.done
		} else {
			p.Kill()
		}
		p = start(t, env, "run", "config/s3-to-kinesis.yaml")
		p.WaitReady(t, 30*time.Second)
		time.Sleep(time.Second) // past the first CDC poll
		if after := loadFigures(t, p); after != before {
			t.Errorf("after %s: full-load figures\n%s\nwant, as before the restart,\n%s", how, after, before)
		}
		got := tablesJSON(t, p)
		if len(got) != 1 {
			t.Fatalf("after %s: %+v", how, got)
		}
		g := got[0]
		if g.State != "Table completed" || g.FullLoadRows != rows[0].FullLoadRows || g.Percent != 100 || g.Start != rows[0].Start || g.End != rows[0].End {
			t.Errorf("after %s: %+v, want the figures of before the restart %+v", how, g, rows[0])
		}
		if g.LastUpdate == "" || g.LastUpdate < g.End {
			t.Errorf("after %s: last_update_time %q, want at least the full-load end %s", how, g.LastUpdate, g.End)
		}
	}
}
