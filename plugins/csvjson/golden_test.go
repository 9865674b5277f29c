package csvjson

import (
	"testing"
)

const employeeData = `{"data":{"Id":101,"LastName":"Smith","FirstName":"Bob","HireDate":"2014-06-04T00:00:00Z","OfficeLocation":"New York"}`

// The DMS user guide's employee example, full load (LOAD001.csv).
func TestGoldenEmployeeFullLoad(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/employee.json\nmessage_format: json-unformatted\n")
	out := process(t, p, fullLoad("hr", "employee", "hr/employee/LOAD001.csv", 1, "101,Smith,Bob,2014-06-04,New York"))
	if len(out) != 1 {
		t.Fatalf("%d messages", len(out))
	}
	mustOK(t, out[0])
	want := employeeData + `,"metadata":{"timestamp":"` + fixedTS + `","record-type":"data","operation":"load","partition-key-type":"primary-key","schema-name":"hr","table-name":"employee"}}` + "\n"
	if got := body(t, out[0]); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for k, v := range map[string]string{"dms_partition_key": "101", "dms_operation": "load", "dms_schema": "hr", "dms_table": "employee", "s3_key": "hr/employee/LOAD001.csv", "dms_line": "1"} {
		if got := meta(out[0], k); got != v {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
	// the optional leading operation column of DMS-written files is dropped
	out = process(t, p, fullLoad("hr", "employee", "k", 1, "I,101,Smith,Bob,2014-06-04,New York"), fullLoad("hr", "employee", "k", 2, "insert,101,Smith,Bob,2014-06-04,New York"))
	for _, m := range out {
		mustOK(t, m)
		if got := body(t, m); got != want {
			t.Fatalf("with op column: got\n%s\nwant\n%s", got, want)
		}
	}
}

// The employee CDC example (CDC00001.csv), in the default pretty json format.
// Every CDC record carries transaction-id even without
// include_transaction_details, as DMS writes it (spec 3.2: captures without
// commit-timestamp/stream-position still carry it; not on load records):
// 7665247598283861 is the 53-bit FNV-1a of s3://bkt/changedata/CDC00001.csv.
func TestGoldenEmployeeCDC(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/employee.json\n")
	out := process(t, p,
		cdc("changedata/CDC00001.csv", 1, "INSERT,employee,hr,101,Smith,Bob,2014-06-04,New York"),
		cdc("changedata/CDC00001.csv", 2, "UPDATE,employee,hr,101,Smith,Bob,2015-10-08,Los Angeles"),
		cdc("changedata/CDC00001.csv", 3, "UPDATE,employee,hr,101,Smith,Bob,2017-03-13,Dallas"),
		cdc("changedata/CDC00001.csv", 4, "DELETE,employee,hr,101,Smith,Bob,2017-03-13,Dallas"),
	)
	if len(out) != 4 {
		t.Fatalf("%d messages", len(out))
	}
	want := []struct{ op, date, office string }{
		{"insert", "2014-06-04", "New York"}, {"update", "2015-10-08", "Los Angeles"},
		{"update", "2017-03-13", "Dallas"}, {"delete", "2017-03-13", "Dallas"},
	}
	for i, m := range out {
		mustOK(t, m)
		w := "{\n\t\"data\": {\n\t\t\"Id\": 101,\n\t\t\"LastName\": \"Smith\",\n\t\t\"FirstName\": \"Bob\",\n\t\t\"HireDate\": \"" + want[i].date + "T00:00:00Z\",\n\t\t\"OfficeLocation\": \"" + want[i].office + "\"\n\t},\n" +
			"\t\"metadata\": {\n\t\t\"timestamp\": \"" + fixedTS + "\",\n\t\t\"record-type\": \"data\",\n\t\t\"operation\": \"" + want[i].op + "\",\n\t\t\"partition-key-type\": \"schema-table\",\n\t\t\"schema-name\": \"hr\",\n\t\t\"table-name\": \"employee\",\n\t\t\"transaction-id\": 7665247598283861\n\t}\n}"
		if got := body(t, m); got != w {
			t.Fatalf("row %d: got\n%s\nwant\n%s", i+1, got, w)
		}
		if meta(m, "dms_partition_key") != "hr.employee" || meta(m, "dms_operation") != want[i].op || meta(m, "dms_schema") != "hr" || meta(m, "dms_table") != "employee" {
			t.Fatalf("row %d: metadata key=%q op=%q schema=%q table=%q", i+1, meta(m, "dms_partition_key"), meta(m, "dms_operation"), meta(m, "dms_schema"), meta(m, "dms_table"))
		}
	}
}

// The reference architecture's table01 (TIMESTAMP primary key, NUMERIC(5,2)).
func TestGoldenReferenceTable(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/reference.json\nmessage_format: json-unformatted\ninclude_partition_value: true\npartition_include_schema_table: true\n")
	out := process(t, p, fullLoad("schema01", "table01", "schema01/table01/full_000", 7, "2023-10-01 12:00:00.987654,10.1000/182,1234567,123.4,sig0000001"))
	mustOK(t, out[0])
	want := `{"data":{"ingest_time":"2023-10-01T12:00:00Z","doi":"10.1000/182","id":1234567,"value":123.40,"data_sig":"sig0000001"},"metadata":{"timestamp":"` + fixedTS +
		`","record-type":"data","operation":"load","partition-key-type":"primary-key","partition-key-value":"schema01.table01.2023-10-01T12:00:00Z","schema-name":"schema01","table-name":"table01"}}` + "\n"
	if got := body(t, out[0]); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if k := meta(out[0], "dms_partition_key"); k != "schema01.table01.2023-10-01T12:00:00Z" {
		t.Fatalf("partition key %q", k)
	}
}
