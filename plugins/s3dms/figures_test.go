package s3dms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/dmsbridge/dmsbridge/plugins/prometheus"
)

// TestLateFileCountSurvivesRestart: a late CDC file skipped while the input
// is idle (no batch emitted after it) stays counted in dms_cdc_late_files
// after a restart. The checkpoint's record of listed keys holds it, so the
// next start does not report it again: the count it stored must hold it too.
// A processed late file is counted once as well.
func TestLateFileCountSurvivesRestart(t *testing.T) {
	for _, mode := range []string{"skip", "process"} {
		t.Run(mode, func(t *testing.T) { lateFileCountSurvivesRestart(t, mode) })
	}
}

func lateFileCountSurvivesRestart(t *testing.T, mode string) {
	eachBackend(t, func(t *testing.T, b backend) {
		ckdir := t.TempDir()
		yaml := baseYAML(b, "mode: cdc\npoll_interval: 50ms\nlate_file_check_interval: 200ms\nlate_files: "+mode+"\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 10ms\n")
		b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,a\n"))
		b.put(t, "dms/changes/CDC5.csv", []byte("I,zeta,hr,5,e\n"))
		r := startStream(t, yaml, nil)
		r.waitFor(t, 2, 5*time.Second)
		b.put(t, "dms/changes/CDC3.csv", []byte("I,zeta,hr,3,c\n"))
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(r.logText(), "late CDC file") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if mode == "process" {
			r.waitFor(t, 3, 5*time.Second)
		}
		if got := Stats()["aws_s3_dms"].CDC.LateFiles; got != 1 {
			t.Fatalf("before the restart: %d late files, want 1\n%s", got, r.logText())
		}
		time.Sleep(100 * time.Millisecond) // several checkpoint intervals
		r.stop(t)

		r2 := startStream(t, yaml, nil)
		defer r2.stop(t)
		// The figures are restored from the checkpoint in Connect, and the
		// listing of the whole folder at the start of CDC follows it: until
		// then the figures read 0 (Connect takes over 500 ms on a loaded
		// machine). Wait for both, then past a late check (200 ms): a report
		// of the late file again would show by then.
		r2.waitLog(t, "CDC: tailing", 10*time.Second)
		time.Sleep(500 * time.Millisecond)
		if strings.Contains(r2.logText(), "late CDC file") || len(r2.snapshot()) != 0 {
			t.Fatalf("the late file was reported again after the restart:\n%s", r2.logText())
		}
		if got := Stats()["aws_s3_dms"].CDC.LateFiles; got != 1 {
			t.Fatalf("after the restart: dms_cdc_late_files %d, want 1 (the late file reported before it)", got)
		}
	})
}

// TestRedeliveryNotCountedTwice: a batch refused downstream is redelivered
// (with the batches emitted after it) and goes through dms_csv_to_json again;
// the processor's per-table figures (Inserts, Updates, Deletes, errors) count
// each row read once, as the input's do, not once per delivery.
func TestRedeliveryNotCountedTwice(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,a\nI,zeta,hr,2,b\nU,zeta,hr,1,c\nI,zeta,hr,x,bad\nD,zeta,hr,2,b\nI,alpha,hr,3,d\n"))
	sb := service.NewStreamBuilder()
	mux := http.NewServeMux()
	sb.SetHTTPMux(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, err := range []error{
		sb.SetLoggerYAML("level: warn"),
		sb.SetMetricsYAML("prometheus: {}"),
		sb.AddInputYAML("aws_s3_dms:\n" + indent(baseYAML(b, "mode: cdc\npoll_interval: 50ms\nbatch_size: 2\ncheckpoint:\n  store: none\n"))),
		sb.AddProcessorYAML("dms_csv_to_json:\n  table_definition: '" + twoTables + "'\n  message_format: json-unformatted\n"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	sb.SetThreads(1)
	var mu sync.Mutex
	deliveries, rows := 0, 0
	if err := sb.AddBatchConsumerFunc(func(_ context.Context, batch service.MessageBatch) error {
		mu.Lock()
		defer mu.Unlock()
		deliveries++
		if deliveries == 2 {
			return errors.New("refused once") // the second batch; the third is read meanwhile
		}
		rows += len(batch)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(context.Background()) }()
	defer func() { _ = st.StopWithin(10 * time.Second); <-done }()
	metrics := func() string {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := rows
		mu.Unlock()
		if n >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	body := metrics()
	mu.Lock()
	t.Logf("%d deliveries, %d rows taken", deliveries, rows)
	mu.Unlock()
	for _, want := range []string{
		`dms_csv_to_json_rows{label="",operation="insert",path="root.pipeline.processors.0",schema="hr",table="zeta"} 2`,
		`dms_csv_to_json_rows{label="",operation="update",path="root.pipeline.processors.0",schema="hr",table="zeta"} 1`,
		`dms_csv_to_json_rows{label="",operation="delete",path="root.pipeline.processors.0",schema="hr",table="zeta"} 1`,
		`dms_csv_to_json_rows{label="",operation="insert",path="root.pipeline.processors.0",schema="hr",table="alpha"} 1`,
		`dms_csv_to_json_errors{label="",path="root.pipeline.processors.0",reason="bad_value",schema="hr",table="zeta"} 1`,
		`dms_cdc_rows{label="",path="root.input"} 6`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	if t.Failed() {
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "dms_csv_to_json_") || strings.HasPrefix(l, "dms_cdc_rows") {
				lines = append(lines, l)
			}
		}
		t.Logf("/metrics:\n%s", strings.Join(lines, "\n"))
	}
}

// TestLoadPercentNeverAbove100: an object replaced by a larger version
// between its listing and its reading, whose download is then cut and
// reopened, still brings its table's full load to exactly 100 % (of the
// bytes listed), never above, in the progress log and the statistics.
func TestLoadPercentNeverAbove100(t *testing.T) {
	var v1, v2 strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&v1, "%d,first version of the row\n", i)
		fmt.Fprintf(&v2, "%d,second version, re-uploaded\n", i)
	}
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("0,a\n"))
	b.put(t, "dms/hr/zeta/LOAD2.csv", []byte(v1.String()))
	target, _ := url.Parse(b.ep)
	rp := httputil.NewSingleHostReverseProxy(target)
	var cut, replaced atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/LOAD1.csv") && replaced.CompareAndSwap(false, true) {
			b.put(t, "dms/hr/zeta/LOAD2.csv", []byte(v2.String())) // after the listing
		}
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/LOAD2.csv") && cut.CompareAndSwap(false, true) {
			rp.ServeHTTP(&cutWriter{ResponseWriter: w, left: 100000}, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	yaml := strings.Replace(b.yaml(), b.ep, srv.URL, 1) + "bucket_folder: dms\ncdc_path: changes\npoll_interval: 50ms\ntable_definition: '" + twoTables + "'\ncheckpoint:\n  store: none\n"
	r := startStream(t, yaml, nil)
	defer r.stop(t)
	r.waitFor(t, 20001, 30*time.Second)
	if !cut.Load() || !replaced.Load() {
		t.Fatal("the object was not replaced and cut as the test intends")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.logText(), "table hr.zeta: full load completed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	z := Stats()["aws_s3_dms"].Tables[0]
	if z.BytesDone != z.BytesTotal || z.FilesDone != z.FilesTotal || z.State != StateCompleted {
		t.Errorf("zeta completed with %d of %d bytes, %d of %d files (state %s): want the whole listing, no more", z.BytesDone, z.BytesTotal, z.FilesDone, z.FilesTotal, z.StateName)
	}
	var line string
	for _, l := range strings.Split(r.logText(), "\n") {
		if strings.Contains(l, "table hr.zeta: full load completed") {
			line = l
		}
	}
	if !strings.Contains(line, "full load completed 100.0%") {
		t.Errorf("progress log: %s", line)
	}
}

// TestLagAfterCheckpointedFileDeleted: the first CDC file, checkpointed in
// its middle, deleted while the input is stopped, is reported as a bad file
// at the restart; having no modification time, it leaves the lag as it was
// (0, no file processed yet), not the time since year 1.
func TestLagAfterCheckpointedFileDeleted(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ckdir := t.TempDir()
		yaml := baseYAML(b, "mode: cdc\npoll_interval: 50ms\nbatch_size: 2\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
		var rows strings.Builder
		for i := 0; i < 40; i++ {
			fmt.Fprintf(&rows, "I,zeta,hr,%d,a\n", i)
		}
		b.put(t, "dms/changes/CDC1.csv", []byte(rows.String()))
		var mu sync.Mutex
		taken := 0
		r := startStream(t, yaml, func(batch []got) error {
			mu.Lock()
			defer mu.Unlock()
			if taken >= 4 {
				return errors.New("stopping")
			}
			taken += len(batch)
			return nil
		})
		r.waitFor(t, 4, 5*time.Second)
		time.Sleep(100 * time.Millisecond) // saved (interval 0s)
		r.stop(t)

		b.del(t, "dms/changes/CDC1.csv")
		r2 := startStream(t, yaml, nil)
		defer r2.stop(t)
		deadline := time.Now().Add(5 * time.Second)
		for Stats()["aws_s3_dms"].CDC.FilesProcessed < 1 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		c := Stats()["aws_s3_dms"].CDC
		if !strings.Contains(r2.logText(), "bad object") || c.FilesProcessed != 1 {
			t.Fatalf("the deleted file was not reported as a bad object: %+v\n%s", c, r2.logText())
		}
		if c.LagSeconds != 0 || c.NewestFileTime != nil {
			t.Fatalf("lag after the deleted file: %.0f s (newest file %v), want 0 and none", c.LagSeconds, c.NewestFileTime)
		}
	})
}
