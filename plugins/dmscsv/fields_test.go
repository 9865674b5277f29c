package dmscsv

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

type want struct {
	v      string
	null   bool
	quoted bool
}

func split(t *testing.T, s Settings, row string) ([]want, error) {
	t.Helper()
	sp := NewSplitter(s)
	fs, err := sp.Split([]byte(row))
	var out []want
	for _, f := range fs {
		out = append(out, want{string(f.Value), f.Null, f.Quoted})
	}
	return out, err
}

func TestSplitRFC4180(t *testing.T) {
	def := DefaultSettings()
	cases := []struct {
		name string
		row  string
		want []want
	}{
		{"plain", "101,Smith,Bob,2014-06-04,New York", []want{{"101", false, false}, {"Smith", false, false}, {"Bob", false, false}, {"2014-06-04", false, false}, {"New York", false, false}}},
		{"empty is null", "1,,3", []want{{"1", false, false}, {"", true, false}, {"3", false, false}}},
		{"trailing empty", "1,", []want{{"1", false, false}, {"", true, false}}},
		{"leading empty", ",1", []want{{"", true, false}, {"1", false, false}}},
		{"single empty", "", []want{{"", true, false}}},
		{"quoted empty is empty string", `1,"",3`, []want{{"1", false, false}, {"", false, true}, {"3", false, false}}},
		{"quoted delimiter", `"a,b",c`, []want{{"a,b", false, true}, {"c", false, false}}},
		{"quoted newline", "\"line1\nline2\",x", []want{{"line1\nline2", false, true}, {"x", false, false}}},
		{"quoted crlf", "\"a\r\nb\"", []want{{"a\r\nb", false, true}}},
		{"doubled quotes", `"say ""hi""",2`, []want{{`say "hi"`, false, true}, {"2", false, false}}},
		{"only doubled quote", `""""`, []want{{`"`, false, true}}},
		{"two escaped fields", `"a""b","c""d"`, []want{{`a"b`, false, true}, {`c"d`, false, true}}},
		{"quoted last then trailing delimiter", `"a",`, []want{{"a", false, true}, {"", true, false}}},
		{"bare quote inside unquoted field is data", `ab"c,d`, []want{{`ab"c`, false, false}, {"d", false, false}}},
		{"CR is data (the row reader strips row delimiters)", "1,2\r", []want{{"1", false, false}, {"2\r", false, false}}},
		{"quoted null marker text", `"\N"`, []want{{`\N`, false, true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := split(t, def, c.row)
			if err != nil {
				t.Fatalf("Split(%q): %v", c.row, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Split(%q)\n got %+v\nwant %+v", c.row, got, c.want)
			}
		})
	}
}

func TestSplitNullMarker(t *testing.T) {
	s := DefaultSettings()
	s.NullValue, s.NullValueSet = `\N`, true
	got, err := split(t, s, `1,,\N,"",x\N`)
	if err != nil {
		t.Fatal(err)
	}
	w := []want{{"1", false, false}, {"", false, false}, {`\N`, true, false}, {"", false, true}, {`x\N`, false, false}}
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("got %+v\nwant %+v", got, w)
	}
}

func TestSplitRFC4180Off(t *testing.T) {
	s := DefaultSettings()
	s.RFC4180 = false
	got, err := split(t, s, `"a,b",""",x`)
	if err != nil {
		t.Fatal(err)
	}
	w := []want{{`"a`, false, false}, {`b"`, false, false}, {`"""`, false, false}, {"x", false, false}}
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("got %+v\nwant %+v", got, w)
	}
	// an unterminated quote is plain data when rfc4180 is off
	if _, err := split(t, s, `"abc`); err != nil {
		t.Fatalf("rfc4180 off: %v", err)
	}
}

func TestSplitMultiByteDelimiter(t *testing.T) {
	s := DefaultSettings()
	s.Delimiter = "||"
	got, err := split(t, s, `a||"b||c"||||d|e`)
	if err != nil {
		t.Fatal(err)
	}
	w := []want{{"a", false, false}, {"b||c", false, true}, {"", true, false}, {"d|e", false, false}}
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("got %+v\nwant %+v", got, w)
	}
	s.Delimiter = "\t"
	got, _ = split(t, s, "a\tb")
	if len(got) != 2 || got[1].v != "b" {
		t.Fatalf("tab delimiter: %+v", got)
	}
}

func TestSplitErrors(t *testing.T) {
	cases := []struct {
		row    string
		col    int
		offset int
		kind   ErrorKind
		text   string
	}{
		{`1,"abc`, 2, 2, ErrUnterminatedQuote, "field 2 (byte 2 of the row): unterminated quoted field"},
		{`"abc""`, 1, 0, ErrUnterminatedQuote, "field 1 (byte 0 of the row): unterminated quoted field"},
		{`1,2,"ab"c,4`, 3, 8, ErrTextAfterQuote, "field 3 (byte 8 of the row): text after the closing quote"},
	}
	for _, c := range cases {
		_, err := split(t, DefaultSettings(), c.row)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("Split(%q): want a *FieldError, got %v", c.row, err)
		}
		if fe.Column != c.col || fe.Offset != c.offset || fe.Kind != c.kind {
			t.Fatalf("Split(%q): got %+v, want column %d offset %d kind %v", c.row, *fe, c.col, c.offset, c.kind)
		}
		if got := err.Error(); len(got) < len(c.text) || got[:len(c.text)] != c.text {
			t.Fatalf("Split(%q): error text %q does not start with %q", c.row, got, c.text)
		}
	}
	if ErrUnterminatedQuote.Reason() != "unterminated_quote" || ErrTextAfterQuote.Reason() != "text_after_quote" {
		t.Fatal("reasons changed: they are metric label values")
	}
}

func TestSplitReusesBuffersWithoutAllocating(t *testing.T) {
	sp := NewSplitter(DefaultSettings())
	row := []byte(`2024-01-02 03:04:05.123456,"10.1000/xyz ""q""",123456789,12.50,"a,b"`)
	sp.Split(row)
	allocs := testing.AllocsPerRun(1000, func() {
		fs, err := sp.Split(row)
		if err != nil || len(fs) != 5 {
			t.Fatalf("unexpected: %v %d", err, len(fs))
		}
	})
	if allocs != 0 {
		t.Fatalf("Split allocates %.1f times per row after warm-up, want 0", allocs)
	}
	// values handed out for a quoted field with doubled quotes stay correct
	fs, _ := sp.Split(row)
	if string(fs[1].Value) != `10.1000/xyz "q"` || string(fs[4].Value) != "a,b" {
		t.Fatalf("got %q %q", fs[1].Value, fs[4].Value)
	}
}

func BenchmarkSplitReferenceRow(b *testing.B) {
	sp := NewSplitter(DefaultSettings())
	row := []byte(`2023-10-01 12:00:00,10.1000/182,1234567,123.45,sig0000001`)
	b.ReportAllocs()
	b.SetBytes(int64(len(row)))
	for b.Loop() {
		sp.Split(row)
	}
}

// The 8-byte delimiter scan finds what bytes.IndexByte finds, for every
// start offset, delimiter position and neighbouring byte value.
func TestIndexByteFromMatchesIndexByte(t *testing.T) {
	for n := 0; n <= 20; n++ {
		for at := -1; at < n; at++ {
			for _, fill := range []byte{'a', 0x00, 0x80, 0xff, ',' + 1, ',' - 1, ',' ^ 0x80} {
				row := bytes.Repeat([]byte{fill}, n)
				if at >= 0 {
					row[at] = ','
					if at+3 < n {
						row[at+3] = ','
					}
				}
				for from := 0; from <= n; from++ {
					want := bytes.IndexByte(row[from:], ',')
					if want >= 0 {
						want += from
					}
					if got := indexByteFrom(row, from, ','*ones8); got != want {
						t.Fatalf("row %q from %d: got %d, want %d", row, from, got, want)
					}
				}
			}
		}
	}
}

// splitReference is the plain, byte-at-a-time reading of the same rules,
// for TestSplitMatchesReference.
func splitReference(s Settings, row []byte) (vals []string, nulls, quoted []bool, ok bool) {
	d := []byte(s.Delimiter)
	pos := 0
	for {
		if s.RFC4180 && pos < len(row) && row[pos] == '"' {
			var v []byte
			i := pos + 1
			for {
				if i >= len(row) {
					return nil, nil, nil, false
				}
				if row[i] == '"' {
					if i+1 < len(row) && row[i+1] == '"' {
						v = append(v, '"')
						i += 2
						continue
					}
					break
				}
				v = append(v, row[i])
				i++
			}
			i++
			vals, nulls, quoted = append(vals, string(v)), append(nulls, false), append(quoted, true)
			if i >= len(row) {
				return vals, nulls, quoted, true
			}
			if !bytes.HasPrefix(row[i:], d) {
				return nil, nil, nil, false
			}
			pos = i + len(d)
		} else {
			end := bytes.Index(row[pos:], d)
			last := end < 0
			if last {
				end = len(row) - pos
			}
			v := row[pos : pos+end]
			null := len(v) == 0
			if s.NullValueSet {
				null = string(v) == s.NullValue
			}
			vals, nulls, quoted = append(vals, string(v)), append(nulls, null), append(quoted, false)
			if last {
				return vals, nulls, quoted, true
			}
			pos += end + len(d)
		}
		if pos >= len(row) {
			null := !s.NullValueSet
			return append(vals, ""), append(nulls, null), append(quoted, false), true
		}
	}
}

// Split gives what the byte-at-a-time reference gives, on random rows of
// short fields drawn from delimiters, quotes and bytes next to them, with
// either delimiter kind, rfc4180 on and off, csv_null_value set or not.
func TestSplitMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{',', ',', ',', '"', '"', 'a', 'b', ',' + 1, ',' - 1, 0x80, '\\', 'N', '|', ';'}
	for iter := 0; iter < 200000; iter++ {
		s := DefaultSettings()
		s.RFC4180 = rng.IntN(4) != 0
		if rng.IntN(3) == 0 {
			s.NullValue, s.NullValueSet = `\N`, true
		}
		if rng.IntN(4) == 0 {
			s.Delimiter = "|;"
		}
		row := make([]byte, rng.IntN(40))
		for k := range row {
			row[k] = alphabet[rng.IntN(len(alphabet))]
		}
		fields, err := NewSplitter(s).Split(row)
		vals, nulls, quoted, ok := splitReference(s, row)
		if (err == nil) != ok {
			t.Fatalf("settings %+v row %q: Split error %v, reference ok %v", s, row, err, ok)
		}
		if !ok {
			continue
		}
		if len(fields) != len(vals) {
			t.Fatalf("settings %+v row %q: %d fields, reference %d (%q)", s, row, len(fields), len(vals), vals)
		}
		for k, f := range fields {
			if string(f.Value) != vals[k] || f.Null != nulls[k] || f.Quoted != quoted[k] {
				t.Fatalf("settings %+v row %q field %d: %q null %v quoted %v, reference %q %v %v", s, row, k+1, f.Value, f.Null, f.Quoted, vals[k], nulls[k], quoted[k])
			}
		}
	}
}

// A csv_null_value that holds the delimiter or a row delimiter can never
// arrive as one field: refused at start, naming the setting, instead of
// every NULL silently reading as text.
func TestNullValueThatCannotMatchIsRefused(t *testing.T) {
	for _, c := range []struct{ delim, null string }{{",", "N,A"}, {"||", "a||b"}, {",", "\\N\n"}, {"\t", "x\r"}} {
		s := DefaultSettings()
		s.Delimiter = c.delim
		s.NullValue, s.NullValueSet = c.null, true
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "csv_null_value") {
			t.Errorf("csv_null_value %q with csv_delimiter %q: %v", c.null, c.delim, err)
		}
	}
	s := DefaultSettings()
	s.NullValue, s.NullValueSet = `\N`, true
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

// With rfc4180 on, a field that starts with a double quote is a quoted
// field, and a quoted field is never NULL: a csv_null_value that starts with
// a quote ('"NULL"') can never match, and every NULL would read as the text
// NULL. Refused at start; with rfc4180 off quotes are data and it matches.
func TestNullValueStartingWithQuoteIsRefusedUnderRFC4180(t *testing.T) {
	s := DefaultSettings()
	s.NullValue, s.NullValueSet = `"NULL"`, true
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "csv_null_value") {
		t.Fatalf("rfc4180 on: %v", err)
	}
	s.RFC4180 = false
	if err := s.Validate(); err != nil {
		t.Fatalf("rfc4180 off: %v", err)
	}
	f, err := NewSplitter(s).Split([]byte(`1,"NULL"`))
	if err != nil || !f[1].Null {
		t.Fatalf("rfc4180 off: %+v %v", f, err)
	}
}

// TestSplitPastMaxFieldsCounts: past MaxFields the splitter stores no more
// fields but counts them (NumFields), and a malformed field past the bound
// is still found and named by its real column.
func TestSplitPastMaxFieldsCounts(t *testing.T) {
	s := NewSplitter(DefaultSettings())
	s.MaxFields = 4
	f, err := s.Split([]byte(strings.Repeat("a,", 99) + "z"))
	if err != nil || s.NumFields() != 100 || len(f) < 4 || len(f) > 8 || string(f[0].Value) != "a" {
		t.Fatalf("100 fields, MaxFields 4: kept %d, NumFields %d, err %v", len(f), s.NumFields(), err)
	}
	_, err = s.Split([]byte(strings.Repeat("a,", 49) + `"b"c,d`))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Column != 50 || fe.Kind != ErrTextAfterQuote || s.NumFields() != 49 {
		t.Fatalf("bad field 50 past MaxFields: err %v, NumFields %d", err, s.NumFields())
	}
	// The next row starts the count again; a row within the bound is whole.
	f, err = s.Split([]byte("1,2,3"))
	if err != nil || len(f) != 3 || s.NumFields() != 3 || string(f[2].Value) != "3" {
		t.Fatalf("3 fields after a long row: %d kept, NumFields %d, err %v", len(f), s.NumFields(), err)
	}
	// No bound: every field is kept.
	s.MaxFields = 0
	if f, _ := s.Split([]byte(strings.Repeat("a,", 99) + "z")); len(f) != 100 {
		t.Fatalf("no MaxFields: kept %d of 100", len(f))
	}
}

func BenchmarkSplitMixedRow(b *testing.B) {
	sp := NewSplitter(DefaultSettings())
	row := []byte(`12345,eu-3,45,12345,12345,100,97761555,12345.2345,345.5,345.25,true,2024-02-14,12:34:45.123,2024-02-29 23:59:45.123456,02/29/2024 23:59:59.123456789,"Name 12345, ""quoted""",plain note 12345,DEADBEEF39,00FF3039,wide é 45`)
	b.ReportAllocs()
	b.SetBytes(int64(len(row)))
	for b.Loop() {
		sp.Split(row)
	}
}
