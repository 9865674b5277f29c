// Package dmsjson renders DMS-typed column values as the JSON values AWS DMS
// writes to Kinesis, by appending to a []byte. It never goes through
// encoding/json, and never through float64 for integers or NUMERIC, so no
// digit is lost.
//
// Rendering rules (input text -> JSON):
//   - INT1..INT8, UINT1..UINT8: optional sign, decimal digits, leading zeros
//     allowed; range-checked for the type; rendered as a JSON number with all
//     digits ("+007" -> 7, "-0" -> 0). With Options.DMSLargeIntegers (DMS's
//     UseLargeIntegerValue=false behaviour) values of more than 16 digits are
//     rendered as DMS does, through a double in scientific notation
//     (1.2345678901234568e+18).
//   - NUMERIC(p,s): optional sign, digits with an optional point, optional
//     exponent ("1e3", "+1.50", ".5", "5.", "-0.00"); at most p-s digits
//     before the point, and no non-zero digit beyond s digits after it (those
//     are errors, never silently rounded). Rendered exactly, with exactly s
//     fractional digits (NUMERIC(5,2): "1e1" -> 10.00, ".5" -> 0.50,
//     "-0.00" -> 0.00), as a JSON number or, with NumericAsString, a string.
//   - REAL4/REAL8: decimal floating-point text (no hex floats, NaN or Inf;
//     out-of-range values are errors), rendered in the shortest form that
//     round-trips at the type's precision, as encoding/json would.
//   - DATE -> "YYYY-MM-DD"; TIME -> "HH:MM:SS[.f]"; DATETIME ->
//     "YYYY-MM-DDTHH:MM:SS[.f]Z". Fractions are truncated (not rounded) to
//     ColumnScale digits (0 when unset, so dropped), printed with exactly
//     ColumnScale digits and omitted when they are all zero. Accepted input:
//     the date in the column's ColumnDateFormat layout (YYYY-MM-dd when
//     unset), optionally followed by " " or "T", HH:mm:ss, an optional
//     fraction of 1 to 9 digits and an optional "Z". A date alone is midnight
//     for DATETIME; a TIME column also accepts a bare time. A DATE column
//     rejects a non-midnight time rather than dropping it.
//   - BOOLEAN: true/false/t/f/1/0/yes/no/y/n in any case -> true/false.
//   - BYTE/BLOB: hex digits (an input "0x" prefix is accepted) -> "0x" plus
//     upper-case hex, or without "0x" with NoHexPrefix.
//   - STRING/CLOB: valid UTF-8 -> a JSON string (", \ and control characters
//     escaped, U+2028 and U+2029 as \u2028/\u2029, nothing else escaped).
//     ColumnLength (bytes, 0 = no limit) is enforced for STRING, CLOB, BYTE
//     and BLOB: longer values are errors, or are cut at ColumnLength (on a
//     UTF-8 boundary for strings) when Options.Truncate is set.
//
// The package does not import Benthos.
package dmsjson

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

// Error reasons: short, stable names used as metric labels.
const (
	ReasonBadValue  = "bad_value"
	ReasonOverflow  = "overflow"
	ReasonBadUTF8   = "bad_utf8"
	ReasonTruncated = "truncation"
)

// ValueError says why a value does not fit its column type.
type ValueError struct {
	Reason string // one of the Reason constants
	Rule   string // the rule broken, for people
}

func (e *ValueError) Error() string { return e.Rule }

func fail(reason, format string, args ...any) *ValueError {
	return &ValueError{Reason: reason, Rule: fmt.Sprintf(format, args...)}
}

// Options are the rendering switches of the Kinesis endpoint.
type Options struct {
	// NoHexPrefix drops the "0x" of BYTE/BLOB values (DMS NoHexPrefix).
	NoHexPrefix bool
	// DMSLargeIntegers reproduces DMS with UseLargeIntegerValue=false:
	// integers of more than 16 digits go through a double.
	DMSLargeIntegers bool
	// NumericAsString renders NUMERIC values as JSON strings.
	NumericAsString bool
	// Truncate cuts over-long STRING/CLOB/BYTE/BLOB values at ColumnLength
	// instead of failing.
	Truncate bool
}

type dateLayout uint8

const (
	layoutISO     dateLayout = iota // YYYY-MM-dd
	layoutSlash                     // YYYY/MM/dd
	layoutUS                        // MM/dd/YYYY
	layoutCompact                   // YYYYMMdd
)

// Column renders the values of one column.
type Column struct {
	Name   string
	Type   tabledef.Type
	Length int
	Prec   int
	Scale  int
	layout dateLayout
	opts   Options
	label  string
}

// NewColumn prepares the renderer of c.
func NewColumn(c tabledef.Column, o Options) *Column {
	col := &Column{Name: c.Name, Type: c.Type, Length: c.Length, Prec: c.Precision, Scale: c.Scale, opts: o}
	switch {
	case len(c.DateFormat) >= 10 && c.DateFormat[:10] == "YYYY/MM/dd":
		col.layout = layoutSlash
	case len(c.DateFormat) >= 10 && c.DateFormat[:10] == "MM/dd/YYYY":
		col.layout = layoutUS
	case len(c.DateFormat) >= 8 && c.DateFormat[:8] == "YYYYMMdd":
		col.layout = layoutCompact
	}
	switch c.Type {
	case tabledef.TypeNumeric:
		col.label = fmt.Sprintf("NUMERIC(%d,%d)", c.Precision, c.Scale)
	case tabledef.TypeString, tabledef.TypeByte:
		col.label = fmt.Sprintf("%s(%d)", c.Type, c.Length)
	case tabledef.TypeDateTime, tabledef.TypeTime:
		col.label = c.Type.String()
		if c.Scale > 0 {
			col.label = fmt.Sprintf("%s(%d)", c.Type, c.Scale)
		}
	default:
		col.label = c.Type.String()
	}
	if c.DateFormat != "" {
		col.label += " in format " + c.DateFormat
	}
	return col
}

// Label names the column type for messages, e.g. "NUMERIC(5,2)".
func (c *Column) Label() string { return c.label }

// IsString reports whether the column renders as a JSON string whose text is
// the input itself (STRING, CLOB).
func (c *Column) IsString() bool {
	return c.Type == tabledef.TypeString || c.Type == tabledef.TypeClob
}

// Append appends the JSON rendering of the non-NULL value v to dst.
// truncated is true when v was cut to ColumnLength (Options.Truncate).
func (c *Column) Append(dst, v []byte) (out []byte, truncated bool, err error) {
	switch c.Type {
	case tabledef.TypeInt1:
		out, err = c.appendInt(dst, v, math.MinInt8, math.MaxInt8)
	case tabledef.TypeInt2:
		out, err = c.appendInt(dst, v, math.MinInt16, math.MaxInt16)
	case tabledef.TypeInt4:
		out, err = c.appendInt(dst, v, math.MinInt32, math.MaxInt32)
	case tabledef.TypeInt8:
		out, err = c.appendInt(dst, v, math.MinInt64, math.MaxInt64)
	case tabledef.TypeUInt1:
		out, err = c.appendUint(dst, v, math.MaxUint8)
	case tabledef.TypeUInt2:
		out, err = c.appendUint(dst, v, math.MaxUint16)
	case tabledef.TypeUInt4:
		out, err = c.appendUint(dst, v, math.MaxUint32)
	case tabledef.TypeUInt8:
		out, err = c.appendUint(dst, v, math.MaxUint64)
	case tabledef.TypeNumeric:
		var ok bool
		if out, ok = c.appendNumericFast(dst, v); !ok {
			out, err = c.appendNumeric(dst, v)
		}
	case tabledef.TypeReal4:
		var ok bool
		if out, ok = appendRealFast(dst, v, 6); !ok {
			out, err = appendReal(dst, v, 32)
		}
	case tabledef.TypeReal8:
		var ok bool
		if out, ok = appendRealFast(dst, v, 15); !ok {
			out, err = appendReal(dst, v, 64)
		}
	case tabledef.TypeBoolean:
		out, err = appendBool(dst, v)
	case tabledef.TypeDate:
		var ok bool
		if out, ok = c.appendDateFast(dst, v); !ok {
			out, err = c.appendDate(dst, v)
		}
	case tabledef.TypeTime:
		var ok bool
		if out, ok = appendTimeFast(dst, v, c.Scale); !ok {
			out, err = c.appendTime(dst, v)
		}
	case tabledef.TypeDateTime:
		var ok bool
		if out, ok = c.appendDateTimeFast(dst, v); !ok {
			out, err = c.appendDateTime(dst, v)
		}
	case tabledef.TypeByte, tabledef.TypeBlob:
		out, truncated, err = c.appendHex(dst, v)
	case tabledef.TypeString, tabledef.TypeClob:
		if c.Length > 0 && len(v) > c.Length {
			if !c.opts.Truncate {
				return dst, false, fail(ReasonTruncated, "%d bytes, longer than ColumnLength %d", len(v), c.Length)
			}
			truncated = true
			cut := cutUTF8(v, c.Length)
			if rest := v[len(cut):]; !utf8.Valid(rest) {
				// the value is bad input even where truncation drops it
				return dst, false, fail(ReasonBadUTF8, "invalid UTF-8 after byte %d (the part truncation_policy truncate drops)", len(cut))
			}
			v = cut
		}
		out, err = AppendString(dst, v)
	default:
		return dst, false, fail(ReasonBadValue, "unsupported column type %s", c.Type)
	}
	if err != nil {
		return dst, false, err
	}
	return out, truncated, nil
}

// Kept is the part of a STRING or CLOB value the column renders: v, or
// under truncation_policy truncate a value longer than ColumnLength cut to
// it on a character boundary. Partition keys and templates use this text,
// so they agree with the record's data.
func (c *Column) Kept(v []byte) []byte {
	if c.opts.Truncate && c.Length > 0 && len(v) > c.Length {
		return cutUTF8(v, c.Length)
	}
	return v
}

// cutUTF8 cuts v to at most n bytes without splitting a UTF-8 sequence.
func cutUTF8(v []byte, n int) []byte {
	v = v[:n]
	for i := len(v) - 1; i >= 0 && i >= len(v)-utf8.UTFMax; i-- {
		if utf8.RuneStart(v[i]) {
			if !utf8.FullRune(v[i:]) {
				return v[:i]
			}
			break
		}
	}
	return v
}

// parseDigits parses an unsigned decimal number with an optional sign.
func parseDigits(v []byte) (neg bool, mag uint64, ok, overflow bool) {
	i := 0
	if len(v) > 0 && (v[0] == '+' || v[0] == '-') {
		neg = v[0] == '-'
		i = 1
	}
	if i == len(v) {
		return
	}
	if len(v)-i <= 19 { // 19 digits cannot overflow a uint64
		for ; i < len(v); i++ {
			d := v[i] - '0'
			if d > 9 {
				return neg, 0, false, false
			}
			mag = mag*10 + uint64(d)
		}
		return neg, mag, true, false
	}
	for ; i < len(v); i++ {
		d := v[i] - '0'
		if d > 9 {
			return neg, 0, false, false
		}
		if mag > (math.MaxUint64-uint64(d))/10 {
			overflow = true
			continue // keep scanning to tell "not a number" from "too big"
		}
		if !overflow {
			mag = mag*10 + uint64(d)
		}
	}
	return neg, mag, true, overflow
}

func (c *Column) appendInt(dst, v []byte, lo, hi int64) ([]byte, error) {
	neg, mag, ok, over := parseDigits(v)
	if !ok {
		return dst, fail(ReasonBadValue, "not a whole number (optional sign and digits 0-9)")
	}
	if over || (!neg && mag > uint64(hi)) || (neg && mag > uint64(-(lo+1))+1) {
		return dst, fail(ReasonOverflow, "out of range %d to %d", lo, hi)
	}
	if mag == 0 {
		return append(dst, '0'), nil
	}
	if c.opts.DMSLargeIntegers && mag >= 1e16 {
		f := float64(mag)
		if neg {
			f = -f
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
	}
	if neg {
		dst = append(dst, '-')
	}
	return appendMag(dst, v), nil
}

// appendMag appends the digits of v, a valid whole number that did not
// overflow and is not zero, without its sign and leading zeros: the same
// text as strconv.AppendUint of its magnitude, without a division per digit.
func appendMag(dst, v []byte) []byte {
	i := 0
	if v[0] == '+' || v[0] == '-' {
		i = 1
	}
	for v[i] == '0' {
		i++
	}
	return append(dst, v[i:]...)
}

func (c *Column) appendUint(dst, v []byte, hi uint64) ([]byte, error) {
	neg, mag, ok, over := parseDigits(v)
	if !ok {
		return dst, fail(ReasonBadValue, "not a whole number (optional sign and digits 0-9)")
	}
	if over || mag > hi || (neg && mag != 0) {
		return dst, fail(ReasonOverflow, "out of range 0 to %d", hi)
	}
	if c.opts.DMSLargeIntegers && mag >= 1e16 {
		return strconv.AppendFloat(dst, float64(mag), 'g', -1, 64), nil
	}
	if mag == 0 {
		return append(dst, '0'), nil
	}
	return appendMag(dst, v), nil
}

const maxExp = 1 << 20

// scanPlainDecimal reads v as "[-]digits[.digits]" (at least one digit
// before the point, and after it when there is one) and returns the sign,
// the integer digits without leading zeros, v[intStart:intEnd], and the
// fraction digits, v[fracStart:fracEnd]; ok is false for any other shape.
func scanPlainDecimal(v []byte) (neg bool, intStart, intEnd, fracStart, fracEnd int, ok bool) {
	i := 0
	neg = len(v) > 0 && v[0] == '-'
	if neg {
		i = 1
	}
	intStart = i
	for i < len(v) && v[i]-'0' <= 9 {
		i++
	}
	intEnd = i
	if intEnd == intStart {
		return
	}
	fracStart, fracEnd = i, i
	if i < len(v) {
		if v[i] != '.' {
			return
		}
		i++
		fracStart = i
		for i < len(v) && v[i]-'0' <= 9 {
			i++
		}
		fracEnd = i
		if i != len(v) || fracEnd == fracStart {
			return
		}
	}
	for intStart < intEnd && v[intStart] == '0' {
		intStart++
	}
	return neg, intStart, intEnd, fracStart, fracEnd, true
}

// appendNumericFast renders the common shapes of NUMERIC text: an optional
// "-", at least one integer digit, and optionally "." followed by 1 to Scale
// digits, within the precision. It reports false, having written nothing,
// for anything else (exponents, "+", ".5", "5.", too many digits, ...),
// which appendNumeric then renders or rejects. For the inputs it accepts
// its output is the same as appendNumeric's (TestNumericFastPathMatches).
func (c *Column) appendNumericFast(dst, v []byte) ([]byte, bool) {
	neg, intStart, intEnd, fracStart, fracEnd, ok := scanPlainDecimal(v)
	if !ok || fracEnd-fracStart > c.Scale {
		return dst, false
	}
	if intEnd-intStart > c.Prec-c.Scale {
		return dst, false // overflow: the general path words the error
	}
	zero := intStart == intEnd
	for k := fracStart; zero && k < fracEnd; k++ {
		zero = v[k] == '0'
	}
	if c.opts.NumericAsString {
		dst = append(dst, '"')
	}
	switch {
	case zero:
		dst = append(dst, '0')
	case intStart == intEnd:
		if neg {
			dst = append(dst, '-')
		}
		dst = append(dst, '0')
	default:
		if neg {
			dst = append(dst, '-')
		}
		dst = append(dst, v[intStart:intEnd]...)
	}
	if c.Scale > 0 {
		dst = append(dst, '.')
		dst = append(dst, v[fracStart:fracEnd]...)
		for k := fracEnd - fracStart; k < c.Scale; k++ {
			dst = append(dst, '0')
		}
	}
	if c.opts.NumericAsString {
		dst = append(dst, '"')
	}
	return dst, true
}

func (c *Column) appendNumeric(dst, v []byte) ([]byte, error) {
	bad := func() ([]byte, error) {
		return dst, fail(ReasonBadValue, "not a decimal number (sign, digits, optional point and fraction, optional exponent)")
	}
	i := 0
	neg := false
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		neg = v[i] == '-'
		i++
	}
	intStart := i
	for i < len(v) && v[i]-'0' <= 9 {
		i++
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(v) && v[i] == '.' {
		i++
		fracStart = i
		for i < len(v) && v[i]-'0' <= 9 {
			i++
		}
		fracEnd = i
	}
	intLen, fracLen := intEnd-intStart, fracEnd-fracStart
	if intLen+fracLen == 0 {
		return bad()
	}
	exp := 0
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		eneg := false
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			eneg = v[i] == '-'
			i++
		}
		if i == len(v) {
			return bad()
		}
		for ; i < len(v); i++ {
			d := v[i] - '0'
			if d > 9 {
				return bad()
			}
			if exp < maxExp {
				exp = exp*10 + int(d)
			}
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(v) {
		return bad()
	}
	n := intLen + fracLen
	digit := func(k int) byte { // k-th mantissa digit; '0' outside
		switch {
		case k < 0 || k >= n:
			return '0'
		case k < intLen:
			return v[intStart+k]
		default:
			return v[fracStart+k-intLen]
		}
	}
	first, last := -1, -1
	for k := 0; k < n; k++ {
		if digit(k) != '0' {
			if first < 0 {
				first = k
			}
			last = k
		}
	}
	point := intLen + exp // digits before the point
	if first >= 0 {
		if intDigits := point - first; intDigits > c.Prec-c.Scale {
			return dst, fail(ReasonOverflow, "more than %d digits before the decimal point (precision %d, scale %d)", c.Prec-c.Scale, c.Prec, c.Scale)
		}
		if fracDigits := last + 1 - point; fracDigits > c.Scale {
			return dst, fail(ReasonOverflow, "more than %d digits after the decimal point (scale %d)", c.Scale, c.Scale)
		}
	}
	if c.opts.NumericAsString {
		dst = append(dst, '"')
	}
	if first < 0 {
		dst = append(dst, '0')
	} else {
		if neg {
			dst = append(dst, '-')
		}
		if point <= first {
			dst = append(dst, '0')
		} else {
			for k := first; k < point; k++ {
				dst = append(dst, digit(k))
			}
		}
	}
	if c.Scale > 0 {
		dst = append(dst, '.')
		for k := point; k < point+c.Scale; k++ {
			if first < 0 {
				dst = append(dst, '0')
			} else {
				dst = append(dst, digit(k))
			}
		}
	}
	if c.opts.NumericAsString {
		dst = append(dst, '"')
	}
	return dst, nil
}

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func appendReal(dst, v []byte, bits int) ([]byte, error) {
	for _, ch := range v {
		if !(ch-'0' <= 9 || ch == '.' || ch == '-' || ch == '+' || ch == 'e' || ch == 'E') {
			return dst, fail(ReasonBadValue, "not a decimal floating-point number (NaN, Inf and hex floats are not allowed)")
		}
	}
	f, err := strconv.ParseFloat(unsafeString(v), bits)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange && !math.IsInf(f, 0) {
			// underflow to zero or a denormal: the nearest value is fine
		} else if ok && ne.Err == strconv.ErrRange {
			return dst, fail(ReasonOverflow, "out of the REAL%d range", bits/8)
		} else {
			return dst, fail(ReasonBadValue, "not a decimal floating-point number")
		}
	}
	return AppendFloat(dst, f, bits), nil
}

// appendRealFast renders plain decimals, "-"? digits ("." digits)?, of at
// most sig significant digits (15 for REAL8, 6 for REAL4: the digits a
// double or a float keeps exactly) and a magnitude from 1e-5 to below 1e15.
// The shortest text that round-trips such a number is its own digits, so it
// is written without going through a float: without leading zeros, without
// trailing fraction zeros (and point), "-" kept as AppendFloat keeps it for
// -0. It reports false, having written nothing, for anything else, which
// appendReal then renders (TestRealFastPathMatches).
func appendRealFast(dst, v []byte, sig int) ([]byte, bool) {
	neg, intStart, intEnd, fracStart, fracEnd, ok := scanPlainDecimal(v)
	if !ok {
		return dst, false
	}
	for fracEnd > fracStart && v[fracEnd-1] == '0' {
		fracEnd--
	}
	intLen, fracLen := intEnd-intStart, fracEnd-fracStart
	if intLen > 15 {
		return dst, false
	}
	digits := intLen + fracLen
	if intLen == 0 && fracLen > 0 {
		lead := 0 // zeros after the point before the first significant digit
		for v[fracStart+lead] == '0' {
			lead++
		}
		if lead >= 5 {
			return dst, false // below 1e-5: near the exponent form
		}
		digits = fracLen - lead
	} else {
		for k := intEnd - 1; k > intStart && v[k] == '0' && fracLen == 0; k-- {
			digits-- // trailing zeros of a whole number are not significant
		}
	}
	if digits > sig {
		return dst, false
	}
	if neg {
		dst = append(dst, '-')
	}
	if intLen == 0 {
		dst = append(dst, '0')
	} else {
		dst = append(dst, v[intStart:intEnd]...)
	}
	if fracLen > 0 {
		dst = append(dst, '.')
		dst = append(dst, v[fracStart:fracEnd]...)
	}
	return dst, true
}

// AppendFloat appends f as encoding/json does: the shortest text that
// round-trips at bits precision, in exponent form below 1e-6 and from 1e21.
func AppendFloat(dst []byte, f float64, bits int) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

func lowerEq(v []byte, s string) bool {
	if len(v) != len(s) {
		return false
	}
	for i := range v {
		ch := v[i]
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

func appendBool(dst, v []byte) ([]byte, error) {
	switch {
	case lowerEq(v, "true"), lowerEq(v, "t"), lowerEq(v, "1"), lowerEq(v, "yes"), lowerEq(v, "y"):
		return append(dst, "true"...), nil
	case lowerEq(v, "false"), lowerEq(v, "f"), lowerEq(v, "0"), lowerEq(v, "no"), lowerEq(v, "n"):
		return append(dst, "false"...), nil
	}
	return dst, fail(ReasonBadValue, "not a boolean (true/false, t/f, 1/0, yes/no, y/n in any case)")
}

const hexUpper = "0123456789ABCDEF"

func (c *Column) appendHex(dst, v []byte) ([]byte, bool, error) {
	if len(v) >= 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X') {
		v = v[2:]
	}
	if len(v)%2 != 0 {
		return dst, false, fail(ReasonBadValue, "odd number of hex digits (%d)", len(v))
	}
	truncated := false
	if c.Length > 0 && len(v)/2 > c.Length {
		if !c.opts.Truncate {
			return dst, false, fail(ReasonTruncated, "%d bytes, longer than ColumnLength %d", len(v)/2, c.Length)
		}
		truncated = true
	}
	kept := v
	if truncated {
		kept = v[:2*c.Length]
	}
	orig := len(dst)
	dst = append(dst, '"')
	if !c.opts.NoHexPrefix {
		dst = append(dst, '0', 'x')
	}
	n := len(dst)
	dst = slices.Grow(dst, len(kept)+1)[:n+len(kept)]
	out := dst[n:]
	for i, ch := range kept {
		u := hexUpper256[ch]
		if u == 0 {
			return dst[:orig], false, fail(ReasonBadValue, "%q at position %d is not a hex digit", ch, i+1)
		}
		out[i] = u
	}
	for i := len(kept); i < len(v); i++ {
		// the part truncation drops must be hex too
		if hexUpper256[v[i]] == 0 {
			return dst[:orig], false, fail(ReasonBadValue, "%q at position %d is not a hex digit", v[i], i+1)
		}
	}
	return append(dst, '"'), truncated, nil
}

// hexUpper256[b] is the upper-case form of the hex digit b, or 0 when b is
// not a hex digit.
var hexUpper256 = func() (t [256]byte) {
	for _, c := range "0123456789ABCDEF" {
		t[c] = byte(c)
	}
	for _, c := range "abcdef" {
		t[c] = byte(c) - 'a' + 'A'
	}
	return
}()

// safeASCII[b] is true for ASCII bytes copied unescaped into a JSON string.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for i := 0x20; i < utf8.RuneSelf; i++ {
		t[i] = i != '"' && i != '\\'
	}
	return
}()

const (
	ones8  = 0x0101010101010101
	highs8 = 0x8080808080808080
)

// special8 flags (with the lane's high bit) the first of the 8 bytes of w
// (one byte per lane, the first in the lowest) that is not ASCII a JSON
// string holds unescaped (0x20-0x7F except '"' and '\\'), and perhaps
// later lanes; 0 when all 8 are plain. The lowest flagged lane is exact: a
// borrow in the tests below only flags lanes above the one it comes from.
func special8(w uint64) uint64 {
	ctl := (w - 0x20*ones8) & ^w // a lane < 0x20
	q := w ^ '"'*ones8
	bs := w ^ '\\'*ones8
	return (w | ctl | (q-ones8)&^q | (bs-ones8)&^bs) & highs8
}

// AppendString appends v as a quoted JSON string. Invalid UTF-8 is an error.
func AppendString(dst, v []byte) ([]byte, error) {
	dst = append(dst, '"')
	out, err := AppendEscaped(dst, v)
	if err != nil {
		return dst[:len(dst)-1], err
	}
	return append(out, '"'), nil
}

// AppendEscaped appends the JSON string escaping of v, without quotes.
// Invalid UTF-8 is an error.
func AppendEscaped(dst, v []byte) ([]byte, error) {
	start := 0
	for i := 0; i < len(v); {
		// Find the next byte that is not plain ASCII a word at a time; only
		// the last 1 to 3 bytes go byte by byte.
		if n := len(v) - i; n >= 8 {
			m := special8(binary.LittleEndian.Uint64(v[i:]))
			if m == 0 {
				i += 8 // eight bytes copied as they are
				continue
			}
			i += bits.TrailingZeros64(m) / 8
		} else if n >= 4 {
			// the last 4 to 7 bytes as two (overlapping) 4-byte words
			m := special8(uint64(binary.LittleEndian.Uint32(v[i:])) | uint64(binary.LittleEndian.Uint32(v[len(v)-4:]))<<32)
			if m == 0 {
				break
			}
			if k := bits.TrailingZeros64(m) / 8; k < 4 {
				i += k
			} else {
				i = len(v) - 8 + k
			}
		}
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
		if b <= 0xDF && b >= 0xC2 && i+1 < len(v) && v[i+1]&0xC0 == 0x80 {
			i += 2 // a valid 2-byte character
			continue
		}
		if b&0xF0 == 0xE0 && utf8Valid3(v[i:]) {
			i += 3 // a valid 3-byte character other than U+2028/U+2029
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

// utf8Valid3 reports whether v starts with a valid 3-byte UTF-8 sequence
// other than U+2028 and U+2029 (which JSON strings escape); v[0] is 0xE0 to
// 0xEF. Anything else (those two, invalid UTF-8) is left to
// utf8.DecodeRune.
func utf8Valid3(v []byte) bool {
	if len(v) < 3 || v[1]&0xC0 != 0x80 || v[2]&0xC0 != 0x80 {
		return false
	}
	switch v[0] {
	case 0xE0:
		return v[1] >= 0xA0 // not overlong
	case 0xED:
		return v[1] <= 0x9F // not a surrogate
	case 0xE2:
		return v[1] != 0x80 || v[2]&^1 != 0xA8 // not U+2028, U+2029
	}
	return true
}

// AppendStringNoCheck appends s as a JSON string, replacing invalid UTF-8
// with U+FFFD. It is meant for names from the configuration.
func AppendStringNoCheck(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	out, _ := AppendString(dst, []byte(s))
	return out
}
