package acksink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/smithy-go/encoding/cbor"
)

const cborContentType = "application/x-amz-cbor-1.1"

var errIndefinite = errors.New("indefinite length")

// cborWalk reads definite-length CBOR item heads from b.
type cborWalk struct {
	b []byte
	i int
}

func (w *cborWalk) head() (major byte, n uint64, err error) {
	if w.i >= len(w.b) {
		return 0, 0, errors.New("truncated CBOR")
	}
	c := w.b[w.i]
	w.i++
	major, info := c>>5, c&31
	switch {
	case info < 24:
		return major, uint64(info), nil
	case info <= 27:
		k := 1 << (info - 24)
		if len(w.b)-w.i < k {
			return 0, 0, errors.New("truncated CBOR")
		}
		var v uint64
		for _, x := range w.b[w.i : w.i+k] {
			v = v<<8 | uint64(x)
		}
		w.i += k
		return major, v, nil
	case info == 31:
		return 0, 0, errIndefinite
	}
	return 0, 0, fmt.Errorf("malformed CBOR head 0x%02x", c)
}

// skip reads past one definite-length item.
func (w *cborWalk) skip() error {
	major, n, err := w.head()
	if err != nil {
		return err
	}
	switch major {
	case 2, 3:
		if uint64(len(w.b)-w.i) < n {
			return errors.New("truncated CBOR")
		}
		w.i += int(n)
	case 4, 5:
		if major == 5 {
			n *= 2
		}
		for ; n > 0; n-- {
			if err := w.skip(); err != nil {
				return err
			}
		}
	case 6:
		return w.skip()
	}
	return nil
}

// text reads a definite text string.
func (w *cborWalk) text() (string, error) {
	major, n, err := w.head()
	if err != nil {
		return "", err
	}
	if major != 3 || uint64(len(w.b)-w.i) < n {
		return "", errors.New("expected a CBOR text string")
	}
	s := string(w.b[w.i : w.i+int(n)])
	w.i += int(n)
	return s, nil
}

// countPutRecordsCBOR is countPutRecords for a CBOR body: the records'
// count and the sum of their data sizes, read from the item heads without
// copying anything. A body with indefinite lengths is decoded in full.
func countPutRecordsCBOR(body []byte) (records int, dataBytes int64, err error) {
	records, dataBytes, err = walkPutRecordsCBOR(body)
	if errors.Is(err, errIndefinite) {
		return decodePutRecordsCBOR(body)
	}
	return records, dataBytes, err
}

func walkPutRecordsCBOR(body []byte) (records int, dataBytes int64, err error) {
	w := &cborWalk{b: body}
	major, n, err := w.head()
	if err != nil {
		return 0, 0, err
	}
	if major != 5 {
		return 0, 0, errors.New("PutRecords body is not a CBOR map")
	}
	seen := false
	for ; n > 0; n-- {
		k, err := w.text()
		if err != nil {
			return 0, 0, err
		}
		if k != "Records" {
			if err := w.skip(); err != nil {
				return 0, 0, err
			}
			continue
		}
		seen = true
		major, m, err := w.head()
		if err != nil {
			return 0, 0, err
		}
		if major != 4 {
			return 0, 0, errors.New("the Records member is not a CBOR array")
		}
		records = int(m)
		for ; m > 0; m-- {
			major, fields, err := w.head()
			if err != nil {
				return 0, 0, err
			}
			if major != 5 {
				return 0, 0, errors.New("a record is not a CBOR map")
			}
			for ; fields > 0; fields-- {
				f, err := w.text()
				if err != nil {
					return 0, 0, err
				}
				if f == "Data" {
					major, l, err := w.head()
					if err != nil {
						return 0, 0, err
					}
					if major != 2 || uint64(len(w.b)-w.i) < l {
						return 0, 0, errors.New("a record's Data is not a CBOR byte string")
					}
					w.i += int(l)
					dataBytes += int64(l)
					continue
				}
				if err := w.skip(); err != nil {
					return 0, 0, err
				}
			}
		}
	}
	if !seen {
		return 0, 0, errors.New("PutRecords body has no Records")
	}
	if w.i != len(body) {
		return 0, 0, errors.New("trailing data after the CBOR body")
	}
	return records, dataBytes, nil
}

// decodePutRecordsCBOR decodes a CBOR PutRecords body in full.
func decodePutRecordsCBOR(body []byte) (records int, dataBytes int64, err error) {
	v, err := cbor.Decode(body)
	if err != nil {
		return 0, 0, err
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return 0, 0, errors.New("PutRecords body is not a CBOR map")
	}
	recs, ok := m["Records"].(cbor.List)
	if !ok {
		return 0, 0, errors.New("PutRecords body has no Records array")
	}
	for _, r := range recs {
		rm, ok := r.(cbor.Map)
		if !ok {
			return 0, 0, errors.New("a record is not a CBOR map")
		}
		d, ok := rm["Data"].(cbor.Slice)
		if !ok {
			return 0, 0, errors.New("a record's Data is not a CBOR byte string")
		}
		dataBytes += int64(len(d))
	}
	return len(recs), dataBytes, nil
}

// appendCBORAnswer appends a PutRecords answer in CBOR for n records, all
// written, sequence numbers from seq+1.
func appendCBORAnswer(b []byte, seq int64, n int) []byte {
	b = append(b, 0xa2, 0x71)
	b = append(b, "FailedRecordCount"...)
	b = append(b, 0x00, 0x67)
	b = append(b, "Records"...)
	b = append(b, 0x9a)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	var num [20]byte
	for i := 0; i < n; i++ {
		d := strconv.AppendInt(num[:0], seq+int64(i)+1, 10)
		b = append(b, 0xa2, 0x6e)
		b = append(b, "SequenceNumber"...)
		b = append(b, 0x60|byte(len(d)))
		b = append(b, d...)
		b = append(b, 0x67)
		b = append(b, "ShardId"...)
		b = append(b, 0x74)
		b = append(b, "shardId-000000000000"...)
	}
	return b
}
