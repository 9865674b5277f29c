package s3dms

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// relativeCheckpointInput is a full-load input of one file holding rows,
// its checkpoint under ./checkpoints of the working directory wd, a fresh
// temporary directory the test runs in.
func relativeCheckpointInput(t *testing.T, rows string) (*input, *lockedBuf, string) {
	t.Helper()
	data := t.TempDir()
	writeFile(t, filepath.Join(data, "hr", "zeta", "LOAD1.csv"), rows)
	wd := t.TempDir()
	t.Chdir(wd)
	in, logs := directInput(t, "directory: '"+data+"'\nmode: full-load\ntable_definition: '"+zetaOnly+"'\ncheckpoint: {store: file, directory: checkpoints, key: k1}\n")
	return in, logs, wd
}

// The start's log line names the checkpoint file by its absolute path: the
// shipped configs keep it under ./checkpoints, so a start from another
// working directory (a systemd unit, a shell elsewhere) reads and writes
// another file and starts the load over; the line said "checkpoint file
// checkpoints/...", the same words from any directory.
func TestStartLogNamesTheCheckpointFileAbsolutely(t *testing.T) {
	in, logs, wd := relativeCheckpointInput(t, "1,a\n")
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "checkpoint file " + filepath.Join(wd, "checkpoints", "k1") + ","
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("the start's log line does not say %q:\n%s", want, logs.String())
	}
}

// TestCloseLogSaysWhereTheCheckpointWasSaved: a stop logs the checkpoint's
// file, absolutely, and the position the next start resumes at.
func TestCloseLogSaysWhereTheCheckpointWasSaved(t *testing.T) {
	in, logs, wd := relativeCheckpointInput(t, "1,a\n2,b\n")
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	b, ack, err := in.ReadBatch(ctx)
	if err != nil || len(b) == 0 {
		t.Fatalf("read: %d messages, %v", len(b), err)
	}
	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := "aws_s3_dms stopped: checkpoint file " + filepath.Join(wd, "checkpoints", "k1") + ` saved at full-load #0 \"hr/zeta/LOAD1.csv\" done` // logfmt quotes
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("the stop's log does not say %q:\n%s", want, logs.String())
	}
}
