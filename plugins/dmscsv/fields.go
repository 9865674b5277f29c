package dmscsv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Field is one field of a row. Value aliases either the row passed to
// Splitter.Split or the splitter's own buffer, so it is valid only until the
// next call to Split.
type Field struct {
	Value []byte
	// Null is true when the field is SQL NULL: with CsvNullValue unset, an
	// empty unquoted field; with CsvNullValue set, an unquoted field equal to
	// the marker. A quoted field is never NULL ("" is an empty string).
	Null bool
	// Quoted is true when the field was enclosed in double quotes
	// (rfc4180 only).
	Quoted bool
}

// ErrorKind says what is wrong with a row.
type ErrorKind int

// The ways a row can be malformed.
const (
	// ErrUnterminatedQuote: a quoted field has no closing quote before the
	// end of the row.
	ErrUnterminatedQuote ErrorKind = iota + 1
	// ErrTextAfterQuote: a closing quote is followed by something other than
	// a delimiter or the end of the row, as in `"ab"c,`.
	ErrTextAfterQuote
)

// Reason is a short, stable name of the error kind, for metrics labels.
func (k ErrorKind) Reason() string {
	switch k {
	case ErrUnterminatedQuote:
		return "unterminated_quote"
	case ErrTextAfterQuote:
		return "text_after_quote"
	}
	return "malformed_row"
}

func (k ErrorKind) String() string {
	switch k {
	case ErrUnterminatedQuote:
		return "unterminated quoted field (rfc4180: a field that starts with a double quote must end with one)"
	case ErrTextAfterQuote:
		return "text after the closing quote of a quoted field (rfc4180: a closing quote must be followed by the delimiter or the end of the row)"
	}
	return "malformed row"
}

// FieldError reports a malformed row: the 1-based column (field number),
// the 0-based byte offset in the row where the problem was found and the one
// where the bad field starts (its opening quote).
type FieldError struct {
	Column int
	Offset int
	Start  int
	Kind   ErrorKind
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("field %d (byte %d of the row): %s", e.Column, e.Offset, e.Kind)
}

// Splitter splits rows into fields according to Settings. It keeps its
// buffers between calls, so after warm-up Split does not allocate. A
// Splitter is not safe for concurrent use; use one per goroutine.
type Splitter struct {
	delim   []byte
	d0      byte
	null    []byte
	nullSet bool
	rfc     bool

	// MaxFields, when above 0, bounds the fields Split keeps: past about
	// that many (the slice is not grown beyond it) further fields are
	// counted, not stored, and NumFields tells how many the row had. A row
	// of a million delimiters otherwise costs 32 bytes per field (tens of
	// megabytes, kept with the splitter) only to be refused for its field
	// count.
	MaxFields int

	fields []Field
	extra  int    // fields of the last row counted but not stored
	buf    []byte // unescaped text of quoted fields holding doubled quotes
	err    FieldError
}

// NumFields is the number of fields of the last row split (up to the bad
// field of a malformed row), including those not stored past MaxFields.
func (s *Splitter) NumFields() int { return len(s.fields) + s.extra }

// push appends f to fields, or counts it once fields is full and holds
// MaxFields or more.
func (s *Splitter) push(fields []Field, f Field) []Field {
	if len(fields) < cap(fields) || s.MaxFields <= 0 || len(fields) < s.MaxFields {
		return append(fields, f)
	}
	s.extra++
	return fields
}

// NewSplitter returns a splitter for s. s should have passed Validate.
func NewSplitter(s Settings) *Splitter {
	sp := &Splitter{
		delim:   []byte(s.Delimiter),
		null:    []byte(s.NullValue),
		nullSet: s.NullValueSet,
		rfc:     s.RFC4180,
	}
	if len(sp.delim) == 0 {
		sp.delim = []byte{','}
	}
	sp.d0 = sp.delim[0]
	return sp
}

// Split splits one row (without its row delimiter, which the row reader
// removes, "\r\n" included) into fields. The returned slice and the values in it are
// reused by the next call. On a malformed row it returns the fields read so
// far and a *FieldError. Past MaxFields the slice holds only the first
// fields; NumFields counts them all.
func (s *Splitter) Split(row []byte) ([]Field, error) {
	// The fields are gathered in a local slice (stored back on return) so
	// that the loop keeps the slice header and settings in registers.
	fields := s.fields[:0]
	s.extra = 0
	// Unescaped quoted text is never longer than the row, so a buffer of
	// len(row) bytes never grows while the row is split and the slices
	// handed out stay valid.
	if cap(s.buf) < len(row) {
		s.buf = make([]byte, 0, len(row)+len(row)/2)
	}
	s.buf = s.buf[:0]
	single, pat, rfc := len(s.delim) == 1, uint64(s.d0)*ones8, s.rfc
	pos := 0
	for {
		if rfc && pos < len(row) && row[pos] == '"' {
			val, next, err := s.quoted(row, pos, len(fields)+s.extra+1)
			if err != nil {
				s.fields = fields
				return fields, err
			}
			fields = s.push(fields, Field{Value: val, Quoted: true})
			if next >= len(row) {
				s.fields = fields
				return fields, nil
			}
			pos = next + len(s.delim)
			if pos >= len(row) {
				// trailing delimiter: one more, empty field
				fields = s.push(fields, s.plain(row[len(row):]))
				s.fields = fields
				return fields, nil
			}
			continue
		}
		if single {
			// Unquoted fields up to the next quoted one, in a loop of their
			// own: without the quoted field's call in it, the loop keeps
			// the row and the fields in registers.
			for {
				end := indexByteFrom(row, pos, pat)
				if end < 0 {
					fields = s.push(fields, s.plain(row[pos:]))
					s.fields = fields
					return fields, nil
				}
				fields = s.push(fields, s.plain(row[pos:end]))
				pos = end + 1
				if pos >= len(row) {
					fields = s.push(fields, s.plain(row[len(row):]))
					s.fields = fields
					return fields, nil
				}
				if rfc && row[pos] == '"' {
					break
				}
			}
			continue
		}
		end := s.indexDelim(row, pos)
		if end < 0 {
			fields = s.push(fields, s.plain(row[pos:]))
			s.fields = fields
			return fields, nil
		}
		fields = s.push(fields, s.plain(row[pos:end]))
		pos = end + len(s.delim)
		if pos >= len(row) {
			fields = s.push(fields, s.plain(row[len(row):]))
			s.fields = fields
			return fields, nil
		}
	}
}

const (
	ones8  = 0x0101010101010101
	highs8 = 0x8080808080808080
)

// indexByteFrom returns the index of the first byte c in row at or after
// i, or -1; pat is c in every byte (c * ones8). Fields are short, so it
// compares eight bytes per step in a register (x has a zero lane where row
// has c; the lowest lane flagged by (x-ones8) & ^x & highs8 is exactly the
// first zero lane) rather than paying for a call to bytes.IndexByte per
// field.
func indexByteFrom(row []byte, i int, pat uint64) int {
	c := byte(pat)
	for ; i+8 <= len(row); i += 8 {
		// row[i:i+8], not row[i:]: a slice that cannot be empty spares
		// the compiler's guard against a pointer past the end.
		x := binary.LittleEndian.Uint64(row[i:i+8]) ^ pat
		if m := (x - ones8) & ^x & highs8; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(row); i++ {
		if row[i] == c {
			return i
		}
	}
	return -1
}

func (s *Splitter) plain(v []byte) Field {
	if s.nullSet {
		return Field{Value: v, Null: bytes.Equal(v, s.null)}
	}
	return Field{Value: v, Null: len(v) == 0}
}

// indexDelim returns the index of the next delimiter at or after pos, or -1.
func (s *Splitter) indexDelim(row []byte, pos int) int {
	if len(s.delim) == 1 {
		i := bytes.IndexByte(row[pos:], s.d0)
		if i < 0 {
			return -1
		}
		return pos + i
	}
	i := bytes.Index(row[pos:], s.delim)
	if i < 0 {
		return -1
	}
	return pos + i
}

// quoted reads a quoted field starting at row[pos] == '"'. It returns the
// unescaped value and the index just after the closing quote.
func (s *Splitter) quoted(row []byte, pos, col int) ([]byte, int, error) {
	start := pos + 1
	i := start
	var val []byte
	copied := false
	for {
		j := bytes.IndexByte(row[i:], '"')
		if j < 0 {
			s.err = FieldError{Column: col, Offset: pos, Start: pos, Kind: ErrUnterminatedQuote}
			return nil, 0, &s.err
		}
		j += i
		if j+1 < len(row) && row[j+1] == '"' {
			// doubled quote: a literal quote
			if !copied {
				copied = true
				b0 := len(s.buf)
				s.buf = append(s.buf, row[start:j+1]...)
				val = s.buf[b0:]
			} else {
				s.buf = append(s.buf, row[i:j+1]...)
				val = val[:len(val)+(j+1-i)]
			}
			i = j + 2
			continue
		}
		// closing quote
		if copied {
			s.buf = append(s.buf, row[i:j]...)
			val = val[:len(val)+(j-i)]
		} else {
			val = row[start:j]
		}
		next := j + 1
		if next < len(row) && !bytes.HasPrefix(row[next:], s.delim) {
			s.err = FieldError{Column: col, Offset: next, Start: pos, Kind: ErrTextAfterQuote}
			return nil, 0, &s.err
		}
		return val, next, nil
	}
}
