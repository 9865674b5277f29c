package kinesis

// PutRecords in CBOR (`protocol: cbor`).
//
// Kinesis takes its JSON 1.1 API in CBOR as well (Content-Type
// application/x-amz-cbor-1.1): the same operations, members and error
// shapes, with binary members as CBOR byte strings instead of base64 text.
// It is what the AWS SDKs for Java (v1 and v2) and the KPL send by default.
// For a PutRecords body that means no base64 (a third fewer bytes to hash,
// sign and send) and no JSON escaping of partition keys.
//
// The encoder writes definite lengths only. The decoder reads any
// well-formed CBOR (definite and indefinite lengths, tags, simple values and
// floats are skipped where not expected), because the answer's encoder is
// the service's. Error answers are transcoded to JSON and handed to the
// SDK's own JSON 1.1 error deserializer, so that error codes, messages and
// typed errors are the same as with `protocol: json`.

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

const cborContentType = "application/x-amz-cbor-1.1"

// CBOR major types.
const (
	cborUint   = 0
	cborNegint = 1
	cborBytes  = 2
	cborText   = 3
	cborArray  = 4
	cborMap    = 5
	cborTag    = 6
	cborSimple = 7
)

// cborHead appends an item head: major type and argument, shortest form.
func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

// appendCBORText appends s as a text string. s must be valid UTF-8 (the
// output checks partition keys; stream names and hash keys are ASCII).
func appendCBORText(b []byte, s string) []byte {
	return append(cborHead(b, cborText, uint64(len(s))), s...)
}

// appendPutRecordsCBOR appends the PutRecords body in CBOR: the members of
// appendPutRecordsBody, Data as byte strings.
func appendPutRecordsCBOR(b []byte, recs []*record, stream streamRef) []byte {
	b = append(b, cborMap<<5|2)
	b = appendCBORText(b, "Records")
	b = cborHead(b, cborArray, uint64(len(recs)))
	for _, r := range recs {
		if r.hashKey != nil {
			b = append(b, cborMap<<5|3)
		} else {
			b = append(b, cborMap<<5|2)
		}
		b = append(b, cborText<<5|4, 'D', 'a', 't', 'a')
		b = cborHead(b, cborBytes, uint64(len(r.data)))
		b = append(b, r.data...)
		if r.hashKey != nil {
			b = appendCBORText(b, "ExplicitHashKey")
			b = appendCBORText(b, *r.hashKey)
		}
		b = append(b, cborText<<5|12, 'P', 'a', 'r', 't', 'i', 't', 'i', 'o', 'n', 'K', 'e', 'y')
		b = appendCBORText(b, r.key)
	}
	if stream.arn != "" {
		b = appendCBORText(b, "StreamARN")
		return appendCBORText(b, stream.arn)
	}
	b = appendCBORText(b, "StreamName")
	return appendCBORText(b, stream.name)
}

var errCBORTruncated = errors.New("truncated CBOR")

// cborReader reads CBOR items from b; s is the same bytes, for substrings.
type cborReader struct {
	b     []byte
	s     string
	i     int
	depth int
}

// maxCBORDepth bounds the nesting skip and transcoding follow.
const maxCBORDepth = 64

// head reads an item head. For an indefinite length (additional
// information 31) indef is true and n is 0; for major type 7, n is the
// simple value or the float's bits.
func (r *cborReader) head() (major byte, n uint64, indef bool, err error) {
	if r.i >= len(r.b) {
		return 0, 0, false, errCBORTruncated
	}
	c := r.b[r.i]
	r.i++
	major, info := c>>5, c&31
	switch {
	case info < 24:
		return major, uint64(info), false, nil
	case info <= 27:
		w := 1 << (info - 24)
		if len(r.b)-r.i < w {
			return 0, 0, false, errCBORTruncated
		}
		p := r.b[r.i : r.i+w]
		r.i += w
		switch w {
		case 1:
			n = uint64(p[0])
		case 2:
			n = uint64(binary.BigEndian.Uint16(p))
		case 4:
			n = uint64(binary.BigEndian.Uint32(p))
		default:
			n = binary.BigEndian.Uint64(p)
		}
		return major, n, false, nil
	case info == 31 && major >= cborBytes && major <= cborMap:
		return major, 0, true, nil
	case info == 31 && major == cborSimple:
		return 0, 0, false, fmt.Errorf("unexpected CBOR break at offset %d", r.i-1)
	}
	return 0, 0, false, fmt.Errorf("malformed CBOR item head 0x%02x at offset %d", c, r.i-1)
}

// isBreak consumes an indefinite-length item's end marker if it is next.
func (r *cborReader) isBreak() bool {
	if r.i < len(r.b) && r.b[r.i] == 0xff {
		r.i++
		return true
	}
	return false
}

// str reads a text or byte string (any length form). A definite string is
// a substring of the input; an indefinite one is joined from its chunks.
// null is true for CBOR null or undefined.
func (r *cborReader) str(want byte) (s string, null bool, err error) {
	at := r.i
	major, n, indef, err := r.head()
	if err != nil {
		return "", false, err
	}
	if major == cborSimple && (n == 22 || n == 23) {
		return "", true, nil
	}
	if major != want {
		return "", false, fmt.Errorf("expected a CBOR %s at offset %d", cborTypeName(want), at)
	}
	if !indef {
		if uint64(len(r.b)-r.i) < n {
			return "", false, errCBORTruncated
		}
		s = r.s[r.i : r.i+int(n)]
		r.i += int(n)
	} else {
		var buf []byte
		for !r.isBreak() {
			// Chunks are definite strings of the same type (RFC 8949 3.2.3).
			if r.i < len(r.b) && (r.b[r.i]>>5 != want || r.b[r.i]&31 == 31) {
				return "", false, fmt.Errorf("malformed chunk of an indefinite-length string at offset %d", r.i)
			}
			part, _, err := r.str(want)
			if err != nil {
				return "", false, err
			}
			buf = append(buf, part...)
		}
		s = string(buf)
	}
	if want == cborText && !utf8.ValidString(s) {
		return "", false, fmt.Errorf("CBOR text at offset %d is not valid UTF-8", at)
	}
	return s, false, nil
}

// integer reads an unsigned or negative integer.
func (r *cborReader) integer() (int64, error) {
	at := r.i
	major, n, _, err := r.head()
	if err != nil {
		return 0, err
	}
	switch {
	case major == cborUint && n <= math.MaxInt64:
		return int64(n), nil
	case major == cborNegint && n < math.MaxInt64:
		return -1 - int64(n), nil
	}
	return 0, fmt.Errorf("expected a CBOR integer at offset %d", at)
}

// container reads the head of an array or map (major): its length, or -1
// for an indefinite length. null is true for CBOR null.
func (r *cborReader) container(major byte) (n int64, null bool, err error) {
	at := r.i
	m, l, indef, err := r.head()
	if err != nil {
		return 0, false, err
	}
	if m == cborSimple && (l == 22 || l == 23) {
		return 0, true, nil
	}
	if m != major {
		return 0, false, fmt.Errorf("expected a CBOR %s at offset %d", cborTypeName(major), at)
	}
	if indef {
		return -1, false, nil
	}
	if l > uint64(len(r.b)) { // every entry takes at least a byte
		return 0, false, errCBORTruncated
	}
	return int64(l), false, nil
}

// each calls fn for every entry of a container of length n (-1:
// indefinite, up to its break).
func (r *cborReader) each(n int64, fn func() error) error {
	r.depth++
	defer func() { r.depth-- }()
	if r.depth > maxCBORDepth {
		return errors.New("CBOR nested too deeply")
	}
	for k := int64(0); n < 0 || k < n; k++ {
		if n < 0 && r.isBreak() {
			return nil
		}
		if err := fn(); err != nil {
			return err
		}
	}
	return nil
}

// object reads a map with text keys, calling fn with each key; fn reads or
// skips the value.
func (r *cborReader) object(fn func(key string) error) error {
	n, null, err := r.container(cborMap)
	if err != nil || null {
		return err
	}
	return r.each(n, func() error {
		k, _, err := r.str(cborText)
		if err != nil {
			return err
		}
		return fn(k)
	})
}

// skip reads past one item of any kind.
func (r *cborReader) skip() error {
	major, n, indef, err := r.head()
	if err != nil {
		return err
	}
	switch major {
	case cborBytes, cborText:
		if indef {
			for !r.isBreak() {
				if err := r.skip(); err != nil {
					return err
				}
			}
			return nil
		}
		if uint64(len(r.b)-r.i) < n {
			return errCBORTruncated
		}
		r.i += int(n)
	case cborArray, cborMap:
		l := int64(-1)
		if !indef {
			if n > uint64(len(r.b)) {
				return errCBORTruncated
			}
			l = int64(n)
			if major == cborMap {
				l *= 2
			}
		}
		return r.each(l, r.skip)
	case cborTag:
		r.depth++
		defer func() { r.depth-- }()
		if r.depth > maxCBORDepth {
			return errors.New("CBOR nested too deeply")
		}
		return r.skip()
	}
	return nil
}

func cborTypeName(major byte) string {
	return [...]string{"unsigned integer", "negative integer", "byte string", "text string", "array", "map", "tag", "simple value"}[major&7]
}

// decodeCBOR parses a PutRecords answer in CBOR into pc.out, like decode.
func (pc *putCall) decodeCBOR(body []byte) error {
	r := cborReader{b: body, s: string(body)}
	pc.out = kinesis.PutRecordsOutput{}
	pc.results = pc.results[:0]
	pc.strs = pc.strs[:0]
	pc.masks = pc.masks[:0]
	var failed *int32
	var sawRecords bool
	err := r.object(func(key string) error {
		switch key {
		case "FailedRecordCount":
			n, err := r.integer()
			if err != nil {
				return err
			}
			if n < 0 || n > math.MaxInt32 {
				return fmt.Errorf("FailedRecordCount %d out of range", n)
			}
			v := int32(n)
			failed = &v
		case "EncryptionType":
			s, null, err := r.str(cborText)
			if err != nil || null {
				return err
			}
			pc.out.EncryptionType = types.EncryptionType(s)
		case "Records":
			sawRecords = true
			n, null, err := r.container(cborArray)
			if err != nil || null {
				return err
			}
			return r.each(n, func() error {
				pc.results = append(pc.results, types.PutRecordsResultEntry{})
				var e [4]string
				var has [4]bool
				err := r.object(func(key string) error {
					k := resultMember(key)
					if k < 0 {
						return r.skip()
					}
					s, null, err := r.str(cborText)
					if err == nil && !null {
						e[k], has[k] = s, true
					}
					return err
				})
				if err != nil {
					return err
				}
				pc.addEntry(&e, &has)
				return nil
			})
		default:
			return r.skip()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("decoding PutRecords response: %w", err)
	}
	if r.i != len(r.b) {
		return fmt.Errorf("decoding PutRecords response: trailing data at offset %d", r.i)
	}
	if !sawRecords {
		return errors.New("decoding PutRecords response: no Records")
	}
	pc.finish(failed)
	return nil
}

// cborToJSON transcodes one CBOR item (an error answer) to JSON: maps with
// text keys to objects, byte strings to base64 text, tags to their content,
// undefined to null, non-finite floats to null.
func cborToJSON(body []byte) ([]byte, error) {
	r := cborReader{b: body, s: string(body)}
	out, err := r.json(nil)
	if err != nil {
		return nil, err
	}
	if r.i != len(r.b) {
		return nil, fmt.Errorf("trailing data at offset %d", r.i)
	}
	return out, nil
}

func (r *cborReader) json(out []byte) ([]byte, error) {
	if r.i >= len(r.b) {
		return nil, errCBORTruncated
	}
	at := r.i
	c := r.b[r.i]
	switch major := c >> 5; major {
	case cborUint, cborNegint:
		_, n, _, err := r.head()
		if err != nil {
			return nil, err
		}
		if major == cborUint {
			return strconv.AppendUint(out, n, 10), nil
		}
		if n == math.MaxUint64 { // -1-n does not fit in 64 bits
			return append(out, "-18446744073709551616"...), nil
		}
		return strconv.AppendUint(append(out, '-'), n+1, 10), nil
	case cborBytes:
		s, _, err := r.str(cborBytes)
		if err != nil {
			return nil, err
		}
		q, err := json.Marshal(base64.StdEncoding.EncodeToString([]byte(s)))
		return append(out, q...), err
	case cborText:
		s, _, err := r.str(cborText)
		if err != nil {
			return nil, err
		}
		q, err := json.Marshal(s)
		return append(out, q...), err
	case cborArray, cborMap:
		n, _, err := r.container(major)
		if err != nil {
			return nil, err
		}
		open, end := byte('['), byte(']')
		if major == cborMap {
			open, end = '{', '}'
		}
		out = append(out, open)
		first := true
		err = r.each(n, func() error {
			if !first {
				out = append(out, ',')
			}
			first = false
			if major == cborMap {
				k, _, err := r.str(cborText)
				if err != nil {
					return fmt.Errorf("map key at offset %d: %w", at, err)
				}
				q, _ := json.Marshal(k)
				out = append(append(out, q...), ':')
			}
			var err error
			out, err = r.json(out)
			return err
		})
		return append(out, end), err
	case cborTag:
		if _, _, _, err := r.head(); err != nil {
			return nil, err
		}
		r.depth++
		defer func() { r.depth-- }()
		if r.depth > maxCBORDepth {
			return nil, errors.New("CBOR nested too deeply")
		}
		return r.json(out)
	default: // simple values and floats
		info := c & 31
		_, n, _, err := r.head()
		if err != nil {
			return nil, err
		}
		var f float64
		switch info {
		case 20:
			return append(out, "false"...), nil
		case 21:
			return append(out, "true"...), nil
		case 22, 23:
			return append(out, "null"...), nil
		case 25:
			f = halfToFloat(uint16(n))
		case 26:
			f = float64(math.Float32frombits(uint32(n)))
		case 27:
			f = math.Float64frombits(n)
		default:
			return nil, fmt.Errorf("unexpected CBOR simple value %d at offset %d", n, at)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return append(out, "null"...), nil
		}
		return strconv.AppendFloat(out, f, 'g', -1, 64), nil
	}
}

// halfToFloat converts an IEEE 754 half-precision float.
func halfToFloat(h uint16) float64 {
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	var v float64
	switch exp {
	case 0:
		v = math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			v = math.Inf(1)
		} else {
			v = math.NaN()
		}
	default:
		v = math.Ldexp(mant+1024, exp-25)
	}
	if h&0x8000 != 0 {
		return -v
	}
	return v
}

// isCBOR reports whether an answer's body is CBOR (by its Content-Type).
func isCBOR(resp *http.Response) bool {
	ct := resp.Header.Get("Content-Type")
	return len(ct) >= len(cborContentType) && strings.EqualFold(ct[:len(cborContentType)], cborContentType)
}
