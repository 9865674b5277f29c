package s3dms

// A randomised differential test across the input aws_s3_dms and the
// processor dms_csv_to_json (TestDiffPropertyInputToProcessor): random cases
// are written in the DMS layout, read through a Benthos stream built from
// YAML (as a user runs it), and every record is compared with an oracle
// written here from the documented behaviour.
//
// Generated: 1-3 tables (the same name in two schemas sometimes) of 1-5
// columns of random DMS types (every integer type, NUMERIC, REAL4/8, the
// string and LOB types, BOOLEAN, DATE, TIME, DATETIME with ColumnDateFormat,
// BYTE/BLOB), nullable or not, primary keys, random
// ColumnLength/precision/scale (as JSON strings or numbers); csv_delimiter of
// 1-3 bytes or a 2-byte UTF-8 character, self-overlapping ones included
// ("||", "|||", "|;|", "aba"); csv_row_delimiter "\n" (rows also ending in
// "\r\n") or "\r\n"; csv_null_value unset or one of several markers; rfc4180
// on/off; ignore_header_rows 0/1 (headers with quoted newlines and
// delimiters), cdc_ignore_header_rows; gzip files; a BOM; blank lines; no
// delimiter after the last row; full-load files with the optional leading
// "I" column; values with quotes, delimiters and row delimiters inside quoted
// fields, quotes inside unquoted fields, empty strings, NULLs, 2-4 byte UTF-8,
// and (in one case in ten) values of 20-140 KiB so that rows cross the row
// reader's 64 KiB buffer; max_row_size at the length of a row, give or take a
// byte; mode full-load-and-cdc, full-load or cdc, cdc_start beginning or
// now; CDC files uploaded while the stream runs, then a late one (a key below
// those processed) with late_files skip or process; emit_table_start and
// emit_cdc_start; bucket_folder and TablePath with and without slashes;
// processor settings (include_null_and_empty, include_transaction_details,
// include_partition_value, partition_include_schema_table,
// cdc_partition_key, truncation_policy truncate with over-long strings,
// no_hex_prefix, numeric_as_string, message_format json or
// json-unformatted); batch_size 1-6 and checkpoint.interval 0s/30ms/1h, or
// (one case in twelve) files of over 1024 rows in batches of up to 3000 so
// that the processor spreads them over workers; rejected (nacked) batches in
// the last run; up to two stops at a random point, each either graceful or a
// crash (the checkpoint file as it was when the stop began is put back). One
// case in eight reads versitygw instead of a directory, with
// list_page_size 1-3, directory marker objects and gzip objects stored with
// Content-Encoding: gzip and no ".gz".
//
// Checked: each record's data (keys in column order, NULLs per
// include_null_and_empty, values rendered per type) and metadata
// (record-type, operation, partition key and its type and value,
// schema/table, transaction details on CDC records, control records);
// s3_key, dms_line, dms_offset and dms_position against the bytes written;
// rows over max_row_size flagged with their first bytes; dms_position
// increasing; the records of each run a contiguous run of the expected
// ones (the order of the files, so per-key order) starting at or before
// where the previous run ended (duplicates only across a restart, at most 4
// batches of input messages after a crash with checkpoint.interval 0s); after
// a rejected batch the last copy of every record in order; no loss at the
// end; no ERROR logged.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/service"
	"pgregory.net/rapid"

	_ "github.com/dmsbridge/dmsbridge/plugins/csvjson" // dms_csv_to_json
)

// dcol is a generated column.
type dcol struct {
	name                string
	typ                 string // DMS type name
	nullable, pk        bool
	length, prec, scale int
	jsonLength          bool   // write the number keys as JSON numbers (not strings)
	dateFormat          string // ColumnDateFormat
}

type dtable struct {
	schema, name, path string
	cols               []dcol
	pk                 []int
}

// dcsv are the CSV settings of one case.
type dcsv struct {
	delim, rowDelim   string
	nullSet           bool
	null              string
	rfc               bool
	header, cdcHeader bool
	gzip              bool
	// big: some string values are tens of KiB long, so that rows span the
	// row reader's read buffer (64 KiB) and a small max_row_size
	big bool
	// processor settings that change values: truncation_policy truncate
	// (strings longer than ColumnLength), no_hex_prefix, numeric_as_string,
	// message_format json (indented)
	truncate, noHex, numStr, pretty bool
}

// dcell is one generated value: the field as written and the value expected.
type dcell struct {
	null   bool
	field  string // the CSV field as written (quoted and escaped if so)
	kind   string // "num" (exact JSON number text), "real", "str", "bool"
	want   string // the expected JSON value: number text, string, "true"/"false"
	keyval string // the value as a partition key part
}

// drec is one expected record.
type drec struct {
	control    string // "" for data; drop-table, create-table
	phase      string // full-load, cdc
	tableIdx   int
	key        string // object key ("" for control records)
	offset     int64
	line       int64
	raw        string // the row as written, without its delimiter
	op         string // load, insert, update, delete
	cells      []dcell
	position   string // dms_position, for data records
	posPrefix  string // for control records
	partKey    string
	fileBytes  []byte // the decompressed object, to check raw against offset
	fileSerial int    // files in processing order, for the transaction id check
	tooLong    bool   // longer than max_row_size: flagged, first 4096 bytes
}

// got2 is one received message with the metadata of interest.
type got2 struct {
	got
	partKey, operation string
	lineSet, offSet    bool
}

var (
	dDelims = []string{",", "|", "||", "|||", "\t", ";;", "|;|", "¦", "ab", "aba", "~"}
	// runes values are drawn from: delimiter bytes, quotes, row delimiter
	// bytes, spaces, backslashes, non-ASCII UTF-8 of 2, 3 and 4 bytes
	dRunes = []rune{'x', 'y', 'a', 'b', ',', '|', ';', '"', '"', '\n', '\r', ' ', '\\', '\t', '~', 'é', '¦', '日', '€', '😀', 'N', '0'}
	dNulls = []string{`\N`, "NULL", "", "<null>", "nil"}
)

func diffCSV(t *rapid.T) dcsv {
	c := dcsv{
		delim:    rapid.SampledFrom(dDelims).Draw(t, "delim"),
		rowDelim: rapid.SampledFrom([]string{"\n", "\r\n"}).Draw(t, "rowDelim"),
		rfc:      rapid.IntRange(0, 3).Draw(t, "rfc") > 0,
		header:   rapid.Bool().Draw(t, "header"),
		gzip:     rapid.IntRange(0, 3).Draw(t, "gzip") == 0,
		big:      rapid.IntRange(0, 9).Draw(t, "big") == 0,
		truncate: rapid.IntRange(0, 3).Draw(t, "truncate") == 0,
		noHex:    rapid.IntRange(0, 3).Draw(t, "noHex") == 0,
		numStr:   rapid.IntRange(0, 3).Draw(t, "numStr") == 0,
		pretty:   rapid.IntRange(0, 3).Draw(t, "pretty") == 0,
	}
	c.cdcHeader = c.header && rapid.Bool().Draw(t, "cdcHeader")
	if rapid.Bool().Draw(t, "nullSet") {
		c.nullSet = true
		c.null = rapid.SampledFrom(dNulls).Draw(t, "null")
		if !diffSafeUnquoted(c, c.null) || (c.rfc && strings.HasPrefix(c.null, `"`)) {
			c.nullSet, c.null = false, ""
		}
	}
	return c
}

// diffSafeUnquoted tells whether v can be written as an unquoted field that
// reads back as v with the leftmost split on the delimiter, whatever field
// follows: it holds no row delimiter byte and no delimiter match starts
// before its end.
func diffSafeUnquoted(c dcsv, v string) bool {
	// A "\r" is data but at the end of a row (where it is the "\r" of a
	// "\r\n" ending); with "\r\n" rows, a bare "\n" is data.
	if strings.HasSuffix(v, "\r") || strings.Contains(v, "\r\n") || c.rowDelim == "\n" && strings.Contains(v, "\n") {
		return false
	}
	return strings.Index(v+c.delim, c.delim) == len(v)
}

func diffTables(t *rapid.T) []dtable {
	n := rapid.IntRange(1, 3).Draw(t, "tables")
	types := []string{"INT4", "INT8", "NUMERIC", "REAL8", "STRING", "WSTRING", "CLOB", "BOOLEAN", "DATE", "DATETIME", "BYTE", "BLOB", "UINT2",
		"INT1", "INT2", "UINT1", "UINT4", "UINT8", "REAL4", "TIME", "timestamp", "NCLOB"}
	var out []dtable
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		// the same table name in two schemas, sometimes
		tb := dtable{schema: rapid.SampledFrom([]string{"app", "hr"}).Draw(t, "schema"), name: rapid.SampledFrom([]string{"t0", "t1", "t2"}).Draw(t, "name")}
		if seen[tb.schema+"."+tb.name] {
			tb.name = fmt.Sprintf("u%d", i)
		}
		seen[tb.schema+"."+tb.name] = true
		tb.path = tb.schema + "/" + tb.name + rapid.SampledFrom([]string{"/", "", "/"}).Draw(t, "pathSlash")
		nc := rapid.IntRange(1, 5).Draw(t, "cols")
		for j := 0; j < nc; j++ {
			c := dcol{name: fmt.Sprintf("c%d", j), typ: rapid.SampledFrom(types).Draw(t, "type")}
			c.nullable = j > 0 && rapid.Bool().Draw(t, "nullable")
			c.jsonLength = rapid.Bool().Draw(t, "jsonNum")
			switch c.typ {
			case "STRING", "WSTRING":
				c.length = rapid.SampledFrom([]int{0, 1, 3, 8, 40}).Draw(t, "length")
			case "CLOB":
				c.length = rapid.SampledFrom([]int{0, 20}).Draw(t, "length")
			case "BYTE", "BLOB":
				c.length = rapid.IntRange(1, 8).Draw(t, "length")
			case "NUMERIC":
				c.prec = rapid.IntRange(1, 38).Draw(t, "prec")
				c.scale = rapid.IntRange(0, min(c.prec, 31)).Draw(t, "scale")
			case "DATETIME", "timestamp", "TIME":
				c.scale = rapid.IntRange(0, 9).Draw(t, "dtscale")
			}
			if c.typ == "DATETIME" || c.typ == "DATE" || c.typ == "timestamp" {
				c.dateFormat = rapid.SampledFrom([]string{"", "", "YYYY-MM-dd HH:mm:ss", "YYYY/MM/dd HH:mm:ss.F", "MM/dd/YYYY HH:mm:ss", "YYYYMMdd HH:mm:ss.F"}).Draw(t, "dateFormat")
			}
			if !c.nullable && (c.typ == "INT4" || c.typ == "INT8" || c.typ == "STRING") && rapid.IntRange(0, 2).Draw(t, "pk") == 0 {
				c.pk = true
				tb.pk = append(tb.pk, j)
			}
			tb.cols = append(tb.cols, c)
		}
		out = append(out, tb)
	}
	return out
}

func diffTableDef(tables []dtable) string {
	type col map[string]any
	var ts []any
	for _, tb := range tables {
		var cols []any
		for _, c := range tb.cols {
			m := col{"ColumnName": c.name, "ColumnType": c.typ}
			num := func(k string, v int) {
				if c.jsonLength {
					m[k] = v
				} else {
					m[k] = strconv.Itoa(v)
				}
			}
			if c.nullable {
				m["ColumnNullable"] = "true"
			}
			if c.pk {
				m["ColumnIsPk"] = true
			}
			if c.length > 0 {
				num("ColumnLength", c.length)
			}
			if c.typ == "NUMERIC" {
				num("ColumnPrecision", c.prec)
				num("ColumnScale", c.scale)
			}
			if (c.typ == "DATETIME" || c.typ == "timestamp" || c.typ == "TIME") && c.scale > 0 {
				num("ColumnScale", c.scale)
			}
			if c.dateFormat != "" {
				m["ColumnDateFormat"] = c.dateFormat
			}
			cols = append(cols, m)
		}
		ts = append(ts, map[string]any{"TableName": tb.name, "TablePath": tb.path, "TableOwner": tb.schema,
			"TableColumns": cols, "TableColumnsTotal": strconv.Itoa(len(tb.cols))})
	}
	b, _ := json.Marshal(map[string]any{"TableCount": strconv.Itoa(len(tables)), "Tables": ts})
	return string(b)
}

// diffQuote writes v as a quoted RFC 4180 field.
func diffQuote(v string) string { return `"` + strings.ReplaceAll(v, `"`, `""`) + `"` }

func diffString(t *rapid.T, maxBytes int, label string, big bool) string {
	rs := rapid.SliceOfN(rapid.SampledFrom(dRunes), 0, 12).Draw(t, label)
	var b strings.Builder
	if big && maxBytes == 0 && len(rs) > 0 && rapid.IntRange(0, 2).Draw(t, "bigValue") == 0 {
		n := rapid.IntRange(20000, 140000).Draw(t, "bigLen")
		chunk := string(rs)
		for b.Len() < n {
			b.WriteString(chunk)
		}
		return b.String()
	}
	for _, r := range rs {
		if maxBytes > 0 && b.Len()+len(string(r)) > maxBytes {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// diffField writes a non-NULL value: unquoted when it reads back as itself and
// (optionally) quoted; ok is false when the settings cannot express it.
func diffField(t *rapid.T, c dcsv, v string) (string, bool) {
	mustQuote := !diffSafeUnquoted(c, v) || (c.rfc && strings.HasPrefix(v, `"`))
	if c.nullSet && v == c.null {
		mustQuote = true
	}
	if !c.nullSet && v == "" {
		mustQuote = true
	}
	if mustQuote {
		if !c.rfc {
			return "", false
		}
		return diffQuote(v), true
	}
	if c.rfc && rapid.IntRange(0, 4).Draw(t, "quoteAnyway") == 0 {
		return diffQuote(v), true
	}
	return v, true
}

func diffCell(t *rapid.T, c dcsv, col dcol) dcell {
	if col.nullable && rapid.IntRange(0, 4).Draw(t, "isNull") == 0 {
		if c.nullSet {
			return dcell{null: true, field: c.null}
		}
		return dcell{null: true, field: ""}
	}
	for tries := 0; ; tries++ {
		var in string
		d := dcell{kind: "num"}
		switch col.typ {
		case "INT1", "INT2", "INT4", "INT8", "UINT1", "UINT2", "UINT4", "UINT8":
			var n int64
			switch col.typ {
			case "INT1":
				n = int64(rapid.Int8().Draw(t, "i1"))
			case "INT2":
				n = int64(rapid.Int16().Draw(t, "i2"))
			case "INT4":
				n = int64(rapid.Int32().Draw(t, "i4"))
			case "INT8":
				n = rapid.Int64().Draw(t, "i8")
			case "UINT1":
				n = int64(rapid.Uint8().Draw(t, "u1"))
			case "UINT2":
				n = int64(rapid.Uint16().Draw(t, "u2"))
			case "UINT4":
				n = int64(rapid.Uint32().Draw(t, "u4"))
			default:
				n = rapid.Int64Min(0).Draw(t, "u8")
			}
			d.want = strconv.FormatInt(n, 10)
			if col.typ == "UINT8" && rapid.IntRange(0, 3).Draw(t, "u8big") == 0 {
				d.want = strconv.FormatUint(rapid.Uint64Min(1<<63).Draw(t, "u8hi"), 10)
				n = 1
			}
			in = d.want
			if n > 0 && rapid.IntRange(0, 5).Draw(t, "plus") == 0 {
				in = "+00" + in
			}
			d.keyval = d.want
		case "NUMERIC":
			ip := rapid.StringMatching(fmt.Sprintf(`[1-9][0-9]{0,%d}`, max(col.prec-col.scale-1, 0))).Draw(t, "ip")
			if col.prec == col.scale || rapid.IntRange(0, 4).Draw(t, "zeroInt") == 0 {
				ip = "0"
			}
			fp := rapid.StringMatching(fmt.Sprintf(`[0-9]{0,%d}`, col.scale)).Draw(t, "fp")
			in = ip
			if fp != "" {
				in += "." + fp
			}
			d.want = ip
			if col.scale > 0 {
				d.want += "." + fp + strings.Repeat("0", col.scale-len(fp))
			}
			if rapid.Bool().Draw(t, "neg") && strings.Trim(d.want, "0.") != "" {
				in, d.want = "-"+in, "-"+d.want
			}
			if c.numStr {
				d.kind = "str"
			}
		case "REAL8":
			f := rapid.Float64Range(-1e300, 1e300).Draw(t, "r8")
			in = strconv.FormatFloat(f, 'g', -1, 64)
			d.kind, d.want = "real", in
		case "REAL4":
			f := rapid.Float32Range(-1e38, 1e38).Draw(t, "r4")
			in = strconv.FormatFloat(float64(f), 'g', -1, 32)
			d.kind, d.want = "real4", in
		case "TIME":
			in = fmt.Sprintf("%02d:%02d:%02d", rapid.IntRange(0, 23).Draw(t, "th"), rapid.IntRange(0, 59).Draw(t, "tmin"), rapid.IntRange(0, 59).Draw(t, "tsec"))
			want := in
			if frac := rapid.StringMatching(`[0-9]{0,9}`).Draw(t, "frac"); frac != "" {
				in += "." + frac
				if f := (frac + "000000000")[:col.scale]; strings.Trim(f, "0") != "" {
					want += "." + f
				}
			}
			d.kind, d.want = "str", want
		case "STRING", "WSTRING", "CLOB", "NCLOB":
			d.kind = "str"
			if c.truncate && col.length > 0 && rapid.IntRange(0, 2).Draw(t, "overLong") == 0 {
				// longer than ColumnLength: cut on a character boundary
				in = diffString(t, 0, "s", false)
				d.want = in
				for len(d.want) > col.length {
					_, size := utf8.DecodeLastRuneInString(d.want)
					d.want = d.want[:len(d.want)-size]
				}
			} else {
				in = diffString(t, col.length, "s", c.big)
				d.want = in
			}
			d.keyval = d.want
		case "BOOLEAN":
			v := rapid.Bool().Draw(t, "b")
			spell := map[bool][]string{true: {"true", "T", "1", "yes", "Y", "TRUE"}, false: {"false", "F", "0", "no", "N"}}[v]
			in = rapid.SampledFrom(spell).Draw(t, "spelling")
			d.kind, d.want = "bool", strconv.FormatBool(v)
		case "DATE":
			day := time.Date(rapid.IntRange(1, 9999).Draw(t, "y"), 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rapid.IntRange(0, 364).Draw(t, "yd"))
			in = day.Format(diffDateLayout(col.dateFormat))
			d.kind, d.want = "str", day.Format("2006-01-02")
		case "DATETIME", "timestamp":
			ts := time.Date(rapid.IntRange(1, 9999).Draw(t, "ty"), time.Month(rapid.IntRange(1, 12).Draw(t, "tm")), rapid.IntRange(1, 28).Draw(t, "td"),
				rapid.IntRange(0, 23).Draw(t, "th"), rapid.IntRange(0, 59).Draw(t, "tmin"), rapid.IntRange(0, 59).Draw(t, "tsec"), 0, time.UTC)
			frac := ""
			if col.dateFormat == "" || strings.HasSuffix(col.dateFormat, ".F") {
				frac = rapid.StringMatching(`[0-9]{0,9}`).Draw(t, "frac")
			}
			in = ts.Format(diffDateLayout(col.dateFormat) + " 15:04:05")
			if frac != "" {
				in += "." + frac
			}
			want := ts.Format("2006-01-02T15:04:05")
			f := (frac + "000000000")[:col.scale]
			if strings.Trim(f, "0") != "" {
				want += "." + f
			}
			d.kind, d.want = "str", want+"Z"
		case "BYTE", "BLOB":
			b := rapid.SliceOfN(rapid.Byte(), 0, col.length).Draw(t, "bytes")
			in = hex.EncodeToString(b)
			if rapid.Bool().Draw(t, "upper") {
				in = strings.ToUpper(in)
			}
			if rapid.IntRange(0, 3).Draw(t, "prefix") == 0 {
				in = "0x" + in
			}
			d.kind, d.want = "str", "0x"+strings.ToUpper(hex.EncodeToString(b))
			if c.noHex {
				d.want = strings.TrimPrefix(d.want, "0x")
			}
		default:
			panic(col.typ)
		}
		if in == "" && c.nullSet && d.kind != "str" {
			continue // an empty field is an error in a non-string column
		}
		f, ok := diffField(t, c, in)
		if !ok {
			if tries > 20 {
				t.Skip("no expressible value")
			}
			continue
		}
		d.field = f
		return d
	}
}

// diffDateLayout is the Go layout of the date part of a ColumnDateFormat.
func diffDateLayout(f string) string {
	switch {
	case strings.HasPrefix(f, "YYYY/"):
		return "2006/01/02"
	case strings.HasPrefix(f, "MM/"):
		return "01/02/2006"
	case strings.HasPrefix(f, "YYYYMMdd"):
		return "20060102"
	}
	return "2006-01-02"
}

func diffJoin(c dcsv, fs []string) string { return strings.Join(fs, c.delim) }

// dfile is one object to write: its key (relative to bucket_folder) and
// rows, with the records expected from it.
type dfile struct {
	key string
	gz  bool
	// encoded: stored gzipped with Content-Encoding: gzip and no ".gz"
	// (versitygw only)
	encoded bool
	bytes   []byte
	recs    []*drec
}

// diffWriteFile lays out rows (each a full row text and its record) in bytes,
// with an optional BOM, a header row, blank lines, mixed "\r\n" endings
// under "\n" and no delimiter after the last row; it sets each record's
// offset and line.
func diffWriteFile(t *rapid.T, c dcsv, header bool, headerText string, rows []string, recs []*drec) []byte {
	var buf bytes.Buffer
	if rapid.IntRange(0, 5).Draw(t, "bom") == 0 {
		buf.WriteString("\xEF\xBB\xBF")
	}
	line := int64(1)
	end := func(last bool) {
		if last && rapid.IntRange(0, 3).Draw(t, "noFinal") == 0 {
			return
		}
		if c.rowDelim == "\n" && rapid.IntRange(0, 3).Draw(t, "crlf") == 0 {
			buf.WriteString("\r\n")
		} else {
			buf.WriteString(c.rowDelim)
		}
		line++
	}
	if header {
		buf.WriteString(headerText)
		line += int64(strings.Count(headerText, "\n"))
		end(len(rows) == 0)
	}
	for i, r := range rows {
		if (header || i > 0) && rapid.IntRange(0, 6).Draw(t, "blank") == 0 {
			buf.WriteString(c.rowDelim)
			line++
		}
		recs[i].offset, recs[i].line, recs[i].raw = int64(buf.Len()), line, r
		buf.WriteString(r)
		line += int64(strings.Count(r, "\n"))
		end(i == len(rows)-1)
	}
	return buf.Bytes()
}

func diffHeader(t *rapid.T, c dcsv, tb dtable, cdc bool) string {
	var fs []string
	n := len(tb.cols)
	if cdc {
		n += 3
	}
	for i := 0; i < n; i++ {
		v := diffString(t, 0, "headerName", c.big)
		if v == "" {
			v = fmt.Sprintf("h%d", i)
		}
		f, ok := diffField(t, c, v)
		if !ok {
			f = fmt.Sprintf("h%d", i)
		}
		fs = append(fs, f)
	}
	return diffJoin(c, fs)
}

func diffPosKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		if key[i] <= '!' {
			fmt.Fprintf(&b, "!%02x", key[i])
			continue
		}
		b.WriteByte(key[i])
	}
	return b.String()
}

// partKey is the documented partition key of a data record and its type.
func (dc *dcase) partKey(tb dtable, cells []dcell, cdc bool) (string, string) {
	if len(tb.pk) == 0 || cdc && !dc.cdcPK {
		return tb.schema + "." + tb.name, "schema-table"
	}
	var parts []string
	for _, i := range tb.pk {
		parts = append(parts, cells[i].keyval)
	}
	k := strings.Join(parts, ".")
	if k == "" {
		return tb.schema + "." + tb.name, "primary-key"
	}
	if dc.pkIncludeST {
		k = tb.schema + "." + tb.name + "." + k
	}
	// at most 256 UTF-16 code units, never cutting a character
	units := 0
	for i, r := range k {
		n := 1
		if r >= 0x10000 {
			n = 2
		}
		if units+n > 256 {
			return k[:i], "primary-key"
		}
		units += n
	}
	return k, "primary-key"
}

func (dc *dcase) keyOf(tb dtable, cells []dcell, cdc bool) string {
	k, _ := dc.partKey(tb, cells, cdc)
	return k
}

// dcase is one generated case.
type dcase struct {
	tables                  []dtable
	csv                     dcsv
	folder, cdcPath         string
	files                   []dfile // in processing order
	exp                     []*drec
	fullLoadOnly            bool // mode: full-load
	cdcOnly                 bool // mode: cdc
	cdcNow                  bool // cdc_start: now (CDC files present at the first start are skipped)
	tableStart              bool
	includeNull, includeTxn bool
	batchSize               int
	interval                string
	stopAt                  []int  // messages received before each stop
	crash                   []bool // per stop: restore the checkpoint as saved when the stop began, as after a crash
	cdcStart                bool   // emit_cdc_start
	cdcGroup                int    // index in exp of the cdc-start records, or -1
	maxRow                  int    // max_row_size, 0: default
	nacks                   map[int]bool
	late                    []dfile // CDC files uploaded once the records before nPre arrived
	nPre                    int
	lateKey                 []dfile // a CDC file with a key below those processed, uploaded once the records before nMid arrived
	nMid                    int
	lateProcess             bool // late_files: process
	cdcPK, pkIncludeST      bool // cdc_partition_key: primary-key, partition_include_schema_table
	includePV               bool // include_partition_value
	s3                      bool // versitygw, not a directory
	pageSize                int  // list_page_size (0: default)
	markers                 bool // directory marker objects ("folder/") under the table and CDC paths
	bulk                    bool // files of over 1024 rows, batches of up to 3000, max_workers 3
}

// bulkUp, in a bulk case, sometimes repeats a file's rows to over 1024, so
// that batches take the processor's parallel path.
func (dc *dcase) bulkUp(t *rapid.T, rows []string, recs []*drec) ([]string, []*drec) {
	if !dc.bulk || len(rows) == 0 || !rapid.Bool().Draw(t, "bulkFile") {
		return rows, recs
	}
	n := len(rows)
	for len(rows) < 1100 {
		i := len(rows) % n
		r := *recs[i]
		rows, recs = append(rows, rows[i]), append(recs, &r)
	}
	return rows, recs
}

// drawGzip draws whether a file is gzipped and, on versitygw, whether it is
// stored with Content-Encoding: gzip instead of a ".gz" suffix.
func (dc *dcase) drawGzip(t *rapid.T) (gz, encoded bool) {
	gz = dc.csv.gzip && rapid.Bool().Draw(t, "gzFile")
	encoded = gz && dc.s3 && rapid.Bool().Draw(t, "contentEncoding")
	return gz, encoded
}

func diffCase(t *rapid.T) *dcase {
	dc := &dcase{tables: diffTables(t), csv: diffCSV(t)}
	c := dc.csv
	dc.folder = rapid.SampledFrom([]string{"", "dms", "a/b", "dms/", "/x"}).Draw(t, "folder")
	dc.s3 = rapid.IntRange(0, 7).Draw(t, "versitygw") == 0
	if dc.s3 {
		dc.pageSize = rapid.SampledFrom([]int{0, 1, 2, 3}).Draw(t, "pageSize")
		dc.markers = rapid.Bool().Draw(t, "markers")
	}
	dc.cdcPath = "cdc"
	switch rapid.IntRange(0, 9).Draw(t, "mode") {
	case 0, 1:
		dc.fullLoadOnly = true
	case 2:
		dc.cdcOnly = true
	}
	dc.cdcNow = !dc.fullLoadOnly && rapid.IntRange(0, 4).Draw(t, "cdcNow") == 0
	dc.tableStart = rapid.Bool().Draw(t, "tableStart")
	dc.includeNull = rapid.Bool().Draw(t, "includeNull")
	dc.includeTxn = rapid.Bool().Draw(t, "includeTxn")
	dc.batchSize = rapid.IntRange(1, 6).Draw(t, "batchSize")
	if dc.bulk = rapid.IntRange(0, 11).Draw(t, "bulk") == 0; dc.bulk {
		dc.batchSize = 3000
	}
	dc.interval = rapid.SampledFrom([]string{"0s", "30ms", "1h"}).Draw(t, "interval")
	dc.cdcStart = rapid.Bool().Draw(t, "cdcStart")
	dc.cdcPK = rapid.Bool().Draw(t, "cdcPK")
	dc.pkIncludeST = rapid.Bool().Draw(t, "pkIncludeST")
	dc.includePV = rapid.Bool().Draw(t, "includePV")
	dc.cdcGroup = -1
	dc.nacks = map[int]bool{}
	for _, k := range rapid.SliceOfN(rapid.IntRange(0, 8), 0, 2).Draw(t, "nacks") {
		dc.nacks[k] = true
	}
	prefix := ""
	if dc.folder != "" {
		prefix = strings.Trim(dc.folder, "/") + "/"
	}
	serial := 0
	for ti, tb := range dc.tables {
		if dc.tableStart && !dc.cdcOnly {
			pp := fmt.Sprintf("1/%05d/ ", ti)
			for _, op := range []string{"drop-table", "create-table"} {
				dc.exp = append(dc.exp, &drec{control: op, phase: "full-load", tableIdx: ti, posPrefix: pp})
			}
		}
		nf := rapid.IntRange(0, 3).Draw(t, "loadFiles")
		for f := 1; f <= nf; f++ {
			opCol := rapid.IntRange(0, 4).Draw(t, "opCol") == 0
			nr := rapid.IntRange(0, 5).Draw(t, "loadRows")
			var rows []string
			var recs []*drec
			for r := 0; r < nr; r++ {
				var cells []dcell
				var fs []string
				if opCol {
					fs = append(fs, rapid.SampledFrom([]string{"I", "INSERT", "i"}).Draw(t, "loadOp"))
				}
				for _, col := range tb.cols {
					cl := diffCell(t, c, col)
					cells = append(cells, cl)
					fs = append(fs, cl.field)
				}
				row := diffJoin(c, fs)
				if row == "" {
					continue // a blank line, not a row
				}
				rows = append(rows, row)
				recs = append(recs, &drec{phase: "full-load", tableIdx: ti, op: "load", cells: cells, partKey: dc.keyOf(tb, cells, false)})
			}
			key := fmt.Sprintf("%s%s/LOAD%08d.csv", prefix, strings.TrimSuffix(tb.path, "/"), f)
			gz, enc := dc.drawGzip(t)
			if gz && !enc {
				key += ".gz"
			}
			rows, recs = dc.bulkUp(t, rows, recs)
			data := diffWriteFile(t, c, c.header, diffHeader(t, c, tb, false), rows, recs)
			for _, r := range recs {
				r.key, r.fileBytes, r.fileSerial = key, data, serial
				r.position = fmt.Sprintf("1/%05d/%s %020d", ti, diffPosKey(key), r.offset)
			}
			serial++
			dc.files = append(dc.files, dfile{key: key, gz: gz, encoded: enc, bytes: data, recs: recs})
			if !dc.cdcOnly {
				dc.exp = append(dc.exp, recs...)
			}
		}
	}
	if dc.cdcStart && !dc.fullLoadOnly {
		dc.cdcGroup = len(dc.exp)
		dc.exp = append(dc.exp, dc.cdcStartGroup()...)
	}
	dc.nPre = len(dc.exp)
	nc := rapid.IntRange(0, 3).Draw(t, "cdcFiles")
	nLate := 0
	if !dc.fullLoadOnly {
		nLate = rapid.IntRange(0, nc).Draw(t, "lateUploads")
	}
	for f := 1; f <= nc; f++ {
		nr := rapid.IntRange(0, 5).Draw(t, "cdcRows")
		var rows []string
		var recs []*drec
		for r := 0; r < nr; r++ {
			ti := rapid.IntRange(0, len(dc.tables)-1).Draw(t, "cdcTable")
			tb := dc.tables[ti]
			op := rapid.SampledFrom([]string{"I", "U", "D", "INSERT", "update", "Delete"}).Draw(t, "op")
			fs := []string{op, tb.name, tb.schema}
			var cells []dcell
			for _, col := range tb.cols {
				cl := diffCell(t, c, col)
				cells = append(cells, cl)
				fs = append(fs, cl.field)
			}
			want := map[byte]string{'I': "insert", 'U': "update", 'D': "delete"}[strings.ToUpper(op)[0]]
			rows = append(rows, diffJoin(c, fs))
			recs = append(recs, &drec{phase: "cdc", tableIdx: ti, op: want, cells: cells, partKey: dc.keyOf(tb, cells, true)})
		}
		key := fmt.Sprintf("%s%s/2024010%d-12000000%d.csv", prefix, dc.cdcPath, f, f)
		gz, enc := dc.drawGzip(t)
		if gz && !enc {
			key += ".gz"
		}
		rows, recs = dc.bulkUp(t, rows, recs)
		data := diffWriteFile(t, c, c.cdcHeader, diffHeader(t, c, dc.tables[0], true), rows, recs)
		for _, r := range recs {
			r.key, r.fileBytes, r.fileSerial = key, data, serial
			r.position = fmt.Sprintf("2/%05d/%s %020d", 0, diffPosKey(key), r.offset)
		}
		serial++
		late := f > nc-nLate
		if late {
			dc.late = append(dc.late, dfile{key: key, gz: gz, encoded: enc, bytes: data, recs: recs})
		} else {
			dc.files = append(dc.files, dfile{key: key, gz: gz, encoded: enc, bytes: data, recs: recs})
		}
		if !dc.fullLoadOnly && (late || !dc.cdcNow) {
			dc.exp = append(dc.exp, recs...)
			if !late {
				dc.nPre += len(recs)
			}
		}
	}
	dc.nMid = len(dc.exp)
	lateRecs := 0
	for _, f := range dc.late {
		lateRecs += len(f.recs)
	}
	// (uploaded once a record of a file uploaded while running arrived, so
	// that the input has listed a higher key)
	if lateRecs > 0 && !dc.fullLoadOnly && rapid.Bool().Draw(t, "lateKey") {
		// a late file: its key sorts before every other CDC key
		dc.lateProcess = rapid.Bool().Draw(t, "lateProcess")
		nr := rapid.IntRange(1, 3).Draw(t, "lateRows")
		var rows []string
		var recs []*drec
		for r := 0; r < nr; r++ {
			ti := rapid.IntRange(0, len(dc.tables)-1).Draw(t, "cdcTable")
			tb := dc.tables[ti]
			fs := []string{"U", tb.name, tb.schema}
			var cells []dcell
			for _, col := range tb.cols {
				cl := diffCell(t, c, col)
				cells = append(cells, cl)
				fs = append(fs, cl.field)
			}
			rows = append(rows, diffJoin(c, fs))
			recs = append(recs, &drec{phase: "cdc", tableIdx: ti, op: "update", cells: cells, partKey: dc.keyOf(tb, cells, true)})
		}
		key := fmt.Sprintf("%s%s/20231231-000000000.csv", prefix, dc.cdcPath)
		data := diffWriteFile(t, c, c.cdcHeader, diffHeader(t, c, dc.tables[0], true), rows, recs)
		for _, r := range recs {
			r.key, r.fileBytes, r.fileSerial = key, data, serial
			r.position = fmt.Sprintf("2/%05d/%s %020d", 1, diffPosKey(key), r.offset)
		}
		dc.lateKey = append(dc.lateKey, dfile{key: key, bytes: data, recs: recs})
		if dc.lateProcess {
			dc.exp = append(dc.exp, recs...)
		}
	}
	if dc.csv.big || rapid.IntRange(0, 5).Draw(t, "smallMaxRow") == 0 {
		// max_row_size at the length of a row, give or take one byte
		var lens []int
		for _, e := range dc.exp {
			if e.control == "" {
				lens = append(lens, len(e.raw))
			}
		}
		if len(lens) > 0 {
			dc.maxRow = max(1, rapid.SampledFrom(lens).Draw(t, "maxRowOf")+rapid.IntRange(-1, 1).Draw(t, "maxRowDelta"))
			for _, e := range dc.exp {
				e.tooLong = e.control == "" && len(e.raw) > dc.maxRow
			}
		}
	}
	if !dc.fullLoadOnly && rapid.IntRange(0, 2).Draw(t, "resume") > 0 || dc.fullLoadOnly && rapid.Bool().Draw(t, "resume") {
		n := rapid.IntRange(1, 2).Draw(t, "stops")
		for i := 0; i < n; i++ {
			dc.stopAt = append(dc.stopAt, rapid.IntRange(0, dc.nPre).Draw(t, "stopAt"))
			dc.crash = append(dc.crash, rapid.Bool().Draw(t, "crash"))
		}
	}
	return dc
}

// cdcStartGroup are the records of a cdc-start signal: create-table for
// awsdms_apply_exceptions (table index -1), then for every table.
func (dc *dcase) cdcStartGroup() []*drec {
	out := []*drec{{control: "create-table", phase: "cdc", tableIdx: -1, posPrefix: "2/00000/ "}}
	for i := range dc.tables {
		out = append(out, &drec{control: "create-table", phase: "cdc", tableIdx: i, posPrefix: "2/00000/ "})
	}
	return out
}

func (dc *dcase) inputYAML(storage, ckDir string) string {
	c := dc.csv
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	y := storage
	if dc.folder != "" {
		y += "bucket_folder: " + js(dc.folder) + "\n"
	}
	y += "cdc_path: " + dc.cdcPath + "\n"
	if dc.pageSize > 0 {
		y += fmt.Sprintf("list_page_size: %d\n", dc.pageSize)
	}
	switch {
	case dc.fullLoadOnly:
		y += "mode: full-load\n"
	case dc.cdcOnly:
		y += "mode: cdc\n"
	}
	if dc.cdcNow {
		y += "cdc_start: now\n"
	}
	if dc.lateProcess {
		y += "late_files: process\n"
	}
	y += "late_file_check_interval: 100ms\n"
	y += fmt.Sprintf("table_definition: %s\n", js(filepath.Join(ckDir, "def.json")))
	y += fmt.Sprintf("csv_delimiter: %s\ncsv_row_delimiter: %s\nrfc4180: %v\n", js(c.delim), js(c.rowDelim), c.rfc)
	if c.header {
		y += "ignore_header_rows: 1\n"
	}
	if c.cdcHeader {
		y += "cdc_ignore_header_rows: true\n"
	}
	y += fmt.Sprintf("batch_size: %d\npoll_interval: 50ms\nemit_table_start: %v\nemit_cdc_start: %v\n", dc.batchSize, dc.tableStart, dc.cdcStart)
	if dc.maxRow > 0 {
		y += fmt.Sprintf("max_row_size: %d\n", dc.maxRow)
	}
	y += fmt.Sprintf("checkpoint:\n  store: file\n  directory: %s\n  interval: %s\n", js(ckDir), dc.interval)
	return y
}

func (dc *dcase) procYAML(ckDir string) string {
	c := dc.csv
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	y := "dms_csv_to_json:\n"
	if dc.bulk {
		y += "  max_workers: 3\n"
	}
	y += fmt.Sprintf("  table_definition: %s\n", js(filepath.Join(ckDir, "def.json")))
	y += fmt.Sprintf("  csv_delimiter: %s\n  csv_row_delimiter: %s\n  rfc4180: %v\n", js(c.delim), js(c.rowDelim), c.rfc)
	if c.nullSet {
		y += fmt.Sprintf("  csv_null_value: %s\n", js(c.null))
	}
	format := "json-unformatted"
	if c.pretty {
		format = "json"
	}
	y += fmt.Sprintf("  message_format: %s\n  include_null_and_empty: %v\n  include_transaction_details: %v\n", format, dc.includeNull, dc.includeTxn)
	y += fmt.Sprintf("  no_hex_prefix: %v\n  numeric_as_string: %v\n", c.noHex, c.numStr)
	if c.truncate {
		y += "  truncation_policy: truncate\n"
	}
	y += fmt.Sprintf("  partition_include_schema_table: %v\n  include_partition_value: %v\n", dc.pkIncludeST, dc.includePV)
	if dc.cdcPK {
		y += "  cdc_partition_key: primary-key\n"
	}
	return y
}

// drun is one stream run.
type drun struct {
	mu       sync.Mutex
	msgs     []got2
	rejected int
	stream   *service.Stream
	done     chan error
	logs     *lockedBuf
}

func startDiffStream(t testing.TB, inputYAML, procYAML string, nacks map[int]bool) *drun {
	r := &drun{done: make(chan error, 1), logs: &lockedBuf{buf: &bytes.Buffer{}}}
	sb := service.NewStreamBuilder()
	sb.SetLogger(slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err := sb.AddInputYAML("aws_s3_dms:\n" + indent(inputYAML)); err != nil {
		t.Fatalf("input config: %v\n%s", err, inputYAML)
	}
	if err := sb.AddProcessorYAML(procYAML); err != nil {
		t.Fatalf("processor config: %v\n%s", err, procYAML)
	}
	sb.SetThreads(1)
	calls := 0
	if err := sb.AddBatchConsumerFunc(func(ctx context.Context, b service.MessageBatch) error {
		calls++
		if nacks[calls-1] {
			r.mu.Lock()
			r.rejected++
			r.mu.Unlock()
			return fmt.Errorf("batch %d rejected by the test", calls-1)
		}
		batch := make([]got2, len(b))
		for i, m := range b {
			batch[i].got = toGot(m)
			batch[i].partKey, _ = m.MetaGet("dms_partition_key")
			batch[i].operation, _ = m.MetaGet("dms_operation")
			_, batch[i].lineSet = m.MetaGetMut("dms_line")
			_, batch[i].offSet = m.MetaGetMut("dms_offset")
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, batch...)
		r.mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	r.stream = s
	go func() { r.done <- s.Run(context.Background()) }()
	return r
}

// logText is the log without its INFO lines.
func (r *drun) logText() string {
	var out []string
	for _, l := range strings.Split(r.logs.String(), "\n") {
		if !strings.Contains(l, "level=INFO") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (r *drun) snapshot() []got2 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got2(nil), r.msgs...)
}

// waitUntil waits until cond holds for the messages received, the stream
// ends, or within passes; it reports whether cond held.
func (r *drun) waitUntil(cond func([]got2) bool, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		if cond(r.snapshot()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case err := <-r.done:
			r.done <- err
			return cond(r.snapshot())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (r *drun) stop(t testing.TB) {
	err := r.stream.StopWithin(10 * time.Second)
	for i := 0; err != nil && strings.Contains(err.Error(), "not been run yet") && i < 1000; i++ {
		// Run, in its goroutine, has not made the stream yet
		time.Sleep(time.Millisecond)
		err = r.stream.StopWithin(10 * time.Second)
	}
	if err != nil {
		select {
		case derr := <-r.done:
			r.done <- derr
			return
		default:
		}
		t.Fatalf("stop: %v\nlogs:\n%s", err, r.logs.String())
	}
}

func (dc *dcase) find(id string) *drec {
	for _, e := range dc.exp {
		if e.id() == id {
			return e
		}
	}
	return nil
}

// identity of a message for aligning the runs with the expected records.
func (e *drec) id() string {
	if e.control != "" {
		return fmt.Sprintf("control %s %s %d", e.phase, e.control, e.tableIdx)
	}
	return fmt.Sprintf("%s@%d", e.key, e.offset)
}

func (g *got2) id(dc *dcase) string {
	if g.operation == "drop-table" || g.operation == "create-table" {
		if g.Schema == "" && g.Table == "awsdms_apply_exceptions" {
			return fmt.Sprintf("control %s %s %d", g.Phase, g.operation, -1)
		}
		for i, tb := range dc.tables {
			if tb.schema == g.Schema && tb.name == g.Table {
				return fmt.Sprintf("control %s %s %d", g.Phase, g.operation, i)
			}
		}
	}
	return fmt.Sprintf("%s@%d", g.Key, g.Offset)
}

// diffTxID is the documented transaction-id: the 53-bit FNV-1a hash of
// s3://bucket/key, never 0.
func diffTxID(bucket, key string) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range []byte("s3://" + bucket + "/" + key) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	h &= 1<<53 - 1
	if h == 0 {
		h = 1
	}
	return h
}

// diffOrderedObject decodes a JSON object keeping its key order.
func diffOrderedObject(raw json.RawMessage) ([]string, map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not an object: %s", raw)
	}
	var keys []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		vals[k] = v
	}
	return keys, vals, nil
}

// check compares one received message with its expected record.
func (dc *dcase) check(e *drec, g got2, bucket string) string {
	if e.tooLong {
		want := e.raw[:min(len(e.raw), 4096)]
		if !strings.Contains(g.Err, "row exceeds max_row_size") || g.Body != want {
			return fmt.Sprintf("a row of %d bytes over max_row_size %d: error %q, body %d bytes, want the first %d", len(e.raw), dc.maxRow, g.Err, len(g.Body), len(want))
		}
		if g.Key != e.key || g.Offset != e.offset || g.Line != e.line || g.Position != e.position {
			return fmt.Sprintf("at %s offset %d line %d position %q, want %s offset %d line %d %q", g.Key, g.Offset, g.Line, g.Position, e.key, e.offset, e.line, e.position)
		}
		return ""
	}
	if g.Err != "" {
		return "flagged: " + g.Err
	}
	tb := dtable{schema: "", name: "awsdms_apply_exceptions"}
	if e.tableIdx >= 0 {
		tb = dc.tables[e.tableIdx]
	}
	var rec struct {
		Data     json.RawMessage            `json:"data"`
		Metadata map[string]json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(g.Body), &rec); err != nil {
		return fmt.Sprintf("not JSON (%v): %q", err, g.Body)
	}
	md := func(k string) string {
		var s string
		if v, ok := rec.Metadata[k]; ok && json.Unmarshal(v, &s) == nil {
			return s
		}
		return string(rec.Metadata[k])
	}
	if md("schema-name") != tb.schema || md("table-name") != tb.name {
		return fmt.Sprintf("schema/table %s.%s, want %s.%s", md("schema-name"), md("table-name"), tb.schema, tb.name)
	}
	if g.Schema != tb.schema || g.Table != tb.name {
		return fmt.Sprintf("metadata dms_schema/dms_table %s.%s, want %s.%s", g.Schema, g.Table, tb.schema, tb.name)
	}
	if e.control != "" {
		if md("record-type") != "control" || md("operation") != e.control || g.operation != e.control || g.Phase != e.phase {
			return fmt.Sprintf("control record %q/%q phase %q, want %s %s", md("record-type"), md("operation"), g.Phase, e.control, e.phase)
		}
		if wantKey := "dmsbridge." + tb.schema + "." + tb.name; g.partKey != wantKey || md("partition-key-type") != "task-id" {
			return fmt.Sprintf("control partition key %q type %q, want %q task-id", g.partKey, md("partition-key-type"), wantKey)
		}
		if !strings.HasPrefix(g.Position, e.posPrefix) {
			return fmt.Sprintf("control dms_position %q, want prefix %q", g.Position, e.posPrefix)
		}
		return ""
	}
	if g.Key != e.key || g.Offset != e.offset || g.Line != e.line || !g.lineSet || !g.offSet {
		return fmt.Sprintf("at %s offset %d line %d, want %s offset %d line %d", g.Key, g.Offset, g.Line, e.key, e.offset, e.line)
	}
	if string(e.fileBytes[e.offset:e.offset+int64(len(e.raw))]) != e.raw {
		return "oracle: raw row not at its offset"
	}
	if g.Phase != e.phase || g.Position != e.position || g.Bucket != bucket {
		return fmt.Sprintf("phase %q position %q bucket %q, want %q %q %q", g.Phase, g.Position, g.Bucket, e.phase, e.position, bucket)
	}
	if md("record-type") != "data" || md("operation") != e.op || g.operation != e.op {
		return fmt.Sprintf("record-type %q operation %q (meta %q), want data %s", md("record-type"), md("operation"), g.operation, e.op)
	}
	_, wantPKT := dc.partKey(tb, e.cells, e.phase == "cdc")
	if md("partition-key-type") != wantPKT || g.partKey != e.partKey {
		return fmt.Sprintf("partition key %q type %q, want %q type %q", g.partKey, md("partition-key-type"), e.partKey, wantPKT)
	}
	if pv, has := rec.Metadata["partition-key-value"]; has != (dc.includePV && wantPKT != "schema-table") || has && md("partition-key-value") != e.partKey {
		return fmt.Sprintf("partition-key-value %s, want %q (include_partition_value %v, type %s)", pv, e.partKey, dc.includePV, wantPKT)
	}
	if md("timestamp") == "" {
		return "no timestamp"
	}
	if e.phase == "cdc" {
		if md("transaction-id") != strconv.FormatUint(diffTxID(bucket, e.key), 10) {
			return fmt.Sprintf("transaction-id %s, want %d", md("transaction-id"), diffTxID(bucket, e.key))
		}
		if dc.includeTxn {
			if md("transaction-record-id") != strconv.FormatInt(e.line, 10) || md("stream-position") != e.position {
				return fmt.Sprintf("transaction-record-id %s stream-position %q, want %d %q", md("transaction-record-id"), md("stream-position"), e.line, e.position)
			}
			if e.line > 1 && md("prev-transaction-record-id") != strconv.FormatInt(e.line-1, 10) {
				return fmt.Sprintf("prev-transaction-record-id %s, want %d", md("prev-transaction-record-id"), e.line-1)
			}
			lm, err := time.Parse(time.RFC3339Nano, g.LastModified)
			if err != nil || md("commit-timestamp") != lm.UTC().Format("2006-01-02T15:04:05.000000Z") {
				return fmt.Sprintf("commit-timestamp %q for s3_last_modified %q", md("commit-timestamp"), g.LastModified)
			}
		}
	} else if _, ok := rec.Metadata["transaction-id"]; ok {
		return "a load record with a transaction-id"
	}
	keys, vals, err := diffOrderedObject(rec.Data)
	if err != nil {
		return err.Error()
	}
	var wantKeys []string
	for i, col := range tb.cols {
		if !e.cells[i].null || dc.includeNull {
			wantKeys = append(wantKeys, col.name)
		}
	}
	if strings.Join(keys, ",") != strings.Join(wantKeys, ",") {
		return fmt.Sprintf("data keys %v, want %v", keys, wantKeys)
	}
	for i, col := range tb.cols {
		cl := e.cells[i]
		v, ok := vals[col.name]
		if !ok {
			continue
		}
		fail := func() string {
			return fmt.Sprintf("column %s %s: field %q rendered %s, want %s %q", col.name, col.typ, cl.field, v, cl.kind, cl.want)
		}
		if cl.null {
			if string(v) != "null" {
				return fail()
			}
			continue
		}
		switch cl.kind {
		case "num", "bool":
			if string(v) != cl.want {
				return fail()
			}
		case "real":
			want, _ := strconv.ParseFloat(cl.want, 64)
			gotF, err := strconv.ParseFloat(string(v), 64)
			if err != nil || gotF != want || math.IsInf(gotF, 0) {
				return fail()
			}
		case "real4":
			want, _ := strconv.ParseFloat(cl.want, 32)
			gotF, err := strconv.ParseFloat(string(v), 32)
			if err != nil || float32(gotF) != float32(want) {
				return fail()
			}
		case "str":
			var s string
			if json.Unmarshal(v, &s) != nil || s != cl.want {
				return fail()
			}
		}
	}
	return ""
}

// TestDiffPropertyInputToProcessor is the differential property test (see
// the top of the file). The number of cases is -rapid.checks when given,
// else 30 (a few seconds); about one case in eight runs against versitygw.
func TestDiffPropertyInputToProcessor(t *testing.T) {
	checksSet := false
	flag.Visit(func(f *flag.Flag) { checksSet = checksSet || f.Name == "rapid.checks" })
	if !checksSet && os.Getenv("RAPID_CHECKS") == "" {
		old := flag.Lookup("rapid.checks").Value.String()
		flag.Set("rapid.checks", "30")
		t.Cleanup(func() { flag.Set("rapid.checks", old) })
	}
	rapid.Check(t, func(rt *rapid.T) {
		dc := diffCase(rt)
		runDiffCase(t, rt, dc)
	})
}

func runDiffCase(t *testing.T, rt *rapid.T, dc *dcase) {
	ckDir, err := os.MkdirTemp(t.TempDir(), "case")
	if err != nil {
		rt.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ckDir, "def.json"), []byte(diffTableDef(dc.tables)), 0o644); err != nil {
		rt.Fatal(err)
	}
	var b backend
	bucket := ""
	if dc.s3 {
		sb := newS3Backend(t)
		b, bucket = sb, sb.bucket
		if dc.markers {
			prefix := ""
			if dc.folder != "" {
				prefix = strings.Trim(dc.folder, "/") + "/"
			}
			for _, tb := range dc.tables {
				sb.put(t, prefix+strings.TrimSuffix(tb.path, "/")+"/", nil)
			}
			sb.put(t, prefix+dc.cdcPath+"/", nil)
		}
	} else {
		b = &dirBackend{root: filepath.Join(ckDir, "data")}
	}
	for _, f := range dc.files {
		diffPutFile(t, b, f)
	}
	if _, ok := b.(*dirBackend); ok && len(dc.files) == 0 {
		os.MkdirAll(filepath.Join(ckDir, "data"), 0o755)
	}
	inY, procY := dc.inputYAML(b.yaml(), ckDir), dc.procYAML(ckDir)
	describe := func() string {
		var s strings.Builder
		fmt.Fprintf(&s, "input:\n%s\nprocessor:\n%s\ndefinition: %s\nfiles:\n", inY, procY, diffTableDef(dc.tables))
		for i, f := range append(append(append([]dfile(nil), dc.files...), dc.late...), dc.lateKey...) {
			body := f.bytes
			if len(body) > 3000 {
				body = body[:3000]
			}
			fmt.Fprintf(&s, "  %s (gz %v, Content-Encoding %v, %d bytes, uploaded late %v): %q\n", f.key, f.gz, f.encoded, len(f.bytes), i >= len(dc.files), body)
		}
		fmt.Fprintf(&s, "stops after %v messages (crash %v); batches rejected (0-based, last run): %v\n", dc.stopAt, dc.crash, dc.nacks)
		var all []string
		for _, e := range dc.exp {
			all = append(all, e.id())
		}
		fmt.Fprintf(&s, "expected: %v\n", all)
		return s.String()
	}
	n := len(dc.exp)
	// align finds where msgs lie in the expected records: the highest start
	// in [lo, hi] from which they match, or -1
	align := func(msgs []got2, lo, hi int) int {
		for s := hi; s >= lo; s-- {
			if s+len(msgs) > n {
				continue
			}
			match := true
			for i, g := range msgs {
				if g.id(dc) != dc.exp[s+i].id() {
					match = false
					break
				}
			}
			if match {
				return s
			}
		}
		return -1
	}
	// place finds where the messages of run ri lie: a contiguous slice
	// of the expected records starting at or before pos, where the previous
	// run ended, after the cdc-start records (again) when a restart in CDC
	// sent them first. start is -1 when there is no such place.
	place := func(msgs []got2, pos, ri int) (start int, again, rest []got2) {
		start, rest = align(msgs, 0, pos), msgs
		if g := len(dc.tables) + 1; ri > 0 && dc.cdcGroup >= 0 && len(msgs) >= g && align(msgs[:g], dc.cdcGroup, dc.cdcGroup) == dc.cdcGroup {
			// either a restart before the cdc-start records, or one in CDC
			// that sends them again: whichever goes further
			if s2 := align(msgs[g:], dc.cdcGroup+1, pos); s2 >= 0 && (start < 0 || s2+len(msgs)-g > start+len(msgs)) {
				start, again, rest = s2, msgs[:g], msgs[g:]
			}
		}
		return start, again, rest
	}
	pos := 0 // expected records covered so far
	var starts []int
	var runIDs [][]string
	crashPos := -1 // where the last run crashed, in the expected records
	lastSaved := ""
	for ri := 0; ri <= len(dc.stopAt); ri++ {
		last := ri == len(dc.stopAt)
		var nacks map[int]bool
		if last {
			// only in the last run: a run stopped before the redelivery
			// of a rejected batch has a gap, filled after the restart
			nacks = dc.nacks
		}
		r := startDiffStream(t, inY, procY, nacks)
		var ok bool
		switch {
		case last && dc.fullLoadOnly:
			// the input ends by itself once the full load is done
			select {
			case err := <-r.done:
				r.done <- err
				if err != nil {
					rt.Fatalf("full-load run ended with %v\n%s", err, describe())
				}
				ok = true
			case <-time.After(15 * time.Second):
			}
		case last:
			// Uploads wait for the input to have connected (with cdc_start:
			// now, a first start takes the newest key present then).
			if len(dc.late) > 0 && !r.waitUntil(func([]got2) bool { return strings.Contains(r.logs.String(), "aws_s3_dms reading") }, 15*time.Second) {
				rt.Fatalf("run %d: the input did not connect\nlogs:\n%s\n%s", ri, r.logText(), describe())
			}
			// the CDC files uploaded while running: the new ones once the
			// records before them arrived, then the late one (a key below
			// those processed) once those arrived
			for _, step := range []struct {
				files []dfile
				after int
			}{{dc.late, dc.nPre}, {dc.lateKey, dc.nMid}} {
				if len(step.files) == 0 {
					continue
				}
				if pos < step.after {
					id := dc.exp[step.after-1].id()
					r.waitUntil(func(m []got2) bool {
						for _, g := range m {
							if g.id(dc) == id {
								return true
							}
						}
						return false
					}, 15*time.Second)
				}
				for _, f := range step.files {
					diffPutFile(t, b, f)
				}
			}
			// until the last copies of the records run, in order, to
			// the end (a rejected batch is sent again, then the ones
			// after it); when everything arrived already, until the input
			// has had time to (wrongly) send more
			t0 := time.Now()
			ok = r.waitUntil(func(m []got2) bool {
				if len(m) == 0 {
					return pos == n && time.Since(t0) > 300*time.Millisecond
				}
				start, _, rest := place(diffLastCopies(dc, m), pos, ri)
				return start >= 0 && start+len(rest) == n
			}, 15*time.Second)
		default:
			want := dc.stopAt[ri]
			ok = r.waitUntil(func(m []got2) bool { return len(m) >= want || pos+len(m) >= dc.nPre }, 15*time.Second)
		}
		var saved map[string][]byte // the checkpoint files before the stop
		crashAt := -1
		if !last && dc.crash[ri] {
			crashAt = len(r.snapshot())
			saved = diffCheckpoints(t, ckDir)
		}
		r.stop(t)
		if saved != nil {
			lastSaved = fmt.Sprint(saved)
			for name := range diffCheckpoints(t, ckDir) {
				if _, ok := saved[name]; !ok {
					os.Remove(filepath.Join(ckDir, name))
				}
			}
			for name, b := range saved {
				if err := os.WriteFile(filepath.Join(ckDir, name), b, 0o644); err != nil {
					rt.Fatal(err)
				}
			}
		}
		msgs := r.snapshot()
		if r.rejected > 0 {
			// Go-back-N after a rejected batch: the batches emitted after
			// it may be written twice, but the last copy of every row is
			// in order. Every copy must be right.
			lastCopy := map[string]int{}
			for i, g := range msgs {
				lastCopy[g.id(dc)] = i
			}
			var kept []got2
			for i, g := range msgs {
				if lastCopy[g.id(dc)] != i {
					if e := dc.find(g.id(dc)); e == nil || dc.check(e, g, bucket) != "" {
						rt.Fatalf("run %d: a copy of %s is wrong\n%s", ri, g.id(dc), describe())
					}
					continue
				}
				kept = append(kept, g)
			}
			msgs = kept
		}
		if !ok && last {
			rt.Fatalf("run %d: timed out with %d messages, want up to record %d (%s)\ngot: %v\nlogs:\n%s\n%s", ri, len(msgs), n, dc.exp[n-1].id(), diffIDs(dc, msgs), r.logs.String(), describe())
		}
		start, again, msgs := place(msgs, pos, ri)
		if start < 0 {
			var want []string
			for _, e := range dc.exp[min(pos, n):] {
				want = append(want, e.id())
			}
			rt.Fatalf("run %d (after %d of %d records): got %v\nwant a run starting at or before %d, continuing %v\nlogs:\n%s\n%s", ri, pos, n, diffIDs(dc, msgs), pos, want, r.logText(), describe())
		}
		if dc.interval == "0s" && crashPos >= 0 {
			// after a crash, at most 4 batches of input messages (a control
			// signal is one, however many records it becomes) again
			// (a cdc-start signal is not counted: emit_cdc_start sends one at
			// every start in CDC, by design, however far the checkpoint got)
			units := map[string]bool{}
			for _, e := range dc.exp[min(start, crashPos):crashPos] {
				u := e.id()
				if e.control != "" {
					if e.phase == "cdc" {
						continue
					}
					u = e.phase + e.posPrefix
				}
				units[u] = true
			}
			if len(units) > 4*dc.batchSize {
				rt.Fatalf("run %d repeats %d input messages after a crash, over the bound 4 x batch_size (%d): it starts at record %d, the crash was at %d\ncheckpoint restored: %q\nprevious runs: %v\nlogs:\n%s\n%s", ri, len(units), dc.batchSize, start, crashPos, lastSaved, runIDs, r.logText(), describe())
			}
		}
		for i, g := range again {
			if msg := dc.check(dc.exp[dc.cdcGroup+i], g, bucket); msg != "" {
				rt.Fatalf("run %d, cdc-start record %d sent again: %s\nbody %s\n%s", ri, i, msg, g.Body, describe())
			}
		}
		prev := ""
		for i, g := range msgs {
			e := dc.exp[start+i]
			if msg := dc.check(e, g, bucket); msg != "" {
				raw := e.raw
				if len(raw) > 500 {
					raw = raw[:500] + "..."
				}
				body := g.Body
				if len(body) > 1000 {
					body = body[:1000] + "..."
				}
				rt.Fatalf("run %d, record %d (%s, row %q): %s\nbody %s\nlogs:\n%s\n%s", ri, start+i, e.id(), raw, msg, body, r.logText(), describe())
			}
			if g.Position < prev || g.Position == prev && e.control == "" {
				rt.Fatalf("run %d: dms_position %q after %q\n%s", ri, g.Position, prev, describe())
			}
			prev = g.Position
		}
		pos = start + len(msgs)
		crashPos = -1
		if crashAt >= 0 {
			crashPos = start + max(crashAt-len(again), 0)
		}
		starts = append(starts, start)
		runIDs = append(runIDs, diffIDs(dc, msgs))
		// (Benthos's func consumer logs "pipe was not found" when the stream
		// ends before the consumer started: a harness race, not the input's)
		if logs := strings.ReplaceAll(r.logs.String(), `level=ERROR msg="Failed to run func consumer: pipe was not found"`, ""); strings.Contains(logs, "level=ERROR") {
			rt.Fatalf("run %d logged errors:\n%s\n%s", ri, r.logText(), describe())
		}
	}
	if pos != n {
		rt.Fatalf("ended after %d of %d records (runs started at %v, got %v)\n%s", pos, n, starts, runIDs, describe())
	}
}

func diffPutFile(t testing.TB, b backend, f dfile) {
	switch {
	case f.encoded:
		b.(*s3Backend).putGzipEncoded(t, f.key, gz(t, string(f.bytes)))
	case f.gz:
		b.put(t, f.key, gz(t, string(f.bytes)))
	default:
		b.put(t, f.key, f.bytes)
	}
}

// diffCheckpoints reads the checkpoint files of a case.
func diffCheckpoints(t testing.TB, dir string) map[string][]byte {
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, de := range des {
		if de.IsDir() || de.Name() == "def.json" || strings.Contains(de.Name(), ".tmp") {
			continue // (the store's temporary file, renamed over the checkpoint)
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[de.Name()] = b
	}
	return out
}

// diffLastCopies keeps the last copy of each record, in order.
func diffLastCopies(dc *dcase, m []got2) []got2 {
	last := map[string]int{}
	for i, g := range m {
		last[g.id(dc)] = i
	}
	var out []got2
	for i, g := range m {
		if last[g.id(dc)] == i {
			out = append(out, g)
		}
	}
	return out
}

func diffIDs(dc *dcase, m []got2) []string {
	var out []string
	for _, g := range m {
		s := g.id(dc)
		if g.Err != "" {
			s += " ERR " + g.Err
		}
		out = append(out, s)
	}
	return out
}
