package dmsjson

import (
	"testing"

	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

// BenchmarkReferenceRowValues renders the five values of a reference-table
// row (TIMESTAMP, STRING(30), INT8, NUMERIC(5,2), STRING(10)).
func BenchmarkReferenceRowValues(b *testing.B) {
	cols := []*Column{
		NewColumn(tabledef.Column{Type: tabledef.TypeDateTime}, Options{}),
		NewColumn(tabledef.Column{Type: tabledef.TypeString, Length: 30}, Options{}),
		NewColumn(tabledef.Column{Type: tabledef.TypeInt8}, Options{}),
		NewColumn(tabledef.Column{Type: tabledef.TypeNumeric, Precision: 5, Scale: 2}, Options{}),
		NewColumn(tabledef.Column{Type: tabledef.TypeString, Length: 10}, Options{}),
	}
	vals := [][]byte{[]byte("2023-10-01 12:00:00.123456"), []byte("10.1000/182"), []byte("1234567"), []byte("123.45"), []byte("sig0000001")}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i, c := range cols {
			buf, _, _ = c.Append(buf, vals[i])
		}
	}
}
