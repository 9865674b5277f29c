package csvjson

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzProcessRow: any row, in either phase, either converts to valid JSON
// with a partition key or is flagged and left unchanged; never a panic.
func FuzzProcessRow(f *testing.F) {
	f.Add(mixedRow, false)
	f.Add("U,mixed,app,"+mixedRow, true)
	f.Add("I,tags,app,\"a\"\"b\",1", true)
	f.Add(`1,"eu`, false)
	p := newTestProc(f, "table_definition: ./testdata/mixed.json\nmessage_format: json\ninclude_null_and_empty: true\ninclude_transaction_details: true\n")
	f.Fuzz(func(t *testing.T, line string, isCDC bool) {
		r := fullLoad("app", "mixed", "k", 3, line)
		if isCDC {
			r = cdc("k", 3, line)
		}
		out, err := p.ProcessBatch(context.Background(), mkBatch(r))
		if err != nil || len(out) != 1 || len(out[0]) != 1 {
			t.Fatalf("ProcessBatch: %v", err)
		}
		m := out[0][0]
		b, _ := m.AsBytes()
		if m.GetError() != nil {
			if string(b) != line {
				t.Fatalf("errored row changed: %q -> %q", line, b)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON for %q:\n%s", line, b)
		}
		if k, _ := m.MetaGet("dms_partition_key"); k == "" {
			t.Fatal("no partition key")
		}
	})
}
