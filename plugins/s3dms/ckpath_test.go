package s3dms

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// The start's log line names the checkpoint file by its absolute path: the
// shipped configs keep it under ./checkpoints, so a start from another
// working directory (a systemd unit, a shell elsewhere) reads and writes
// another file and starts the load over; the line said "checkpoint file
// checkpoints/...", the same words from any directory.
func TestStartLogNamesTheCheckpointFileAbsolutely(t *testing.T) {
	data := t.TempDir()
	writeFile(t, filepath.Join(data, "hr", "zeta", "LOAD1.csv"), "1,a\n")
	wd := t.TempDir()
	t.Chdir(wd)
	in, logs := directInput(t, "directory: '"+data+"'\nmode: full-load\ntable_definition: '"+zetaOnly+"'\ncheckpoint: {store: file, directory: checkpoints, key: k1}\n")
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "checkpoint file " + filepath.Join(wd, "checkpoints", "k1") + ","
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("the start's log line does not say %q:\n%s", want, logs.String())
	}
}
