package checkpoint

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnreadableCheckpointSaysWhatToDo: a checkpoint that cannot be read
// (truncated, empty, not a checkpoint at all, or written by a newer
// dmsbridge with a version this one does not know) is refused with an
// error that names the file, tells what it is, and says how to go on: the
// operator must not be left to guess whether removing it is safe.
func TestUnreadableCheckpointSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ content, what string }{
		"truncated": {`{"version":1,"position":{"phase":2,"key":"dms/chan`, "is corrupt"},
		"empty":     {"", "is corrupt"},
		"array":     {"[]", "is corrupt"},
		"null":      {"null", "holds no version"},
		"object":    {"{}", "holds no version"},
		"newer":     {`{"version":2,"position":{"phase":2,"key":"dms/changes/x"},"resume_token":"z"}`, "version 2, written by a newer dmsbridge"},
	} {
		t.Run(name, func(t *testing.T) {
			f := &File{Path: filepath.Join(dir, name+".json")}
			if err := os.WriteFile(f.Path, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := f.Load(context.Background())
			if err == nil {
				t.Fatal("loaded")
			}
			for _, want := range []string{f.Path, c.what, "remove it to start over", "every CDC file"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("the error does not say %q: %v", want, err)
				}
			}
		})
	}
}
