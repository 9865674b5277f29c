package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

const sampleMetrics = `# TYPE dms_table_state gauge
dms_table_state{label="source",path="root.input",schema="hr",stream="a",table="employee"} 2
dms_table_state{label="source",path="root.input",schema="schema01",stream="a",table="table01"} 1
# TYPE dms_full_load_rows gauge
dms_full_load_rows{label="source",path="root.input",schema="hr",stream="a",table="employee"} 1
dms_full_load_rows{label="source",path="root.input",schema="schema01",stream="a",table="table01"} 120
# TYPE dms_full_load_bytes_done gauge
dms_full_load_bytes_done{label="source",path="root.input",schema="schema01",stream="a",table="table01"} 250
# TYPE dms_full_load_bytes_total gauge
dms_full_load_bytes_total{label="source",path="root.input",schema="schema01",stream="a",table="table01"} 1000
# TYPE dms_full_load_start_unix gauge
dms_full_load_start_unix{label="source",path="root.input",schema="hr",stream="a",table="employee"} 1.7646336e+09
# TYPE dms_csv_to_json_rows counter
dms_csv_to_json_rows{label="p",operation="insert",path="root.pipeline.processors.0",schema="hr",stream="a",table="employee"} 3
dms_csv_to_json_rows{label="p",operation="update",path="root.pipeline.processors.0",schema="hr",stream="a",table="employee"} 2
dms_csv_to_json_rows{label="p",operation="delete",path="root.pipeline.processors.0",schema="hr",stream="a",table="employee"} 1
dms_csv_to_json_rows{label="p",operation="load",path="root.pipeline.processors.0",schema="hr",stream="a",table="employee"} 1
# TYPE dms_csv_to_json_errors counter
dms_csv_to_json_errors{label="p",path="root.pipeline.processors.0",reason="bad_value",schema="hr",stream="a",table="employee"} 4
dms_csv_to_json_errors{label="p",path="root.pipeline.processors.0",reason="field_count",schema="hr",stream="a",table="employee"} 1
# TYPE input_received counter
input_received{label="source",path="root.input",stream="a"} 130
`

func TestTablesParsesDMSStatistics(t *testing.T) {
	stats, err := parseTableStats(strings.NewReader(sampleMetrics), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 {
		t.Fatalf("got %d rows: %+v", len(stats), stats)
	}
	e, tb := stats[0], stats[1]
	if e.Schema != "hr" || e.Table != "employee" || e.State != "Table completed" || e.FullLoadRows != 1 ||
		e.Inserts != 3 || e.Updates != 2 || e.Deletes != 1 || e.Errors != 5 || e.FullLoadStart != "2025-12-02T00:00:00Z" {
		t.Errorf("employee row: %+v", e)
	}
	if tb.State != "Full load" || tb.FullLoadRows != 120 || tb.LoadPercent != 25 || tb.Stream != "a" {
		t.Errorf("table01 row: %+v", tb)
	}
	var out bytes.Buffer
	if err := printTableStats(&out, "text", stats); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "STREAM") || !strings.Contains(lines[1], "Table completed") ||
		!strings.Contains(lines[2], "25.0") {
		t.Errorf("text output:\n%s", out.String())
	}
	if _, err := parseTableStats(strings.NewReader("{not prometheus"), ""); err == nil {
		t.Error("garbage accepted")
	}
}

func TestReviewTablesDoesNotDoubleCountStaleSeries(t *testing.T) {
	const m = `# TYPE dms_full_load_rows gauge
dms_full_load_rows{label="s3_source",path="root.input",schema="schema01",stream="alpha",table="table01"} 5
dms_full_load_rows{label="source",path="root.input",schema="schema01",stream="alpha",table="table01"} 5
`
	stats, _ := parseTableStats(strings.NewReader(m), "")
	if len(stats) != 1 || stats[0].FullLoadRows != 5 {
		t.Fatalf("tables shows %+v", stats)
	}
}

// After PUT /streams/alpha changed the input's label, the old input's gauges
// stay in /metrics next to the new one's: the row shows the input that
// updated last, whole (not a mix of both), while the processor's counters,
// split by processor label, operation and reason, add up.
func TestTablesShowsTheFreshestInputAndSumsCounters(t *testing.T) {
	const m = `# TYPE dms_table_state gauge
dms_table_state{label="source",path="root.input",schema="schema01",stream="alpha",table="table01"} 1
dms_table_state{label="s3_source",path="root.input",schema="schema01",stream="alpha",table="table01"} 2
# TYPE dms_full_load_rows gauge
dms_full_load_rows{label="source",path="root.input",schema="schema01",stream="alpha",table="table01"} 5
dms_full_load_rows{label="s3_source",path="root.input",schema="schema01",stream="alpha",table="table01"} 8
# TYPE dms_full_load_bytes_done gauge
dms_full_load_bytes_done{label="source",path="root.input",schema="schema01",stream="alpha",table="table01"} 10
dms_full_load_bytes_done{label="s3_source",path="root.input",schema="schema01",stream="alpha",table="table01"} 100
# TYPE dms_full_load_bytes_total gauge
dms_full_load_bytes_total{label="source",path="root.input",schema="schema01",stream="alpha",table="table01"} 100
dms_full_load_bytes_total{label="s3_source",path="root.input",schema="schema01",stream="alpha",table="table01"} 100
# TYPE dms_full_load_start_unix gauge
dms_full_load_start_unix{label="source",path="root.input",schema="schema01",stream="alpha",table="table01"} 1.7646336e+09
dms_full_load_start_unix{label="s3_source",path="root.input",schema="schema01",stream="alpha",table="table01"} 1.7646337e+09
# TYPE dms_full_load_end_unix gauge
dms_full_load_end_unix{label="s3_source",path="root.input",schema="schema01",stream="alpha",table="table01"} 1.7646338e+09
# TYPE dms_table_last_update_unix gauge
dms_table_last_update_unix{label="source",path="root.input",schema="schema01",stream="alpha",table="table01"} 1.76463365e+09
dms_table_last_update_unix{label="s3_source",path="root.input",schema="schema01",stream="alpha",table="table01"} 1.7646338e+09
dms_table_last_update_unix{label="p2",path="root.pipeline.processors.0",schema="schema01",stream="alpha",table="table01"} 1.7646339e+09
# TYPE dms_csv_to_json_rows counter
dms_csv_to_json_rows{label="p",operation="insert",path="root.pipeline.processors.0",schema="schema01",stream="alpha",table="table01"} 3
dms_csv_to_json_rows{label="p2",operation="insert",path="root.pipeline.processors.0",schema="schema01",stream="alpha",table="table01"} 4
dms_csv_to_json_rows{label="p2",operation="update",path="root.pipeline.processors.0",schema="schema01",stream="alpha",table="table01"} 2
# TYPE dms_csv_to_json_errors counter
dms_csv_to_json_errors{label="p",path="root.pipeline.processors.0",reason="bad_value",schema="schema01",stream="alpha",table="table01"} 1
dms_csv_to_json_errors{label="p2",path="root.pipeline.processors.0",reason="bad_value",schema="schema01",stream="alpha",table="table01"} 2
dms_csv_to_json_errors{label="p2",path="root.pipeline.processors.0",reason="field_count",schema="schema01",stream="alpha",table="table01"} 4
`
	stats, err := parseTableStats(strings.NewReader(m), "")
	if err != nil {
		t.Fatal(err)
	}
	want := TableStats{Stream: "alpha", Schema: "schema01", Table: "table01", State: "Table completed",
		FullLoadRows: 8, Inserts: 7, Updates: 2, Errors: 7, LoadPercent: 100,
		FullLoadStart: "2025-12-02T00:01:40Z", FullLoadEnd: "2025-12-02T00:03:20Z", LastUpdate: "2025-12-02T00:05:00Z"}
	if len(stats) != 1 || stats[0] != want {
		t.Fatalf("tables shows\n%+v\nwant\n%+v", stats, want)
	}
}

func TestReviewTablesShowsUnattributedErrors(t *testing.T) {
	const m = `# TYPE dms_csv_to_json_errors counter
dms_csv_to_json_errors{label="p",path="root.pipeline.processors.0",reason="unknown_table",schema="",table=""} 3
`
	stats, _ := parseTableStats(strings.NewReader(m), "")
	var total int64
	for _, s := range stats {
		total += s.Errors
	}
	if total != 3 {
		t.Fatalf("tables reports %d (rows %+v)", total, stats)
	}
}

// Rows the processor could not attribute to a table (unknown table, malformed
// CDC row, missing metadata) are counted on a "(no table)" row of their
// stream, after its tables, in text and JSON.
func TestTablesNoTableRowPerStream(t *testing.T) {
	const m = `# TYPE dms_table_state gauge
dms_table_state{label="source",path="root.input",schema="hr",stream="a",table="employee"} 2
dms_table_state{label="source",path="root.input",schema="hr",stream="b",table="employee"} 2
# TYPE dms_csv_to_json_errors counter
dms_csv_to_json_errors{label="p",path="root.pipeline.processors.0",reason="unknown_table",schema="",stream="a",table=""} 3
dms_csv_to_json_errors{label="p",path="root.pipeline.processors.0",reason="malformed_row",schema="",stream="a",table=""} 2
dms_csv_to_json_errors{label="p",path="root.pipeline.processors.0",reason="bad_value",schema="hr",stream="a",table="employee"} 1
# TYPE dms_table_last_update_unix gauge
dms_table_last_update_unix{label="p",path="root.pipeline.processors.0",schema="",stream="a",table=""} 1.7646336e+09
`
	stats, err := parseTableStats(strings.NewReader(m), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 3 {
		t.Fatalf("got %d rows: %+v", len(stats), stats)
	}
	if s := stats[0]; s.Stream != "a" || s.Table != "employee" || s.Errors != 1 {
		t.Errorf("a hr.employee: %+v", s)
	}
	if s := stats[1]; s.Stream != "a" || s.Schema != "-" || s.Table != "(no table)" || s.Errors != 5 || s.LastUpdate != "2025-12-02T00:00:00Z" {
		t.Errorf("a (no table): %+v", s)
	}
	if s := stats[2]; s.Stream != "b" || s.Table != "employee" || s.Errors != 0 {
		t.Errorf("b hr.employee: %+v", s)
	}
	var text, js bytes.Buffer
	if err := printTableStats(&text, "text", stats); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(text.String(), "\n"); len(lines) < 3 || !strings.Contains(lines[2], "(no table)") || !strings.Contains(lines[2], " 5 ") {
		t.Errorf("text output:\n%s", text.String())
	}
	if err := printTableStats(&js, "json", stats); err != nil {
		t.Fatal(err)
	}
	var back []TableStats
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back) != 3 || back[1].Table != "(no table)" || back[1].Errors != 5 {
		t.Errorf("json output (%v):\n%s", err, js.String())
	}
}

// fakeInstance serves /metrics (metrics) and, when streams is not nil,
// /streams as Benthos' streams mode does; otherwise /streams is 404 as in run
// mode. fail makes the first fail /metrics requests answer 500. cancel, when
// set, is called at the (after)th /metrics request.
func fakeInstance(t *testing.T, metrics string, streams map[string]any, fail int, after int, cancel func()) *fakeSrv {
	t.Helper()
	var n atomic.Int64
	f := &fakeSrv{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			f.mu.Lock()
			f.fetches = append(f.fetches, time.Now())
			f.mu.Unlock()
			i := n.Add(1)
			if cancel != nil && int(i) >= after {
				cancel()
			}
			if int(i) <= fail {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
			io.WriteString(w, metrics)
		case "/streams":
			if streams == nil {
				http.NotFound(w, r)
				return
			}
			json.NewEncoder(w).Encode(streams)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// fakeSrv is a fake instance that records when /metrics was fetched.
type fakeSrv struct {
	*httptest.Server
	mu      sync.Mutex
	fetches []time.Time
}

func (f *fakeSrv) fetchTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.fetches...)
}

// runTablesCmd runs `dmsbridge tables args...` as the binary does and returns
// its stdout, stderr and exit code.
func runTablesCmd(ctx context.Context, args ...string) (stdout, stderr string, code int) {
	var out, errb syncBuffer
	app := &cli.App{Name: "dmsbridge", Commands: []*cli.Command{tablesCommand()}, Writer: &out, ErrWriter: &errb,
		ExitErrHandler: func(*cli.Context, error) {}}
	done := make(chan error, 1)
	go func() { done <- app.RunContext(ctx, append([]string{"dmsbridge", "tables"}, args...)) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		return out.String(), errb.String() + "tables did not return within 10s\n", -1
	}
	if err != nil {
		code = 1
		if ec, ok := err.(cli.ExitCoder); ok {
			code = ec.ExitCode()
		}
		fmt.Fprintln(&errb, err)
	}
	return out.String(), errb.String(), code
}

const twoStreams = `# TYPE dms_table_state gauge
dms_table_state{label="source",path="root.input",schema="schema01",stream="alpha",table="table01"} 1
dms_table_state{label="source",path="root.input",schema="schema01",stream="beta",table="table01"} 2
`

// A stream deleted in streams mode leaves its gauges in /metrics; tables only
// shows the streams /streams lists. In run mode (/streams 404) nothing is
// dropped.
func TestTablesDropsDeletedStreams(t *testing.T) {
	srv := fakeInstance(t, twoStreams, map[string]any{"beta": map[string]any{"active": true}}, 0, 0, nil)
	out, errs, code := runTablesCmd(context.Background(), "--url", srv.URL, "--format", "json")
	var stats []TableStats
	if code != 0 || json.Unmarshal([]byte(out), &stats) != nil {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	if len(stats) != 1 || stats[0].Stream != "beta" {
		t.Errorf("streams mode with alpha deleted shows %+v", stats)
	}
	srv = fakeInstance(t, twoStreams, nil, 0, 0, nil)
	out, errs, code = runTablesCmd(context.Background(), "--url", srv.URL, "--format", "json")
	stats = nil
	if code != 0 || json.Unmarshal([]byte(out), &stats) != nil || len(stats) != 2 {
		t.Errorf("run mode (exit %d) shows %s%s", code, out, errs)
	}
}

// `--watch` alone (default interval), `--watch 5s` and `--watch=5s` all work.
func TestTablesWatchFlagForms(t *testing.T) {
	for _, args := range [][]string{
		{"--watch", "--url", "URL", "--format", "json"},
		{"--url", "URL", "--format", "json", "--watch"},
		{"--watch", "10ms", "--url", "URL", "--format", "json"},
		{"--watch=10ms", "--url", "URL", "--format", "json"},
		{"-watch", "10ms", "--url", "URL", "--format", "json"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		srv := fakeInstance(t, twoStreams, nil, 0, 2, cancel)
		for i := range args {
			if args[i] == "URL" {
				args[i] = srv.URL
			}
		}
		out, errs, code := runTablesCmd(ctx, args...)
		cancel()
		if code != 0 || strings.Count(out, `"stream": "alpha"`) < 1 {
			t.Errorf("tables %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
		}
		// watching: fetched again (the fake ends the run at the second
		// fetch), after the interval given, or 2 s by default
		f := srv.fetchTimes()
		if len(f) < 2 {
			t.Errorf("tables %v: %d fetch, want a refresh", args, len(f))
			continue
		}
		gap := f[1].Sub(f[0])
		if bare := !strings.Contains(strings.Join(args, " "), "10ms"); bare != (gap >= 1500*time.Millisecond) {
			t.Errorf("tables %v: refreshed after %s, want 2s for a bare --watch, 10ms otherwise", args, gap)
		}
	}
}

// In watch mode a failed fetch is reported, with its time, and the next
// refresh shows the tables again.
func TestTablesWatchKeepsGoingAfterAFailedFetch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := fakeInstance(t, twoStreams, nil, 1, 3, cancel)
	// The report's date is that of the day the fetch failed, which is the
	// day before or after the run (a run across midnight UTC has two).
	dayBefore := time.Now().UTC().Format("2006-01-02T")
	out, errs, code := runTablesCmd(ctx, "--url", srv.URL, "--watch", "10ms")
	dayAfter := time.Now().UTC().Format("2006-01-02T")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(errs, "500 Internal Server Error") || !(strings.Contains(errs, dayBefore) || strings.Contains(errs, dayAfter)) {
		t.Errorf("the failed fetch is not reported with its time: %q", errs)
	}
	if !strings.Contains(out, "Table completed") {
		t.Errorf("no tables after the failed fetch:\n%s", out)
	}
}

// Watching into a pipe or a file (`tables --watch | tee log`) writes no
// screen-clearing escape codes: only a terminal gets them. Each refresh
// still starts with its time and the URL.
func TestTablesWatchIntoAPipeHasNoEscapeCodes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := fakeInstance(t, twoStreams, nil, 0, 3, cancel)
	out, errs, code := runTablesCmd(ctx, "--url", srv.URL, "--watch", "10ms")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if strings.Contains(out, "\033") {
		t.Errorf("watch output to a non-terminal holds escape codes: %q", out)
	}
	if n := strings.Count(out, srv.URL); n < 2 {
		t.Errorf("%d refresh headers naming the URL, want one per refresh (2):\n%s", n, out)
	}
}

// A bad --format is a usage error (exit 2), found before any fetch.
func TestTablesBadFormatBeforeFetching(t *testing.T) {
	_, errs, code := runTablesCmd(context.Background(), "--url", "http://127.0.0.1:1", "--format", "xml")
	if code != 2 || !strings.Contains(errs, "--format must be text or json") {
		t.Errorf("exit %d: %s", code, errs)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The arguments are parsed by tables itself (for the optional --watch
// interval): the prefix still comes from its environment variable.
func TestTablesPrefixFromEnvironment(t *testing.T) {
	t.Setenv(statePrefixEnv, "dmsb_")
	srv := fakeInstance(t, strings.ReplaceAll(twoStreams, "dms_table_state", "dmsb_dms_table_state"), nil, 0, 0, nil)
	out, errs, code := runTablesCmd(context.Background(), "--url", srv.URL)
	if code != 0 || !strings.Contains(out, "Table completed") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
}

// The exporter sanitises its prefix to the Prometheus character set
// ("dmsbridge-" becomes "dmsbridge_"); `tables --prefix` given the prefix as
// written in the exporter's config must still find the tables, not print
// "no table statistics yet" next to a running load.
func TestTablesPrefixAsWrittenInTheExporterConfig(t *testing.T) {
	metrics := strings.ReplaceAll(sampleMetrics, "dms_", "dmsbridge_dms_")
	for _, prefix := range []string{"dmsbridge_", "dmsbridge-", "dmsbridge."} {
		stats, err := parseTableStats(strings.NewReader(metrics), prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(stats) != 2 || stats[1].FullLoadRows != 120 {
			t.Errorf("prefix %q: got %+v", prefix, stats)
		}
	}
}

// Behind Benthos' http.basic_auth the instance is reached with
// --url http://user:password@host:port (Go sends the user information as
// basic auth). The password must never be printed: not in the error of a
// refused fetch (401, another status, a URL that does not parse), not in the
// header of the --watch screen, not in the failures --watch reports.
func TestTablesNeverPrintsTheURLPassword(t *testing.T) {
	const user, pass = "admin", "Pa55w0rdXYZ"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="restricted"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, twoStreams)
	}))
	defer srv.Close()
	withAuth := func(p string) string { return strings.Replace(srv.URL, "http://", "http://"+user+":"+p+"@", 1) }

	// Refused: the error names the URL, without the password.
	_, errs, code := runTablesCmd(context.Background(), "--url", withAuth(pass+"-wrong"))
	if code != 1 || !strings.Contains(errs, "401 Unauthorized") {
		t.Fatalf("wrong password: exit %d: %s", code, errs)
	}
	if strings.Contains(errs, pass) || !strings.Contains(errs, "http://"+user+":xxxxx@") {
		t.Errorf("wrong password: the error shows the password, or no longer names the URL: %s", errs)
	}
	// A URL that does not parse: a usage error, without the URL.
	bad := "http://" + user + ":" + pass + "@127.0.0.1:port"
	_, errs, code = runTablesCmd(context.Background(), "--url", bad)
	if code != 2 || !strings.Contains(errs, "--url must be an http(s) URL") || strings.Contains(errs, pass) {
		t.Errorf("unparsable URL: exit %d, want 2 and an error without the password: %s", code, errs)
	}
	// Watch mode: the header names the instance, not the password; a failed
	// refresh neither.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out, errs, code := runTablesCmd(ctx, "--url", withAuth(pass), "--watch", "50ms")
	if code != 0 || !strings.Contains(out, "alpha") || strings.Contains(out+errs, pass) {
		t.Errorf("watch: exit %d, the screen shows the password or no tables:\nstdout: %s\nstderr: %s", code, out, errs)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel2()
	out, errs, _ = runTablesCmd(ctx2, "--url", withAuth(pass+"-wrong"), "--watch", "50ms")
	if !strings.Contains(errs, "401 Unauthorized") || strings.Contains(out+errs, pass) {
		t.Errorf("watch with a refused fetch shows the password or no error:\nstdout: %s\nstderr: %s", out, errs)
	}
}

// The table figures do not show a pipeline stopped by a failure that does not
// heal by itself (Kinesis refusing writes, S3 refusing the input, a lapsed
// checkpoint lease): they stay as they were. tables therefore also asks
// /ready and, when the instance is not ready, says so on stderr with what
// each component reports, after the table; the exit code stays 0 (the
// figures were read).
func TestTablesReportsNotReady(t *testing.T) {
	for _, c := range []struct {
		name, ready string
		status      int
		want        []string
	}{
		{"run mode", `{"statuses":[{"label":"s3_source","path":"input","connected":true},{"label":"kinesis","path":"output","connected":false,"error":"Kinesis refuses writes to stream \"s\""}]}`,
			503, []string{`not ready: output kinesis: Kinesis refuses writes to stream "s"`}},
		{"streams mode", "streams a are not connected\n", 503, []string{"not ready: streams a are not connected"}},
		{"ready", `{"statuses":[{"label":"s3_source","path":"input","connected":true}]}`, 200, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/metrics":
					io.WriteString(w, sampleMetrics)
				case "/ready":
					w.WriteHeader(c.status)
					io.WriteString(w, c.ready)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			out, errOut, code := runTablesCmd(context.Background(), "--url", srv.URL)
			if code != 0 || !strings.Contains(out, "Table completed") {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Fatalf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if c.want == nil && errOut != "" {
				t.Fatalf("stderr of a ready instance: %q", errOut)
			}
		})
	}
}

// A table the input restored as completed from its checkpoint (after a
// restart, or a stream updated in streams mode) has no byte figures: the
// checkpoint stores none. Its load is whole: 100 %, not 0 % next to "Table
// completed".
func TestTablesCompletedFromCheckpointIsWhole(t *testing.T) {
	const restored = `# TYPE dms_table_state gauge
dms_table_state{label="",path="root.input",schema="hr",table="employee"} 2
dms_table_state{label="",path="root.input",schema="hr",table="zeta"} 0
# TYPE dms_full_load_rows gauge
dms_full_load_rows{label="",path="root.input",schema="hr",table="employee"} 7
dms_full_load_rows{label="",path="root.input",schema="hr",table="zeta"} 0
# TYPE dms_full_load_bytes_done gauge
dms_full_load_bytes_done{label="",path="root.input",schema="hr",table="employee"} 0
dms_full_load_bytes_done{label="",path="root.input",schema="hr",table="zeta"} 0
# TYPE dms_full_load_bytes_total gauge
dms_full_load_bytes_total{label="",path="root.input",schema="hr",table="employee"} 0
dms_full_load_bytes_total{label="",path="root.input",schema="hr",table="zeta"} 0
`
	srv := fakeInstance(t, restored, nil, 0, 0, nil)
	out, errs, code := runTablesCmd(context.Background(), "--url", srv.URL, "--format", "json")
	var stats []TableStats
	if code != 0 || json.Unmarshal([]byte(out), &stats) != nil || len(stats) != 2 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	for _, s := range stats {
		want := map[string]float64{"employee": 100, "zeta": 0}[s.Table]
		if s.LoadPercent != want {
			t.Errorf("%s.%s (%s): load %.1f %%, want %.0f %%", s.Schema, s.Table, s.State, s.LoadPercent, want)
		}
	}
}

// A table whose figures were published by an input that started before the
// one now at the same stream and path (a stream updated with a definition
// without the table) is not shown; one of another path (a broker's other
// input) is.
func TestTablesDropsTablesOfAnEarlierInput(t *testing.T) {
	const metrics = `# TYPE dms_table_state gauge
dms_table_state{label="",path="root.input",schema="hr",stream="s",table="gone"} 2
dms_table_state{label="",path="root.input",schema="hr",stream="s",table="kept"} 2
dms_table_state{label="",path="root.input.broker.inputs.1",schema="hr",stream="s",table="other"} 1
# TYPE dms_table_input_started_unix_ms gauge
dms_table_input_started_unix_ms{label="",path="root.input",schema="hr",stream="s",table="gone"} 1000
dms_table_input_started_unix_ms{label="",path="root.input",schema="hr",stream="s",table="kept"} 2000
dms_table_input_started_unix_ms{label="",path="root.input.broker.inputs.1",schema="hr",stream="s",table="other"} 500
# TYPE dms_csv_to_json_rows counter
dms_csv_to_json_rows{label="",operation="insert",path="root.pipeline.processors.0",schema="hr",stream="s",table="gone"} 3
`
	srv := fakeInstance(t, metrics, map[string]any{"s": map[string]any{"active": true}}, 0, 0, nil)
	out, errs, code := runTablesCmd(context.Background(), "--url", srv.URL, "--format", "json")
	var stats []TableStats
	if code != 0 || json.Unmarshal([]byte(out), &stats) != nil {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	var names []string
	for _, s := range stats {
		names = append(names, s.Table)
	}
	if strings.Join(names, ",") != "kept,other" {
		t.Errorf("tables shown: %v, want kept and other", names)
	}
}

// A refused fetch says what to do about it: an instance behind
// http.basic_auth (401) needs the user and password in --url, or other
// ones; only a missing /metrics (404) points at the prometheus exporter. It
// said "(is the prometheus metrics exporter enabled?)" for every status, a
// 401 included, next to an exporter that was running.
func TestTablesRefusedFetchSaysWhy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No user information: asked for. /auth: this user is refused.
		// /nometrics: let in, no exporter.
		if _, _, ok := r.BasicAuth(); !ok || r.URL.Path == "/auth/metrics" {
			w.Header().Set("WWW-Authenticate", `Basic realm="restricted"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	withAuth := strings.Replace(srv.URL, "http://", "http://admin:secret@", 1)
	for _, c := range []struct {
		url, want, notWant string
	}{
		{srv.URL, "401 Unauthorized: Unauthorized (the instance asks for a user and password: give them in --url, as http://user:password@host:port)", "exporter"},
		{withAuth + "/auth", "401 Unauthorized: Unauthorized (the user or password in --url is refused)", "exporter"},
		{withAuth + "/nometrics", "404 Not Found: 404 page not found (is the prometheus metrics exporter enabled?)", "password"},
	} {
		_, errs, code := runTablesCmd(context.Background(), "--url", c.url)
		if code != 1 || !strings.Contains(errs, c.want) || strings.Contains(errs, c.notWant) {
			t.Errorf("--url %s: exit %d, want 1 and %q:\n%s", c.url, code, c.want, errs)
		}
	}
}

// An instance whose prometheus exporter has a prefix (the field's own
// example, dmsbridge_) shows its tables without --prefix: there is one
// prefix before dmsbridge's metric names in /metrics. tables printed "no
// table statistics yet (is an aws_s3_dms input or dms_csv_to_json processor
// running?)" next to a running load. A --prefix given is used as given.
func TestTablesFindsTheExporterPrefix(t *testing.T) {
	srv := fakeInstance(t, strings.ReplaceAll(sampleMetrics, "dms_", "dmsbridge_dms_"), nil, 0, 0, nil)
	out, errs, code := runTablesCmd(context.Background(), "--url", srv.URL)
	if code != 0 || !strings.Contains(out, "schema01  table01   Full load        120") {
		t.Errorf("without --prefix: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	out, errs, code = runTablesCmd(context.Background(), "--url", srv.URL, "--prefix", "other_")
	if code != 0 || !strings.Contains(out, "no table statistics yet") {
		t.Errorf("--prefix other_: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	// Two prefixes: which one is meant cannot be told.
	two := strings.NewReplacer("dms_", "a_dms_", "input_", "a_input_").Replace(sampleMetrics) +
		strings.NewReplacer("dms_", "b_dms_", "input_", "b_input_").Replace(sampleMetrics)
	stats, err := parseTableStats(strings.NewReader(two), "")
	if err != nil || len(stats) != 0 {
		t.Errorf("two prefixes: %v %+v", err, stats)
	}
}
