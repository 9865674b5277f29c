package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// metricsTableDef: table01 of the reference config, and a second table with
// no rows at all in the full load.
const metricsTableDef = `{
  "TableCount": "2",
  "Tables": [
    {
      "TableName": "table01", "TablePath": "schema01/table01/", "TableOwner": "schema01",
      "TableColumns": [
        { "ColumnName": "ingest_time", "ColumnType": "TIMESTAMP", "ColumnNullable": "false", "ColumnIsPk": "true" },
        { "ColumnName": "doi", "ColumnType": "STRING", "ColumnLength": "30" },
        { "ColumnName": "id", "ColumnType": "INT8" },
        { "ColumnName": "value", "ColumnType": "NUMERIC", "ColumnPrecision": "5", "ColumnScale": "2" },
        { "ColumnName": "data_sig", "ColumnType": "STRING", "ColumnLength": "10" }
      ],
      "TableColumnsTotal": "5"
    },
    {
      "TableName": "empty01", "TablePath": "schema01/empty01/", "TableOwner": "schema01",
      "TableColumns": [
        { "ColumnName": "id", "ColumnType": "INT8", "ColumnNullable": "false", "ColumnIsPk": "true" }
      ],
      "TableColumnsTotal": "1"
    }
  ]
}`

// scrape parses /metrics as Prometheus does (failing the test when it does
// not parse).
func scrape(t *testing.T, p *Proc) map[string]*dtoFamily {
	t.Helper()
	code, body, err := p.Get("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as the Prometheus text format: %v", err)
	}
	out := map[string]*dtoFamily{}
	for name, f := range fams {
		d := &dtoFamily{typ: f.GetType().String()}
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, lp := range m.GetLabel() {
				ls[lp.GetName()] = lp.GetValue()
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			d.series = append(d.series, dtoSeries{ls, v})
		}
		out[name] = d
	}
	return out
}

type dtoSeries struct {
	labels map[string]string
	v      float64
}

type dtoFamily struct {
	typ    string
	series []dtoSeries
}

// sum adds the series whose labels include every pair of want.
func (f *dtoFamily) sum(want map[string]string) (float64, int) {
	if f == nil {
		return 0, 0
	}
	var s float64
	n := 0
outer:
	for _, se := range f.series {
		for k, v := range want {
			if se.labels[k] != v {
				continue outer
			}
		}
		s += se.v
		n++
	}
	return s, n
}

// TestMetricsCountWhatWasWritten runs a full load (a table with rows, one of
// them bad, and a table with none) then a CDC file of inserts, updates,
// deletes and a bad row, and checks that /metrics parses, holds every
// documented metric with its documented type and labels, and that the
// figures of /metrics and `dmsbridge tables` are what reached Kinesis and the
// dead letter; then again after a restart.
func TestMetricsCountWhatWasWritten(t *testing.T) {
	full := "2027-01-01 00:00:00,10.1000/a,1,1.00,s1\n" +
		"2027-01-01 00:00:01,10.1000/b,2,2.00,s2\n" +
		"2027-01-01 00:00:02,10.1000/c,3,1000.00,s3\n" + // bad: NUMERIC(5,2) overflow
		"2027-01-01 00:00:03,10.1000/d,4,4.00,s4\n"
	cdc := "I,table01,schema01,2027-01-02 00:00:00,10.1000/e,5,5.00,s5\n" +
		"I,table01,schema01,2027-01-02 00:00:01,10.1000/f,6,6.00,s6\n" +
		"U,table01,schema01,2027-01-01 00:00:00,10.1000/a,1,1.50,s1\n" +
		"I,table01,schema01,2027-01-02 00:00:02,10.1000/g,x,6.00,s7\n" + // bad: INT8
		"U,table01,schema01,2027-01-01 00:00:01,10.1000/b,2,2.50,s2\n" +
		"D,table01,schema01,2027-01-01 00:00:03,10.1000/d,4,4.00,s4\n" +
		"I,empty01,schema01,7\n"
	const (
		wantFullRows, wantFullGood = 4, 3
		wantIns, wantUpd, wantDel  = 2, 2, 1
		wantEmptyIns               = 1
		wantBad                    = 2
		wantWritten                = wantFullGood + wantIns + wantUpd + wantDel + wantEmptyIns
	)

	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	testutil.PutObject(t, bucket, "schema01/table01/full_000", []byte(full))
	testutil.PutObject(t, bucket, "cdcfile/cdc_000", []byte(cdc))
	dir := t.TempDir()
	def := filepath.Join(dir, "tables.json")
	if err := os.WriteFile(def, []byte(metricsTableDef), 0o644); err != nil {
		t.Fatal(err)
	}
	env := pipelineEnv(t, bucket, stream, dir)
	env["TABLE_DEFINITION"] = def
	deadPath := env["DEAD_LETTER_PATH"]

	p := start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)
	waitWritten(t, p, wantWritten, 60*time.Second)
	if err := testutil.WaitFor(20*time.Second, func() bool { return len(lines(t, deadPath)) >= wantBad }); err != nil {
		t.Fatalf("%d dead letters, want %d", len(lines(t, deadPath)), wantBad)
	}
	time.Sleep(1500 * time.Millisecond) // the checkpoint is saved (interval 1s); anything more would show now

	m := scrape(t, p)
	// Every documented metric, with its type and its labels besides
	// Benthos' own (label, path).
	documented := []struct {
		name, typ string
		labels    []string
	}{
		{"dms_table_state", "GAUGE", []string{"schema", "table"}},
		{"dms_full_load_rows", "GAUGE", []string{"schema", "table"}},
		{"dms_full_load_bytes_done", "GAUGE", []string{"schema", "table"}},
		{"dms_full_load_bytes_total", "GAUGE", []string{"schema", "table"}},
		{"dms_full_load_files_done", "GAUGE", []string{"schema", "table"}},
		{"dms_full_load_files_total", "GAUGE", []string{"schema", "table"}},
		{"dms_full_load_start_unix", "GAUGE", []string{"schema", "table"}},
		{"dms_full_load_end_unix", "GAUGE", []string{"schema", "table"}},
		{"dms_table_last_update_unix", "GAUGE", []string{"schema", "table"}},
		{"dms_table_input_started_unix_ms", "GAUGE", []string{"schema", "table"}},
		{"dms_csv_to_json_rows", "COUNTER", []string{"schema", "table", "operation"}},
		{"dms_csv_to_json_errors", "COUNTER", []string{"schema", "table", "reason"}},
		{"dms_cdc_files_processed", "GAUGE", nil},
		{"dms_cdc_files_pending", "GAUGE", nil},
		{"dms_cdc_lag_seconds", "GAUGE", nil},
		{"dms_cdc_late_files", "GAUGE", nil},
		{"dms_cdc_rows", "GAUGE", nil},
		{"dms_rows_too_long", "COUNTER", nil},
		{"dms_bad_files", "COUNTER", nil},
		{"dms_checkpoint_save_errors", "COUNTER", nil},
		{"dms_checkpoint_save_failing", "GAUGE", nil},
		{"kinesis_records_written", "COUNTER", nil},
		{"kinesis_bytes_written", "COUNTER", nil},
		{"kinesis_requests", "COUNTER", []string{"outcome"}},
		{"kinesis_records_throttled", "COUNTER", []string{"shard"}},
		{"kinesis_retries", "COUNTER", nil},
		{"kinesis_duplicates_ordering", "COUNTER", nil},
		{"kinesis_resends_unknown_outcome", "COUNTER", nil},
		{"kinesis_records_failed", "COUNTER", nil},
		{"kinesis_dead_lettered", "COUNTER", nil},
		{"kinesis_request_records", "GAUGE", nil},
		{"kinesis_request_bytes", "GAUGE", nil},
		{"kinesis_record_bytes_max", "GAUGE", nil},
		{"kinesis_shard_rate_percent", "GAUGE", []string{"shard"}},
		{"kinesis_put_records_latency_ns", "SUMMARY", nil},
	}
	for _, d := range documented {
		f := m[d.name]
		if f == nil {
			t.Errorf("/metrics has no %s", d.name)
			continue
		}
		if f.typ != d.typ {
			t.Errorf("%s is a %s, want a %s", d.name, f.typ, d.typ)
		}
		want := append([]string{"label", "path"}, d.labels...)
		sort.Strings(want)
		for _, s := range f.series {
			var got []string
			for k := range s.labels {
				if k != "quantile" {
					got = append(got, k)
				}
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s has labels %v, want %v", d.name, got, want)
				break
			}
		}
	}

	t1 := map[string]string{"schema": "schema01", "table": "table01"}
	e1 := map[string]string{"schema": "schema01", "table": "empty01"}
	check := func(when, name string, sel map[string]string, want float64) {
		t.Helper()
		got, n := m[name].sum(sel)
		if n == 0 || got != want {
			t.Errorf("%s: %s%v = %v (%d series), want %v", when, name, sel, got, n, want)
		}
	}
	with := func(a map[string]string, k, v string) map[string]string {
		b := map[string]string{k: v}
		for x, y := range a {
			b[x] = y
		}
		return b
	}
	check("first run", "dms_table_state", t1, 2)
	check("first run", "dms_table_state", e1, 2)
	check("first run", "dms_full_load_rows", t1, wantFullRows)
	check("first run", "dms_full_load_rows", e1, 0)
	check("first run", "dms_full_load_files_done", t1, 1)
	check("first run", "dms_full_load_files_total", t1, 1)
	check("first run", "dms_full_load_bytes_done", t1, float64(len(full)))
	check("first run", "dms_full_load_bytes_total", t1, float64(len(full)))
	check("first run", "dms_csv_to_json_rows", with(t1, "operation", "load"), wantFullGood)
	check("first run", "dms_csv_to_json_rows", with(t1, "operation", "insert"), wantIns)
	check("first run", "dms_csv_to_json_rows", with(t1, "operation", "update"), wantUpd)
	check("first run", "dms_csv_to_json_rows", with(t1, "operation", "delete"), wantDel)
	check("first run", "dms_csv_to_json_rows", with(e1, "operation", "insert"), wantEmptyIns)
	check("first run", "dms_csv_to_json_errors", t1, wantBad)
	check("first run", "dms_cdc_rows", nil, 7)
	check("first run", "dms_cdc_files_processed", nil, 1)
	check("first run", "dms_cdc_files_pending", nil, 0)
	check("first run", "kinesis_records_written", nil, wantWritten)
	check("first run", "kinesis_dead_lettered", nil, wantBad)
	check("first run", "kinesis_records_failed", nil, 0)
	check("first run", "kinesis_retries", nil, 0)
	if recs := testutil.ReadStream(t, stream); len(recs) != wantWritten {
		t.Errorf("%d records on the stream, want %d", len(recs), wantWritten)
	}
	if dl := lines(t, deadPath); len(dl) != wantBad {
		t.Errorf("%d dead letters, want %d", len(dl), wantBad)
	}

	tableRows := func(when string) map[string]tableRow {
		got := map[string]tableRow{}
		for _, r := range tablesJSON(t, p) {
			got[r.Schema+"."+r.Table] = r
		}
		if len(got) != 2 {
			t.Errorf("%s: dmsbridge tables shows %v, want schema01.table01 and schema01.empty01", when, got)
		}
		return got
	}
	before := tableRows("first run")
	want := map[string]tableRow{
		"schema01.table01": {Schema: "schema01", Table: "table01", State: "Table completed", FullLoadRows: wantFullRows, Inserts: wantIns, Updates: wantUpd, Deletes: wantDel, Errors: wantBad, Percent: 100},
		"schema01.empty01": {Schema: "schema01", Table: "empty01", State: "Table completed", FullLoadRows: 0, Inserts: wantEmptyIns, Percent: 100},
	}
	for k, w := range want {
		g := before[k]
		if g.Start == "" || g.End == "" || g.LastUpdate == "" || g.End < g.Start || g.LastUpdate < g.End {
			t.Errorf("first run: %s times: start %q end %q last update %q", k, g.Start, g.End, g.LastUpdate)
		}
		g.Start, g.End, g.LastUpdate = "", "", ""
		if g != w {
			t.Errorf("first run: %s\n got %+v\nwant %+v", k, g, w)
		}
	}

	// A restart from the checkpoint: the input's figures carry on, neither
	// lost nor counted twice; the processor's counters start from zero
	// (documented), so nothing new is counted.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p = start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)
	time.Sleep(time.Second) // past the first CDC poll
	m = scrape(t, p)
	check("after restart", "dms_table_state", t1, 2)
	check("after restart", "dms_table_state", e1, 2)
	check("after restart", "dms_full_load_rows", t1, wantFullRows)
	check("after restart", "dms_full_load_rows", e1, 0)
	check("after restart", "dms_cdc_rows", nil, 7)
	check("after restart", "dms_cdc_files_processed", nil, 1)
	check("after restart", "kinesis_records_written", nil, 0)
	check("after restart", "kinesis_dead_lettered", nil, 0)
	after := tableRows("after restart")
	for k, b := range before {
		a := after[k]
		if a.State != b.State || a.FullLoadRows != b.FullLoadRows || a.Start != b.Start || a.End != b.End || a.Percent != b.Percent {
			t.Errorf("after restart: %s\n got %+v\nwant the input's figures of before %+v", k, a, b)
		}
		if a.Inserts+a.Updates+a.Deletes+a.Errors != 0 {
			t.Errorf("after restart: %s counts %d/%d/%d/%d operations, none were processed", k, a.Inserts, a.Updates, a.Deletes, a.Errors)
		}
	}
	if recs := testutil.ReadStream(t, stream); len(recs) != wantWritten {
		t.Errorf("after restart: %d records on the stream, want %d", len(recs), wantWritten)
	}
	b, _ := json.MarshalIndent(after, "", "  ")
	t.Logf("after restart: %s", b)
}
