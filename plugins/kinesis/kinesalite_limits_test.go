package kinesis

import (
	"context"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Kinesis counts a partition key's length like Java (and kinesalite, which
// mirrors its validation) does: in UTF-16 code units. A character outside
// the Basic Multilingual Plane (an emoji, a rare CJK ideograph) counts twice,
// so 129 of them is over the 256 limit although it is 129 characters.
func TestPartitionKeyLengthCountsUTF16Units(t *testing.T) {
	stream := newStream(t, 2)
	o := newKinesaliteOutput(t, kinesaliteYAML(t, stream, "shard_rate: {records_per_second: 0, bytes_per_second: 0}\n"))
	okKey := strings.Repeat("😀", 128)                           // 256 UTF-16 units: the limit
	longKey := strings.Repeat("😀", 129)                         // 258 UTF-16 units
	mixed := strings.Repeat("a", 200) + strings.Repeat("𠀀", 29) // 258 units, 229 characters
	b := service.MessageBatch{}
	add := func(key string, data string) {
		m := service.NewMessage([]byte(data))
		m.MetaSetMut("dms_partition_key", key)
		b = append(b, m)
	}
	for i := 0; i < 20; i++ {
		add("k", "k#"+string(rune('a'+i)))
	}
	add(longKey, "too long")
	add(okKey, "at the limit")
	add(mixed, "too long too")
	idx := b.Index()
	err := o.WriteBatch(context.Background(), b)
	failed := batchErrIndexes(t, err, idx)
	if len(failed) != 2 || failed[20] == nil || failed[22] == nil {
		t.Fatalf("failed indexes %v, want 20 and 22", failed)
	}
	for _, i := range []int{20, 22} {
		for _, want := range []string{"partition key has 258 UTF-16 code units", "Kinesis allows at most 256"} {
			if !strings.Contains(failed[i].Error(), want) {
				t.Errorf("index %d: %v, want %q (checked before sending)", i, failed[i], want)
			}
		}
	}
	recs := readStream(t, stream)
	checkSentOnce(t, recs, append(append(service.MessageBatch{}, b[:20]...), b[21]))
	// Nothing was sent for Kinesis to reject: one request per shard used.
	if n := o.st.requests.Load(); n > 2 {
		t.Fatalf("%d PutRecords requests for 21 valid records on 2 shards: a request was rejected", n)
	}
}
