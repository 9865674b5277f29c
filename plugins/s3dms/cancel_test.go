package s3dms

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// gzipRepeated is a gzip stream (members concatenated, as gzip(1) reads
// them) of head, then copies × chunk, then tail: gigabytes of content in a
// few hundred kilobytes, as a careless or hostile producer can put in the
// bucket.
func gzipRepeated(t testing.TB, head string, chunk []byte, copies int, tail string) []byte {
	t.Helper()
	member := func(b []byte) []byte {
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	var out bytes.Buffer
	out.Write(member([]byte(head)))
	m := member(chunk)
	for i := 0; i < copies; i++ {
		out.Write(m)
	}
	out.Write(member([]byte(tail)))
	return out.Bytes()
}

// TestReadBatchReturnsOnCancelInsideAFile: a stop (ReadBatch's context
// cancelled) while the input works through a file that yields no row for a
// long time (a gigabyte of blank lines, or a row far longer than
// max_row_size being passed over) returns promptly, with no row lost: the
// file is reopened at its last whole row by the next read. Before, the read
// ran to the end of that content whatever the context, minutes for such a
// file: the stream's stop overran shutdown_timeout, and the checkpoint was
// not saved on the way out.
func TestReadBatchReturnsOnCancelInsideAFile(t *testing.T) {
	mib := bytes.Repeat([]byte("\n"), 1<<20)
	long := bytes.Repeat([]byte("a"), 1<<20)
	for _, tc := range []struct {
		name   string
		chunk  []byte
		copies int // MiB: a minute or so of reading
		head   string
	}{
		{"blank lines", mib, 384, "1,a\n"},
		{"row longer than max_row_size", long, 4096, "1,a\n2,"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &dirBackend{root: t.TempDir()}
			b.put(t, "dms/hr/zeta/LOAD1.csv.gz", gzipRepeated(t, tc.head, tc.chunk, tc.copies, "\n3,c\n"))
			in, logs := directInput(t, baseYAML(b, "mode: full-load\nbatch_size: 1\ncheckpoint:\n  store: none\n"))
			if err := in.Connect(context.Background()); err != nil {
				t.Fatal(err)
			}
			batch, ack, err := in.ReadBatch(context.Background())
			if err != nil || len(batch) != 1 {
				t.Fatalf("first batch: %d messages, %v", len(batch), err)
			}
			if body, _ := batch[0].AsBytes(); string(body) != "1,a" {
				t.Fatalf("first row %q, want 1,a", body)
			}
			ack(context.Background(), nil)

			// The next read goes into the content; the stream is stopped
			// meanwhile.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				b, _, err := in.ReadBatch(ctx)
				if len(b) > 0 {
					err = fmt.Errorf("a batch of %d messages", len(b))
				}
				done <- err
			}()
			cancel()
			start := time.Now()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("ReadBatch cancelled inside the file returned %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				err := <-done // before the input is closed
				t.Fatalf("ReadBatch returned %v only %s after its context was cancelled (it read the file's content to its end)", err, time.Since(start).Round(time.Second))
			}
			if l := logs.String(); strings.Contains(l, "bad object") {
				t.Fatalf("the cancelled read was taken for a bad object:\n%s", l)
			}
		})
	}
}

// TestReadCancelledInsideAFileResumesAtItsRow: after a read cancelled inside
// a file, the next read reopens it at its last whole row: the row after the
// blank lines comes once, with its own line and offset, and no bad object.
func TestReadCancelledInsideAFileResumesAtItsRow(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv.gz", gzipRepeated(t, "1,a\n", bytes.Repeat([]byte("\n"), 1<<20), 8, "\n3,c\n"))
	in, logs := directInput(t, baseYAML(b, "mode: full-load\nbatch_size: 1\ncheckpoint:\n  store: none\n"))
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var rows []got
	read := func(ctx context.Context) error {
		batch, ack, err := in.ReadBatch(ctx)
		for _, m := range batch {
			rows = append(rows, toGot(m))
		}
		if err == nil {
			ack(context.Background(), nil)
		}
		return err
	}
	if err := read(ctx); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := read(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v, want context.Canceled", err)
	}
	for {
		if err := read(ctx); err != nil {
			if !strings.Contains(err.Error(), "end of input") {
				t.Fatal(err)
			}
			break
		}
	}
	want := []string{`1 0 "1,a"`, `8388611 8388613 "3,c"`}
	if len(rows) != len(want) {
		t.Fatalf("rows %v, want %v", rows, want)
	}
	for i, r := range rows {
		if g := fmt.Sprintf("%d %d %q", r.Line, r.Offset, r.Body); g != want[i] {
			t.Errorf("row %d: %s, want %s", i, g, want[i])
		}
	}
	if l := logs.String(); strings.Contains(l, "bad object") {
		t.Fatalf("the cancelled read was taken for a bad object:\n%s", l)
	}
}
