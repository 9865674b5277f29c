package tabledef

import (
	"os"
	"strings"
	"testing"
)

// FuzzParseInvariants: any document either fails with a "table definition" error or
// yields a definition whose invariants hold.
func FuzzParseInvariants(f *testing.F) {
	for _, name := range []string{"testdata/employee.json", "testdata/reference.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"TableCount":1,"Tables":[{"TableName":"t","TablePath":"s/t/","TableOwner":"s","TableColumns":[{"ColumnName":"a","ColumnType":"NUMERIC","ColumnPrecision":38,"ColumnScale":"31"}],"TableColumnsTotal":1}]}`,
		`{"Tables":[{"TableName":"t","TablePath":"p","TableOwner":"s","TableColumns":[{"ColumnName":"d","ColumnType":"datetime","ColumnScale":"9","ColumnDateFormat":"MM/dd/YYYY HH:mm:ss.F","ColumnIsPk":"y"}],"TableColumnsTotal":"1"}]}`,
		"TableCount: 1\nTables:\n  - TableName: t\n    TablePath: p/\n    TableOwner: s\n    TableColumns: [{ColumnName: a, ColumnType: INT4}]\n    TableColumnsTotal: 1\n",
		`{"Tables":[]}`, `{`, `[]`, ``, `{"TableCount":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(doc)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "table definition") {
				t.Fatalf("error without the table definition prefix: %v", err)
			}
			return
		}
		if len(d.Tables) == 0 || d.TableCount != len(d.Tables) {
			t.Fatalf("TableCount %d, %d tables", d.TableCount, len(d.Tables))
		}
		for _, tb := range d.Tables {
			if d.Table(tb.Owner, tb.Name) != tb {
				t.Fatalf("lookup of %s fails", tb.QualifiedName())
			}
			if tb.Name == "" || tb.Owner == "" || tb.Path == "" || len(tb.Columns) == 0 || tb.ColumnsTotal != len(tb.Columns) {
				t.Fatalf("table invariants broken: %+v", tb)
			}
			pk := 0
			for i, c := range tb.Columns {
				if c.Index != i || c.Name == "" || c.Type == TypeInvalid || c.Type.String() == "INVALID" {
					t.Fatalf("column invariants broken: %+v", c)
				}
				if tb.Column(c.Name) != &tb.Columns[i] {
					t.Fatalf("column lookup of %s fails", c.Name)
				}
				if c.Type == TypeNumeric && (c.Precision < 1 || c.Precision > 38 || c.Scale > 31 || c.Scale > c.Precision) {
					t.Fatalf("NUMERIC(%d,%d) accepted", c.Precision, c.Scale)
				}
				if c.Type == TypeDateTime && c.Scale > 9 {
					t.Fatalf("DATETIME scale %d accepted", c.Scale)
				}
				if c.Length < 0 || c.Length > MaxColumnLength || c.Precision < 0 || c.Scale < 0 {
					t.Fatalf("negative or huge sizes accepted: %+v", c)
				}
				if c.IsPK {
					if pk >= len(tb.PrimaryKey) || tb.PrimaryKey[pk] != i {
						t.Fatalf("PrimaryKey %v does not list column %d", tb.PrimaryKey, i)
					}
					pk++
				}
			}
			if pk != len(tb.PrimaryKey) {
				t.Fatalf("PrimaryKey %v has extra entries", tb.PrimaryKey)
			}
		}
	})
}
