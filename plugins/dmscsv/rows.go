package dmscsv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxRowSize is the default limit on one row's size (1 MiB).
const DefaultMaxRowSize = 1 << 20

// Row is one row as found in the stream.
type Row struct {
	// Data is the row's raw bytes without its row delimiter (and without the
	// "\r" of a "\r\n" ending). It aliases the reader's buffer and is only
	// valid until the next call to Next.
	Data []byte
	// Line is the 1-based line on which the row starts. Newlines inside
	// quoted fields count, so lines and rows differ when fields span lines.
	Line int64
	// Offset is the byte offset of the row's first byte in the stream
	// (counting a skipped UTF-8 BOM and StartOffset).
	Offset int64
	// End is the offset just after the row's delimiter: where the next row
	// starts. NextLine is that row's line.
	End      int64
	NextLine int64
	// Unterminated is set on the last row of a stream that ended inside a
	// quoted field: the row holds everything from its start to the end of
	// the stream, so that nothing is lost; whoever parses its fields reports
	// the unterminated quote (the processor sends it to the dead letter).
	// A row also marked TooLong holds only its first bytes (see TooLong):
	// the quote that never closed is what made it that long.
	Unterminated bool
	// TooLong is set on a row longer than RowOptions.MaxRowSize. The reader
	// skips it without holding it in memory and goes on with the next row:
	// Data holds only its first TooLongKeep bytes (a copy), Size its full
	// length; Line, Offset, End and NextLine are exact, so the row can be
	// reported (and fetched again by byte range) and nothing after it is lost.
	TooLong bool
	// Size is the row's length in bytes, row delimiter excluded, for rows
	// marked TooLong (0 otherwise: use len(Data)).
	Size int64
}

// TooLongKeep is how many leading bytes of a row longer than MaxRowSize are
// kept in Row.Data, to identify it in a dead letter.
const TooLongKeep = 4096

// RowOptions tune a RowReader.
type RowOptions struct {
	// MaxRowSize bounds one row (bytes, delimiter excluded). 0 means
	// DefaultMaxRowSize.
	MaxRowSize int
	// StartOffset and StartLine describe where the stream begins within the
	// object, for a reader resumed with a ranged GET. A UTF-8 BOM is only
	// skipped when StartOffset is 0. StartLine 0 means 1.
	StartOffset int64
	StartLine   int64
	// BufferSize is the initial read buffer (default 64 KiB); it grows as
	// needed for long rows, up to MaxRowSize plus one read.
	BufferSize int
	// KeepEmpty emits empty rows (blank lines). By default they are skipped,
	// still counting as lines.
	KeepEmpty bool
}

// ErrRowTooLong names the condition of a Row marked TooLong (Next returns such
// a row, not an error, and goes on with the next row).
// ErrUnterminatedQuoteAtEOF names the condition of a Row marked
// Unterminated (Next returns such a row, not an error, so nothing is lost).
var (
	ErrRowTooLong             = errors.New("row exceeds max_row_size")
	ErrUnterminatedQuoteAtEOF = errors.New("unterminated quoted field at end of input")
)

// RowError is a row-level parse error, naming where the row starts.
type RowError struct {
	Offset int64
	Line   int64
	Err    error
	Detail string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("row at line %d, byte offset %d: %v%s", e.Line, e.Offset, e.Err, e.Detail)
}

func (e *RowError) Unwrap() error { return e.Err }

// RowReader splits a byte stream into DMS CSV rows without holding more than
// one row (plus one read) in memory.
//
// Rows end at the row delimiter. With Settings.RowDelimiter "\n", a row that
// ends in "\r\n" loses its "\r" too; with "\r\n", a bare "\n" is data. With
// RFC4180, a field that begins with a double quote runs to its closing quote
// ("" inside is an escaped quote), so it may hold delimiters and newlines,
// across any read-buffer boundary; a quote elsewhere in a field is data. With
// RFC4180 false, quotes are always data. A final row without a delimiter is
// returned; a quoted field still open at the end of input makes the rest of
// the input one row marked Unterminated; a row longer than MaxRowSize is
// skipped and returned marked TooLong (see Row).
type RowReader struct {
	src     io.Reader
	delim   []byte // field delimiter
	crlf    bool   // row delimiter is "\r\n"
	rfc     bool
	max     int
	keep    bool
	buf     []byte
	r, w    int   // unread data is buf[r:w]; the current row starts at r
	scan    int   // next byte of the current row to examine (absolute index)
	off     int64 // stream offset of buf[r]
	line    int64 // line of the row starting at buf[r]
	inQuote bool
	closeQ  bool // just saw a closing quote (a following quote escapes it)
	// overlap: the delimiter can overlap itself ("||", "aba"), so whether a
	// quote starts a field depends on how the splitter pairs delimiter
	// matches from the field before (leftmost first), not on the bytes just
	// before it. fs is where that pairing resumes (absolute index): the row
	// start, or just after a closing quote (fsQuote: a delimiter must follow).
	overlap  bool
	fs       int
	fsQuote  bool
	fsNone   bool // text followed a closing quote: no later quote of the row opens a field
	nlAt     int  // index of the next '\n' at or after scan, or -1 (cache)
	nlNone   int  // no '\n' in buf[scan:nlNone] (searched already; cache)
	eof      bool
	err      error
	bomCheck bool
}

// NewRowReader returns a reader of rows from src.
func NewRowReader(src io.Reader, s Settings, opt RowOptions) *RowReader {
	if opt.MaxRowSize <= 0 {
		opt.MaxRowSize = DefaultMaxRowSize
	}
	if opt.BufferSize <= 0 {
		opt.BufferSize = 64 << 10
	}
	if opt.StartLine <= 0 {
		opt.StartLine = 1
	}
	delim := s.Delimiter
	if delim == "" {
		delim = ","
	}
	return &RowReader{
		src:      src,
		delim:    []byte(delim),
		crlf:     s.RowDelimiter == "\r\n",
		rfc:      s.RFC4180,
		max:      opt.MaxRowSize,
		keep:     opt.KeepEmpty,
		buf:      make([]byte, opt.BufferSize),
		nlAt:     -1,
		overlap:  selfOverlapping(delim),
		off:      opt.StartOffset,
		line:     opt.StartLine,
		bomCheck: opt.StartOffset == 0,
	}
}

// Offset is the stream offset of the next row (after the last one returned).
func (rr *RowReader) Offset() int64 { return rr.off }

// Line is the line of the next row.
func (rr *RowReader) Line() int64 { return rr.line }

// fill reads more data, compacting or growing the buffer first. It returns
// false when no more data will come (rr.eof or rr.err set).
func (rr *RowReader) fill() bool {
	if rr.eof || rr.err != nil {
		return false
	}
	if rr.r > 0 && (rr.w == len(rr.buf) || rr.r > len(rr.buf)/2) {
		n := copy(rr.buf, rr.buf[rr.r:rr.w])
		rr.scan -= rr.r
		rr.fs -= rr.r
		rr.nlNone = 0
		rr.nlAt = -1
		rr.w = n
		rr.r = 0
	}
	if rr.w == len(rr.buf) {
		size := 2 * len(rr.buf)
		if limit := rr.max + 2 + 64<<10; size > limit {
			size = limit
		}
		if size <= len(rr.buf) {
			size = len(rr.buf) + 64<<10
		}
		nb := make([]byte, size)
		copy(nb, rr.buf[:rr.w])
		rr.buf = nb
	}
	for tries := 0; tries < 100; tries++ {
		n, err := rr.src.Read(rr.buf[rr.w:])
		rr.w += n
		if err == io.EOF {
			rr.eof = true
			return n > 0
		}
		if err != nil {
			rr.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	rr.err = io.ErrNoProgress
	return false
}

// Next returns the next row, io.EOF after the last one, or an error. After an
// error other than io.EOF the reader is unusable.
func (rr *RowReader) Next() (Row, error) {
	for {
		row, err := rr.next()
		if err != nil || rr.keep || len(row.Data) > 0 {
			return row, err
		}
	}
}

func (rr *RowReader) next() (Row, error) {
	if rr.bomCheck {
		for rr.w-rr.r < 3 && rr.fill() {
		}
		if rr.w-rr.r >= 3 && rr.buf[rr.r] == 0xEF && rr.buf[rr.r+1] == 0xBB && rr.buf[rr.r+2] == 0xBF {
			rr.r += 3
			rr.off += 3
		}
		rr.bomCheck = false
		rr.scan = rr.r
	}
	if rr.scan < rr.r {
		rr.scan = rr.r
	}
	for {
		end, ok := rr.scanRow()
		if ok {
			if end-rr.r > rr.max+1 || (end-rr.r == rr.max+1 && rr.buf[end-1] != '\r') {
				return rr.skipLong(end, true)
			}
			return rr.emit(end, end+1), nil
		}
		if rr.scan-rr.r > rr.max+1 {
			return rr.skipLong(0, false)
		}
		if !rr.fill() {
			if rr.err != nil {
				return Row{}, fmt.Errorf("reading row at line %d, byte offset %d: %w", rr.line, rr.off, rr.err)
			}
			if rr.w == rr.r {
				return Row{}, io.EOF
			}
			if rr.w-rr.r > rr.max {
				return rr.skipLong(0, false)
			}
			unterminated := rr.inQuote
			rr.closeQ, rr.inQuote = false, false
			row := rr.emit(rr.w, rr.w)
			row.Unterminated = unterminated
			return row, nil
		}
	}
}

// skipLong passes over a row longer than the limit, from rr.r, keeping its
// first TooLongKeep bytes: what has been scanned is dropped from the buffer
// (its newlines and bytes counted) before each read, so memory stays bounded
// whatever the row's length. found says the row's end is already known (end:
// the index of its '\n'). rr.off and rr.line stay at the row's start until it
// is complete, so that after a read error the reader's Offset is still the
// start of a whole row.
func (rr *RowReader) skipLong(end int, found bool) (Row, error) {
	var prefix []byte
	take := func(b []byte) {
		if n := TooLongKeep - len(prefix); n > 0 {
			prefix = append(prefix, b[:min(n, len(b))]...)
		}
	}
	var skipped, skippedNL int64
	atEOF := false
	for !found {
		// Drop the scanned bytes but the last len(delim), which tell
		// whether a quote right after them starts a field; with a delimiter
		// that overlaps itself, carry the pairing of its matches past what
		// is dropped first, and keep the bytes it still needs.
		cut := rr.scan - len(rr.delim)
		if rr.overlap && !rr.inQuote {
			cut = min(cut, rr.settlePairing())
		}
		if cut > rr.r {
			take(rr.buf[rr.r:cut])
			skipped += int64(cut - rr.r)
			skippedNL += int64(bytes.Count(rr.buf[rr.r:cut], nlByte))
			rr.r = cut
		}
		if !rr.fill() {
			if rr.err != nil {
				return Row{}, fmt.Errorf("reading row at line %d, byte offset %d: %w", rr.line, rr.off, rr.err)
			}
			atEOF = true
			break
		}
		end, found = rr.scanRow()
	}
	var row Row
	unterminated := false
	if atEOF {
		unterminated = rr.inQuote
		rr.closeQ, rr.inQuote = false, false
		row = rr.emit(rr.w, rr.w)
	} else {
		row = rr.emit(end, end+1)
	}
	take(row.Data)
	size := skipped + int64(len(row.Data))
	row.End += skipped
	row.NextLine += skippedNL
	rr.off, rr.line = row.End, row.NextLine
	row.Data, row.TooLong, row.Size = prefix, true, size
	row.Unterminated = unterminated
	return row, nil
}

// emit returns buf[r:end] as a row (minus a trailing "\r" when the row ended
// at a newline) and moves r to next.
func (rr *RowReader) emit(end, next int) Row {
	data := rr.buf[rr.r:end]
	if next > end && len(data) > 0 && data[len(data)-1] == '\r' {
		data = data[:len(data)-1]
	}
	consumed := rr.buf[rr.r:next]
	nl := int64(bytes.Count(consumed, nlByte))
	if next == end { // last row without a delimiter
		nl++
	}
	row := Row{Data: data, Line: rr.line, Offset: rr.off, End: rr.off + int64(next-rr.r), NextLine: rr.line + nl}
	rr.off = row.End
	rr.line = row.NextLine
	rr.r = next
	rr.scan = next
	rr.nlAt = -1
	rr.inQuote = false
	rr.closeQ = false
	rr.fsNone = false
	return row
}

var nlByte = []byte{'\n'}

// scanRow looks for the end of the current row from rr.scan. It returns the
// index of the terminating '\n' and true, or false when more data is needed
// (rr.scan and the quote state record the progress).
func (rr *RowReader) scanRow() (int, bool) {
	buf := rr.buf[:rr.w]
	i := rr.scan
	for i < len(buf) {
		if !rr.rfc {
			j := bytes.IndexByte(buf[i:], '\n')
			if j < 0 {
				rr.scan = len(buf)
				return 0, false
			}
			i += j
			if rr.crlf && (i == rr.r || buf[i-1] != '\r') {
				i++
				continue
			}
			return i, true
		}
		if rr.closeQ {
			// The byte after a closing quote: another quote escapes it.
			rr.closeQ = false
			if buf[i] == '"' {
				rr.inQuote = true
				i++
				continue
			}
		}
		if rr.inQuote {
			j := bytes.IndexByte(buf[i:], '"')
			if j < 0 {
				rr.scan = len(buf)
				return 0, false
			}
			i += j + 1
			rr.inQuote = false
			rr.closeQ = true
			rr.fs, rr.fsQuote = i, true
			continue
		}
		// Outside quotes: the next newline ends the row unless a quote that
		// opens a field comes first.
		// rr.nlAt caches the next newline so that rows with many quoted
		// fields are not rescanned for it after every field.
		// When there is none yet, rr.nlNone remembers how far the buffer
		// was searched, so a long row of many quoted fields is not searched
		// to its end again after each of them.
		if rr.nlAt < i {
			rr.nlAt = -1
			from := max(i, rr.nlNone)
			if j := bytes.IndexByte(buf[from:], '\n'); j >= 0 {
				rr.nlAt = from + j
			} else {
				rr.nlNone = len(buf)
			}
		}
		seg := buf[i:]
		nl := -1
		if rr.nlAt >= 0 {
			nl = rr.nlAt - i
			seg = seg[:nl]
		}
		q := bytes.IndexByte(seg, '"')
		for q >= 0 && !rr.fieldStart(i+q) {
			k := bytes.IndexByte(seg[q+1:], '"')
			if k < 0 {
				q = -1
				break
			}
			q += k + 1
		}
		if q >= 0 {
			rr.inQuote = true
			i += q + 1
			continue
		}
		if nl < 0 {
			rr.scan = len(buf)
			return 0, false
		}
		i += nl
		if rr.crlf && (i == rr.r || buf[i-1] != '\r') {
			i++
			continue
		}
		return i, true
	}
	rr.scan = i
	return 0, false
}

// fieldStart reports whether index i (absolute) begins a field of the row
// that starts at rr.r, as the Splitter sees it.
func (rr *RowReader) fieldStart(i int) bool {
	if !rr.overlap {
		return i == rr.r || bytes.HasSuffix(rr.buf[rr.r:i], rr.delim)
	}
	if rr.fs < rr.r || rr.fs > i {
		// a new row
		rr.fs, rr.fsQuote, rr.fsNone = rr.r, false, false
	}
	if rr.fsNone {
		return false
	}
	p := rr.fs
	if rr.fsQuote {
		if !bytes.HasPrefix(rr.buf[p:i], rr.delim) {
			return false // text after a closing quote: the splitter flags the row
		}
		p += len(rr.delim)
	}
	// The pairing goes on from where it stops (rr.fs), so that the next
	// quote of the row does not pair the same matches again: a row of
	// many unquoted fields with quotes inside them would take time in the
	// square of its length.
	for p < i {
		m := bytes.Index(rr.buf[p:i], rr.delim)
		if m < 0 {
			// No match lies wholly in buf[p:i]: the next one starts after
			// i-len(delim), so pairing from there finds the same matches
			// (as in settlePairing). The next quote is after i, so it is
			// never taken for the field start this leaves in rr.fs.
			rr.fs, rr.fsQuote = max(p, i-len(rr.delim)+1), false
			return false
		}
		p += m + len(rr.delim)
	}
	rr.fs, rr.fsQuote = p, false
	return p == i
}

// settlePairing moves the point where fieldStart resumes pairing delimiter
// matches (rr.fs) as far towards rr.scan as the bytes scanned allow, so that
// a row too long to keep can drop the bytes before it, and returns it: the
// first byte still needed. Outside quotes only (in a quoted field the next
// closing quote sets rr.fs anew).
func (rr *RowReader) settlePairing() int {
	if rr.fs < rr.r {
		rr.fs, rr.fsQuote, rr.fsNone = rr.r, false, false
	}
	if rr.fsNone {
		rr.fs = rr.scan // nothing before is needed; fs stays within the row
		return rr.scan
	}
	d := len(rr.delim)
	p := rr.fs
	if rr.fsQuote {
		if rr.scan-p < d {
			return p // whether a delimiter follows the closing quote is not known yet
		}
		if !bytes.HasPrefix(rr.buf[p:rr.scan], rr.delim) {
			rr.fs, rr.fsNone = rr.scan, true
			return rr.scan
		}
		p += d
	}
	for {
		m := bytes.Index(rr.buf[p:rr.scan], rr.delim)
		if m < 0 {
			break
		}
		p += m + d
	}
	// No match lies wholly in buf[p:scan]: the next one starts after
	// scan-d, so pairing from there finds the same matches.
	p = max(p, rr.scan-d+1)
	rr.fs, rr.fsQuote = p, false
	return p
}

// selfOverlapping reports whether d has a border: a proper prefix that is
// also a suffix ("||", "aba"), so that two of its matches can overlap.
func selfOverlapping(d string) bool {
	for k := 1; k < len(d); k++ {
		if d[:k] == d[len(d)-k:] {
			return true
		}
	}
	return false
}
