package s3dms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const zetaOnly = `{"TableCount":"1","Tables":[
 {"TableName":"zeta","TablePath":"hr/zeta/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"}]}`

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The input's documentation promises that with `directory` a key can never
// escape the directory. A symlink planted in it (by whoever can write the
// folder DMS files are dropped into) must not make the input read a file
// outside it and send its content downstream: not through a folder on the
// way to a table or the CDC path (bucket_folder -> elsewhere), and not
// through a file swapped for a symlink between listing and reading. Symlinks
// that stay inside the directory keep working.
func TestDirectoryNeverReadsOutsideThroughSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "hr", "zeta", "LOAD1.csv"), "1,OUTSIDE-SECRET\n")
	writeFile(t, filepath.Join(outside, "changes", "cdc1.csv"), "I,hr,zeta,2,OUTSIDE-SECRET\n")
	writeFile(t, filepath.Join(outside, "secret.csv"), "3,OUTSIDE-SECRET\n")

	yaml := func(root, folder, mode string) string {
		return "directory: '" + root + "'\nbucket_folder: " + folder + "\ncdc_path: changes\nmode: " + mode +
			"\ntable_definition: '" + zetaOnly + "'\ncheckpoint: {store: none}\n"
	}
	read := func(t *testing.T, y string, n int) ([]string, error) {
		in, _ := directInput(t, y)
		if err := in.Connect(context.Background()); err != nil {
			return nil, err
		}
		return readAllDirect(t, in, n)
	}

	for _, mode := range []string{"full-load", "cdc"} {
		t.Run("folder symlinked out, "+mode, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Symlink(outside, filepath.Join(root, "dms")); err != nil {
				t.Fatal(err)
			}
			rows, err := read(t, yaml(root, "dms", mode), 1)
			if strings.Contains(strings.Join(rows, "\n"), "OUTSIDE-SECRET") {
				t.Fatalf("read a file outside the directory through a symlink: %q", rows)
			}
			if err == nil || !strings.Contains(err.Error(), "escapes") {
				t.Fatalf("error %v, want one saying the path escapes the directory", err)
			}
		})
	}

	t.Run("file swapped for a symlink after listing", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "dms", "hr", "zeta", "LOAD1.csv"), "1,in\n")
		d := &dirSource{root: root}
		objs, _, err := d.list(context.Background(), "dms/hr/zeta/", "", "")
		if err != nil || len(objs) != 1 {
			t.Fatalf("list: %v %v", objs, err)
		}
		p := filepath.Join(root, "dms", "hr", "zeta", "LOAD1.csv")
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(outside, "secret.csv"), p); err != nil {
			t.Fatal(err)
		}
		o, err := d.open(context.Background(), objs[0].Key, 0, "")
		if err == nil {
			o.Body.Close()
			t.Fatal("opened a symlink to a file outside the directory")
		}
	})

	t.Run("symlinks inside the directory still work", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "real", "hr", "zeta", "LOAD1.csv"), "1,in\n")
		if err := os.Symlink("real", filepath.Join(root, "dms")); err != nil {
			t.Fatal(err)
		}
		rows, err := read(t, yaml(root, "dms", "full-load"), 1)
		if err != nil || len(rows) != 1 || rows[0] != "1,in" {
			t.Fatalf("rows %q, error %v", rows, err)
		}
	})
}
