package csvjson

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Every bad row keeps its body and metadata, is flagged with an error naming
// file, line, table, column, value and rule, and the rows around it convert.
func TestBadRows(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/reference.json\nmessage_format: json-unformatted\n")
	const key = "schema01/table01/full_000"
	good := "2023-10-01 12:00:00,10.1000/182,1,1.5,sig"
	cases := []struct {
		name string
		r    row
		want []string
	}{
		{"numeric", fullLoad("schema01", "table01", key, 12, "2023-10-01 12:00:00,d,1,12a.5,s"),
			[]string{`s3://bkt/schema01/table01/full_000 line 12 table schema01.table01 column value: "12a.5" is not a NUMERIC(5,2): not a decimal number`}},
		{"numeric overflow", fullLoad("schema01", "table01", key, 13, "2023-10-01 12:00:00,d,1,1234.5,s"),
			[]string{"line 13", "column value", `"1234.5" is not a NUMERIC(5,2): more than 3 digits before the decimal point`}},
		{"int overflow", fullLoad("schema01", "table01", key, 14, "2023-10-01 12:00:00,d,9223372036854775808,1,s"),
			[]string{"column id", `"9223372036854775808" is not a INT8: out of range`}},
		{"field count", fullLoad("schema01", "table01", key, 15, "2023-10-01 12:00:00,d,1,1"),
			[]string{"line 15 table schema01.table01: full-load row has 4 fields, expected 5"}},
		{"bad op column", fullLoad("schema01", "table01", key, 16, "X,"+good),
			[]string{"a leading operation column must be I or INSERT, not \"X\""}},
		{"null not nullable", fullLoad("schema01", "table01", key, 17, "2023-10-01 12:00:00,,1,1,s"),
			[]string{"column doi: NULL in a column that is not nullable"}},
		{"bad utf8", fullLoad("schema01", "table01", key, 18, "2023-10-01 12:00:00,a\xffb,1,1,s"),
			[]string{`column doi: "a\xffb" is not a STRING(30): invalid UTF-8 at byte 2`}},
		{"too long", fullLoad("schema01", "table01", key, 19, "2023-10-01 12:00:00,d,1,1,12345678901"),
			[]string{"column data_sig", "11 bytes, longer than ColumnLength 10"}},
		{"unterminated quote", fullLoad("schema01", "table01", key, 20, `2023-10-01 12:00:00,"abc,1,1,s`),
			[]string{"line 20 table schema01.table01: malformed CSV row: field 2 (byte 20 of the row): unterminated quoted field", `; value "\"abc,1,1,s"`}},
		{"bad datetime", fullLoad("schema01", "table01", key, 21, "2023-02-30 12:00:00,d,1,1,s"),
			[]string{"column ingest_time", "is not a DATETIME: day out of range"}},
		{"unknown table", fullLoad("schema01", "nope", key, 22, good),
			[]string{`unknown table: schema "schema01" table "nope"`}},
		{"unknown cdc table", cdc("cdc/cdc_000", 23, "I,other,schema01,"+good),
			[]string{`s3://bkt/cdc/cdc_000 line 23: unknown table: schema "schema01" table "other"`}},
		{"unknown operation", cdc("cdc/cdc_000", 24, "MERGE,table01,schema01,"+good),
			[]string{`table schema01.table01: "MERGE" is not a CDC operation`}},
		{"cdc field count", cdc("cdc/cdc_000", 25, "U,table01,schema01,1,2"),
			[]string{"CDC row has 5 fields, expected 8"}},
		{"long value is truncated in the message", fullLoad("schema01", "table01", key, 26, "2023-10-01 12:00:00,d,1,"+string(make([]byte, 100))+",s"),
			[]string{`...`}},
	}
	var rows []row
	rows = append(rows, fullLoad("schema01", "table01", key, 1, good))
	for _, c := range cases {
		rows = append(rows, c.r)
	}
	rows = append(rows, fullLoad("schema01", "table01", key, 99, good))
	out := process(t, p, rows...)
	if len(out) != len(rows) {
		t.Fatalf("%d messages out, %d in", len(out), len(rows))
	}
	mustOK(t, out[0])
	mustOK(t, out[len(out)-1])
	for i, c := range cases {
		m := out[i+1]
		t.Run(c.name, func(t *testing.T) {
			mustErr(t, m, c.want...)
			if got := body(t, m); got != c.r.body {
				t.Fatalf("body changed to %q", got)
			}
			if meta(m, "s3_key") != c.r.meta["s3_key"] || meta(m, "dms_partition_key") != "" || meta(m, "dms_operation") != "" {
				t.Fatalf("metadata changed: key %q partition %q op %q", meta(m, "s3_key"), meta(m, "dms_partition_key"), meta(m, "dms_operation"))
			}
		})
	}
	if len(p.pool.New().(*worker).errCounts) != 0 {
		t.Fatal("fresh worker has error counts")
	}
}

func TestMetadataTypes(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/employee.json\nmessage_format: json-unformatted\n")
	// dms_line as a string and as an int; s3_key missing: the location says "row"
	r1 := row{"1,a", map[string]any{"dms_phase": "full-load", "dms_schema": "hr", "dms_table": "employee", "s3_bucket": "b", "s3_key": "k", "dms_line": "42"}}
	r2 := row{"1,a", map[string]any{"dms_phase": "full-load", "dms_schema": "hr", "dms_table": "employee", "dms_line": int(7)}}
	out := process(t, p, r1, r2)
	mustErr(t, out[0], "s3://b/k line 42 table hr.employee: full-load row has 2 fields")
	mustErr(t, out[1], "row line 7 table hr.employee")
}

// A message flagged upstream (the input passes a row longer than its
// max_row_size on this way) keeps its error, bytes and metadata: the
// processor neither converts it nor replaces the error, and the rows around
// it convert normally.
func TestUpstreamErrorLeftAlone(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/employee.json\nmessage_format: json-unformatted\n")
	good := fullLoad("hr", "employee", "hr/employee/LOAD1.csv", 1, "101,Smith,Bob,2014-06-04 00:00:00,New York")
	flagged := fullLoad("hr", "employee", "hr/employee/LOAD1.csv", 2, "102,Smith,Bob,2014-06-04 00:00:00,Boston")
	batch := mkBatch(good, flagged, good)
	batch[1].SetError(errors.New("row at line 2, byte offset 44: row exceeds max_row_size"))
	out, err := p.ProcessBatch(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	ms := out[0]
	mustOK(t, ms[0])
	mustOK(t, ms[2])
	mustErr(t, ms[1], "row at line 2, byte offset 44: row exceeds max_row_size")
	if got := body(t, ms[1]); got != flagged.body {
		t.Fatalf("flagged body changed to %q", got)
	}
	if meta(ms[1], "dms_partition_key") != "" || meta(ms[1], "dms_operation") != "" {
		t.Fatal("flagged message got processor metadata")
	}
}

// Bad rows are never silent in the log: the first is reported at once with
// the count per table and reason and where it is, later ones together at
// most every badLogInterval, the rest at close; the rows' values stay out of
// the log.
func TestBadRowsAreLoggedRateLimited(t *testing.T) {
	p, logs := newLoggedProc(t, "table_definition: ./testdata/reference.json\nmessage_format: json-unformatted\n")
	now := fixedNow
	nowFunc = func() time.Time { return now }
	t.Cleanup(func() { nowFunc = func() time.Time { return fixedNow } })
	const key = "schema01/table01/full_000"
	good := "2023-10-01 12:00:00,10.1000/182,1,1.5,sig"
	warnings := func() []string {
		var w []string
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if l != "" {
				w = append(w, l)
			}
		}
		return w
	}

	process(t, p, fullLoad("schema01", "table01", key, 1, good),
		fullLoad("schema01", "table01", key, 2, "2023-10-01 12:00:00,d,1,12a.5,s"),
		fullLoad("schema01", "table01", key, 3, "2023-10-01 12:00:00,d,1,1"))
	w := warnings()
	if len(w) != 1 || !strings.Contains(w[0], "2 rows flagged as bad (schema01.table01 bad_value 1, schema01.table01 field_count 1), the first at s3://bkt/schema01/table01/full_000 line 2;") {
		t.Fatalf("after the first bad rows, log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "12a.5") {
		t.Fatalf("a row's value reached the log:\n%s", logs.String())
	}

	// Within the interval: counted, not logged; good rows add nothing.
	process(t, p, cdc("cdc/cdc_000", 7, "MERGE,table01,schema01,"+good))
	process(t, p, fullLoad("schema01", "table01", key, 8, good))
	if n := len(warnings()); n != 1 {
		t.Fatalf("%d warnings within the interval, want 1:\n%s", n, logs.String())
	}
	// Once the interval has passed, the next bad row reports all since.
	now = now.Add(badLogInterval)
	process(t, p, cdc("cdc/cdc_001", 5, "I,other,schema01,"+good))
	w = warnings()
	if len(w) != 2 || !strings.Contains(w[1], "2 rows flagged as bad ((no table) unknown_table 1, schema01.table01 unknown_operation 1), the first at s3://bkt/cdc/cdc_000 line 7;") {
		t.Fatalf("after the interval, log:\n%s", logs.String())
	}
	// What is left is logged at close, once.
	process(t, p, cdc("cdc/cdc_001", 9, "U,table01,schema01,1,2"))
	if n := len(warnings()); n != 2 {
		t.Fatalf("%d warnings, want 2 before close:\n%s", n, logs.String())
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w = warnings()
	if len(w) != 3 || !strings.Contains(w[2], "1 row flagged as bad (schema01.table01 field_count 1), the first at s3://bkt/cdc/cdc_001 line 9;") {
		t.Fatalf("after close, log:\n%s", logs.String())
	}
}

// Flagged rows counted after a warning are reported once the interval has
// passed even when no further bad row comes. Before, they waited for the
// next bad row or for close: a burst of bad rows, then none for days, left
// the log saying one row was flagged while the dead letter held them all.
func TestBadRowsPendingAreLoggedWithoutFurtherBadRows(t *testing.T) {
	old := badLogInterval
	badLogInterval = 200 * time.Millisecond
	t.Cleanup(func() { badLogInterval = old })
	nowFunc = time.Now
	t.Cleanup(func() { nowFunc = func() time.Time { return fixedNow } })
	var mu sync.Mutex
	logs := &strings.Builder{}
	logger := service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	conf, err := processorSpec().ParseYAML("table_definition: ./testdata/reference.json\nmessage_format: json-unformatted\ntruncation_policy: truncate\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcessor(conf, service.MockResources(service.MockResourcesOptUseLogger(logger)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	text := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	const key = "schema01/table01/full_000"
	process(t, p, fullLoad("schema01", "table01", key, 1, "2023-10-01 12:00:00,d,1,12a.5,s"))
	process(t, p, fullLoad("schema01", "table01", key, 2, "2023-10-01 12:00:00,d,1,1"))
	if n := strings.Count(text(), "flagged as bad"); n != 1 {
		t.Fatalf("%d warnings, want the first at once:\n%s", n, text())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(text(), "1 row flagged as bad (schema01.table01 field_count 1), the first at s3://bkt/schema01/table01/full_000 line 2;") {
		if time.Now().After(deadline) {
			t.Fatalf("the row counted after the first warning is not reported 5 s later (interval %v) without further bad rows:\n%s", badLogInterval, text())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(text(), "flagged as bad"); n != 2 {
		t.Fatalf("%d warnings, want 2 (nothing left for close):\n%s", n, text())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
