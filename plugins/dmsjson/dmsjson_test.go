package dmsjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

type tc struct {
	in     string
	out    string // rendered JSON, or "" when an error is expected
	reason string // expected error reason when out == ""
}

func col(typ tabledef.Type, mod func(*tabledef.Column)) tabledef.Column {
	c := tabledef.Column{Name: "c", Type: typ}
	if mod != nil {
		mod(&c)
	}
	return c
}

func run(t *testing.T, c tabledef.Column, o Options, cases []tc) {
	t.Helper()
	r := NewColumn(c, o)
	for _, x := range cases {
		got, _, err := r.Append([]byte("prefix:"), []byte(x.in))
		if x.out == "" {
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Errorf("%s %q: want a %s error, got %q (err %v)", r.Label(), x.in, x.reason, got, err)
				continue
			}
			if ve.Reason != x.reason {
				t.Errorf("%s %q: reason %s (%s), want %s", r.Label(), x.in, ve.Reason, ve.Rule, x.reason)
			}
			if string(got) != "prefix:" {
				t.Errorf("%s %q: dst changed on error: %q", r.Label(), x.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v", r.Label(), x.in, err)
			continue
		}
		if s := strings.TrimPrefix(string(got), "prefix:"); s != x.out {
			t.Errorf("%s %q: got %s, want %s", r.Label(), x.in, s, x.out)
		} else if !json.Valid([]byte(s)) {
			t.Errorf("%s %q: %s is not valid JSON", r.Label(), x.in, s)
		}
	}
}

func TestIntegers(t *testing.T) {
	run(t, col(tabledef.TypeInt1, nil), Options{}, []tc{
		{"127", "127", ""}, {"-128", "-128", ""}, {"128", "", ReasonOverflow}, {"-129", "", ReasonOverflow},
		{"+007", "7", ""}, {"-0", "0", ""}, {"", "", ReasonBadValue}, {"-", "", ReasonBadValue}, {"1.0", "", ReasonBadValue}, {" 1", "", ReasonBadValue},
	})
	run(t, col(tabledef.TypeInt2, nil), Options{}, []tc{{"32767", "32767", ""}, {"-32768", "-32768", ""}, {"32768", "", ReasonOverflow}})
	run(t, col(tabledef.TypeInt4, nil), Options{}, []tc{{"2147483647", "2147483647", ""}, {"-2147483648", "-2147483648", ""}, {"2147483648", "", ReasonOverflow}})
	run(t, col(tabledef.TypeInt8, nil), Options{}, []tc{
		{"9223372036854775807", "9223372036854775807", ""}, {"-9223372036854775808", "-9223372036854775808", ""},
		{"9223372036854775808", "", ReasonOverflow}, {"-9223372036854775809", "", ReasonOverflow},
		{"99999999999999999999999", "", ReasonOverflow}, {"1234567890123456789x", "", ReasonBadValue},
		{"1234567890123456789", "1234567890123456789", ""},
	})
	run(t, col(tabledef.TypeUInt1, nil), Options{}, []tc{{"255", "255", ""}, {"256", "", ReasonOverflow}, {"-1", "", ReasonOverflow}, {"-0", "0", ""}})
	run(t, col(tabledef.TypeUInt2, nil), Options{}, []tc{{"65535", "65535", ""}, {"65536", "", ReasonOverflow}})
	run(t, col(tabledef.TypeUInt4, nil), Options{}, []tc{{"4294967295", "4294967295", ""}, {"4294967296", "", ReasonOverflow}})
	run(t, col(tabledef.TypeUInt8, nil), Options{}, []tc{{"18446744073709551615", "18446744073709551615", ""}, {"18446744073709551616", "", ReasonOverflow}})
	// DMS compatibility: more than 16 digits go through a double
	run(t, col(tabledef.TypeInt8, nil), Options{DMSLargeIntegers: true}, []tc{
		{"9999999999999999", "9999999999999999", ""}, {"1234567890123456789", "1.2345678901234568e+18", ""},
		{"-9223372036854775808", "-9.223372036854776e+18", ""},
	})
	run(t, col(tabledef.TypeUInt8, nil), Options{DMSLargeIntegers: true}, []tc{{"18446744073709551615", "1.8446744073709552e+19", ""}})
}

func TestNumeric(t *testing.T) {
	n52 := col(tabledef.TypeNumeric, func(c *tabledef.Column) { c.Precision, c.Scale = 5, 2 })
	run(t, n52, Options{}, []tc{
		{"123.45", "123.45", ""}, {"-999.99", "-999.99", ""}, {"1e3", "", ReasonOverflow}, {"1e2", "100.00", ""},
		{"+1.50", "1.50", ""}, {".5", "0.50", ""}, {"5.", "5.00", ""}, {"-0.00", "0.00", ""}, {"0", "0.00", ""},
		{"007.10", "7.10", ""}, {"1.2300", "1.23", ""}, {"1.234", "", ReasonOverflow}, {"1000", "", ReasonOverflow},
		{"12a.5", "", ReasonBadValue}, {"", "", ReasonBadValue}, {".", "", ReasonBadValue}, {"1e", "", ReasonBadValue},
		{"NaN", "", ReasonBadValue}, {"1,5", "", ReasonBadValue}, {"12345e-2", "123.45", ""}, {"0.0001e4", "1.00", ""},
		{"-.05", "-0.05", ""}, {"1E+2", "100.00", ""}, {"1e999999999999", "", ReasonOverflow}, {"0e999999999999", "0.00", ""},
		{"1e-999999999999", "", ReasonOverflow},
	})
	n380 := col(tabledef.TypeNumeric, func(c *tabledef.Column) { c.Precision, c.Scale = 38, 0 })
	run(t, n380, Options{}, []tc{
		{"99999999999999999999999999999999999999", "99999999999999999999999999999999999999", ""},
		{"-12345678901234567890123456789012345678", "-12345678901234567890123456789012345678", ""},
		{"100000000000000000000000000000000000000", "", ReasonOverflow}, {"1.5", "", ReasonOverflow}, {"2.0", "2", ""},
	})
	n3810 := col(tabledef.TypeNumeric, func(c *tabledef.Column) { c.Precision, c.Scale = 38, 10 })
	run(t, n3810, Options{}, []tc{
		{"1234567890123456789012345678.0123456789", "1234567890123456789012345678.0123456789", ""},
		{"0.00000000001", "", ReasonOverflow},
	})
	run(t, n52, Options{NumericAsString: true}, []tc{{"1.5", `"1.50"`, ""}, {"-0", `"0.00"`, ""}})
}

func TestReal(t *testing.T) {
	run(t, col(tabledef.TypeReal8, nil), Options{}, []tc{
		{"1.5", "1.5", ""}, {"-0.1", "-0.1", ""}, {"1e21", "1e+21", ""}, {"1e20", "100000000000000000000", ""},
		{"0.0000001", "1e-7", ""}, {"3", "3", ""}, {"1e400", "", ReasonOverflow}, {"NaN", "", ReasonBadValue},
		{"Inf", "", ReasonBadValue}, {"0x1p3", "", ReasonBadValue}, {"abc", "", ReasonBadValue}, {"", "", ReasonBadValue},
		{"1e-400", "0", ""},
	})
	run(t, col(tabledef.TypeReal4, nil), Options{}, []tc{{"0.1", "0.1", ""}, {"3.4028235e38", "3.4028235e+38", ""}, {"1e39", "", ReasonOverflow}})
}

func TestBoolean(t *testing.T) {
	var cases []tc
	for _, s := range []string{"true", "TRUE", "t", "T", "1", "yes", "Yes", "y", "Y"} {
		cases = append(cases, tc{s, "true", ""})
	}
	for _, s := range []string{"false", "False", "f", "F", "0", "no", "NO", "n", "N"} {
		cases = append(cases, tc{s, "false", ""})
	}
	cases = append(cases, tc{"2", "", ReasonBadValue}, tc{"tru", "", ReasonBadValue}, tc{"", "", ReasonBadValue})
	run(t, col(tabledef.TypeBoolean, nil), Options{}, cases)
}

func TestDateTime(t *testing.T) {
	run(t, col(tabledef.TypeDateTime, nil), Options{}, []tc{
		{"2014-06-04", `"2014-06-04T00:00:00Z"`, ""},
		{"2022-12-18 19:20:00", `"2022-12-18T19:20:00Z"`, ""},
		{"2022-12-18T19:28:42.442556", `"2022-12-18T19:28:42Z"`, ""}, // scale 0 truncates
		{"2022-12-18 19:28:42Z", `"2022-12-18T19:28:42Z"`, ""},
		{"2024-02-29 00:00:00", `"2024-02-29T00:00:00Z"`, ""},
		{"2023-02-29", "", ReasonBadValue}, {"2023-13-01", "", ReasonBadValue}, {"2023-01-01 24:00:00", "", ReasonBadValue},
		{"2023-01-01 10:00", "", ReasonBadValue}, {"2023-01-01 10:00:00.", "", ReasonBadValue},
		{"2023-01-01 10:00:00.1234567890", "", ReasonBadValue}, {"2023-01-01 10:00:00+02:00", "", ReasonBadValue},
		{"4-Jun-14", "", ReasonBadValue}, {"0000-01-01", "", ReasonBadValue},
	})
	s6 := col(tabledef.TypeDateTime, func(c *tabledef.Column) { c.Scale = 6 })
	run(t, s6, Options{}, []tc{
		{"2022-12-18 19:28:42.442556", `"2022-12-18T19:28:42.442556Z"`, ""},
		{"2022-12-18 19:28:42.4425569", `"2022-12-18T19:28:42.442556Z"`, ""}, // truncated, not rounded
		{"2022-12-18 19:28:42.5", `"2022-12-18T19:28:42.500000Z"`, ""},
		{"2022-12-18 19:28:42.0000009", `"2022-12-18T19:28:42Z"`, ""},
		{"2022-12-18 19:20:00.000000", `"2022-12-18T19:20:00Z"`, ""},
	})
	s9 := col(tabledef.TypeDateTime, func(c *tabledef.Column) { c.Scale = 9 })
	run(t, s9, Options{}, []tc{{"2022-12-18 19:28:42.123456789", `"2022-12-18T19:28:42.123456789Z"`, ""}})
	for _, f := range []struct{ format, in string }{
		{"YYYY-MM-dd HH:mm:ss", "2021-03-04 05:06:07"}, {"YYYY-MM-dd HH:mm:ss.F", "2021-03-04 05:06:07.891"},
		{"YYYY/MM/dd HH:mm:ss", "2021/03/04 05:06:07"}, {"YYYY/MM/dd HH:mm:ss.F", "2021/03/04 05:06:07.891"},
		{"MM/dd/YYYY HH:mm:ss", "03/04/2021 05:06:07"}, {"MM/dd/YYYY HH:mm:ss.F", "03/04/2021 05:06:07.891"},
		{"YYYYMMdd HH:mm:ss", "20210304 05:06:07"}, {"YYYYMMdd HH:mm:ss.F", "20210304 05:06:07.891"},
	} {
		c := col(tabledef.TypeDateTime, func(c *tabledef.Column) { c.DateFormat, c.Scale = f.format, 3 })
		want := `"2021-03-04T05:06:07Z"`
		if strings.HasSuffix(f.format, ".F") {
			want = `"2021-03-04T05:06:07.891Z"`
		}
		run(t, c, Options{}, []tc{{f.in, want, ""}, {"2021-13-04 05:06:07x", "", ReasonBadValue}})
	}
	us := col(tabledef.TypeDate, func(c *tabledef.Column) { c.DateFormat = "MM/dd/YYYY HH:mm:ss" })
	run(t, us, Options{}, []tc{{"06/04/2014", `"2014-06-04"`, ""}, {"06/04/2014 00:00:00", `"2014-06-04"`, ""}, {"2014-06-04", "", ReasonBadValue}})
}

func TestDateAndTime(t *testing.T) {
	run(t, col(tabledef.TypeDate, nil), Options{}, []tc{
		{"2015-10-17", `"2015-10-17"`, ""}, {"2015-10-17 00:00:00", `"2015-10-17"`, ""},
		{"2015-10-17 10:00:00", "", ReasonBadValue}, {"2015-10-32", "", ReasonBadValue}, {"20151017", "", ReasonBadValue},
	})
	run(t, col(tabledef.TypeTime, nil), Options{}, []tc{
		{"13:14:15", `"13:14:15"`, ""}, {"13:14:15.999", `"13:14:15"`, ""}, {"2020-01-01 13:14:15", `"13:14:15"`, ""},
		{"25:00:00", "", ReasonBadValue}, {"13:14", "", ReasonBadValue}, {"2020-01-01", "", ReasonBadValue},
	})
	run(t, col(tabledef.TypeTime, func(c *tabledef.Column) { c.Scale = 3 }), Options{}, []tc{
		{"13:14:15.999999", `"13:14:15.999"`, ""}, {"13:14:15.0001", `"13:14:15"`, ""},
	})
}

func TestBinary(t *testing.T) {
	b := col(tabledef.TypeByte, func(c *tabledef.Column) { c.Length = 4 })
	run(t, b, Options{}, []tc{
		{"80057d942e", "", ReasonTruncated}, {"80057d94", `"0x80057D94"`, ""}, {"0xab", `"0xAB"`, ""}, {"", `"0x"`, ""},
		{"abc", "", ReasonBadValue}, {"zz", "", ReasonBadValue},
	})
	run(t, b, Options{NoHexPrefix: true}, []tc{{"ab01", `"AB01"`, ""}})
	blob := col(tabledef.TypeBlob, nil)
	run(t, blob, Options{}, []tc{{"80057D942E", `"0x80057D942E"`, ""}})
	r := NewColumn(b, Options{Truncate: true})
	got, truncated, err := r.Append(nil, []byte("0102030405"))
	if err != nil || !truncated || string(got) != `"0x01020304"` {
		t.Fatalf("truncate policy: %s %v %v", got, truncated, err)
	}
}

func TestStrings(t *testing.T) {
	s := col(tabledef.TypeString, func(c *tabledef.Column) { c.Length = 10 })
	run(t, s, Options{}, []tc{
		{"New York", `"New York"`, ""}, {"", `""`, ""}, {`a"b\c`, `"a\"b\\c"`, ""},
		{"l1\nl2\r\t\b\f", `"l1\nl2\r\t\b\f"`, ""}, {"\x00\x1f", `"\u0000\u001F"`, ""},
		{"é€", `"é€"`, ""}, {"\u2028", `"\u2028"`, ""}, {"<&>", `"<&>"`, ""},
		{"\xff", "", ReasonBadUTF8}, {"ab\xc3", "", ReasonBadUTF8}, {"12345678901", "", ReasonTruncated},
		{"1234567890", `"1234567890"`, ""},
	})
	r := NewColumn(s, Options{Truncate: true})
	got, truncated, err := r.Append(nil, []byte("123456789€")) // € is 3 bytes: 9+3 > 10, cut before it
	if err != nil || !truncated || string(got) != `"123456789"` {
		t.Fatalf("truncate on a UTF-8 boundary: %s %v %v", got, truncated, err)
	}
	clob := col(tabledef.TypeClob, nil)
	run(t, clob, Options{}, []tc{{strings.Repeat("x", 5000), `"` + strings.Repeat("x", 5000) + `"`, ""}})
	if got := string(AppendStringNoCheck(nil, "a\"\xff")); got != "\"a\\\"\uFFFD\"" {
		t.Fatalf("AppendStringNoCheck: %s", got)
	}
}

// Every string the escaper produces decodes back to the input.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "abc", "a\"b", "\x00\u2028é", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		out, err := AppendString(nil, v)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid UTF-8") {
				t.Fatal(err)
			}
			return
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil || back != string(v) {
			t.Fatalf("%q -> %s -> %q (%v)", v, out, back, err)
		}
	})
}

func TestAppendDoesNotAllocate(t *testing.T) {
	cols := []struct {
		c tabledef.Column
		v string
	}{
		{col(tabledef.TypeInt8, nil), "-1234567890123"},
		{col(tabledef.TypeNumeric, func(c *tabledef.Column) { c.Precision, c.Scale = 5, 2 }), "123.45"},
		{col(tabledef.TypeReal8, nil), "3.14159"},
		{col(tabledef.TypeDateTime, func(c *tabledef.Column) { c.Scale = 6 }), "2022-12-18 19:28:42.442556"},
		{col(tabledef.TypeString, func(c *tabledef.Column) { c.Length = 30 }), "10.1000/182 \"é\""},
		{col(tabledef.TypeBoolean, nil), "yes"},
		{col(tabledef.TypeByte, func(c *tabledef.Column) { c.Length = 30 }), "deadbeef"},
	}
	buf := make([]byte, 0, 256)
	for _, x := range cols {
		r := NewColumn(x.c, Options{})
		v := []byte(x.v)
		if n := testing.AllocsPerRun(200, func() {
			var err error
			if _, _, err = r.Append(buf[:0], v); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %.1f allocations per value", r.Label(), n)
		}
	}
}
