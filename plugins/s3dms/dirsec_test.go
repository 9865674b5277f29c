package s3dms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
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

// A bucket_folder, cdc_path or TablePath that leads out of `directory` with
// ".." can never be read (every listing refuses it), so it is a config
// error: refused by lint and at start, naming the field, not an error the
// engine logs and retries forever once the pipeline runs.
func TestDirectoryPathsLeadingOutAreRefusedAtStart(t *testing.T) {
	escTable := strings.Replace(zetaOnly, `"hr/zeta/"`, `"../../etc/"`, 1)
	for yaml, want := range map[string]string{
		"bucket_folder: ../elsewhere\ncdc_path: changes\ntable_definition: '" + zetaOnly + "'\n":        "bucket_folder: ",
		"bucket_folder: dms/../..\ncdc_path: changes\ntable_definition: '" + zetaOnly + "'\n":           "bucket_folder: ",
		"bucket_folder: dms\ncdc_path: ../../changes\ntable_definition: '" + zetaOnly + "'\n":           "cdc_path: ",
		"bucket_folder: dms\ncdc_path: changes\ntable_definition: '" + escTable + "'\n":                 "table_definition: table hr.zeta: TablePath ",
		"bucket_folder: ..\nmode: full-load\ncdc_path: changes\ntable_definition: '" + zetaOnly + "'\n": "bucket_folder: ",
	} {
		yaml = "directory: '" + t.TempDir() + "'\n" + yaml
		for what, err := range lintAndStart(t, yaml) {
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "leads out of directory") {
				t.Errorf("%s of %q: error %v, want one starting %q saying it leads out of directory", what, yaml, err, want)
			}
		}
	}
	// With a bucket, ".." is a key's characters (and inside the directory
	// a folder "a/../b" is "b"): accepted.
	for _, yaml := range []string{
		"bucket: b\nbucket_folder: ../x\ncdc_path: changes\ntable_definition: '" + zetaOnly + "'\n",
		"directory: /tmp\nbucket_folder: a/../b\ncdc_path: changes\ntable_definition: '" + zetaOnly + "'\n",
	} {
		for what, err := range lintAndStart(t, yaml) {
			if err != nil {
				t.Errorf("%s refused %q: %v", what, yaml, err)
			}
		}
	}
}

// The endpoint field is checked at start (no user information, no query
// string: see awsconf.Validate), but with the field empty the SDK takes
// the endpoint from AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL, or the shared
// config's endpoint_url), which nothing checked: one holding a query made
// every listing fail with "Custom endpoint `http://user:password@host/?...`
// was not a valid URI", logged at each retry with the password and query
// in clear. The same rules apply, at Connect, naming the variable, without
// the secret.
func TestEndpointFromTheEnvironmentIsCheckedWithoutShowingIt(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://user:Pa55w0rdXYZ@127.0.0.1:1/?X-Api-Key=Pa55w0rdXYZ")
	in, _ := directInput(t, "bucket: b\nregion: us-east-1\nforce_path_style: true\ncdc_path: changes\ntable_definition: '"+zetaOnly+"'\ncheckpoint: {store: none}\ncredentials: {id: a, secret: b}\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := in.Connect(ctx)
	if err == nil {
		_, _, err = in.ReadBatch(ctx)
	}
	if err == nil || strings.Contains(err.Error(), "Pa55w0rdXYZ") || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL_S3") {
		t.Fatalf("error %v: want one naming AWS_ENDPOINT_URL_S3 without the secret", err)
	}
}

// checkpoint.key must be a plain file name for the file store: "." and ".."
// name the checkpoint directory itself or its parent, which can never be
// the checkpoint file, so they are refused at start and by lint, naming
// the field, like a key with a "/".
func TestFileCheckpointKeyDotsAreRefusedAtStart(t *testing.T) {
	for _, key := range []string{".", ".."} {
		yaml := "directory: '" + t.TempDir() + "'\nmode: full-load\ntable_definition: '" + zetaOnly + "'\ncheckpoint: {store: file, directory: '" + t.TempDir() + "', key: '" + key + "'}\n"
		for what, err := range lintAndStart(t, yaml) {
			if err == nil || !strings.HasPrefix(err.Error(), "checkpoint.key: ") {
				t.Errorf("key %q: %s error %v, want one naming checkpoint.key", key, what, err)
			}
		}
	}
}

// A CDC file dropped into the folder as a symlink is not dropped silently.
// A symlink to a file inside the directory is read like the file; one that
// leads out of the directory, to nothing or to a folder is a bad object:
// logged with its key and the reason, counted in dms_bad_files, and the
// files after it go on (bad_files: skip). Nothing outside is read.
func TestDirectorySymlinkedFilesAreReadOrBad(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret.csv"), "I,zeta,hr,9,OUTSIDE-SECRET\n")
	root := t.TempDir()
	cdc := filepath.Join(root, "dms", "changes")
	writeFile(t, filepath.Join(cdc, "cdc1.csv"), "I,zeta,hr,1,a\n")
	writeFile(t, filepath.Join(root, "kept", "cdc2-real.csv"), "I,zeta,hr,2,b\n")
	writeFile(t, filepath.Join(cdc, "cdc6.csv"), "I,zeta,hr,6,f\n")
	if err := os.MkdirAll(filepath.Join(root, "kept", "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"cdc2.csv": "../../kept/cdc2-real.csv",           // inside: read
		"cdc3.csv": filepath.Join(outside, "secret.csv"), // outside: bad
		"cdc4.csv": "../../kept/missing.csv",             // dangling: bad
		"cdc5.csv": "../../kept/adir",                    // a folder: bad
	} {
		if err := os.Symlink(target, filepath.Join(cdc, name)); err != nil {
			t.Fatal(err)
		}
	}
	in, logs := directInput(t, "directory: '"+root+"'\nbucket_folder: dms\ncdc_path: changes\nmode: cdc\n"+
		"table_definition: '"+zetaOnly+"'\ncheckpoint: {store: none}\n")
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := readAllDirect(t, in, 3)
	if err != nil || strings.Join(rows, "|") != "I,zeta,hr,1,a|I,zeta,hr,2,b|I,zeta,hr,6,f" {
		t.Fatalf("rows %q, error %v; logs:\n%s", rows, err, logs.String())
	}
	for _, want := range []string{
		"dms/changes/cdc3.csv: object cannot be read: a symbolic link leading out of the directory",
		"dms/changes/cdc4.csv: object cannot be read: a symbolic link to nothing",
		"dms/changes/cdc5.csv: object cannot be read: not a regular file",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log line with %q; logs:\n%s", want, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "bad object, going on with the next one"); n != 3 {
		t.Errorf("%d bad objects logged, want 3; logs:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "OUTSIDE-SECRET") {
		t.Errorf("the outside file's content reached the log:\n%s", logs.String())
	}
}

// lintAndStart returns what `dmsbridge lint` and the input's construction
// say of an input config: both must refuse, or both accept, the same thing.
func lintAndStart(t *testing.T, yaml string) map[string]error {
	t.Helper()
	pc, err := inputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	lintErr := lintConf(pc)
	in, startErr := newInput(pc, service.MockResources())
	if in != nil {
		in.Close(context.Background()) // out of Stats()
	}
	return map[string]error{"lint": lintErr, "start": startErr}
}

// A symlink that stays inside `directory` works as before the listing went
// through os.Root, also when it is written with an absolute target (as `ln -s
// /srv/drop/run-42 /srv/drop/current` makes it): os.Root refuses every
// absolute symlink as "path escapes from parent", so a bucket_folder that is
// such a link (a blue/green "current" folder) made every listing fail, and a
// CDC file linked that way was a bad object, though nothing outside the
// directory is read. A link with an absolute target outside the directory
// stays refused (TestDirectoryNeverReadsOutsideThroughSymlinks).
func TestDirectoryAbsoluteSymlinksInsideWork(t *testing.T) {
	base := t.TempDir()
	// The directory named through a symlink of its own, as /data -> /mnt/x
	// often is: the link targets below are written under that name.
	real := filepath.Join(base, "real")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "drop")
	if err := os.Symlink(real, root); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "run-42", "hr", "zeta", "LOAD1.csv"), "1,full\n")
	writeFile(t, filepath.Join(root, "run-42", "changes", "cdc1.csv"), "I,zeta,hr,2,a\n")
	writeFile(t, filepath.Join(root, "staging", "cdc2-real.csv"), "I,zeta,hr,3,b\n")
	if err := os.Symlink(filepath.Join(root, "run-42"), filepath.Join(root, "current")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "staging", "cdc2-real.csv"), filepath.Join(root, "run-42", "changes", "cdc2.csv")); err != nil {
		t.Fatal(err)
	}
	in, logs := directInput(t, "directory: '"+root+"'\nbucket_folder: current\ncdc_path: changes\nmode: full-load-and-cdc\n"+
		"table_definition: '"+zetaOnly+"'\ncheckpoint: {store: none}\n")
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := readAllDirect(t, in, 3)
	if err != nil || strings.Join(rows, "|") != "1,full|I,zeta,hr,2,a|I,zeta,hr,3,b" {
		t.Fatalf("rows %q, error %v; logs:\n%s", rows, err, logs.String())
	}
	if strings.Contains(logs.String(), "bad object") {
		t.Errorf("a bad object logged:\n%s", logs.String())
	}
}
