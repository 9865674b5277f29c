package s3dms

import (
	"testing"
	"time"
)

// A header row (ignore_header_rows: 1) holding a quote that is never closed
// runs to the end of the file: it is the whole file. Skipping it as the
// header dropped every row of the file without a word; it must be passed on
// whole, like any unterminated row, for the processor to flag (nothing lost).
func TestUnterminatedHeaderRowIsPassedOn(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("id,\"v\n1,a\n2,b\n"))
	b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("id,v\n3,c\n"))
	r := startStream(t, baseYAML(b, "mode: full-load\nignore_header_rows: 1\ncheckpoint:\n  store: none\n"), nil)
	r.waitDone(t, 10*time.Second)
	m := r.snapshot()
	if len(m) != 2 || m[0].Body != "id,\"v\n1,a\n2,b\n" || m[0].Line != 1 || m[0].Offset != 0 || m[1].Body != "3,c" {
		t.Fatalf("got %q", m)
	}
}
