package s3dms

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// twoPlusBeta is twoTables with a third table appended.
var twoPlusBeta = strings.Replace(strings.TrimSuffix(twoTables, "]}"), `"TableCount":"2"`, `"TableCount":"3"`, 1) + `,
 {"TableName":"beta","TablePath":"hr/beta/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"}],"TableColumnsTotal":"1"}]}`

// onlyBeta is a definition of the beta table alone.
const onlyBeta = `{"TableCount":"1","Tables":[
 {"TableName":"beta","TablePath":"hr/beta/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"}],"TableColumnsTotal":"1"}]}`

// runDirect connects a directly built input on yaml, reads n rows
// (acknowledging each batch), and closes it, which saves the checkpoint.
func runDirect(t *testing.T, yaml string, n int) []string {
	t.Helper()
	in, _ := directInput(t, yaml)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := readAllDirect(t, in, n)
	if err != nil {
		t.Fatalf("read %q: %v", rows, err)
	}
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestTableAddedDefaultCheckpointFound: a table added to the definition of
// a running job (full load done, in CDC) with the default checkpoint key,
// which hashes the table list. The restart finds no checkpoint under its
// new key; it must not start over silently (loading every table again and
// re-reading every CDC file) while the checkpoint of the job is there under
// the old key: Connect fails naming it and saying how to go on from it or
// start over. With checkpoint.key set to it, the job goes on. A definition
// of other tables only (another group of a scaled-out job on the same
// bucket) is no such change and starts afresh.
func TestTableAddedDefaultCheckpointFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,z\n"))
		b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("1,a\n"))
		b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,2,c1\n"))
		ck := "poll_interval: 50ms\ncheckpoint:\n  directory: " + t.TempDir() + "\n"
		if b.name() != "dir" {
			ck = "poll_interval: 50ms\ncheckpoint:\n  store: s3\n"
		}
		yaml := b.yaml() + "bucket_folder: dms\ncdc_path: changes\n" + ck
		first, _ := directInput(t, yaml+"table_definition: '"+twoTables+"'\n")
		oldKey := first.conf.ckKey
		if got := strings.Join(runDirect(t, yaml+"table_definition: '"+twoTables+"'\n", 3), "|"); got != "1,z|1,a|I,zeta,hr,2,c1" {
			t.Fatalf("first run: %s", got)
		}
		b.put(t, "dms/hr/beta/LOAD1.csv", []byte("1\n"))
		b.put(t, "dms/changes/CDC2.csv", []byte("I,beta,hr,2\n"))

		in, _ := directInput(t, yaml+"table_definition: '"+twoPlusBeta+"'\n")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := in.Connect(ctx)
		if err == nil {
			rows, _ := readAllDirect(t, in, 1)
			t.Fatalf("after adding a table the restart connected under a new key and read %q", rows)
		}
		setKey := path.Base(oldKey) // the file store's key is a file name
		if b.name() != "dir" {
			setKey = oldKey
		}
		for _, want := range []string{"checkpoint.key: " + setKey + ";", "remove it"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("the refusal does not say %q: %v", want, err)
			}
		}
		in.Close(ctx)

		if got := strings.Join(runDirect(t, yaml+"mode: full-load\ntable_definition: '"+onlyBeta+"'\n", 1), "|"); got != "1" {
			t.Fatalf("another group of tables read %q, want its own full load", got)
		}
		if got := strings.Join(runDirect(t, yaml+"  key: "+setKey+"\ntable_definition: '"+twoPlusBeta+"'\n", 1), "|"); got != "I,beta,hr,2" {
			t.Fatalf("with checkpoint.key set to the old checkpoint the restart read %q first, want the next CDC row", got)
		}
	})
}

// TestCheckpointOfOtherDataRefused: an explicit checkpoint.key (and
// directory) copied into the configuration of an input reading other data
// (another bucket or directory, the same folders) finds the first input's
// checkpoint. Its position names the other data's objects: resuming from
// it would take this data's full load for done and pass over every CDC file
// up to the other's high-water mark. Connect refuses it, naming both.
func TestCheckpointOfOtherDataRefused(t *testing.T) {
	a := &dirBackend{root: t.TempDir()}
	a.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,z\n"))
	a.put(t, "dms/changes/CDC5.csv", []byte("I,zeta,hr,2,a5\n"))
	ck := "poll_interval: 50ms\ncheckpoint:\n  directory: " + t.TempDir() + "\n  key: job.json\n"
	if got := strings.Join(runDirect(t, baseYAML(a, ck), 2), "|"); got != "1,z|I,zeta,hr,2,a5" {
		t.Fatalf("first input: %s", got)
	}
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("7,z\n"))
	b.put(t, "dms/changes/CDC3.csv", []byte("I,zeta,hr,8,b3\n"))
	in, _ := directInput(t, baseYAML(b, ck))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := in.Connect(ctx)
	if err == nil {
		rows, _ := readAllDirect(t, in, 1)
		t.Fatalf("the input on other data resumed from the first one's checkpoint and read %q", rows)
	}
	for _, want := range []string{"job.json", a.root, b.root, "remove it"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("the refusal does not say %q: %v", want, err)
		}
	}
	in.Close(ctx)
}

// TestTableAddedAfterFullLoadNotCompleted: a table added to the definition
// once the full load is done is not loaded (DMS's S3 source has no table
// reload), so its statistics must not say it was: it stays Before load,
// with no full-load start or end, while the tables that were loaded keep
// their figures.
func TestTableAddedAfterFullLoadNotCompleted(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,z\n"))
	b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("1,a\n"))
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,2,c1\n"))
	yaml := b.yaml() + "bucket_folder: dms\ncdc_path: changes\npoll_interval: 50ms\ncheckpoint:\n  directory: " + t.TempDir() + "\n  key: job.json\n"
	if got := strings.Join(runDirect(t, yaml+"table_definition: '"+twoTables+"'\n", 3), "|"); got != "1,z|1,a|I,zeta,hr,2,c1" {
		t.Fatalf("first run: %s", got)
	}
	b.put(t, "dms/hr/beta/LOAD1.csv", []byte("1\n"))
	b.put(t, "dms/changes/CDC2.csv", []byte("I,beta,hr,2\n"))
	in, _ := directInput(t, yaml+"table_definition: '"+twoPlusBeta+"'\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, err := readAllDirect(t, in, 1); err != nil || strings.Join(rows, "|") != "I,beta,hr,2" {
		t.Fatalf("read %q (%v), want the next CDC row", rows, err)
	}
	check := func(run string, in *input) {
		t.Helper()
		for _, ts := range in.stats.snapshot().Tables {
			loaded := ts.Table != "beta"
			if (ts.State == StateCompleted) != loaded || (ts.FullLoadFinish != nil) != loaded || (loaded && ts.FullLoadRows != 1) {
				t.Errorf("%s: table %s.%s: state %s, %d rows, finished %v", run, ts.Schema, ts.Table, ts.StateName, ts.FullLoadRows, ts.FullLoadFinish)
			}
		}
	}
	check("the restart with the table added", in)
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Its figures are now stored (zeros): the next restart says the same.
	again, _ := directInput(t, yaml+"table_definition: '"+twoPlusBeta+"'\n")
	if err := again.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	check("the restart after", again)
}

// TestSameDirectoryThroughSymlinkResumes: the same job, with its relative
// directory and checkpoint directory, run once from a working directory
// reached through a symbolic link (an interactive shell's logical $PWD,
// e.g. a home directory or project folder behind a link, or macOS's /tmp
// and /var) and once from its real path (a service manager's, cron's) reads
// the same data and the same checkpoint: the second run must resume, not be
// refused as "written by an input reading another directory".
func TestSameDirectoryThroughSymlinkResumes(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "job")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	b := &dirBackend{root: filepath.Join(real, "data")}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,z\n"))
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,2,c1\n"))
	yaml := "directory: data\nbucket_folder: dms\ncdc_path: changes\ntable_definition: '" + twoTables + "'\npoll_interval: 50ms\ncheckpoint:\n  directory: checkpoints\n"
	t.Chdir(link)
	if got := strings.Join(runDirect(t, yaml, 2), "|"); got != "1,z|I,zeta,hr,2,c1" {
		t.Fatalf("run from %s: %s", link, got)
	}
	b.put(t, "dms/changes/CDC2.csv", []byte("I,zeta,hr,3,c2\n"))
	t.Chdir(real)
	if got := strings.Join(runDirect(t, yaml, 1), "|"); got != "I,zeta,hr,3,c2" {
		t.Fatalf("run from %s: %s", real, got)
	}
}
