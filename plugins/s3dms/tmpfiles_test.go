package s3dms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Files written the usual atomic way inside the watched folder itself (write
// <name>.tmp, then rename it to <name>): a listing may see the temporary
// name, and the rename happens before it is read. The temporary file is gone,
// not read: it must not count as processed, so the file it became, which
// sorts before it, is read as the next CDC file (not skipped as late).

// readN reads until n rows arrived, acknowledging each batch, or until the
// deadline (a short one: the tests wait for nothing but the input).
func readN(t *testing.T, in *input, n int, d time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []string
	for len(out) < n {
		b, ack, err := in.ReadBatch(ctx)
		if err != nil {
			break
		}
		for _, m := range b {
			body, _ := m.AsBytes()
			out = append(out, string(body))
		}
		ack(ctx, nil)
	}
	return out
}

func TestCDCTempFileRenamedAfterListingIsReadNotLate(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		b.put(t, "dms/changes/cdc_0001", []byte("1,a\n2,b\n"))
		b.put(t, "dms/changes/cdc_0002.tmp", []byte("3,c\n"))
		in, logs := directInput(t, baseYAML(b, "mode: cdc\nbatch_size: 1\npoll_interval: 50ms\nlate_file_check_interval: 100ms\nlate_files: skip\ncheckpoint:\n  store: none\n"))
		if err := in.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The first batch lists the folder (cdc_0001, cdc_0002.tmp) and
		// reads one row of cdc_0001.
		got := readN(t, in, 1, 3*time.Second)
		// Renamed before it is read (S3: copied, then deleted).
		if d, ok := b.(*dirBackend); ok {
			if err := os.Rename(filepath.Join(d.root, "dms", "changes", "cdc_0002.tmp"), filepath.Join(d.root, "dms", "changes", "cdc_0002")); err != nil {
				t.Fatal(err)
			}
		} else {
			b.put(t, "dms/changes/cdc_0002", []byte("3,c\n"))
			b.del(t, "dms/changes/cdc_0002.tmp")
		}
		got = append(got, readN(t, in, 2, 3*time.Second)...)
		if strings.Join(got, "|") != "1,a|2,b|3,c" {
			t.Fatalf("got %q, want 1,a|2,b|3,c; logs:\n%s", got, logs.String())
		}
		readN(t, in, 1, 300*time.Millisecond) // to the end of cdc_0002, and a late check
		l := logs.String()
		if strings.Contains(l, "late CDC file") || strings.Contains(l, "bad object") || !strings.Contains(l, "cdc_0002.tmp: object no longer exists") {
			t.Fatalf("logs:\n%s", l)
		}
		if c := in.stats.cdcStats(); c.LateFiles != 0 || c.FilesProcessed != 2 {
			t.Fatalf("late files %d, files processed %d; want 0 and 2", c.LateFiles, c.FilesProcessed)
		}
	})
}

// The same across a restart: the temporary file is gone when it is to be
// read, the input stops before the file it becomes is listed; the restarted
// input reads that file (the checkpoint's high-water mark is not the gone
// key).
func TestCDCTempFileGoneThenRestartReadsItsReplacement(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	ck := t.TempDir()
	yaml := baseYAML(b, "mode: cdc\nbatch_size: 1\npoll_interval: 50ms\nlate_file_check_interval: 100ms\nlate_files: skip\ncheckpoint:\n  directory: "+ck+"\n  interval: 0s\n")
	b.put(t, "dms/changes/cdc_0001", []byte("1,a\n2,b\n"))
	tmp := filepath.Join(b.root, "dms", "changes", "cdc_0002.tmp")
	if err := os.WriteFile(tmp, []byte("3,c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in, logs := directInput(t, yaml)
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readN(t, in, 2, 3*time.Second)
	// Moved away (a copy into the folder under its final name is still
	// to come): the next read finds it gone.
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	got = append(got, readN(t, in, 1, 500*time.Millisecond)...)
	if strings.Join(got, "|") != "1,a|2,b" || !strings.Contains(logs.String(), "cdc_0002.tmp: object no longer exists") {
		t.Fatalf("got %q; logs:\n%s", got, logs.String())
	}
	if err := in.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.put(t, "dms/changes/cdc_0002", []byte("3,c\n"))
	in2, logs2 := directInput(t, yaml)
	if err := in2.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	got2 := readN(t, in2, 1, 3*time.Second)
	if strings.Join(got2, "|") != "3,c" || strings.Contains(logs2.String(), "late CDC file") {
		t.Fatalf("after the restart got %q, want 3,c; logs:\n%s", got2, logs2.String())
	}
}

// Full load: a listed file renamed before it is read (LOAD2.csv.tmp to
// LOAD2.csv) is not counted done; the file it became is read, and the table
// ends at 100 %.
func TestFullLoadTempFileRenamedAfterListingIsRead(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	tmp := filepath.Join(b.root, "dms", "hr", "zeta", "LOAD2.csv.tmp")
	if err := os.WriteFile(tmp, []byte("3,c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.put(t, "dms/hr/zeta/LOAD3.csv", []byte("4,d\n"))
	in, logs := directInput(t, baseYAML(b, "mode: full-load\nbatch_size: 1\ncheckpoint:\n  store: none\n"))
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readN(t, in, 1, 3*time.Second)
	if err := os.Rename(tmp, filepath.Join(b.root, "dms", "hr", "zeta", "LOAD2.csv")); err != nil {
		t.Fatal(err)
	}
	got = append(got, readN(t, in, 3, 3*time.Second)...)
	if strings.Join(got, "|") != "1,a|2,b|3,c|4,d" {
		t.Fatalf("got %q, want 1,a|2,b|3,c|4,d; logs:\n%s", got, logs.String())
	}
	readN(t, in, 1, 500*time.Millisecond) // on to the next table
	tb := in.stats.table(0)
	if tb.FilesDone != 3 || tb.FilesTotal != 3 || tb.BytesDone != tb.BytesTotal || tb.BytesTotal != 16 {
		t.Fatalf("table zeta: %d of %d files, %d of %d bytes; want 3 of 3, 16 of 16", tb.FilesDone, tb.FilesTotal, tb.BytesDone, tb.BytesTotal)
	}
	if l := logs.String(); strings.Contains(l, "bad object") || !strings.Contains(l, "LOAD2.csv.tmp: object no longer exists") {
		t.Fatalf("logs:\n%s", l)
	}
}
