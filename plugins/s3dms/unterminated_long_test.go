package s3dms

import (
	"context"
	"strings"
	"testing"
)

// TestLongUnterminatedRowNamesTheQuote: a quote that never closes makes the
// rest of the object one row; past max_row_size that row is passed over,
// and its error must say why it is that long (a quoted field that runs to
// the end of the object), not only that it exceeds max_row_size, which
// sends the reader looking for a megabyte-long row in a file of short ones.
func TestLongUnterminatedRowNamesTheQuote(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,\"b\n"+strings.Repeat("3,c\n", 1<<18)))
	in, logs := directInput(t, baseYAML(b, "mode: full-load\ncheckpoint:\n  store: none\n"))
	rows := readToEnd(t, in)
	if len(rows) != 2 || rows[0].Body != "1,a" || rows[0].Err != "" {
		t.Fatalf("rows %v, want 1,a then the passed-over row", rows)
	}
	e := rows[1].Err
	for _, want := range []string{"row at line 2, byte offset 4", "exceeds max_row_size", "row of 1048581 bytes",
		"a quoted field runs from this row to the end of the object (a quote that never closes)"} {
		if !strings.Contains(e, want) {
			t.Errorf("error of the passed-over row %q lacks %q", e, want)
		}
	}
	if l := logs.String(); strings.Contains(l, "passed on whole") {
		t.Errorf("the passed-over row is logged as passed on whole:\n%s", l)
	}
}

// TestLongUnterminatedHeaderRowIsNotSkipped: a header row whose quote never
// closes runs to the end of the file and is passed on, not skipped, so that
// the file's rows are not lost silently; also when that makes it longer
// than max_row_size (it was then skipped as the header, and the file's
// megabytes of rows with it, without a word).
func TestLongUnterminatedHeaderRowIsNotSkipped(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("\"id,v\n"+strings.Repeat("3,c\n", 1<<18)))
	in, _ := directInput(t, baseYAML(b, "mode: full-load\nignore_header_rows: 1\ncheckpoint:\n  store: none\n"))
	rows := readToEnd(t, in)
	if len(rows) != 1 || rows[0].Line != 1 || !strings.Contains(rows[0].Err, "a quote that never closes") {
		t.Fatalf("rows %v (errors %q), want the header row passed over with its error", rows, func() []string {
			var e []string
			for _, r := range rows {
				e = append(e, r.Err)
			}
			return e
		}())
	}
}

// readToEnd connects in and reads (and acknowledges) every row until the
// end of the input.
func readToEnd(t *testing.T, in *input) []got {
	t.Helper()
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var rows []got
	for {
		batch, ack, err := in.ReadBatch(ctx)
		if err != nil {
			if !strings.Contains(err.Error(), "end of input") {
				t.Fatal(err)
			}
			return rows
		}
		for _, m := range batch {
			rows = append(rows, toGot(m))
		}
		_ = ack(ctx, nil)
	}
}
