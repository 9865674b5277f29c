package csvjson

import (
	"strconv"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// keyKind is a DMS partition-key-type.
type keyKind int

const (
	keyDefault keyKind = iota // no object-mapping override
	keyPrimary
	keySchemaTable
	keyAttribute
	keyConstant
	keyTransaction
)

func (k keyKind) String() string {
	switch k {
	case keyPrimary:
		return "primary-key"
	case keySchemaTable:
		return "schema-table"
	case keyAttribute:
		return "attribute-name"
	case keyConstant:
		return "constant"
	case keyTransaction:
		return "transaction-id"
	}
	return ""
}

func parseKeyKind(s string) (keyKind, bool) {
	switch s {
	case "primary-key":
		return keyPrimary, true
	case "schema-table":
		return keySchemaTable, true
	case "attribute-name":
		return keyAttribute, true
	case "constant":
		return keyConstant, true
	case "transaction-id":
		return keyTransaction, true
	}
	return keyDefault, false
}

// maxKeyChars is Kinesis's partition key limit: 256 characters as Kinesis
// counts them, in UTF-16 code units (Java's String.length; a character
// outside the Basic Multilingual Plane, e.g. an emoji, counts two).
const maxKeyChars = 256

// kinesisKey makes s a valid Kinesis partition key: an empty key becomes
// fallback, a key longer than 256 characters (UTF-16 code units) is cut to
// its longest prefix of whole characters within 256.
func kinesisKey(s, fallback string) string {
	if s == "" {
		s = fallback
	}
	if len(s) <= maxKeyChars {
		return s
	}
	return string(cutKey([]byte(s)))
}

// cutKey applies kinesisKey's rules to bytes in place.
func cutKey(b []byte) []byte {
	if len(b) <= maxKeyChars { // each UTF-16 unit is at least one byte
		return b
	}
	units := 0
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		w := 1
		if r > 0xFFFF {
			w = 2
		}
		if units+w > maxKeyChars {
			return b[:i]
		}
		units += w
		i += size
	}
	return b
}

// partitionKey returns the row's partition key, either as a prebuilt boxed
// constant (keyConst) or as text in the worker's scratch (key).
func (w *worker) partitionKey(m *service.Message, p *tablePlan, phase int) (key []byte, keyConst any) {
	switch p.keyType[phase] {
	case keySchemaTable, keyConstant:
		return p.constKeyB[phase], p.constKeyAny[phase]
	case keyTransaction:
		bucket, _ := metaString(m, metaBucket)
		k, _ := metaString(m, metaKey)
		w.scr = strconv.AppendUint(w.scr[:0], txID(bucket, k), 10)
		return w.scr, nil
	case keyAttribute:
		w.scr = w.mappedKey(w.scr[:0], p)
	default: // primary key
		w.scr = append(w.scr[:0], p.keyPrefix...)
		empty := true
		for j, i := range p.pk {
			if j > 0 {
				w.scr = append(w.scr, '.')
			}
			v := w.colText(p, i)
			empty = empty && len(v) == 0
			w.scr = append(w.scr, v...)
		}
		if empty {
			// every part empty: only separators, the same for every table
			w.scr = w.scr[:0]
		}
	}
	if len(w.scr) == 0 {
		// an empty key is not allowed by Kinesis
		w.scr = append(append(w.scr[:0], p.schema...), '.')
		w.scr = append(w.scr, p.name...)
	}
	return cutKey(w.scr), nil
}
