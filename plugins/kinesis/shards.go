package kinesis

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"sort"
	"strings"
)

// u128 is an unsigned 128-bit integer: the Kinesis hash-key space.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

func (a u128) String() string {
	v := new(big.Int).SetUint64(a.hi)
	v.Lsh(v, 64)
	v.Or(v, new(big.Int).SetUint64(a.lo))
	return v.String()
}

// hashPartitionKey maps a partition key to the hash-key space the way Kinesis
// does: MD5 of the key's UTF-8 bytes read as a big-endian 128-bit integer.
func hashPartitionKey(key string) u128 {
	sum := md5.Sum([]byte(key))
	return u128{hi: binary.BigEndian.Uint64(sum[:8]), lo: binary.BigEndian.Uint64(sum[8:])}
}

var errHashKey = errors.New("explicit hash key must be a decimal integer between 0 and 2^128-1 without leading zeros")

// parseHashKey parses an ExplicitHashKey: Kinesis' pattern is 0|([1-9]\d{0,38})
// and the value must fit in 128 bits.
func parseHashKey(s string) (u128, error) {
	if s == "" || len(s) > 39 || (len(s) > 1 && s[0] == '0') {
		return u128{}, errHashKey
	}
	var v u128
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return u128{}, errHashKey
		}
		// v = v*10 + d, failing on overflow.
		hiHi, hiLo := bits.Mul64(v.hi, 10)
		loHi, loLo := bits.Mul64(v.lo, 10)
		if hiHi != 0 {
			return u128{}, errHashKey
		}
		hi, carry := bits.Add64(hiLo, loHi, 0)
		if carry != 0 {
			return u128{}, errHashKey
		}
		lo, carry := bits.Add64(loLo, uint64(c-'0'), 0)
		hi, carry2 := bits.Add64(hi, 0, carry)
		if carry2 != 0 {
			return u128{}, errHashKey
		}
		v = u128{hi: hi, lo: lo}
	}
	return v, nil
}

// shardRange is one open shard and the hash keys it owns (inclusive).
type shardRange struct {
	id         string
	start, end u128
}

// shardMap is an immutable, sorted view of a stream's open shards.
type shardMap struct {
	shards []shardRange
}

// unknownShard is the routing target of a hash key that no known open shard
// covers (a stale map during resharding). Records routed there are still
// written; the first response tells the real shard and triggers a refresh.
const unknownShard = "?"

// newShardMap builds a map from the open shards of a stream. Ranges must not
// overlap: overlapping open shards mean the listing caught a reshard half way.
func newShardMap(shards []shardRange) (*shardMap, error) {
	s := append([]shardRange(nil), shards...)
	sort.Slice(s, func(i, j int) bool { return s[i].start.cmp(s[j].start) < 0 })
	for i := 1; i < len(s); i++ {
		if s[i].start.cmp(s[i-1].end) <= 0 {
			return nil, fmt.Errorf("open shards %s and %s have overlapping hash key ranges", s[i-1].id, s[i].id)
		}
	}
	return &shardMap{shards: s}, nil
}

// route returns the id of the open shard owning hash key h.
func (m *shardMap) route(h u128) string {
	if i := m.routeIndex(h); i >= 0 {
		return m.shards[i].id
	}
	return unknownShard
}

// routeIndex returns the index in shards of the open shard owning hash key
// h, or -1.
func (m *shardMap) routeIndex(h u128) int {
	s := m.shards
	lo, hi := 0, len(s)
	for lo < hi { // first shard whose range ends at or after h
		mid := int(uint(lo+hi) >> 1)
		if s[mid].end.cmp(h) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(s) && s[lo].start.cmp(h) <= 0 {
		return lo
	}
	return -1
}

func (m *shardMap) has(id string) bool {
	for _, s := range m.shards {
		if s.id == id {
			return true
		}
	}
	return false
}

func (m *shardMap) ids() []string {
	out := make([]string, len(m.shards))
	for i, s := range m.shards {
		out[i] = s.id
	}
	return out
}

// streamRef is the configured stream: a name, or an ARN (which Kinesis
// accepts as StreamARN on every call).
type streamRef struct {
	name string // always set: the name, or the name part of the ARN
	arn  string // set only when configured with an ARN
}

// parseStream accepts a stream name or an ARN of the form
// arn:<partition>:kinesis:<region>:<account>:stream/<name>.
func parseStream(s string) (streamRef, error) {
	if s == "" {
		return streamRef{}, errors.New("stream must not be empty")
	}
	if !strings.HasPrefix(s, "arn:") {
		valid := len(s) <= 128
		for _, c := range s {
			if !(c == '_' || c == '.' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
				valid = false
			}
		}
		if !valid {
			return streamRef{}, fmt.Errorf("stream %q is not a valid stream name (1-128 of [a-zA-Z0-9_.-]) nor an ARN", s)
		}
		return streamRef{name: s}, nil
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[2] != "kinesis" || parts[1] == "" || parts[3] == "" || parts[4] == "" {
		return streamRef{}, fmt.Errorf("stream ARN %q must look like arn:aws:kinesis:<region>:<account>:stream/<name>", s)
	}
	name, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return streamRef{}, fmt.Errorf("stream ARN %q must end with stream/<name>", s)
	}
	return streamRef{name: name, arn: s}, nil
}

// regionFromARN returns the region of an ARN stream reference, or "".
func (r streamRef) region() string {
	if r.arn == "" {
		return ""
	}
	return strings.SplitN(r.arn, ":", 6)[3]
}
