package dmscsv

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzSplit checks, for any row and settings, that Split never panics, that
// a success can be re-encoded into a row that splits to the same fields, and
// that errors are *FieldError values naming a real column.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"101,Smith,Bob,2014-06-04,New York",
		`"a,b",""","""",c`,
		"\"x\ny\",\r",
		`1,"abc`, `"ab"c`, `,,`, `\N,`, "",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, row []byte, mode uint8) {
		s := DefaultSettings()
		s.RFC4180 = mode&1 == 0
		if mode&2 != 0 {
			s.NullValue, s.NullValueSet = `\N`, true
		}
		if mode&4 != 0 {
			s.Delimiter = "|;"
		}
		sp := NewSplitter(s)
		fields, err := sp.Split(row)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Column < 1 || fe.Column > len(fields)+1 || fe.Offset < 0 || fe.Offset > len(row) {
				t.Fatalf("bad error %v for %q", err, row)
			}
			if !s.RFC4180 {
				t.Fatalf("rfc4180 off must never fail, got %v", err)
			}
			return
		}
		if len(fields) == 0 {
			t.Fatal("no fields")
		}
		// copy out, then rebuild a row and split it again
		var vals []Field
		for _, fl := range fields {
			vals = append(vals, Field{Value: append([]byte(nil), fl.Value...), Null: fl.Null, Quoted: fl.Quoted})
		}
		if !s.RFC4180 {
			trimmed := row
			var joined [][]byte
			for _, v := range vals {
				joined = append(joined, v.Value)
			}
			if !bytes.Equal(bytes.Join(joined, []byte(s.Delimiter)), trimmed) {
				t.Fatalf("rfc4180 off: fields %q do not join back to %q", joined, trimmed)
			}
			return
		}
		var re []byte
		for i, v := range vals {
			if i > 0 {
				re = append(re, s.Delimiter...)
			}
			if v.Quoted {
				re = append(re, '"')
				re = append(re, bytes.ReplaceAll(v.Value, []byte(`"`), []byte(`""`))...)
				re = append(re, '"')
			} else {
				re = append(re, v.Value...)
			}
		}
		again, err := NewSplitter(s).Split(re)
		if err != nil {
			t.Fatalf("re-encoded row %q fails: %v", re, err)
		}
		if len(again) != len(vals) {
			t.Fatalf("re-encoded %q: %d fields, want %d", re, len(again), len(vals))
		}
		for i := range vals {
			if !bytes.Equal(again[i].Value, vals[i].Value) || again[i].Null != vals[i].Null || again[i].Quoted != vals[i].Quoted {
				t.Fatalf("field %d: %+v, want %+v (row %q)", i+1, again[i], vals[i], re)
			}
		}
	})
}
