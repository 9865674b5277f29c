package checkpoint

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// What the file store writes, as the README documents it: the checkpoint
// file is 0600 whatever the umask (it is written through a temporary file,
// which os.CreateTemp makes 0600), and a missing directory is made 0755
// less the umask. The checkpoint holds object keys, offsets and table
// statistics, never row values.
func TestCheckpointFileModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "state")
	f := &File{Path: filepath.Join(dir, "ck.json")}
	if err := f.Save(context.Background(), &State{Position: Position{Phase: PhaseCDC, Key: "cdc/1", Offset: 10}}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{f.Path: 0o600, dir: 0o755 | os.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}
