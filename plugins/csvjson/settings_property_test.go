package csvjson

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
	"pgregory.net/rapid"
)

// mixedValues are values per column of testdata/mixed.json's mixed table,
// valid ones and edge cases (type limits, exponents, escapes, U+2028,
// quoting, NULL marker), so that most generated rows convert.
var mixedValues = [][]string{
	{"1", "-9223372036854775808", "9223372036854775807", "+007"},
	{"eu", `"a,b"`, "x\u2028", "<&>", `""`, `"q"""`},
	{"-128", "127", ""}, {"-32768", ""}, {"2147483647", ""}, {"255", "0", ""},
	{"18446744073709551615", "12345678901234567", ""},
	{"1e3", "+1.50", ".5", "5.", "-0.00", "12345678901234567890123456789012.1234", ""},
	{"0.1", "3.4028235e38", "1e-7", "-0", "16777217", ""},
	{"0.1", "1e300", "5e-324", "123456789012345678", "1e21", ""},
	{"yes", "N", ""}, {"2024-02-29", "2024-01-02 00:00:00", ""}, {"03:04:05.1234", "2024-01-02 03:04:05.5", ""},
	{"2024-01-02 03:04:05.123456789", "2024-01-02", "2024-01-02T03:04:05.000Z", ""},
	{"01/02/2024 03:04:05.5", "01/02/2024", ""},
	{"\x01\x1f\x7f", "a\u2028b\u2029", "<>&", `"\"`, "é日本", "\"\t\n\r\"", `""`, `\N`, strings.Repeat("long ", 10)},
	{"x", `"a""b"`, `\u0000`},
	{"0xDEADbeef", "00", "0x", "abcdef0123456789"}, {"FF", ""}, {"wide", "日本語日本語日本語日本語"},
}

var settingsMappings = []string{
	"",
	`table_mappings: '{"rules":[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-document","object-locator":{"schema-name":"app","table-name":"mixed"},"mapping-parameters":{"partition-key-type":"attribute-name","partition-key-name":"Who","exclude-columns":["NOTE"],"attribute-mappings":[{"target-attribute-name":"Who","attribute-type":"scalar","attribute-sub-type":"string","value":"${name}, ${REGION} <${id}>"},{"target-attribute-name":"Doc","attribute-type":"document","value":{"z":"${note}","a":{"b":"${sig}"},"n":[1,"${u8}"]}}]}}]}'` + "\n",
	`table_mappings: '{"rules":[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"app","table-name":"mixed"},"mapping-parameters":{"partition-key-type":"constant","partition-key":{"value":"K"},"exclude-columns":["r4"],"attribute-mappings":[{"target-attribute-name":"name","value":"${name}\u2028${note}"}]}}]}'` + "\n",
	`table_mappings: '{"rules":[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"app","table-name":"%"},"mapping-parameters":{"exclude-columns":["id","region","i1","i2","i4","u1","u8","amount","r4","r8","flag","born","at","created","updated","name","note","sig","blob","wname","tag","n"]}}]}'` + "\n",
}

// Every record the processor accepts is valid JSON with metadata and a
// partition key of 1 to 256 characters, whatever the settings (both
// message formats, every include_* switch, hex prefix, NUMERIC as string,
// DMS large integers, truncation, a NULL marker, object mappings with
// templates and documents), the phase, and the values; and the json
// (indented) record is the json-unformatted one, indented.
func TestPropertyValidJSONAcrossSettings(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		conf := "table_definition: ./testdata/mixed.json\n"
		for _, b := range []string{"include_null_and_empty", "include_partition_value", "partition_include_schema_table",
			"include_transaction_details", "include_control_details", "no_hex_prefix", "numeric_as_string", "use_large_integer_value"} {
			conf += fmt.Sprintf("%s: %v\n", b, rapid.Bool().Draw(rt, b))
		}
		if rapid.Bool().Draw(rt, "truncate") {
			conf += "truncation_policy: truncate\n"
		}
		if rapid.Bool().Draw(rt, "null_marker") {
			conf += "csv_null_value: '\\N'\n"
		}
		conf += rapid.SampledFrom(settingsMappings).Draw(rt, "mapping")
		build := func(format string) *Processor {
			pc, err := processorSpec().ParseYAML(conf+"message_format: "+format+"\n", nil)
			if err != nil {
				rt.Fatalf("config: %v", err)
			}
			p, err := newProcessor(pc, service.MockResources())
			if err != nil {
				rt.Fatalf("processor: %v\n%s", err, conf)
			}
			return p
		}
		pretty, compact := build("json"), build("json-unformatted")

		table, n := "tags", 2
		if rapid.Bool().Draw(rt, "mixed") {
			table, n = "mixed", len(mixedValues)
		}
		fields := make([]string, n)
		for i := range fields {
			switch {
			case table == "mixed" && rapid.IntRange(0, 19).Draw(rt, "typed") > 0:
				fields[i] = rapid.SampledFrom(mixedValues[i]).Draw(rt, "value")
			case rapid.Bool().Draw(rt, "any"):
				fields[i] = rapid.String().Draw(rt, "text")
			default:
				fields[i] = rapid.SampledFrom(mixedValues[rapid.IntRange(0, len(mixedValues)-1).Draw(rt, "col")]).Draw(rt, "other")
			}
		}
		line := strings.Join(fields, ",")
		r := fullLoad("app", table, "k", 1, line)
		if rapid.Bool().Draw(rt, "cdc") {
			r = cdc("k", int64(rapid.IntRange(1, 5).Draw(rt, "line")), rapid.SampledFrom([]string{"I", "u", "DELETE"}).Draw(rt, "op")+","+table+",app,"+line)
			r.meta["s3_last_modified"] = "2024-05-06T07:08:09.123456789+02:00"
		}
		rows := []row{r, tableStart("app", table), {"", map[string]any{"dms_control": "cdc-start", "dms_phase": "cdc"}}}
		outP, err := pretty.ProcessBatch(context.Background(), mkBatch(rows...))
		if err != nil {
			rt.Fatal(err)
		}
		outC, err := compact.ProcessBatch(context.Background(), mkBatch(rows...))
		if err != nil {
			rt.Fatal(err)
		}
		if len(outP[0]) != len(outC[0]) {
			rt.Fatalf("%d records indented, %d compact", len(outP[0]), len(outC[0]))
		}
		for i, m := range outC[0] {
			b, _ := m.AsBytes()
			pb, _ := outP[0][i].AsBytes()
			if (m.GetError() != nil) != (outP[0][i].GetError() != nil) {
				rt.Fatalf("record %d flagged in one format only: %v / %v", i, m.GetError(), outP[0][i].GetError())
			}
			if m.GetError() != nil {
				continue
			}
			if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
				rt.Fatalf("json-unformatted is not one line ending in a newline: %q", b)
			}
			var v struct {
				Metadata map[string]any `json:"metadata"`
			}
			if err := json.Unmarshal(b, &v); err != nil || v.Metadata == nil {
				rt.Fatalf("not a JSON record with metadata (%v), settings\n%srow %q:\n%s", err, conf, line, b)
			}
			var c bytes.Buffer
			if err := json.Compact(&c, pb); err != nil {
				rt.Fatalf("indented record is not JSON (%v):\n%s", err, pb)
			}
			if c.String()+"\n" != string(b) {
				rt.Fatalf("indented record differs from the compact one:\n%s\n%s", c.String(), b)
			}
			if k, _ := m.MetaGet("dms_partition_key"); k == "" || len([]rune(k)) > 256 {
				rt.Fatalf("partition key %q", k)
			}
		}
	})
}
