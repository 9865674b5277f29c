package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// badRow is a malformed row mixed into good data, and what its dead letter
// must say besides the object and line.
type badRow struct {
	name string
	row  string   // the CSV row, without its newline
	want []string // stable parts of the error text: column and rule
}

// The rows of config/table-definition.json's table01 (ingest_time TIMESTAMP
// pk not null, doi STRING(30), id INT8, value NUMERIC(5,2), data_sig
// STRING(10)) that the processor must refuse, one of each kind.
var badFullLoadRows = []badRow{
	{"wrong field count", "2027-01-01 00:00:00,10.1000/short,5,1.00",
		[]string{"full-load row has 4 fields, expected 5"}},
	{"NUMERIC overflow", "2027-01-01 00:00:01,10.1000/numeric,5,1000.00,0123456789",
		[]string{"column value", `"1000.00"`, "more than 3 digits before the decimal point (precision 5, scale 2)"}},
	{"NUMERIC precision", "2027-01-01 00:00:02,10.1000/scale,5,1.234,0123456789",
		[]string{"column value", `"1.234"`, "more than 2 digits after the decimal point (scale 2)"}},
	{"INT8 overflow", "2027-01-01 00:00:03,10.1000/int8,9223372036854775808,1.00,0123456789",
		[]string{"column id", `"9223372036854775808"`, "out of range -9223372036854775808 to 9223372036854775807"}},
	{"bad timestamp", "2027-13-45 25:61:00,10.1000/time,5,1.00,0123456789",
		[]string{"column ingest_time", `"2027-13-45 25:61:00"`, "out of range"}},
	{"string longer than ColumnLength", "2027-01-01 00:00:05,10.1000/this-doi-is-too-long-for-30,5,1.00,0123456789",
		[]string{"column doi", "35 bytes, longer than ColumnLength 30"}},
	{"NULL primary key", ",10.1000/nullpk,5,1.00,0123456789",
		[]string{"column ingest_time", "NULL in a column that is not nullable"}},
	{"bad UTF-8", "2027-01-01 00:00:07,10.1000/\xff\xfe,5,1.00,0123456789",
		[]string{"column doi", `"10.1000/\xff\xfe"`, "invalid UTF-8 at byte 9"}},
}

var badCDCRows = []badRow{
	{"unknown operation", "X,table01,schema01,2027-01-01 00:00:10,10.1000/op,5,1.00,0123456789",
		[]string{`"X" is not a CDC operation`}},
	{"unknown table in CDC", "I,table99,schema01,2027-01-01 00:00:11,10.1000/tbl,5,1.00,0123456789",
		[]string{`unknown table: schema "schema01" table "table99"`}},
	{"CDC wrong field count", "I,table01,schema01,2027-01-01 00:00:12,10.1000/cdcfields,5,1.00",
		[]string{"CDC row has 7 fields, expected 8"}},
}

// An unterminated quote swallows the rest of the object, so it can only be
// the last row of one. The input passes that tail on whole as one row (with a
// warning naming object, line and offset) and the processor flags it, so it
// lands in the dead-letter file like any other bad row: nothing is lost.
const unterminatedRow = `2027-01-01 00:00:20,"10.1000/open,5,1.00,0123456789`

// mixIn inserts bad rows into a file's rows every `every` good rows and
// returns the new body, the 1-based line of each bad row, and the new line of
// each good row (old line -> new line).
func mixIn(body []byte, bad []badRow, every int) ([]byte, []int, map[int]int) {
	good := bytes.SplitAfter(body, []byte("\n"))
	if len(good) > 0 && len(good[len(good)-1]) == 0 {
		good = good[:len(good)-1]
	}
	var out bytes.Buffer
	var badLines []int
	moved := map[int]int{}
	line, b := 0, 0
	for i, g := range good {
		if i > 0 && i%every == 0 && b < len(bad) {
			line++
			out.WriteString(bad[b].row + "\n")
			badLines = append(badLines, line)
			b++
		}
		line++
		out.Write(g)
		moved[i+1] = line
	}
	for ; b < len(bad); b++ {
		line++
		out.WriteString(bad[b].row + "\n")
		badLines = append(badLines, line)
	}
	return out.Bytes(), badLines, moved
}

type deadLetter struct {
	Error    string          `json:"error"`
	S3Bucket string          `json:"s3_bucket"`
	S3Key    string          `json:"s3_key"`
	Line     json.RawMessage `json:"line"`
	Row      string          `json:"row"`
	RowB64   []byte          `json:"row_base64"`
}

// TestBadRowsGoToDeadLetter runs config/s3-to-kinesis.yaml on a full-load
// file and a CDC file with malformed rows of every kind mixed into good rows:
// each bad row is in the dead-letter file once, with a reason naming the
// object, line and column; every good row is on the stream, in order.
func TestBadRowsGoToDeadLetter(t *testing.T) {
	o := refdata.Options{FullFiles: 1, FullFileBytes: 12000, LastFullFileBytes: 12000, CDCFiles: 1, CDCFileBytes: 8000, Seed: 7}
	files, manifest := refdata.Generate(o)
	const fullKey, cdcKey = "schema01/table01/full_000", "cdcfile/cdc_000"
	if len(files) != 2 || files[0].Key != fullKey || files[1].Key != cdcKey {
		t.Fatalf("unexpected layout %v", files)
	}
	fullBody, fullBad, fullMoved := mixIn(files[0].Body, badFullLoadRows, 20)
	unterminatedAt := struct{ line, offset int }{bytes.Count(fullBody, []byte("\n")) + 1, len(fullBody)}
	fullBody = append(fullBody, unterminatedRow...) // no newline: the object ends in the open quote
	// A row longer than the input's max_row_size (1 MiB by default): passed
	// over by the input with an error, its first 4096 bytes kept.
	longRow := "I,table01,schema01,2027-01-01 00:00:13,10.1000/long,5,1.00," + strings.Repeat("z", 1536<<10)
	cdcRows := append(append([]badRow(nil), badCDCRows...), badRow{"row longer than max_row_size", longRow,
		[]string{fmt.Sprintf("row exceeds max_row_size (1048576 bytes): row of %d bytes not passed on; the message holds its first 4096 bytes", len(longRow))}})
	cdcBody, cdcBad, cdcMoved := mixIn(files[1].Body, cdcRows, 15)
	for i := range manifest {
		switch manifest[i].File {
		case fullKey:
			manifest[i].Line = fullMoved[manifest[i].Line]
		case cdcKey:
			manifest[i].Line = cdcMoved[manifest[i].Line]
		}
	}

	type want struct {
		badRow
		key  string
		line int
	}
	var wants []want
	for i, b := range badFullLoadRows {
		wants = append(wants, want{b, fullKey, fullBad[i]})
	}
	for i, b := range cdcRows {
		if b.row == longRow {
			b.row = longRow[:4096] // what the dead letter holds
		}
		wants = append(wants, want{b, cdcKey, cdcBad[i]})
	}
	wants = append(wants, want{badRow{"unterminated quote at the end of the object", unterminatedRow,
		[]string{"field 2 (byte 20 of the row): unterminated quoted field"}}, fullKey, unterminatedAt.line})

	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	testutil.PutObject(t, bucket, fullKey, fullBody)
	testutil.PutObject(t, bucket, cdcKey, cdcBody)
	dir := t.TempDir()
	deadPath := filepath.Join(dir, "dead-letter.jsonl")
	p := start(t, pipelineEnv(t, bucket, stream, dir), "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)

	waitWritten(t, p, len(manifest), 60*time.Second)
	end := time.Now().Add(20 * time.Second)
	for len(lines(t, deadPath)) < len(wants) && time.Now().Before(end) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // anything more would show up now
	dl := lines(t, deadPath)
	if written := p.MustMetric(t, "kinesis_records_written", ""); int(written) != len(manifest) {
		t.Errorf("%.0f records written, want the %d good rows", written, len(manifest))
	}

	got := map[string]deadLetter{} // "key:line"
	for _, l := range dl {
		var d deadLetter
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("dead letter is not JSON (%v): %s", err, l)
		}
		id := d.S3Key + ":" + strings.Trim(string(d.Line), `"`)
		if _, dup := got[id]; dup {
			t.Errorf("two dead letters for %s", id)
		}
		got[id] = d
	}
	for _, w := range wants {
		id := fmt.Sprintf("%s:%d", w.key, w.line)
		d, ok := got[id]
		if !ok {
			t.Errorf("%s (%s line %d) is not in the dead-letter file", w.name, w.key, w.line)
			continue
		}
		delete(got, id)
		where := []string{fmt.Sprintf("s3://%s/%s line %d", bucket, w.key, w.line)}
		if w.row == longRow[:4096] { // the input's error: object, ETag, line and offset
			where = []string{fmt.Sprintf("s3://%s/%s (etag ", bucket, w.key), fmt.Sprintf("row at line %d, byte offset ", w.line)}
		}
		for _, s := range append(where, w.want...) {
			if !strings.Contains(d.Error, s) {
				t.Errorf("%s: error %q does not say %q", w.name, d.Error, s)
			}
		}
		if d.S3Bucket != bucket {
			t.Errorf("%s: s3_bucket %q", w.name, d.S3Bucket)
		}
		// The dead-letter mapping renders the row with content().string():
		// each byte that is not UTF-8 becomes U+FFFD there (the error text
		// keeps the exact bytes, escaped).
		if d.Row != lossyUTF8(w.row) {
			t.Errorf("%s: row %q, want %q", w.name, d.Row, w.row)
		}
		// row_base64 keeps the exact bytes, invalid UTF-8 included.
		if string(d.RowB64) != w.row {
			t.Errorf("%s: row_base64 decodes to %q, want %q", w.name, d.RowB64, w.row)
		}
	}
	for id, d := range got {
		t.Errorf("unexpected dead letter %s: %s", id, d.Error)
	}
	if len(dl) != len(wants) {
		t.Errorf("%d dead letters, want %d (one per bad row)", len(dl), len(wants))
	}
	// The processor counts the rows it refused; the input the long one.
	if errs := p.MustMetric(t, "dms_csv_to_json_errors", ""); int(errs) != len(wants)-1 {
		t.Errorf("dms_csv_to_json_errors %.0f, want %d", errs, len(wants)-1)
	}
	if long := p.MustMetric(t, "dms_rows_too_long", ""); long != 1 {
		t.Errorf("dms_rows_too_long %.0f, want 1", long)
	}

	// The unterminated quote: no bad object, a warning saying where it is.
	if bad := p.MustMetric(t, "dms_bad_files", ""); bad != 0 {
		t.Errorf("dms_bad_files %.0f, want 0: the open-quote tail is a row, not a bad object", bad)
	}
	wantLog := fmt.Sprintf("s3://%s/%s (etag ", bucket, fullKey)
	wantWhy := fmt.Sprintf("row at line %d, byte offset %d: unterminated quoted field at end of input: passed on whole", unterminatedAt.line, unterminatedAt.offset)
	found := false
	for _, l := range strings.Split(p.Stdout.String()+p.Stderr.String(), "\n") {
		if strings.Contains(l, "level=warn") && strings.Contains(l, wantLog) && strings.Contains(l, wantWhy) {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning logged naming %s and %q", wantLog, wantWhy)
	}
	for i, l := range dl {
		if len(l) > 600 {
			dl[i] = l[:600] + "..."
		}
	}
	t.Logf("dead letters:\n%s", strings.Join(dl, "\n"))

	rep := refdata.Compare(manifest, delivered(t, stream))
	if !rep.OK() || rep.Duplicates != 0 {
		t.Fatalf("good rows: %s", rep)
	}
	t.Logf("good rows: %s; bad rows: %d dead-lettered", rep, len(wants))
}

// lossyUTF8 replaces every byte that is not part of valid UTF-8 with U+FFFD,
// as Bloblang's string() does.
func lossyUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
