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

// maxKeyChars is Kinesis's partition key limit (Unicode characters).
const maxKeyChars = 256

// kinesisKey makes s a valid Kinesis partition key: an empty key becomes
// fallback, a key longer than 256 characters is cut to 256 characters.
func kinesisKey(s, fallback string) string {
	if s == "" {
		s = fallback
	}
	if len(s) <= maxKeyChars {
		return s
	}
	n := 0
	for i := range s {
		if n == maxKeyChars {
			return s[:i]
		}
		n++
	}
	return s
}

// cutKey applies kinesisKey's rules to bytes in place.
func cutKey(b []byte) []byte {
	if len(b) <= maxKeyChars {
		return b
	}
	n := 0
	for i := 0; i < len(b); {
		if n == maxKeyChars {
			return b[:i]
		}
		_, size := utf8.DecodeRune(b[i:])
		i += size
		n++
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
		for j, i := range p.pk {
			if j > 0 {
				w.scr = append(w.scr, '.')
			}
			w.scr = append(w.scr, w.colText(p, i)...)
		}
	}
	if len(w.scr) == len(p.keyPrefix) && p.keyType[phase] == keyPrimary || len(w.scr) == 0 {
		// an empty key (NULL key columns) is not allowed by Kinesis
		w.scr = append(append(w.scr[:0], p.schema...), '.')
		w.scr = append(w.scr, p.name...)
	}
	return cutKey(w.scr), nil
}
