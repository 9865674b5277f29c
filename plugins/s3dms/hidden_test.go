package s3dms

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Directory mode: hidden files (rsync's ".<name>.XXXXXX" while it copies,
// editors' swap files) are not data, in the table folders and in the CDC
// folder; they are neither read nor reported as late files.
func TestDirectoryHiddenFilesAreNotListed(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	b.put(t, "dms/hr/zeta/.LOAD2.csv.swp", []byte("9,swap\n"))
	b.put(t, "dms/hr/zeta/.partial/LOAD3.csv", []byte("9,hidden folder\n"))
	b.put(t, "dms/changes/cdc_0001", []byte("c,1\n"))
	b.put(t, "dms/changes/.cdc_0002.Xy12Ab", []byte("9,rsync\n"))
	in, logs := directInput(t, baseYAML(b, "mode: full-load-and-cdc\npoll_interval: 50ms\nlate_file_check_interval: 100ms\nlate_files: process\ncheckpoint:\n  store: none\n"))
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readN(t, in, 2, 3*time.Second)
	got = append(got, readN(t, in, 1, 300*time.Millisecond)...) // nothing more
	if strings.Join(got, "|") != "1,a|c,1" {
		t.Fatalf("got %q, want 1,a|c,1; logs:\n%s", got, logs.String())
	}
	// rsync starts copying the next file: the late check passes over it.
	b.put(t, "dms/changes/.cdc_0003.Qw34Er", []byte("9,rsync\n"))
	if err := in.lateCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); strings.Contains(l, "late CDC file") {
		t.Fatalf("logs:\n%s", l)
	}
	if n := in.stats.table(0).FilesTotal; n != 1 {
		t.Fatalf("table zeta: %d files, want 1", n)
	}
}
