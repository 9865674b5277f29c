package csvjson

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const mixedRow = `1,eu,-128,32767,-2147483648,255,18446744073709551615,12345678901234567890123456789012.5,0.1,2.5e-10,Y,2024-02-29,23:59:59.9999,2024-02-29 23:59:59.1234567,02/29/2024 23:59:59.123456789,"Smith, ""Bob""","line1
line2",DEADbeef,0x00ff,"é"`

const mixedData = `{"id":1,"region":"eu","i1":-128,"i2":32767,"i4":-2147483648,"u1":255,"u8":18446744073709551615,"amount":12345678901234567890123456789012.5000,"r4":0.1,"r8":2.5e-10,"flag":true,"born":"2024-02-29","at":"23:59:59.999","created":"2024-02-29T23:59:59.123456Z","updated":"2024-02-29T23:59:59.123456789Z","name":"Smith, \"Bob\"","note":"line1\nline2","sig":"0xDEADBEEF","blob":"0x00FF","wname":"é"}`

func dataOf(t *testing.T, b string) string {
	t.Helper()
	i := strings.Index(b, `,"metadata":`)
	if !strings.HasPrefix(b, `{"data":`) || i < 0 {
		t.Fatalf("unexpected body %s", b)
	}
	return b[len(`{"data":`):i]
}

func TestEveryTypeAndQuoting(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\n")
	out := process(t, p, fullLoad("app", "mixed", "k", 1, mixedRow))
	mustOK(t, out[0])
	b := body(t, out[0])
	if got := dataOf(t, b); got != mixedData {
		t.Fatalf("got\n%s\nwant\n%s", got, mixedData)
	}
	if !json.Valid([]byte(b)) {
		t.Fatal("invalid JSON")
	}
	// composite primary key joined with "."
	if k := meta(out[0], "dms_partition_key"); k != "1.eu" {
		t.Fatalf("composite key %q", k)
	}
}

func TestNullAndEmpty(t *testing.T) {
	nulls := "2,eu" + strings.Repeat(",", 18)
	quotedEmpty := `3,eu,,,,,,,,,,,,,,"",,,,""`
	for _, c := range []struct {
		conf   string
		row    string
		want   string
		errMsg string
	}{
		{"", nulls, `{"id":2,"region":"eu"}`, ""},
		{"include_null_and_empty: true\n", nulls, `{"id":2,"region":"eu","i1":null,"i2":null,"i4":null,"u1":null,"u8":null,"amount":null,"r4":null,"r8":null,"flag":null,"born":null,"at":null,"created":null,"updated":null,"name":null,"note":null,"sig":null,"blob":null,"wname":null}`, ""},
		// quoted empty is an empty string, kept even when NULLs are omitted
		{"", quotedEmpty, `{"id":3,"region":"eu","name":"","wname":""}`, ""},
		// with csv_null_value, empty fields are empty strings: fine for strings, an error for numbers
		{"csv_null_value: '\\N'\n", `4,eu,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,,\N,\N,\N,`, `{"id":4,"region":"eu","name":"","wname":""}`, ""},
		{"csv_null_value: '\\N'\n", `4,eu,,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,,\N,\N,\N,`, "", `column i1: "" is not a INT1: not a whole number`},
		{"csv_null_value: 'NULL'\n", `5,NULL` + strings.Repeat(",NULL", 18), "", "column region: NULL in a column that is not nullable"},
		// ... and a zero-length binary value for BYTE/BLOB (hex of no bytes), not an error
		{"csv_null_value: '\\N'\n", `4,eu,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,,,\N`, `{"id":4,"region":"eu","sig":"0x","blob":"0x"}`, ""},
		{"csv_null_value: '\\N'\nno_hex_prefix: true\n", `4,eu,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,\N,,,\N`, `{"id":4,"region":"eu","sig":"","blob":""}`, ""},
	} {
		p := newTestProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\n"+c.conf)
		out := process(t, p, fullLoad("app", "mixed", "k", 1, c.row))
		if c.errMsg != "" {
			mustErr(t, out[0], c.errMsg)
			continue
		}
		mustOK(t, out[0])
		if got := dataOf(t, body(t, out[0])); got != c.want {
			t.Fatalf("%s%q:\n got %s\nwant %s", c.conf, c.row, got, c.want)
		}
	}
}

func TestRFC4180Off(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\nrfc4180: false\ncsv_delimiter: '\\t'\n")
	row := "1\t\"eu\"" + strings.Repeat("\t", 13) + "\t\"a,b\"\t" + "\t\t\t"
	out := process(t, p, fullLoad("app", "mixed", "k", 1, row))
	mustOK(t, out[0])
	if got := dataOf(t, body(t, out[0])); got != `{"id":1,"region":"\"eu\"","name":"\"a,b\""}` {
		t.Fatalf("got %s", got)
	}
}

func TestPartitionKeys(t *testing.T) {
	def := "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\n"
	r := "7,us" + strings.Repeat(",", 18)
	for _, c := range []struct {
		conf, phase, key, keyType, keyValue string
	}{
		{"", "load", "7.us", "primary-key", ""},
		{"include_partition_value: true\n", "load", "7.us", "primary-key", "7.us"},
		{"partition_include_schema_table: true\ninclude_partition_value: true\n", "load", "app.mixed.7.us", "primary-key", "app.mixed.7.us"},
		{"", "cdc", "app.mixed", "schema-table", ""},
		{"include_partition_value: true\n", "cdc", "app.mixed", "schema-table", ""},
		{"cdc_partition_key: primary-key\ninclude_partition_value: true\n", "cdc", "7.us", "primary-key", "7.us"},
	} {
		p := newTestProc(t, def+c.conf)
		var in row
		if c.phase == "load" {
			in = fullLoad("app", "mixed", "k", 1, r)
		} else {
			in = cdc("c", 1, "U,mixed,app,"+r)
		}
		m := process(t, p, in)[0]
		mustOK(t, m)
		b := body(t, m)
		if meta(m, "dms_partition_key") != c.key {
			t.Errorf("%s%s: key %q, want %q", c.conf, c.phase, meta(m, "dms_partition_key"), c.key)
		}
		if !strings.Contains(b, `"partition-key-type":"`+c.keyType+`"`) {
			t.Errorf("%s%s: %s", c.conf, c.phase, b)
		}
		hasValue := strings.Contains(b, `"partition-key-value"`)
		if (c.keyValue != "") != hasValue || (hasValue && !strings.Contains(b, `"partition-key-value":"`+c.keyValue+`","schema-name"`)) {
			t.Errorf("%s%s: partition-key-value: %s", c.conf, c.phase, b)
		}
	}
	// a table without a primary key falls back to schema-table
	p := newTestProc(t, def)
	m := process(t, p, fullLoad("app", "tags", "k", 1, "x,1"))[0]
	mustOK(t, m)
	if meta(m, "dms_partition_key") != "app.tags" || !strings.Contains(body(t, m), `"partition-key-type":"schema-table"`) {
		t.Fatalf("no-pk table: key %q body %s", meta(m, "dms_partition_key"), body(t, m))
	}
	// keys longer than 256 characters are cut
	long := strings.Repeat("é", 300)
	if got := kinesisKey(long, "x"); len([]rune(got)) != 256 {
		t.Fatalf("cut to %d characters", len([]rune(got)))
	}
	if got := string(cutKey([]byte(long))); len([]rune(got)) != 256 || got != kinesisKey(long, "x") {
		t.Fatal("cutKey differs from kinesisKey")
	}
	// Kinesis counts UTF-16 code units (kinesalite and the output too): a
	// character outside the BMP counts two, so a key of emoji is cut to
	// 128 of them, never in the middle of one.
	for _, long := range []string{strings.Repeat("😀", 200), "a" + strings.Repeat("😀", 200)} {
		const want = 128 // 128 emoji, or "a" and 127 emoji (255 units; one more is 257)
		got := kinesisKey(long, "x")
		units := 0
		for _, r := range got {
			units++
			if r > 0xFFFF {
				units++
			}
		}
		if units > 256 || len([]rune(got)) != want || !utf8.ValidString(got) {
			t.Fatalf("key of %d characters cut to %d characters, %d UTF-16 units", len([]rune(long)), len([]rune(got)), units)
		}
		if got2 := string(cutKey([]byte(long))); got2 != got {
			t.Fatal("cutKey differs from kinesisKey")
		}
	}
}

func TestTransactionDetails(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/employee.json\nmessage_format: json-unformatted\ninclude_transaction_details: true\n")
	r1 := cdc("changedata/CDC00001.csv", 1, "I,employee,hr,101,Smith,Bob,2014-06-04,New York")
	r1.meta["s3_last_modified"] = "2026-11-01T10:11:12.5Z"
	r2 := cdc("changedata/CDC00001.csv", 2, "D,employee,hr,101,Smith,Bob,2014-06-04,New York")
	r2.meta["s3_last_modified"] = "2026-11-01T10:11:12.5Z"
	r2.meta["dms_position"] = "cdc|changedata/CDC00001.csv|000000000002"
	load := fullLoad("hr", "employee", "hr/employee/LOAD001.csv", 1, "101,Smith,Bob,2014-06-04,New York")
	out := process(t, p, r1, r2, load)
	id := txID("bkt", "changedata/CDC00001.csv")
	if id >= 1<<53 || id == 0 {
		t.Fatalf("transaction id %d not in 53 bits", id)
	}
	w1 := fmt.Sprintf(`"schema-name":"hr","table-name":"employee","transaction-id":%d,"transaction-record-id":1,"commit-timestamp":"2026-11-01T10:11:12.500000Z","stream-position":"s3://bkt/changedata/CDC00001.csv:1"}}`, id)
	w2 := fmt.Sprintf(`"schema-name":"hr","table-name":"employee","transaction-id":%d,"transaction-record-id":2,"prev-transaction-id":%d,"prev-transaction-record-id":1,"commit-timestamp":"2026-11-01T10:11:12.500000Z","stream-position":"cdc|changedata/CDC00001.csv|000000000002"}}`, id, id)
	for i, w := range []string{w1, w2} {
		mustOK(t, out[i])
		if b := body(t, out[i]); !strings.HasSuffix(b, w+"\n") {
			t.Fatalf("row %d: %s\nwant suffix %s", i+1, b, w)
		}
	}
	if b := body(t, out[2]); strings.Contains(b, "transaction") {
		t.Fatalf("load records carry no transaction details: %s", b)
	}
	// deterministic: the same position gives the same record
	again := process(t, p, cdc("changedata/CDC00001.csv", 1, "I,employee,hr,101,Smith,Bob,2014-06-04,New York"))
	if !strings.Contains(body(t, again[0]), fmt.Sprintf(`"transaction-id":%d,`, id)) {
		t.Fatal("transaction id not deterministic")
	}
	// the same object key in another bucket is another file: another id,
	// within a batch and in the next one
	other := cdc("changedata/CDC00001.csv", 1, "I,employee,hr,101,Smith,Bob,2014-06-04,New York")
	other.meta["s3_bucket"] = "other-bucket"
	otherID := txID("other-bucket", "changedata/CDC00001.csv")
	for _, batch := range [][]row{{r1, other}, {other}} {
		got := process(t, p, batch...)
		if b := body(t, got[len(got)-1]); !strings.Contains(b, fmt.Sprintf(`"transaction-id":%d,`, otherID)) || !strings.Contains(b, "s3://other-bucket/") {
			t.Fatalf("row of another bucket: want transaction-id %d, got %s", otherID, b)
		}
	}
}

func TestAutoPhase(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/employee.json\nmessage_format: json-unformatted\n")
	out := process(t, p,
		row{"101,Smith,Bob,2014-06-04,New York", nil},
		row{"u,employee,hr,101,Smith,Bob,2014-06-04,New York", nil},
	)
	mustOK(t, out[0])
	mustOK(t, out[1])
	if meta(out[0], "dms_operation") != "load" || meta(out[1], "dms_operation") != "update" {
		t.Fatalf("ops %q %q", meta(out[0], "dms_operation"), meta(out[1], "dms_operation"))
	}
	if meta(out[0], "dms_schema") != "hr" || meta(out[0], "dms_table") != "employee" {
		t.Fatal("standalone full-load rows get dms_schema/dms_table")
	}
	p = newTestProc(t, "table_definition: ./testdata/mixed.json\n")
	mustErr(t, process(t, p, row{"x,1", nil})[0], "full-load row without dms_schema and dms_table metadata")
	p = newTestProc(t, "table_definition: ./testdata/mixed.json\ndefault_phase: cdc\nmessage_format: json-unformatted\n")
	m := process(t, p, row{"d,tags,app,x,1", nil})[0]
	mustOK(t, m)
	if meta(m, "dms_operation") != "delete" || meta(m, "dms_table") != "tags" {
		t.Fatal("default_phase cdc")
	}
}

func TestCDCMixedTables(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\n")
	out := process(t, p,
		cdc("c", 1, "INSERT,tags,app,a,1"),
		cdc("c", 2, "insert,mixed,app,9,eu"+strings.Repeat(",", 18)),
		cdc("c", 3, "Delete,tags,app,a,"),
	)
	wantTables := []string{"tags", "mixed", "tags"}
	for i, m := range out {
		mustOK(t, m)
		if meta(m, "dms_table") != wantTables[i] || meta(m, "dms_schema") != "app" {
			t.Fatalf("row %d routed to %s.%s", i+1, meta(m, "dms_schema"), meta(m, "dms_table"))
		}
	}
	if got := dataOf(t, body(t, out[2])); got != `{"tag":"a"}` {
		t.Fatalf("delete data %s", got)
	}
}

func TestLargeIntegerCompatibility(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\nuse_large_integer_value: false\n")
	m := process(t, p, fullLoad("app", "mixed", "k", 1, "1234567890123456789,eu"+strings.Repeat(",", 18)))[0]
	mustOK(t, m)
	if got := dataOf(t, body(t, m)); got != `{"id":1.2345678901234568e+18,"region":"eu"}` {
		t.Fatalf("got %s", got)
	}
}

func TestTruncatePolicy(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\ntruncation_policy: truncate\nno_hex_prefix: true\n")
	r := "1,eu" + strings.Repeat(",", 16) + "0102030405060708090a,,"
	r = strings.Replace(r, "1,eu,", "1,eu-west-1,", 1)
	m := process(t, p, fullLoad("app", "mixed", "k", 1, r))[0]
	mustOK(t, m)
	if got := dataOf(t, body(t, m)); got != `{"id":1,"region":"eu-west-","sig":"0102030405060708"}` {
		t.Fatalf("got %s", got)
	}
	// The partition key (primary key id, region) is made of the values as
	// the record carries them: truncated too.
	if k := meta(m, "dms_partition_key"); k != "1.eu-west-" {
		t.Fatalf("partition key %q, want the truncated region", k)
	}
}

// Under truncation_policy truncate, the partition key and its
// partition-key-value are the truncated value, and invalid UTF-8 in the
// part truncation drops is still bad input: flagged, never a record with
// broken JSON or a key that is not text.
func TestTruncatePolicyKeysAndUTF8(t *testing.T) {
	def := `table_definition: '{"TableCount":"1","Tables":[{"TableName":"t","TablePath":"s/t/","TableOwner":"s","TableColumns":[{"ColumnName":"code","ColumnType":"STRING","ColumnLength":"3","ColumnIsPk":"true"}],"TableColumnsTotal":"1"}]}'
`
	p := newTestProc(t, def+"message_format: json-unformatted\ntruncation_policy: truncate\ninclude_partition_value: true\n")
	out := process(t, p, fullLoad("s", "t", "k", 1, "abcdef"), fullLoad("s", "t", "k", 2, "abc\xff"), fullLoad("s", "t", "k", 3, "ab\xc3\xa9z"))
	mustOK(t, out[0])
	b := body(t, out[0])
	if !strings.Contains(b, `"data":{"code":"abc"}`) || !strings.Contains(b, `"partition-key-value":"abc"`) || meta(out[0], "dms_partition_key") != "abc" {
		t.Fatalf("truncated key: body %s, dms_partition_key %q", b, meta(out[0], "dms_partition_key"))
	}
	mustErr(t, out[1], "line 2 ")
	mustErr(t, out[1], "column code: ")
	mustErr(t, out[1], "invalid UTF-8 after byte 3")
	if body(t, out[1]) != "abc\xff" {
		t.Fatalf("flagged row keeps its CSV row, got %q", body(t, out[1]))
	}
	// a two-byte character across the cut is dropped whole
	mustOK(t, out[2])
	if b := body(t, out[2]); !strings.Contains(b, `"data":{"code":"ab"}`) || !strings.Contains(b, `"partition-key-value":"ab"`) || !json.Valid([]byte(b)) {
		t.Fatalf("cut inside a character: %s", b)
	}
}

func TestParallelBatchKeepsOrder(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\nmax_workers: 4\n")
	var rows []row
	for i := range 5000 {
		if i%997 == 0 {
			rows = append(rows, fullLoad("app", "mixed", "k", int64(i+1), "bad"))
			continue
		}
		rows = append(rows, fullLoad("app", "mixed", "k", int64(i+1), fmt.Sprintf("%d,eu%s", i, strings.Repeat(",", 18))))
	}
	out := process(t, p, rows...)
	if len(out) != len(rows) {
		t.Fatalf("%d out", len(out))
	}
	for i, m := range out {
		if i%997 == 0 {
			mustErr(t, m, fmt.Sprintf("line %d ", i+1))
			continue
		}
		mustOK(t, m)
		if want := fmt.Sprintf(`{"data":{"id":%d,"region":"eu"},`, i); !strings.HasPrefix(body(t, m), want) {
			t.Fatalf("row %d: %s", i, body(t, m))
		}
		if meta(m, "dms_partition_key") != fmt.Sprintf("%d.eu", i) {
			t.Fatalf("row %d key %q", i, meta(m, "dms_partition_key"))
		}
	}
}

func TestTruncationIsLoggedAsWarning(t *testing.T) {
	p, logs := newLoggedProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\ntruncation_policy: truncate\n")
	m := process(t, p, fullLoad("app", "mixed", "LOAD9.csv", 4, "1,eu-west-1"+strings.Repeat(",", 18)))[0]
	mustOK(t, m)
	if !strings.Contains(logs.String(), "s3://bkt/LOAD9.csv line 4 table app.mixed column region: value of 9 bytes truncated to ColumnLength 8") {
		t.Fatalf("log: %s", logs.String())
	}
}

// A column whose values are all longer than ColumnLength (a common case once
// the source widened it) truncates every row. Before, each batch logged up to
// ten warnings, one per value, for as long as the values came: at 1000 rows
// a batch and a few batches a second, dozens of lines a second. Now
// truncations are logged like flagged rows: the first at once, with where it
// is, then counted per column and logged together at most every
// badLogInterval, the rest at close.
func TestTruncationWarningsRateLimited(t *testing.T) {
	p, logs := newLoggedProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\ntruncation_policy: truncate\n")
	now := fixedNow
	nowFunc = func() time.Time { return now }
	t.Cleanup(func() { nowFunc = func() time.Time { return fixedNow } })
	lines := func() []string {
		var w []string
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if l != "" {
				w = append(w, l)
			}
		}
		return w
	}
	batch := func(b int) {
		var rows []row
		for i := range 20 {
			rows = append(rows, fullLoad("app", "mixed", "LOAD9.csv", int64(b*20+i+1), "1,eu-west-1"+strings.Repeat(",", 18)))
		}
		for _, m := range process(t, p, rows...) {
			mustOK(t, m)
		}
	}
	for b := range 50 {
		batch(b)
	}
	w := lines()
	if len(w) != 1 || !strings.Contains(w[0], "s3://bkt/LOAD9.csv line 1 table app.mixed column region: value of 9 bytes truncated to ColumnLength 8") {
		t.Fatalf("%d warnings for 50 batches of truncated values within %v, want 1 naming the first:\n%.3000s", len(w), badLogInterval, logs.String())
	}
	now = now.Add(badLogInterval)
	batch(50)
	w = lines()
	if len(w) != 2 || !strings.Contains(w[1], "1000 values truncated to ColumnLength (app.mixed column region 1000)") || !strings.Contains(w[1], "LOAD9.csv line 21 ") {
		t.Fatalf("after the interval, want one warning counting the 1000 values since the first, naming the next:\n%.3000s", logs.String())
	}
	batch(51)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w = lines()
	if len(w) != 3 || !strings.Contains(w[2], "20 values truncated to ColumnLength (app.mixed column region 20)") {
		t.Fatalf("at close, want the rest counted:\n%.3000s", logs.String())
	}
}

// Batch buffers are sized from the previous batch; rows much longer than
// those (which start new buffers or grow one) come out exactly as they do
// from a fresh processor, and earlier rows' bodies and keys stay intact.
func TestBufferSizingAcrossBatches(t *testing.T) {
	conf := "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\nmax_workers: 1\n"
	p := newTestProc(t, conf)
	tags := func(n, width int) []row {
		var rows []row
		for i := range n {
			tag := strings.Repeat("t", (i*7)%(width+1))
			rows = append(rows, fullLoad("app", "tags", "app/tags/f", int64(i+1), fmt.Sprintf("%s,%d", tag, i)))
		}
		return rows
	}
	var outs []*service.Message
	var want []string
	fresh := newTestProc(t, conf)
	for _, b := range []struct{ n, width int }{{300, 1}, {300, 20}, {50, 1}, {700, 20}, {3, 20}, {1, 0}} {
		rows := tags(b.n, b.width)
		outs = append(outs, process(t, p, rows...)...)
		for _, r := range rows {
			m := process(t, fresh, r)[0]
			want = append(want, body(t, m)+"|"+meta(m, "dms_partition_key"))
		}
	}
	for i, m := range outs {
		mustOK(t, m)
		if got := body(t, m) + "|" + meta(m, "dms_partition_key"); got != want[i] {
			t.Fatalf("row %d: %q, want %q", i, got, want[i])
		}
	}
}

// "An empty key becomes schema.table" holds for a composite primary key
// too: when every part is empty (a primary key is never NULL) the joined key is only separators
// ("." or ".."), which would put the empty keys of every table on one
// shared key; it becomes schema.table (with partition_include_schema_table
// as well). A key with one non-empty part is kept as joined.
func TestEmptyCompositeKeyBecomesSchemaTable(t *testing.T) {
	def := `table_definition: '{"TableCount":"1","Tables":[{"TableName":"t","TablePath":"s/t/","TableOwner":"s","TableColumns":[` +
		`{"ColumnName":"a","ColumnType":"STRING","ColumnLength":"5","ColumnIsPk":"true"},` +
		`{"ColumnName":"b","ColumnType":"STRING","ColumnLength":"5","ColumnIsPk":"true"},` +
		`{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"5"}],"TableColumnsTotal":"3"}]}'
`
	for _, c := range []struct{ conf, row, key string }{
		{"", `"","",x`, "s.t"},
		{"", `"",q,x`, ".q"},
		{"partition_include_schema_table: true\n", `"","",x`, "s.t"},
		{"partition_include_schema_table: true\n", `p,"",x`, "s.t.p."},
	} {
		p := newTestProc(t, def+"message_format: json-unformatted\n"+c.conf)
		m := process(t, p, fullLoad("s", "t", "k", 1, c.row))[0]
		mustOK(t, m)
		if k := meta(m, "dms_partition_key"); k != c.key {
			t.Errorf("%srow %s: key %q, want %q", c.conf, c.row, k, c.key)
		}
	}
}
