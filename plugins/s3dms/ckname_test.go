package s3dms

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLongDirectoryNameCheckpoint: the default checkpoint file name holds
// the directory's base name, and a name longer than 222 bytes made it longer
// than the 255 bytes a file name may have: every Connect failed with "file
// name too long" and nothing was ever read (also for a name a little
// shorter: the temporary file written first adds 16 bytes). The name part
// is now cut so that the file name fits (the hash of the whole layout keeps
// it unique), and so is the temporary file's; shorter names, and so
// existing checkpoints, are unchanged.
func TestLongDirectoryNameCheckpoint(t *testing.T) {
	root := filepath.Join(t.TempDir(), strings.Repeat("d", 230))
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &dirBackend{root: root}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	ckdir := t.TempDir()
	yaml := baseYAML(b, "mode: full-load\ncheckpoint:\n  directory: "+ckdir+"\n")
	r := startStream(t, yaml, nil)
	r.waitDone(t, 10*time.Second)
	if got := strings.Join(bodies(r.snapshot()), "|"); got != "1,a" {
		t.Fatalf("got %q\n%s", got, r.logText())
	}
	ents, _ := os.ReadDir(ckdir)
	if len(ents) != 1 || len(ents[0].Name()) > 255 || !strings.HasPrefix(ents[0].Name(), "aws_s3_dms-ddd") {
		t.Fatalf("checkpoint directory holds %v", ents)
	}
	// A restart resumes from it: nothing is read again.
	r2 := startStream(t, yaml, nil)
	r2.waitDone(t, 10*time.Second)
	if n := len(r2.snapshot()); n != 0 {
		t.Fatalf("restart read %d rows again", n)
	}
	// A short name is spelled as before.
	pc, err := inputSpec().ParseYAML(baseYAML(&dirBackend{root: "/srv/drop"}, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseConf(pc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.ckKey, "aws_s3_dms-drop-") || len(c.ckKey) != len("aws_s3_dms-drop-")+16+len(".json") {
		t.Fatalf("default key %q", c.ckKey)
	}
}
