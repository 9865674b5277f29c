package csvjson

import (
	"runtime"
	"strings"
	"testing"
)

// TestRowOfManyDelimitersIsCheapToRefuse: a row made of a million
// delimiters (1 MiB: a producer writing the wrong delimiter setting, or a
// hostile file) has a million fields where the table has five. The
// processor must refuse it with the field count, as for any wrong count,
// without allocating a slice for every field: that cost 185 MB for one 1 MiB
// row, kept by the worker afterwards.
func TestRowOfManyDelimitersIsCheapToRefuse(t *testing.T) {
	commas := strings.Repeat(",", 1<<20)
	for _, tc := range []struct {
		name, want string
		r          row
	}{
		{"full load", "full-load row has 1048577 fields, expected 5", fullLoad("schema01", "table01", "schema01/table01/full_000", 7, commas)},
		{"cdc", "CDC row has 1048576 fields, expected 8", cdc("cdc/1.csv", 7, "I,table01,schema01"+commas[3:])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProc(t, "table_definition: ./testdata/reference.json\nmessage_format: json-unformatted\n")
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			out := process(t, p, tc.r)
			runtime.ReadMemStats(&m1)
			if len(out) != 1 || out[0].GetError() == nil {
				t.Fatalf("the row was not flagged: %d messages", len(out))
			}
			if msg := out[0].GetError().Error(); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want it to say %q", msg, tc.want)
			}
			alloc := m1.TotalAlloc - m0.TotalAlloc
			t.Logf("one 1 MiB row of delimiters: %d KiB allocated", alloc>>10)
			// The row itself is 1 MiB; the processor may copy it a few times
			// (its unescaping buffer, the flagged message's error text), but
			// not keep 32 bytes per field.
			if alloc > 8<<20 {
				t.Errorf("refusing one 1 MiB row of delimiters allocated %d MiB, want at most 8 MiB", alloc>>20)
			}
		})
	}
}
