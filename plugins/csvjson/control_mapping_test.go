package csvjson

import (
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func tableStart(schema, table string) row {
	return row{"", map[string]any{"dms_control": "table-start", "dms_phase": "full-load", "dms_schema": schema, "dms_table": table, "s3_bucket": "bkt"}}
}

func TestControlRecords(t *testing.T) {
	const md = `"metadata":{"timestamp":"` + fixedTS + `","record-type":"control","operation":"%s","partition-key-type":"task-id"%s,"schema-name":"hr","table-name":"employee"}}` + "\n"
	drop := func(pv string) string {
		return strings.Replace(strings.Replace(md, "%s", "drop-table", 1), "%s", pv, 1)
	}
	create := func(pv string) string {
		return strings.Replace(strings.Replace(md, "%s", "create-table", 1), "%s", pv, 1)
	}
	base := "table_definition: ./testdata/employee.json\nmessage_format: json-unformatted\n"

	// default drop-and-create, no control details: no control key (as DMS wrote in a real capture)
	p := newTestProc(t, base)
	out := process(t, p, tableStart("hr", "employee"), fullLoad("hr", "employee", "k", 1, "101,Smith,Bob,2014-06-04,New York"))
	if len(out) != 3 {
		t.Fatalf("%d messages, want drop-table, create-table, load", len(out))
	}
	if got, want := body(t, out[0]), "{"+drop(""); got != want {
		t.Fatalf("drop-table:\n got %s\nwant %s", got, want)
	}
	if got, want := body(t, out[1]), "{"+create(""); got != want {
		t.Fatalf("create-table:\n got %s\nwant %s", got, want)
	}
	for i, op := range []string{"drop-table", "create-table", "load"} {
		mustOK(t, out[i])
		if meta(out[i], "dms_operation") != op {
			t.Fatalf("message %d operation %q, want %q", i, meta(out[i], "dms_operation"), op)
		}
	}
	if meta(out[0], "dms_partition_key") != "dmsbridge.hr.employee" || meta(out[1], "dms_partition_key") != "dmsbridge.hr.employee" {
		t.Fatalf("control keys %q %q", meta(out[0], "dms_partition_key"), meta(out[1], "dms_partition_key"))
	}
	if meta(out[1], "s3_bucket") != "bkt" {
		t.Fatal("the second control record lost the signal's metadata")
	}

	// control details and partition value
	p = newTestProc(t, base+"include_control_details: true\ninclude_partition_value: true\ntask_id: DZ6OKLFYA5BWVG4RYROQUHXU4E\n")
	out = process(t, p, tableStart("hr", "employee"))
	pv := `,"partition-key-value":"DZ6OKLFYA5BWVG4RYROQUHXU4E"`
	if got, want := body(t, out[0]), `{"control":{},`+drop(pv); got != want {
		t.Fatalf("drop-table:\n got %s\nwant %s", got, want)
	}
	td := `{"control":{"table-def":{"columns":{"Id":{"type":"INT64","nullable":false},"LastName":{"type":"STRING","length":20,"nullable":false},"FirstName":{"type":"STRING","length":30,"nullable":false},"HireDate":{"type":"TIMESTAMP","nullable":false},"OfficeLocation":{"type":"STRING","length":20,"nullable":false}},"primary-key":["Id"]}},`
	if got, want := body(t, out[1]), td+create(pv); got != want {
		t.Fatalf("create-table:\n got %s\nwant %s", got, want)
	}
	if meta(out[1], "dms_partition_key") != "DZ6OKLFYA5BWVG4RYROQUHXU4E.hr.employee" {
		t.Fatal(meta(out[1], "dms_partition_key"))
	}

	// truncate: create-table only; do-nothing (DMS spelling): filtered
	p = newTestProc(t, base+"target_table_prep_mode: TRUNCATE_BEFORE_LOAD\n")
	out = process(t, p, tableStart("hr", "employee"))
	if len(out) != 1 || body(t, out[0]) != "{"+create("") {
		t.Fatalf("truncate: %d messages", len(out))
	}
	p = newTestProc(t, base+"target_table_prep_mode: DO_NOTHING\n")
	if out = process(t, p, tableStart("hr", "employee")); len(out) != 0 {
		t.Fatalf("do-nothing: %d messages, want the signal filtered", len(out))
	}
	out = process(t, p, tableStart("hr", "employee"), fullLoad("hr", "employee", "k", 1, "101,Smith,Bob,2014-06-04,New York"))
	if len(out) != 1 || meta(out[0], "dms_operation") != "load" {
		t.Fatal("do-nothing must keep the data rows")
	}
	// unknown table in a signal is an error, kept
	out = process(t, p, tableStart("hr", "nope"))
	mustErr(t, out[0], `table-start signal for unknown table: schema "hr" table "nope"`)

	if _, err := processorSpec().ParseYAML(base+"target_table_prep_mode: sometimes\n", nil); err == nil {
		conf, _ := processorSpec().ParseYAML(base+"target_table_prep_mode: sometimes\n", nil)
		if _, err := optionsFromConfig(conf); err == nil || !strings.Contains(err.Error(), "target_table_prep_mode") {
			t.Fatalf("bad prep mode accepted: %v", err)
		}
	}
}

func TestObjectMappingRecord(t *testing.T) {
	p := newTestProc(t, `
table_definition: ./testdata/employee.json
message_format: json-unformatted
include_partition_value: true
table_mappings:
  rules:
    - rule-type: selection
      rule-id: "1"
      rule-action: include
      object-locator: {schema-name: "%", table-name: "%"}
    - rule-type: object-mapping
      rule-id: "2"
      rule-name: employee
      rule-action: map-record-to-record
      object-locator: {schema-name: hr, table-name: "emp%"}
      mapping-parameters:
        partition-key-type: attribute-name
        partition-key-name: CustomerName
        exclude-columns: [officelocation]
        attribute-mappings:
          - target-attribute-name: CustomerName
            attribute-type: scalar
            attribute-sub-type: string
            value: "${lastname}, ${FirstName} \"${Id}\""
          - target-attribute-name: ContactDetails
            attribute-type: document
            attribute-sub-type: json
            value:
              Office: {Where: "${officelocation}", Since: "${hiredate}"}
              Id: 7
`)
	m := process(t, p, fullLoad("hr", "employee", "k", 1, "101,Smith,Bob,2014-06-04,New York"))[0]
	mustOK(t, m)
	want := `{"data":{"Id":101,"LastName":"Smith","FirstName":"Bob","HireDate":"2014-06-04T00:00:00Z","CustomerName":"Smith, Bob \"101\"","ContactDetails":{"Id":7,"Office":{"Since":"2014-06-04T00:00:00Z","Where":"New York"}}},` +
		`"metadata":{"timestamp":"` + fixedTS + `","record-type":"data","operation":"load","partition-key-type":"attribute-name","partition-key-value":"Smith, Bob \"101\"","schema-name":"hr","table-name":"employee"}}` + "\n"
	if got := body(t, m); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if meta(m, "dms_partition_key") != `Smith, Bob "101"` {
		t.Fatalf("key %q", meta(m, "dms_partition_key"))
	}
}

func TestObjectMappingDocumentAndConstant(t *testing.T) {
	p := newTestProc(t, `
table_definition: ./testdata/employee.json
message_format: json-unformatted
table_mappings: |
  {"rules":[{"rule-type":"object-mapping","rule-id":"1","rule-name":"TransformToKinesis","rule-action":"map-record-to-document",
    "object-locator":{"schema-name":"hr","table-name":"employee"},
    "mapping-parameters":{"partition-key":{"value":"ConstantPartitionKey"},"exclude-columns":["HireDate"],
      "attribute-mappings":[{"attribute-name":"CustomerName","value":"${FirstName},${LastName}"}]}}]}
`)
	out := process(t, p, fullLoad("hr", "employee", "k", 1, "101,Smith,Bob,2014-06-04,New York"), cdc("c", 1, "I,employee,hr,102,Doe,Jane,2015-01-01,Paris"))
	for _, m := range out {
		mustOK(t, m)
		if meta(m, "dms_partition_key") != "ConstantPartitionKey" || !strings.Contains(body(t, m), `"partition-key-type":"constant"`) {
			t.Fatalf("constant key: %q %s", meta(m, "dms_partition_key"), body(t, m))
		}
	}
	if got := dataOf(t, body(t, out[0])); got != `{"CustomerName":"Bob,Smith","_doc":{"Id":101,"LastName":"Smith","FirstName":"Bob","OfficeLocation":"New York"}}` {
		t.Fatalf("document: %s", got)
	}
}

func TestObjectMappingConfigErrors(t *testing.T) {
	for _, c := range []struct{ rules, want string }{
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-table","object-locator":{"schema-name":"hr","table-name":"employee"}}]`, "rule-action"},
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr"}}]`, "object-locator"},
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"partition-key-type":"attribute-name"}}]`, "partition-key-name"},
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"attribute-mappings":[{"target-attribute-name":"x","value":"${nope}"}]}}]`, "${nope} names no column"},
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"partition-key-type":"shard"}}]`, "partition-key-type"},
		// A mis-shaped parameter must not be ignored: exclude-columns given as
		// one string would otherwise leak the column it meant to exclude.
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"exclude-columns":"LastName"}}]`, "exclude-columns must be a list"},
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"attribute-mappings":{"target-attribute-name":"a","value":"x"}}}]`, "attribute-mappings must be a list"},
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"partition-key":"k"}}]`, "partition-key must be an object"},
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":["exclude-columns"]}]`, "mapping-parameters must be an object"},
		// A constant key holding a ${col} template would send every row to the
		// one shard of the literal key "${Id}".
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"partition-key":{"value":"${Id}"}}}]`, `partition-key.value "${Id}" is a constant`},
		// Two attributes of one name, or an attribute named _doc next to the
		// _doc map, would write a data object with a duplicate key.
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"attribute-mappings":[{"target-attribute-name":"a","value":"x"},{"attribute-name":"a","value":"y"}]}}]`, `attribute "a" is mapped twice`},
		{`[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-document","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"attribute-mappings":[{"target-attribute-name":"_doc","value":"x"}]}}]`, `attribute "_doc" collides with the _doc map`},
	} {
		conf, err := processorSpec().ParseYAML("table_definition: ./testdata/employee.json\ntable_mappings: '"+c.rules+"'\n", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newProcessor(conf, service.MockResources())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "table_mappings") {
			t.Fatalf("rules %s: error %v, want it to mention %q", c.rules, err, c.want)
		}
	}
	if !like("%", "x") || !like("em%ee", "employee") || like("em%x", "employee") || !like("hr", "hr") || like("hr", "HR") {
		t.Fatal("like")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"table_definition: ./testdata/missing.json\n", "table_definition"},
		{"table_definition: ./testdata/employee.json\ncsv_delimiter: ''\n", "csv_delimiter"},
		{"table_definition: ./testdata/employee.json\ncsv_row_delimiter: ';'\n", "csv_row_delimiter"},
		{"table_definition: ./testdata/employee.json\ntask_id: ''\n", "task_id"},
		{"table_definition: ./testdata/employee.json\ntarget_table_prep_mode: sometimes\n", "target_table_prep_mode"},
	} {
		conf, err := processorSpec().ParseYAML(c.yaml, nil)
		if err == nil {
			_, err = newProcessor(conf, nil)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: error %v, want it to name %s", c.yaml, err, c.want)
		}
	}
}

// A cdc-start signal becomes what a DMS CDC task writes when it starts:
// create-table for awsdms_apply_exceptions, then for each defined table in
// order, before the first change.
func TestCDCStartControlRecords(t *testing.T) {
	base := "table_definition: ./testdata/employee.json\nmessage_format: json-unformatted\ninclude_control_details: true\ninclude_partition_value: true\ntask_id: 7QBLNBTPCNDEBG7CHI3WA73YFA\n"
	p := newTestProc(t, base)
	start := row{"", map[string]any{"dms_control": "cdc-start", "dms_phase": "cdc", "s3_bucket": "bkt"}}
	out := process(t, p, start, cdc("cdc/CDC1.csv", 1, "I,employee,hr,101,Smith,Bob,2014-06-04,New York"))
	if len(out) != 3 {
		t.Fatalf("%d messages, want 2 create-table and the insert", len(out))
	}
	ae := `{"control":{"table-def":{"columns":{"TASK_NAME":{"type":"STRING","length":128,"nullable":false},"TABLE_OWNER":{"type":"STRING","length":128,"nullable":false},"TABLE_NAME":{"type":"STRING","length":128,"nullable":false},"ERROR_TIME":{"type":"TIMESTAMP","nullable":false},"STATEMENT":{"type":"STRING","nullable":false},"ERROR":{"type":"STRING","nullable":false}}}},` +
		`"metadata":{"timestamp":"` + fixedTS + `","record-type":"control","operation":"create-table","partition-key-type":"task-id","partition-key-value":"7QBLNBTPCNDEBG7CHI3WA73YFA","schema-name":"","table-name":"awsdms_apply_exceptions"}}` + "\n"
	if got := body(t, out[0]); got != ae {
		t.Fatalf("awsdms_apply_exceptions:\n got %s\nwant %s", got, ae)
	}
	emp := `{"control":{"table-def":{"columns":{"Id":{"type":"INT64","nullable":false},"LastName":{"type":"STRING","length":20,"nullable":false},"FirstName":{"type":"STRING","length":30,"nullable":false},"HireDate":{"type":"TIMESTAMP","nullable":false},"OfficeLocation":{"type":"STRING","length":20,"nullable":false}},"primary-key":["Id"]}},` +
		`"metadata":{"timestamp":"` + fixedTS + `","record-type":"control","operation":"create-table","partition-key-type":"task-id","partition-key-value":"7QBLNBTPCNDEBG7CHI3WA73YFA","schema-name":"hr","table-name":"employee"}}` + "\n"
	if got := body(t, out[1]); got != emp {
		t.Fatalf("employee:\n got %s\nwant %s", got, emp)
	}
	wantKeys := []string{"7QBLNBTPCNDEBG7CHI3WA73YFA..awsdms_apply_exceptions", "7QBLNBTPCNDEBG7CHI3WA73YFA.hr.employee"}
	for i, k := range wantKeys {
		mustOK(t, out[i])
		if meta(out[i], "dms_partition_key") != k || meta(out[i], "dms_operation") != "create-table" {
			t.Fatalf("record %d: key %q operation %q", i, meta(out[i], "dms_partition_key"), meta(out[i], "dms_operation"))
		}
	}
	if meta(out[2], "dms_operation") != "insert" {
		t.Fatalf("the change after the control records: %q", meta(out[2], "dms_operation"))
	}
	// An unknown signal is an error, kept for the dead letter.
	out = process(t, p, row{"", map[string]any{"dms_control": "cdc-stop", "dms_phase": "cdc"}})
	mustErr(t, out[0], `dms_control "cdc-stop" is neither table-start nor cdc-start`)
}

// DMS documents two forms of partition key, SchemaName.TableName and
// ${AttributeName}: a partition-key-name written as ${LastName} names the
// LastName column, it is not a column called "${LastName}".
func TestObjectMappingKeyNameTemplateForm(t *testing.T) {
	p := newTestProc(t, `
table_definition: ./testdata/employee.json
message_format: json-unformatted
include_partition_value: true
table_mappings: '[{"rule-type":"object-mapping","rule-id":"1","rule-action":"map-record-to-record","object-locator":{"schema-name":"hr","table-name":"employee"},"mapping-parameters":{"partition-key-type":"attribute-name","partition-key-name":"${lastname}"}}]'
`)
	m := process(t, p, fullLoad("hr", "employee", "k", 1, "101,Smith,Bob,2014-06-04,New York"))[0]
	mustOK(t, m)
	want := `{"data":{"Id":101,"LastName":"Smith","FirstName":"Bob","HireDate":"2014-06-04T00:00:00Z","OfficeLocation":"New York"},` +
		`"metadata":{"timestamp":"` + fixedTS + `","record-type":"data","operation":"load","partition-key-type":"attribute-name","partition-key-value":"Smith","schema-name":"hr","table-name":"employee"}}` + "\n"
	if got := body(t, m); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if k := meta(m, "dms_partition_key"); k != "Smith" {
		t.Fatalf("key %q, want Smith", k)
	}
}
