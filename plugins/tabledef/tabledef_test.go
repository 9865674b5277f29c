package tabledef

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReferenceDefinitions(t *testing.T) {
	d, err := Load("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	tb := d.Table("schema01", "table01")
	if tb == nil {
		t.Fatal("schema01.table01 not found")
	}
	if tb.Path != "schema01/table01/" || len(tb.Columns) != 5 || tb.ColumnsTotal != 5 {
		t.Fatalf("unexpected table: %+v", tb)
	}
	want := []struct {
		name string
		typ  Type
	}{{"ingest_time", TypeDateTime}, {"doi", TypeString}, {"id", TypeInt8}, {"value", TypeNumeric}, {"data_sig", TypeString}}
	for i, w := range want {
		c := tb.Columns[i]
		if c.Name != w.name || c.Type != w.typ || c.Index != i {
			t.Errorf("column %d = %s %v, want %s %v", i, c.Name, c.Type, w.name, w.typ)
		}
	}
	if v := tb.Column("value"); v.Precision != 5 || v.Scale != 2 {
		t.Errorf("value precision/scale = %d/%d", v.Precision, v.Scale)
	}
	if it := tb.Columns[0]; !it.IsPK || it.Nullable {
		t.Errorf("ingest_time pk/nullable = %v/%v", it.IsPK, it.Nullable)
	}
	if len(tb.PrimaryKey) != 1 || tb.PrimaryKey[0] != 0 {
		t.Errorf("primary key = %v", tb.PrimaryKey)
	}
	if tb.Columns[1].Length != 30 || tb.Columns[1].Nullable {
		t.Errorf("doi = %+v (nullable defaults to false as in DMS)", tb.Columns[1])
	}

	e, err := Load("testdata/employee.json")
	if err != nil {
		t.Fatal(err)
	}
	if e.Table("hr", "employee") == nil || e.Table("employee", "hr") != nil || e.Table("HR", "employee") != nil {
		t.Fatal("lookup must be by (schema, table), case-sensitive")
	}
}

func TestNativeAndStringValuesAndYAML(t *testing.T) {
	native := `{"TableCount":1,"Tables":[{"TableName":"t","TablePath":"s/t/","TableOwner":"s","TableColumnsTotal":2,
	 "TableColumns":[{"ColumnName":"a","ColumnType":"numeric","ColumnPrecision":38,"ColumnScale":31,"ColumnIsPk":true},
	                 {"ColumnName":"b","ColumnType":"timestamp","ColumnScale":"9","ColumnNullable":"true","ColumnDateFormat":"MM/dd/YYYY HH:mm:ss.F"}]}]}`
	d, err := Parse([]byte(native))
	if err != nil {
		t.Fatal(err)
	}
	tb := d.Table("s", "t")
	if c := tb.Columns[0]; c.Type != TypeNumeric || c.Precision != 38 || c.Scale != 31 || !c.IsPK {
		t.Errorf("a = %+v", c)
	}
	if c := tb.Columns[1]; c.Type != TypeDateTime || c.Scale != 9 || !c.Nullable || c.DateFormat != "MM/dd/YYYY HH:mm:ss.F" {
		t.Errorf("b = %+v", c)
	}
	yml := `
TableCount: "1"
Tables:
  - TableName: t
    TablePath: s/t/
    TableOwner: s
    TableColumnsTotal: 1
    TableColumns:
      - {ColumnName: x, ColumnType: Bytes, ColumnLength: 4}
`
	d, err = Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	if c := d.Tables[0].Columns[0]; c.Type != TypeByte || c.Length != 4 {
		t.Errorf("x = %+v", c)
	}
	d, err = FromAny(map[string]any{"Tables": []any{map[string]any{"TableName": "t", "TablePath": "p/", "TableOwner": "o", "TableColumnsTotal": "1",
		"TableColumns": []any{map[string]any{"ColumnName": "c", "ColumnType": "WSTRING"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Tables[0].Columns[0].Type != TypeString {
		t.Error("WSTRING must alias STRING")
	}
	for alias, want := range map[string]Type{"nclob": TypeClob, "Boolean": TypeBoolean, "uint8": TypeUInt8, "real4": TypeReal4} {
		if got, ok := ParseType(alias); !ok || got != want {
			t.Errorf("ParseType(%q) = %v, %v", alias, got, ok)
		}
	}
}

func table(cols string, total string) string {
	return `{"Tables":[{"TableName":"t1","TablePath":"s1/t1/","TableOwner":"s1","TableColumnsTotal":` + total + `,"TableColumns":[` + cols + `]}]}`
}

func TestValidationErrorsNameTableColumnAndRule(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"count mismatch", table(`{"ColumnName":"a","ColumnType":"INT4"}`, `"2"`), "table s1.t1: TableColumnsTotal is 2 but TableColumns holds 1 columns"},
		{"unknown type", table(`{"ColumnName":"a","ColumnType":"VARCHAR"}`, `1`), `table s1.t1: column a: ColumnType "VARCHAR" is not a DMS type`},
		{"numeric no precision", table(`{"ColumnName":"n","ColumnType":"NUMERIC"}`, `1`), "column n: NUMERIC needs ColumnPrecision"},
		{"precision > 38", table(`{"ColumnName":"n","ColumnType":"NUMERIC","ColumnPrecision":"39"}`, `1`), "column n: ColumnPrecision 39 is larger than 38"},
		{"scale > 31", table(`{"ColumnName":"n","ColumnType":"NUMERIC","ColumnPrecision":"38","ColumnScale":"32"}`, `1`), "column n: ColumnScale 32 is larger than 31"},
		{"scale > precision", table(`{"ColumnName":"n","ColumnType":"NUMERIC","ColumnPrecision":"5","ColumnScale":"6"}`, `1`), "column n: ColumnScale 6 is larger than ColumnPrecision 5"},
		{"datetime scale", table(`{"ColumnName":"d","ColumnType":"DATETIME","ColumnScale":"10"}`, `1`), "column d: ColumnScale 10 is larger than 9 for DATETIME"},
		{"time scale", table(`{"ColumnName":"t","ColumnType":"TIME","ColumnScale":"12"}`, `1`), "column t: ColumnScale 12 is larger than 9 for TIME"},
		{"date format", table(`{"ColumnName":"d","ColumnType":"DATE","ColumnDateFormat":"dd.MM.YYYY"}`, `1`), `column d: ColumnDateFormat "dd.MM.YYYY" is not one of DMS's formats`},
		{"duplicate column", table(`{"ColumnName":"a","ColumnType":"INT4"},{"ColumnName":"a","ColumnType":"INT8"}`, `2`), "table s1.t1: column a is defined twice"},
		{"bad bool", table(`{"ColumnName":"a","ColumnType":"INT4","ColumnIsPk":"maybe"}`, `1`), `column a: ColumnIsPk: "maybe" is not a boolean`},
		{"bad number", table(`{"ColumnName":"a","ColumnType":"STRING","ColumnLength":"ten"}`, `1`), `column a: ColumnLength: "ten" is not a non-negative whole number`},
		{"missing name", `{"Tables":[{"TablePath":"p/","TableOwner":"o","TableColumnsTotal":1,"TableColumns":[{"ColumnName":"a","ColumnType":"INT4"}]}]}`, "Tables[0]: TableName is missing"},
		{"missing owner", `{"Tables":[{"TableName":"t","TablePath":"p/","TableColumnsTotal":1,"TableColumns":[{"ColumnName":"a","ColumnType":"INT4"}]}]}`, "TableOwner is missing"},
		{"missing path", `{"Tables":[{"TableName":"t","TableOwner":"o","TableColumnsTotal":1,"TableColumns":[{"ColumnName":"a","ColumnType":"INT4"}]}]}`, "table o.t: TablePath is missing"},
		{"missing column type", table(`{"ColumnName":"a"}`, `1`), "column a: ColumnType is missing"},
		{"table count", `{"TableCount":"2","Tables":[{"TableName":"t","TablePath":"p/","TableOwner":"o","TableColumnsTotal":1,"TableColumns":[{"ColumnName":"a","ColumnType":"INT4"}]}]}`, "TableCount is 2 but Tables holds 1 tables"},
		{"duplicate table", `{"Tables":[{"TableName":"t","TablePath":"p/","TableOwner":"o","TableColumnsTotal":1,"TableColumns":[{"ColumnName":"a","ColumnType":"INT4"}]},{"TableName":"t","TablePath":"q/","TableOwner":"o","TableColumnsTotal":1,"TableColumns":[{"ColumnName":"a","ColumnType":"INT4"}]}]}`, "table o.t is defined twice"},
		{"format on int", table(`{"ColumnName":"a","ColumnType":"INT4","ColumnDateFormat":"YYYYMMdd HH:mm:ss"}`, `1`), "column a: ColumnDateFormat is only valid for DATE, TIME and DATETIME"},
		{"empty", ``, "document is empty"},
		{"no tables", `{"TableCount":"0","Tables":[]}`, "Tables is missing or empty"},
		{"too large", `{"x":"` + strings.Repeat("a", MaxDocumentSize) + `"}`, "larger than DMS's 2 MB limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(table(`{"ColumnName":"a","ColumnType":"INT4"}`, `1`)))
	f.Add([]byte(`{"Tables":[{"TableName":"t","TablePath":"p","TableOwner":"o","TableColumnsTotal":"1","TableColumns":[{"ColumnName":"n","ColumnType":"NUMERIC","ColumnPrecision":5,"ColumnScale":2}]}]}`))
	f.Add([]byte("Tables: []"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(doc)
		if err != nil {
			return
		}
		// A definition that parses is internally consistent.
		for _, tb := range d.Tables {
			if len(tb.Columns) != tb.ColumnsTotal || len(tb.Columns) == 0 {
				t.Fatalf("table %s: %d columns, total %d", tb.QualifiedName(), len(tb.Columns), tb.ColumnsTotal)
			}
			if d.Table(tb.Owner, tb.Name) != tb {
				t.Fatalf("lookup of %s failed", tb.QualifiedName())
			}
			for _, c := range tb.Columns {
				if c.Type == TypeInvalid || c.Name == "" {
					t.Fatalf("invalid column %+v", c)
				}
				if c.Type == TypeNumeric && (c.Precision < 1 || c.Precision > 38 || c.Scale > c.Precision) {
					t.Fatalf("invalid numeric %+v", c)
				}
			}
		}
	})
}

// Keys are case-sensitive, as in DMS: a key spelled in another case is an
// unknown key (ignored), so it neither stands in for the real one nor
// overrides it.
func TestKeysAreCaseSensitive(t *testing.T) {
	lower := `{"tablecount":"1","tables":[{"tablename":"t","tablepath":"s/t/","tableowner":"s",
	  "tablecolumns":[{"columnname":"id","columntype":"INT4","columnispk":"true"}],"tablecolumnstotal":"1"}]}`
	if _, err := Parse([]byte(lower)); err == nil || err.Error() != "table definition: Tables is missing or empty" {
		t.Fatalf("lower-case keys: %v", err)
	}
	mixed := `{"TableCount":"1","Tables":[{"TableName":"t","TablePath":"s/t/","TableOwner":"s","tableName":"other",
	  "TableColumns":[{"ColumnName":"id","ColumnType":"INT4","ColumnIsPk":"true","columnType":"STRING","columnName":"x"}],"TableColumnsTotal":"1"}]}`
	d, err := Parse([]byte(mixed))
	if err != nil {
		t.Fatal(err)
	}
	tb := d.Tables[0]
	if c := tb.Columns[0]; tb.Name != "t" || c.Name != "id" || c.Type != TypeInt4 || !c.IsPK {
		t.Fatalf("keys in another case changed the definition: table %s, column %q %v pk=%v", tb.Name, c.Name, c.Type, c.IsPK)
	}
	noName := `{"TableCount":"1","Tables":[{"tablename":"t","TablePath":"s/t/","TableOwner":"s",
	  "TableColumns":[{"ColumnName":"id","ColumnType":"INT4"}],"TableColumnsTotal":"1"}]}`
	if _, err := Parse([]byte(noName)); err == nil || !strings.Contains(err.Error(), "TableName is missing") {
		t.Fatalf("tablename for TableName: %v", err)
	}
}

// The boolean spellings the docs list for ColumnNullable/ColumnIsPk, and a
// definition without TableCount (only a TableCount that disagrees with
// Tables is an error).
func TestBooleanSpellingsAndOptionalTableCount(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{{`"true"`, true}, {`"T"`, true}, {`"y"`, true}, {`"YES"`, true}, {`"1"`, true}, {`true`, true},
		{`"false"`, false}, {`"f"`, false}, {`"N"`, false}, {`"no"`, false}, {`"0"`, false}, {`false`, false}} {
		doc := `{"Tables":[{"TableName":"t","TablePath":"s/t/","TableOwner":"s","TableColumnsTotal":"1",
		  "TableColumns":[{"ColumnName":"a","ColumnType":"INT4","ColumnNullable":` + c.v + `,"ColumnIsPk":` + c.v + `}]}]}`
		d, err := Load(doc)
		if err != nil {
			t.Fatalf("%s: %v", c.v, err)
		}
		if col := d.Table("s", "t").Columns[0]; col.Nullable != c.want || col.IsPK != c.want {
			t.Fatalf("%s: nullable %v pk %v, want %v", c.v, col.Nullable, col.IsPK, c.want)
		}
	}
	_, err := Load(`{"Tables":[{"TableName":"t","TablePath":"s/t/","TableOwner":"s","TableColumnsTotal":"1","TableColumns":[{"ColumnName":"a","ColumnType":"INT4","ColumnNullable":"maybe"}]}]}`)
	if err == nil || !strings.Contains(err.Error(), `ColumnNullable: "maybe" is not a boolean`) {
		t.Fatalf("ColumnNullable maybe: %v", err)
	}
}

// A relative table_definition path that is not there names the working
// directory it was looked for in (the shipped configs say
// config/table-definition.json, found only from the repository root or
// /app): "no such file or directory" alone sends the operator to a file
// that exists.
func TestLoadMissingRelativeFileNamesTheWorkingDirectory(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load("config/table-definition.json")
	want := "table definition: stat config/table-definition.json: no such file or directory (relative to the working directory " + wd + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	abs := filepath.Join(t.TempDir(), "missing.json")
	if _, err = Load(abs); err == nil || strings.Contains(err.Error(), "working directory") {
		t.Fatalf("absolute path: %v", err)
	}
}
