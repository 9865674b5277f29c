package csvjson

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestOneLongRowDoesNotInflateTheNextBatch: the output buffer of a batch is
// sized from the rows of the batch before. A batch of one long row (a CDC
// file holding one row with a 1 MiB value, or a value that JSON escaping
// makes six times longer) must not make the next batch, of 500 short rows,
// allocate 500 times that row: hundreds of megabytes, gigabytes with the
// escapes, kept alive while the batch's messages are.
func TestOneLongRowDoesNotInflateTheNextBatch(t *testing.T) {
	def := `{"TableCount":"1","Tables":[{"TableName":"employee","TablePath":"hr/employee/","TableOwner":"hr","TableColumns":[` +
		`{"ColumnName":"Id","ColumnType":"INT8","ColumnIsPk":"true"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"2000000"}],"TableColumnsTotal":"2"}]}`
	for _, tc := range []struct{ name, value string }{
		{"1 MiB of text", strings.Repeat("a", 1<<20)},
		{"1 MiB of control characters (6 MiB escaped)", strings.Repeat("\x01", 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProc(t, "table_definition: '"+def+"'\nmessage_format: json-unformatted\n")
			long := process(t, p, cdc("cdc/1.csv", 1, "I,employee,hr,1,"+tc.value))
			mustOK(t, long[0])
			var short []row
			for i := 0; i < 500; i++ {
				short = append(short, cdc("cdc/2.csv", int64(i+1), fmt.Sprintf("I,employee,hr,%d,x", i)))
			}
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			out := process(t, p, short...)
			runtime.ReadMemStats(&m1)
			if len(out) != 500 {
				t.Fatalf("%d messages, want 500", len(out))
			}
			outBytes := 0
			for _, m := range out {
				mustOK(t, m)
				outBytes += len(body(t, m))
			}
			alloc := m1.TotalAlloc - m0.TotalAlloc
			t.Logf("500 short rows (%d bytes of JSON) after a long one: %d bytes allocated", outBytes, alloc)
			// Room for a row like the long one may be kept free, once.
			if limit := 8<<20 + 2*uint64(len(body(t, long[0]))); alloc > limit {
				t.Errorf("500 short rows (%d bytes of JSON) allocated %d MiB after a batch of one long row, want at most %d MiB", outBytes, alloc>>20, limit>>20)
			}
		})
	}
}

// TestBodiesEndAtTheirRecord: the records of a batch share an output buffer
// whose memory is not cleared first (uncleared). Each body and partition key
// must end at its own last byte (capacity = length), so that a processor
// after this one appending to a body gets a copy, and neither reads the
// buffer's unwritten bytes nor overwrites the next record.
func TestBodiesEndAtTheirRecord(t *testing.T) {
	p := newTestProc(t, "table_definition: ./testdata/mixed.json\nmessage_format: json-unformatted\n")
	var rows []row
	for i := 0; i < 50; i++ {
		rows = append(rows, mixedRowN(i))
	}
	out := process(t, p, rows...)
	want := make([]string, len(out))
	for i, m := range out {
		mustOK(t, m)
		want[i] = body(t, m)
	}
	for i, m := range out {
		b, err := m.AsBytes()
		if err != nil {
			t.Fatal(err)
		}
		if cap(b) != len(b) {
			t.Fatalf("record %d: body of %d bytes has capacity %d: the bytes past it are the buffer's", i, len(b), cap(b))
		}
		m.SetBytes(append(b, "XXXXXXXXXXXXXXXX"...))
	}
	for i, m := range out {
		if got := body(t, m); got != want[i]+"XXXXXXXXXXXXXXXX" {
			t.Fatalf("record %d after appends to every body:\n got %q\nwant %q", i, got, want[i]+"XXXXXXXXXXXXXXXX")
		}
		k, ok := m.MetaGetMut(metaPartitionKey)
		if !ok {
			t.Fatalf("record %d has no partition key", i)
		}
		if s, _ := k.(string); !strings.HasPrefix(s, strings.Split(strings.TrimPrefix(want[i], `{"data":{"id":`), ",")[0]+".") {
			t.Fatalf("record %d: partition key %q does not start with its id", i, s)
		}
	}
}
