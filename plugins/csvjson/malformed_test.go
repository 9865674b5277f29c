package csvjson

import "testing"

// A row that is not well-formed CSV is a bad row like any other: its error
// names the table (known from the metadata in a full load), the field, the
// line of the file where the bad field is (a quoted field may span lines),
// the offending value (truncated) and the rule.
func TestMalformedRowErrorNamesTableLineAndValue(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/reference.json\nmessage_format: json-unformatted\n")
	const key = "schema01/table01/full_000"
	good := "2023-10-01 12:00:00,10.1000/182,1,1.5,sig"
	cases := []struct {
		name string
		r    row
		want []string
	}{
		{"unterminated", fullLoad("schema01", "table01", key, 20, `2023-10-01 12:00:00,"abc,1,1,s`),
			[]string{`s3://bkt/schema01/table01/full_000 line 20 table schema01.table01: malformed CSV row: field 2 (byte 20 of the row): unterminated quoted field`, `; value "\"abc,1,1,s"`}},
		{"text after quote on a later line", fullLoad("schema01", "table01", key, 30, "2023-10-01 12:00:00,\"a\nb\nc\"x,1,1.5,s"),
			[]string{`line 30 table schema01.table01: malformed CSV row: field 2 (byte 27 of the row, line 32): text after the closing quote`, `; value "\"a\nb\nc\"x"`}},
		{"long value truncated", fullLoad("schema01", "table01", key, 40, `2023-10-01 12:00:00,"`+string(make([]byte, 100))),
			[]string{`table schema01.table01: malformed CSV row: field 2`, `unterminated`, `\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"...`}},
		{"cdc table from its fields", cdc("cdc/cdc_000", 50, `I,table01,schema01,2023-10-01 12:00:00,"ab"c,1,1.5,s`),
			[]string{`s3://bkt/cdc/cdc_000 line 50 table schema01.table01: malformed CSV row: field 5 (byte 43 of the row): text after the closing quote`, `; value "\"ab\"c"`}},
	}
	var rows []row
	for _, c := range cases {
		rows = append(rows, c.r)
	}
	rows = append(rows, fullLoad("schema01", "table01", key, 99, good))
	out := process(t, p, rows...)
	if len(out) != len(rows) {
		t.Fatalf("%d messages out, %d in", len(out), len(rows))
	}
	mustOK(t, out[len(out)-1])
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mustErr(t, out[i], c.want...)
			if got := body(t, out[i]); got != c.r.body {
				t.Fatalf("body changed to %q", got)
			}
		})
	}
}
