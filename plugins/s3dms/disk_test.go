package s3dms

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// breakDir replaces the directory dir with a file, so that every checkpoint
// save into it fails (as root, a mode change would not stop a write).
func breakDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFullLoadEndsOnlyOnceSaved: with mode: full-load the input ends (and
// the pipeline exits 0) once the full load is done. If the checkpoint of the
// finished full load cannot be saved (disk full, directory gone), ending
// anyway reports success while the checkpoint still says the load has not
// begun: the next run of the job loads every table again. The input must
// not end until the final position is saved: it reports itself not
// connected (/ready 503) with the store's error, and ends once a save goes
// through.
func TestFullLoadEndsOnlyOnceSaved(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("3,c\n"))
	ckDir := filepath.Join(t.TempDir(), "ck")
	in, _ := directInput(t, baseYAML(b, "mode: full-load\ncheckpoint:\n  directory: "+ckDir+"\n  key: job.json\n  interval: 1h\n"))
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	breakDir(t, ckDir) // the disk fails after the first save
	got, err := readAllDirect(t, in, 3)
	if err != nil || strings.Join(got, "|") != "1,a|2,b|3,c" {
		t.Fatalf("got %q %v", got, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, _, err = in.ReadBatch(rctx)
	if errors.Is(err, service.ErrEndOfInput) {
		t.Fatal("the input ended although the finished full load could not be saved")
	}
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("ReadBatch: %v, want not connected", err)
	}
	cerr := in.Connect(ctx)
	if cerr == nil || !strings.Contains(cerr.Error(), "the full load is done, but its checkpoint cannot be saved") || !strings.Contains(cerr.Error(), ckDir) {
		t.Fatalf("Connect: %v", cerr)
	}

	// Space comes back: the save goes through and the input ends.
	if err := os.Remove(ckDir); err != nil {
		t.Fatal(err)
	}
	if err := in.Connect(ctx); err != nil {
		t.Fatalf("Connect once the directory is back: %v", err)
	}
	if _, _, err := in.ReadBatch(rctx); !errors.Is(err, service.ErrEndOfInput) {
		t.Fatalf("ReadBatch once saved: %v, want the end of input", err)
	}
	st, err := (&checkpoint.File{Path: filepath.Join(ckDir, "job.json")}).Load(ctx)
	if err != nil || st == nil || st.Position.Key != "dms/hr/alpha/LOAD1.csv" || !st.Position.Done {
		t.Fatalf("saved checkpoint %+v %v, want the end of the full load", st, err)
	}
}

// TestCDCOnlyCheckpointRefusedForAFullLoad: a checkpoint written by mode:
// cdc records CDC progress, but no full load was ever made (its figures show
// no table loaded). The default checkpoint key does not depend on the mode,
// so switching the same pipeline to full-load-and-cdc (or full-load) resumes
// from it: the input took its CDC position as proof that the full load was
// over, skipped the full load silently and reported every table "Table
// completed" with 0 rows (with full-load, it ended at once, exit 0, having
// loaded nothing). It must refuse the checkpoint at Connect, naming it.
func TestCDCOnlyCheckpointRefusedForAFullLoad(t *testing.T) {
	for _, mode := range []string{"full-load-and-cdc", "full-load"} {
		t.Run(mode, func(t *testing.T) {
			b := &dirBackend{root: t.TempDir()}
			b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
			b.put(t, "dms/changes/CDC1.csv", []byte("I,hr,zeta,2,b\n"))
			ckDir := t.TempDir()
			conf := func(mode string) string {
				return baseYAML(b, "mode: "+mode+"\ncheckpoint:\n  directory: "+ckDir+"\n  interval: 1h\n")
			}
			ctx := context.Background()
			cdc, _ := directInput(t, conf("cdc"))
			if err := cdc.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := readAllDirect(t, cdc, 1); err != nil || strings.Join(got, "|") != "I,hr,zeta,2,b" {
				t.Fatalf("cdc run: %q %v", got, err)
			}
			if err := cdc.Close(ctx); err != nil {
				t.Fatal(err)
			}

			in, _ := directInput(t, conf(mode))
			err := in.Connect(ctx)
			if err == nil {
				got, rerr := readAllDirect(t, in, 1)
				t.Fatalf("mode %s resumed a cdc-only checkpoint: read %q (%v); table states %+v", mode, got, rerr, in.stats.table(0).StateName)
			}
			if !strings.Contains(err.Error(), "no table of it was ever loaded") || !strings.Contains(err.Error(), ckDir) {
				t.Fatalf("Connect: %v", err)
			}
		})
	}
}

// A full-load-and-cdc run whose tables had no files at all still marks them
// loaded: its CDC checkpoint is resumed by the same mode, not taken for a
// cdc-only one.
func TestEmptyFullLoadCheckpointResumes(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/changes/CDC1.csv", []byte("I,hr,zeta,1,a\n"))
	ckDir := t.TempDir()
	conf := baseYAML(b, "checkpoint:\n  directory: "+ckDir+"\n  interval: 1h\n")
	ctx := context.Background()
	first, _ := directInput(t, conf)
	if err := first.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := readAllDirect(t, first, 1); err != nil || strings.Join(got, "|") != "I,hr,zeta,1,a" {
		t.Fatalf("first run: %q %v", got, err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b.put(t, "dms/changes/CDC2.csv", []byte("I,hr,zeta,2,b\n"))
	again, _ := directInput(t, conf)
	if err := again.Connect(ctx); err != nil {
		t.Fatalf("restart in the same mode: %v", err)
	}
	if got, err := readAllDirect(t, again, 1); err != nil || strings.Join(got, "|") != "I,hr,zeta,2,b" {
		t.Fatalf("restart: %q %v", got, err)
	}
}

// TestCheckpointDirectoryInsideSourcePathsThroughSymlinkRefused: the same
// refusal when checkpoint.directory reaches the CDC path or a table's path
// through a symbolic link (or the directory read is named through one).
// The check compared the paths as written, so such a config linted clean
// and started, and the checkpoint file was read, and emitted, as a CDC row.
func TestCheckpointDirectoryInsideSourcePathsThroughSymlinkRefused(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"dms/changes", "dms/hr/zeta"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := t.TempDir()
	rootLink := filepath.Join(links, "root")       // -> the directory read
	changesLink := filepath.Join(links, "changes") // -> its CDC folder
	if err := os.Symlink(root, rootLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "dms", "changes"), changesLink); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ directory, ckDir, want string }{
		{root, filepath.Join(rootLink, "dms", "changes"), `lies under the CDC path "dms/changes/"`},
		{root, changesLink, `lies under the CDC path "dms/changes/"`},
		{root, filepath.Join(changesLink, "ck"), `lies under the CDC path "dms/changes/"`},
		{root, filepath.Join(rootLink, "dms", "hr", "zeta"), `lies under the full-load path "dms/hr/zeta/" of table hr.zeta`},
		{rootLink, filepath.Join(root, "dms", "changes"), `lies under the CDC path "dms/changes/"`},
	} {
		pc, err := inputSpec().ParseYAML(baseYAML(&dirBackend{root: c.directory}, "checkpoint:\n  directory: "+c.ckDir+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseConf(pc)
		if err == nil || !strings.Contains(err.Error(), "checkpoint.directory") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("directory %s, checkpoint.directory %s: %v, want an error saying it %s", c.directory, c.ckDir, err, c.want)
		}
	}
	// A link elsewhere is still accepted.
	other := t.TempDir()
	otherLink := filepath.Join(links, "other")
	if err := os.Symlink(other, otherLink); err != nil {
		t.Fatal(err)
	}
	pc, err := inputSpec().ParseYAML(baseYAML(&dirBackend{root: root}, "checkpoint:\n  directory: "+otherLink+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseConf(pc); err != nil {
		t.Errorf("checkpoint.directory %s (outside the directory): %v", otherLink, err)
	}
}

// TestCheckpointDirectoryInsideSourcePathsRefused: in directory mode, a
// checkpoint.directory under the CDC path or a table's path puts the
// checkpoint file (and its temporary files) among the files the input
// reads: its JSON was emitted as a CDC row, and every save rewrote a "CDC
// file" already read. The s3 store refuses the same layout (a checkpoint.key
// under those paths); the file store must too, naming the field.
func TestCheckpointDirectoryInsideSourcePathsRefused(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct{ dir, want string }{
		{filepath.Join(root, "dms", "changes"), `lies under the CDC path "dms/changes/"`},
		{filepath.Join(root, "dms", "changes", "ck"), `lies under the CDC path "dms/changes/"`},
		{filepath.Join(root, "dms", "hr", "zeta"), `lies under the full-load path "dms/hr/zeta/" of table hr.zeta`},
	} {
		pc, err := inputSpec().ParseYAML(baseYAML(&dirBackend{root: root}, "checkpoint:\n  directory: "+c.dir+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseConf(pc)
		if err == nil || !strings.Contains(err.Error(), "checkpoint.directory") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("checkpoint.directory %s: %v, want an error saying it %s", c.dir, err, c.want)
		}
	}
	// Elsewhere in the directory, or outside it: accepted.
	for _, dir := range []string{filepath.Join(root, "checkpoints"), filepath.Join(root, "dms"), t.TempDir()} {
		pc, err := inputSpec().ParseYAML(baseYAML(&dirBackend{root: root}, "checkpoint:\n  directory: "+dir+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseConf(pc); err != nil {
			t.Errorf("checkpoint.directory %s: %v", dir, err)
		}
	}
}
