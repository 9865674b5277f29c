package s3dms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCDCFileWrittenAfterReadIsReported: a CDC file created in a local
// directory and written afterwards (as `cat >` or an editor does) is read
// while still empty, and is never read again. The rows written to it are not
// emitted; that must not be silent: a warning names the file and both sizes.
// A CDC file moved in whole raises no warning.
func TestCDCFileWrittenAfterReadIsReported(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,a\n"))
	in, logs := directInput(t, baseYAML(b, "mode: cdc\npoll_interval: 20ms\ncheckpoint:\n  store: none\n"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	rows := make(chan string, 16)
	go func() {
		for ctx.Err() == nil {
			batch, ack, err := in.ReadBatch(ctx)
			if err != nil {
				continue
			}
			for _, m := range batch {
				body, _ := m.AsBytes()
				rows <- string(body)
			}
			_ = ack(ctx, nil)
		}
	}()
	waitFiles := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for in.stats.snapshot().CDC.FilesProcessed < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d CDC files processed, want %d", in.stats.snapshot().CDC.FilesProcessed, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if r := <-rows; r != "I,zeta,hr,1,a" {
		t.Fatalf("row %q", r)
	}
	waitFiles(1)
	// Created empty, written once it was read.
	p := filepath.Join(b.root, "dms", "changes", "CDC2.csv")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFiles(2)
	if err := os.WriteFile(p, []byte("I,zeta,hr,2,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	want := "CDC file " + p + " changed after it was read to its end (0 bytes read, 14 bytes now)"
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning %q in the log:\n%s", want, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "changed after it was read"); n != 1 {
		t.Fatalf("%d warnings for one change, want 1:\n%s", n, logs.String())
	}
	// A file moved in whole: read, and no warning for it.
	tmp := filepath.Join(b.root, "CDC3.tmp")
	if err := os.WriteFile(tmp, []byte("I,zeta,hr,3,c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(b.root, "dms", "changes", "CDC3.csv")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-rows:
		if r != "I,zeta,hr,3,c" {
			t.Fatalf("row %q, want the moved file's", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the file moved in whole was not read")
	}
	waitFiles(3)
	if n := strings.Count(logs.String(), "changed after it was read"); n != 1 {
		t.Fatalf("%d warnings, want still 1 (CDC3 was moved in whole):\n%s", n, logs.String())
	}
}
