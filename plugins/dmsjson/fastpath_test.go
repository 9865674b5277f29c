package dmsjson

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"

	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

// The fast paths of Append (DATETIME, NUMERIC, integers, plain strings)
// must give exactly what the general code gives: the same bytes, or the same
// error. These properties compare both on random inputs built around the
// shapes the fast paths accept, and on random bytes.

// sameResult appends v with Append (fast path first) and with general,
// and fails unless both give the same bytes or the same error.
func sameResult(t *rapid.T, c *Column, v []byte, general func(dst, v []byte) ([]byte, error)) {
	prefix := []byte("p:")
	got, _, gotErr := c.Append(append([]byte(nil), prefix...), v)
	want, wantErr := general(append([]byte(nil), prefix...), v)
	if wantErr != nil {
		want = prefix // the general functions return dst unchanged on error
	}
	if !bytes.Equal(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("%s %q: Append gives %q (%v), the general path %q (%v)", c.Label(), v, got, gotErr, want, wantErr)
	}
	var ge, we *ValueError
	if errors.As(gotErr, &ge) != errors.As(wantErr, &we) || ge != nil && ge.Reason != we.Reason {
		t.Fatalf("%s %q: error reasons differ: %v / %v", c.Label(), v, gotErr, wantErr)
	}
}

// field draws a zero-padded number of n digits, half the time one of the
// values at the edges of the valid range lo..hi.
func field(t *rapid.T, label string, n, lo, hi int) string {
	var x int
	if rapid.Bool().Draw(t, label+"Edge") {
		x = rapid.SampledFrom([]int{lo - 1, lo, lo + 1, hi - 1, hi, hi + 1}).Draw(t, label)
	} else {
		x = rapid.IntRange(lo, hi).Draw(t, label)
	}
	return fmt.Sprintf("%0*d", n, max(x, 0))
}

// checks runs a property 20 times rapid's default number of checks.
func checks(t *testing.T, prop func(*rapid.T)) {
	for range 20 {
		rapid.Check(t, prop)
	}
}

// mutate sometimes replaces, drops or inserts one byte, to reach the
// inputs next to the accepted shape.
func mutate(t *rapid.T, s string) string {
	b := []byte(s)
	switch rapid.IntRange(0, 5).Draw(t, "mutation") {
	case 0:
		if len(b) > 0 {
			i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
			b[i] = rapid.SampledFrom([]byte("0159-: T.Z+eE/x\x00\xff")).Draw(t, "byte")
		}
	case 1:
		if len(b) > 0 {
			i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
			b = append(b[:i], b[i+1:]...)
		}
	case 2:
		i := rapid.IntRange(0, len(b)).Draw(t, "at")
		b = append(b[:i], append([]byte{rapid.SampledFrom([]byte("0.9Z -")).Draw(t, "byte")}, b[i:]...)...)
	}
	return string(b)
}

// genDate draws a date in one of the layouts (usually format's), with
// fields at and around the edges of their ranges.
func genDate(t *rapid.T, format string) string {
	year := field(t, "year", 4, 1, 9999)
	month := field(t, "month", 2, 1, 12)
	if rapid.IntRange(0, 3).Draw(t, "leap") == 0 {
		year, month = rapid.SampledFrom([]string{"2000", "1900", "2024", "2023", "2100", "0004"}).Draw(t, "leapYear"), "02"
	}
	day := field(t, "day", 2, 1, rapid.SampledFrom([]int{28, 29, 30, 31}).Draw(t, "monthDays"))
	if rapid.IntRange(0, 5).Draw(t, "otherLayout") == 0 {
		format = rapid.SampledFrom([]string{"", "YYYY/MM/dd", "MM/dd/YYYY", "YYYYMMdd"}).Draw(t, "layout")
	}
	switch {
	case strings.HasPrefix(format, "YYYY/MM/dd"):
		return year + "/" + month + "/" + day
	case strings.HasPrefix(format, "MM/dd/YYYY"):
		return month + "/" + day + "/" + year
	case strings.HasPrefix(format, "YYYYMMdd"):
		return year + month + day
	}
	return year + "-" + month + "-" + day
}

// genClock draws HH:MM:SS with an optional fraction and suffix.
func genClock(t *rapid.T) string {
	s := field(t, "hour", 2, 0, 23) + ":" + field(t, "min", 2, 0, 59) + ":" + field(t, "sec", 2, 0, 59)
	if rapid.Bool().Draw(t, "hasFrac") {
		n := rapid.SampledFrom([]int{0, 1, 2, 3, 6, 7, 8, 9, 9, 10, 11}).Draw(t, "fracDigits")
		zeros := rapid.IntRange(0, n).Draw(t, "fracZeros") // leading zeros, up to all of them
		s += "." + strings.Repeat("0", zeros) + rapid.StringMatching(fmt.Sprintf(`[0-9]{%d}`, n-zeros)).Draw(t, "frac")
	}
	return s + rapid.SampledFrom([]string{"", "", "Z", "z", "ZZ", "+00:00"}).Draw(t, "suffix")
}

var dateFormats = []string{"", "", "", "YYYY/MM/dd", "MM/dd/YYYY HH:mm:ss.F", "YYYYMMdd"}

func TestDateTimeFastPathMatches(t *testing.T) {
	fast := 0
	checks(t, func(t *rapid.T) {
		format := rapid.SampledFrom(dateFormats).Draw(t, "format")
		c := NewColumn(tabledef.Column{Type: tabledef.TypeDateTime, Scale: rapid.IntRange(0, 12).Draw(t, "scale"), DateFormat: format}, Options{})
		var s string
		if rapid.IntRange(0, 9).Draw(t, "random") == 0 {
			s = string(rapid.SliceOfN(rapid.Byte(), 0, 32).Draw(t, "bytes"))
		} else {
			s = genDate(t, format) + rapid.SampledFrom([]string{" ", "T", " ", "t", ""}).Draw(t, "sep") + genClock(t)
			s = mutate(t, s)
		}
		if _, ok := c.appendDateTimeFast(nil, []byte(s)); ok {
			fast++
		}
		sameResult(t, c, []byte(s), c.appendDateTime)
	})
	if fast == 0 {
		t.Fatal("the DATETIME fast path never ran")
	}
}

func TestDateAndTimeFastPathsMatch(t *testing.T) {
	fastDate, fastTime := 0, 0
	checks(t, func(t *rapid.T) {
		format := rapid.SampledFrom(dateFormats).Draw(t, "format")
		date := NewColumn(tabledef.Column{Type: tabledef.TypeDate, DateFormat: format}, Options{})
		tm := NewColumn(tabledef.Column{Type: tabledef.TypeTime, Scale: rapid.IntRange(0, 12).Draw(t, "scale"), DateFormat: format}, Options{})
		var s string
		switch rapid.IntRange(0, 9).Draw(t, "shape") {
		case 0:
			s = string(rapid.SliceOfN(rapid.Byte(), 0, 32).Draw(t, "bytes"))
		case 1, 2, 3:
			s = mutate(t, genDate(t, format))
		case 4, 5, 6:
			s = mutate(t, genClock(t))
		default:
			s = mutate(t, genDate(t, format)+" "+genClock(t))
		}
		if _, ok := date.appendDateFast(nil, []byte(s)); ok {
			fastDate++
		}
		if _, ok := appendTimeFast(nil, []byte(s), tm.Scale); ok {
			fastTime++
		}
		sameResult(t, date, []byte(s), date.appendDate)
		sameResult(t, tm, []byte(s), tm.appendTime)
	})
	if fastDate == 0 || fastTime == 0 {
		t.Fatalf("fast paths ran %d (DATE) and %d (TIME) times", fastDate, fastTime)
	}
}

func TestNumericFastPathMatches(t *testing.T) {
	fast := 0
	checks(t, func(t *rapid.T) {
		prec := rapid.IntRange(1, 12).Draw(t, "prec")
		c := NewColumn(tabledef.Column{
			Type: tabledef.TypeNumeric, Precision: prec, Scale: rapid.IntRange(0, prec).Draw(t, "scale"),
		}, Options{NumericAsString: rapid.Bool().Draw(t, "asString")})
		var s string
		if rapid.IntRange(0, 9).Draw(t, "random") == 0 {
			s = string(rapid.SliceOfN(rapid.SampledFrom([]byte("0123456789.-+eE x")), 0, 16).Draw(t, "bytes"))
		} else {
			s = rapid.SampledFrom([]string{"", "", "-", "+"}).Draw(t, "sign") +
				strings.Repeat("0", rapid.IntRange(0, 3).Draw(t, "lead"))
			s += rapid.StringMatching(`[0-9]{0,10}`).Draw(t, "int")
			if rapid.Bool().Draw(t, "point") {
				s += "."
				s += rapid.StringMatching(`[0-9]{0,8}`).Draw(t, "frac")
				s += strings.Repeat("0", rapid.IntRange(0, 3).Draw(t, "trail"))
			}
			if rapid.IntRange(0, 5).Draw(t, "exp") == 0 {
				s += "e" + strconv.Itoa(rapid.IntRange(-3, 3).Draw(t, "expValue"))
			}
			s = mutate(t, s)
		}
		if _, ok := c.appendNumericFast(nil, []byte(s)); ok {
			fast++
		}
		sameResult(t, c, []byte(s), c.appendNumeric)
	})
	if fast == 0 {
		t.Fatal("the NUMERIC fast path never ran")
	}
}

// Integers are written by copying their digits; the value must be the one
// strconv formats.
func TestIntegerDigitsMatchStrconv(t *testing.T) {
	types := []tabledef.Type{tabledef.TypeInt1, tabledef.TypeInt2, tabledef.TypeInt4, tabledef.TypeInt8,
		tabledef.TypeUInt1, tabledef.TypeUInt2, tabledef.TypeUInt4, tabledef.TypeUInt8}
	checks(t, func(t *rapid.T) {
		typ := rapid.SampledFrom(types).Draw(t, "type")
		large := rapid.Bool().Draw(t, "dmsLarge")
		c := NewColumn(tabledef.Column{Type: typ}, Options{DMSLargeIntegers: large})
		s := rapid.SampledFrom([]string{"", "", "-", "+"}).Draw(t, "sign") +
			strings.Repeat("0", rapid.IntRange(0, 3).Draw(t, "lead")) +
			rapid.StringMatching(`[0-9]{0,21}`).Draw(t, "digits")
		got, _, err := c.Append(nil, []byte(s))
		signed := typ <= tabledef.TypeInt8 && typ >= tabledef.TypeInt1
		var want string
		if signed {
			n, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil {
				if err == nil {
					t.Fatalf("%s %q: accepted as %s, strconv: %v", c.Label(), s, got, perr)
				}
				return
			}
			want = strconv.FormatInt(n, 10)
			if large && (n >= 1e16 || n <= -1e16) {
				want = strconv.FormatFloat(float64(n), 'g', -1, 64)
			}
		} else {
			u, perr := strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, 64)
			if strings.HasPrefix(s, "-") {
				u, perr = 0, strconv.ErrRange
				if strings.Trim(s[1:], "0") == "" && len(s) > 1 {
					perr = nil // "-0" is 0
				}
			}
			if perr != nil {
				if err == nil {
					t.Fatalf("%s %q: accepted as %s, strconv: %v", c.Label(), s, got, perr)
				}
				return
			}
			want = strconv.FormatUint(u, 10)
			if large && u >= 1e16 {
				want = strconv.FormatFloat(float64(u), 'g', -1, 64)
			}
		}
		if err != nil {
			var ve *ValueError
			if errors.As(err, &ve) && ve.Reason == ReasonOverflow {
				return // in strconv's range but not the column type's
			}
			t.Fatalf("%s %q: %v, want %s", c.Label(), s, err, want)
		}
		if string(got) != want {
			t.Fatalf("%s %q: got %s, want %s", c.Label(), s, got, want)
		}
	})
}

// appendEscapedBytewise is the escaper without the 8-byte fast path.
func appendEscapedBytewise(dst, v []byte) ([]byte, error) {
	start := 0
	for i := 0; i < len(v); {
		b := v[i]
		if b < utf8.RuneSelf {
			if safeASCII[b] {
				i++
				continue
			}
			dst = append(dst, v[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexUpper[b>>4], hexUpper[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 {
			return dst, fail(ReasonBadUTF8, "invalid UTF-8 at byte %d", i+1)
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexUpper[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, v[start:]...), nil
}

func TestAppendEscapedMatchesBytewise(t *testing.T) {
	// every byte value next to runs of plain ASCII, at every offset in a word
	alphabet := []byte("abcdefgh0123 ~\x7f\"\\\x00\x1f\x20\n\t\x80\xff\xc3\xa9\xe2\x80\xa8")
	checks(t, func(t *rapid.T) {
		var v []byte
		if rapid.Bool().Draw(t, "anyByte") {
			v = rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "v")
		} else {
			v = rapid.SliceOfN(rapid.SampledFrom(alphabet), 0, 40).Draw(t, "v")
		}
		got, gotErr := AppendEscaped([]byte("p"), v)
		want, wantErr := appendEscapedBytewise([]byte("p"), v)
		if !bytes.Equal(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("%q: got %q (%v), want %q (%v)", v, got, gotErr, want, wantErr)
		}
	})
	for b := 0; b < 256; b++ {
		for at := 0; at < 16; at++ {
			v := []byte(strings.Repeat("x", 16))
			v[at] = byte(b)
			got, gotErr := AppendEscaped(nil, v)
			want, wantErr := appendEscapedBytewise(nil, v)
			if !bytes.Equal(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("byte %#x at %d: got %q (%v), want %q (%v)", b, at, got, gotErr, want, wantErr)
			}
		}
	}
}

func TestRealFastPathMatches(t *testing.T) {
	fast := 0
	checks(t, func(t *rapid.T) {
		typ := rapid.SampledFrom([]tabledef.Type{tabledef.TypeReal4, tabledef.TypeReal8}).Draw(t, "type")
		c := NewColumn(tabledef.Column{Type: typ}, Options{})
		bits := 64
		if typ == tabledef.TypeReal4 {
			bits = 32
		}
		var s string
		if rapid.IntRange(0, 9).Draw(t, "random") == 0 {
			s = string(rapid.SliceOfN(rapid.SampledFrom([]byte("0123456789.-+eE")), 0, 24).Draw(t, "bytes"))
		} else {
			s = rapid.SampledFrom([]string{"", "", "-", "+"}).Draw(t, "sign") +
				strings.Repeat("0", rapid.IntRange(0, 2).Draw(t, "lead")) +
				rapid.StringMatching(`[0-9]{0,18}`).Draw(t, "int") +
				strings.Repeat("0", rapid.SampledFrom([]int{0, 0, 1, 3, 6, 9, 14, 20, 21}).Draw(t, "intZeros"))
			if rapid.Bool().Draw(t, "point") {
				s += "." + strings.Repeat("0", rapid.IntRange(0, 7).Draw(t, "fracLead")) +
					rapid.StringMatching(`[0-9]{0,18}`).Draw(t, "frac") +
					strings.Repeat("0", rapid.IntRange(0, 3).Draw(t, "fracZeros"))
			}
			s = mutate(t, s)
		}
		if _, ok := appendRealFast(nil, []byte(s), map[int]int{32: 6, 64: 15}[bits]); ok {
			fast++
		}
		sameResult(t, c, []byte(s), func(dst, v []byte) ([]byte, error) { return appendReal(dst, v, bits) })
	})
	if fast == 0 {
		t.Fatal("the REAL fast path never ran")
	}
}

// The 2- and 3-byte UTF-8 fast path accepts exactly what utf8.DecodeRune
// does: every lead byte from 0x80 with every second byte, and for 3-byte
// leads every third byte, before, inside and after plain text.
func TestAppendEscapedUTF8MatchesBytewise(t *testing.T) {
	for b0 := 0x80; b0 < 0x100; b0++ {
		for b1 := 0; b1 < 0x100; b1++ {
			thirds := []int{-1, 0x41}
			if b0 >= 0xE0 {
				thirds = []int{-1, 0x41, 0x7F, 0x80, 0xA8, 0xA9, 0xBF, 0xC0}
			}
			for _, b2 := range thirds {
				seq := []byte{byte(b0), byte(b1)}
				if b2 >= 0 {
					seq = append(seq, byte(b2))
				}
				for _, v := range [][]byte{seq, append([]byte("abcdefghi"), seq...), append(append([]byte("ab"), seq...), "cdefghij"...)} {
					got, gotErr := AppendEscaped(nil, v)
					want, wantErr := appendEscapedBytewise(nil, v)
					if !bytes.Equal(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
						t.Fatalf("%q: got %q (%v), want %q (%v)", v, got, gotErr, want, wantErr)
					}
				}
			}
		}
	}
}
