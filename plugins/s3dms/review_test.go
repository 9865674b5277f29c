package s3dms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// TestCDCFolderMarkerDoesNotMoveTheMark: a "folder" created in the S3
// console under cdc_path is a zero-byte object whose key ends in "/". It is
// not a CDC file, and must not move the listing mark: CDC files uploaded
// after it, whose names sort before it, are new files, not late ones.
func TestCDCFolderMarkerDoesNotMoveTheMark(t *testing.T) {
	b := newS3Backend(t)
	for _, start := range []string{"beginning", "now"} {
		t.Run(start, func(t *testing.T) {
			folder := "m-" + start
			yaml := b.yaml() + "bucket_folder: " + folder + "\ncdc_path: changes\nmode: cdc\ncdc_start: " + start + "\ntable_definition: '" + twoTables + "'\n" +
				"poll_interval: 50ms\nlate_file_check_interval: 200ms\ncheckpoint:\n  store: none\n"
			b.put(t, folder+"/changes/CDC0001.csv", []byte("I,zeta,hr,1,a\n"))
			if start == "now" {
				b.put(t, folder+"/changes/archive/", nil) // present at the first start
			}
			r := startStream(t, yaml, nil)
			defer r.stop(t)
			want := []string{"I,zeta,hr,2,b", "I,zeta,hr,3,c"}
			if start == "beginning" {
				want = append([]string{"I,zeta,hr,1,a"}, want...)
				r.waitFor(t, 1, 10*time.Second)
				b.put(t, folder+"/changes/archive/", nil)
			} else {
				// cdc_start: now has listed the folder once Connect is done
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(r.logText(), "CDC: tailing") && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			b.put(t, folder+"/changes/CDC0002.csv", []byte("I,zeta,hr,2,b\n"))
			r.waitFor(t, len(want)-1, 10*time.Second)
			// the marker has been listed by now (it was uploaded first)
			b.put(t, folder+"/changes/CDC0003.csv", []byte("I,zeta,hr,3,c\n"))
			deadline := time.Now().Add(5 * time.Second)
			for len(r.snapshot()) < len(want) && !strings.Contains(r.logText(), "late CDC file") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := strings.Join(bodies(r.snapshot()), "|"); got != strings.Join(want, "|") {
				t.Fatalf("got %q, want %q\nlogs:\n%s", got, strings.Join(want, "|"), r.logText())
			}
			if strings.Contains(r.logText(), "late CDC file") {
				t.Fatalf("a file uploaded after a folder marker was taken as late:\n%s", r.logText())
			}
		})
	}
}

// threeTables puts a table in front of twoTables' two.
const threeTables = `{"TableCount":"3","Tables":[
 {"TableName":"beta","TablePath":"hr/beta/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"},
 {"TableName":"zeta","TablePath":"hr/zeta/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"},
 {"TableName":"alpha","TablePath":"hr/alpha/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"}]}`

// waitLog waits until the logs hold s.
func (r *runner) waitLog(t testing.TB, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(r.logText(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the logs within %s:\n%s", s, within, r.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCheckpointFromAnotherConfiguration: with an explicit checkpoint.key,
// a restart after bucket_folder, cdc_path or the table list changed finds a
// checkpoint whose keys and table indexes belong to the old layout. Resuming
// from it compares keys of one folder with keys of another and table
// indexes of one list with another: files are skipped (taken as read, or as
// late) or tables read again. The input must refuse it, naming the
// checkpoint, instead of resuming wrongly.
func TestCheckpointFromAnotherConfiguration(t *testing.T) {
	t.Run("bucket_folder", func(t *testing.T) {
		b := &dirBackend{root: t.TempDir()}
		ckdir := t.TempDir()
		conf := func(folder string) string {
			return b.yaml() + "bucket_folder: " + folder + "\ncdc_path: changes\nmode: cdc\ntable_definition: '" + twoTables + "'\n" +
				"poll_interval: 50ms\ncheckpoint:\n  directory: " + ckdir + "\n  key: job.json\n  interval: 0s\n"
		}
		b.put(t, "old/changes/CDC1.csv", []byte("I,zeta,hr,1,a\n"))
		r := startStream(t, conf("old"), nil)
		r.waitFor(t, 1, 5*time.Second)
		r.stop(t)
		// the data moves to another folder, and a new file comes
		b.put(t, "new/changes/CDC1.csv", []byte("I,zeta,hr,1,a\n"))
		b.put(t, "new/changes/CDC2.csv", []byte("I,zeta,hr,2,b\n"))
		r2 := startStream(t, conf("new"), nil)
		defer r2.stop(t)
		r2.waitLog(t, "does not match", 5*time.Second)
		logs := r2.logText()
		if !strings.Contains(logs, "job.json") || !strings.Contains(logs, "old/changes/CDC1.csv") {
			t.Fatalf("the error should name the checkpoint and the key it holds:\n%s", logs)
		}
		if m := r2.snapshot(); len(m) != 0 {
			t.Fatalf("rows read from a checkpoint of another folder: %v", m)
		}
	})
	t.Run("tables", func(t *testing.T) {
		b := &dirBackend{root: t.TempDir()}
		ckdir := t.TempDir()
		conf := func(def string) string {
			return b.yaml() + "bucket_folder: dms\nmode: full-load\ntable_definition: '" + def + "'\n" +
				"checkpoint:\n  directory: " + ckdir + "\n  key: job.json\n  interval: 0s\n"
		}
		b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,z\n"))
		b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("2,a\n"))
		r := startStream(t, conf(twoTables), nil)
		r.waitDone(t, 5*time.Second)
		// a table is added in front of the definition
		b.put(t, "dms/hr/beta/LOAD1.csv", []byte("3,b\n"))
		r2 := startStream(t, conf(threeTables), nil)
		defer r2.stop(t)
		r2.waitLog(t, "does not match", 5*time.Second)
		logs := r2.logText()
		if !strings.Contains(logs, "job.json") || !strings.Contains(logs, "hr.beta") {
			t.Fatalf("the error should name the checkpoint and the table that differs:\n%s", logs)
		}
		if m := r2.snapshot(); len(m) != 0 {
			t.Fatalf("rows read from a checkpoint of another table list: %v", keyBody(m))
		}
	})
}

// TestContentEncodingGzipResumePastStoredSize: an object without a .gz
// suffix, stored with Content-Encoding: gzip, checkpointed at a
// (decompressed) offset beyond its stored, compressed size, is resumed
// there, not taken as read to its end.
func TestContentEncodingGzipResumePastStoredSize(t *testing.T) {
	b := newS3Backend(t)
	var sb strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&sb, "%d,%s\n", i, strings.Repeat("z", 100))
	}
	body := gz(t, sb.String())
	key := "dms/hr/zeta/LOAD1.csv"
	b.putGzipEncoded(t, key, body)
	ckdir := t.TempDir()
	yaml := baseYAML(b, "mode: full-load\nbatch_size: 10\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
	var n atomic.Int64
	r := startStream(t, yaml, func([]got) error {
		if n.Add(1) > 3 {
			return errors.New("later") // the first 30 rows are acknowledged
		}
		return nil
	})
	m := r.waitFor(t, 30, 10*time.Second)
	r.stop(t)
	if m[29].Offset <= int64(len(body)) {
		t.Fatalf("test setup: the checkpoint (after offset %d) should lie beyond the stored size %d", m[29].Offset, len(body))
	}
	r2 := startStream(t, yaml, nil)
	r2.waitDone(t, 10*time.Second)
	got := append(bodies(r.snapshot()), bodies(r2.snapshot())...)
	want := strings.Split(strings.TrimSuffix(sb.String(), "\n"), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %d rows, want %d (second run: %d rows)", len(got), len(want), len(r2.snapshot()))
	}
}

// TestResumeAtTheEndOfAPlainObject: a checkpoint at the end of a plain object
// (saved before it was marked done) goes on with the next file, without
// reading it again or failing on the unsatisfiable range.
func TestResumeAtTheEndOfAPlainObject(t *testing.T) {
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	b.put(t, "dms/hr/zeta/LOAD2.csv", []byte("3,c\n"))
	h, err := b.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &b.bucket, Key: aws.String("dms/hr/zeta/LOAD1.csv")})
	if err != nil {
		t.Fatal(err)
	}
	ckdir := t.TempDir()
	st := &checkpoint.State{Position: checkpoint.Position{Phase: checkpoint.PhaseFullLoad, Key: "dms/hr/zeta/LOAD1.csv", ETag: aws.ToString(h.ETag), Offset: 8, Line: 3}}
	if err := (&checkpoint.File{Path: filepath.Join(ckdir, "job.json")}).Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	r := startStream(t, baseYAML(b, "mode: full-load\ncheckpoint:\n  directory: "+ckdir+"\n  key: job.json\n"), nil)
	r.waitDone(t, 10*time.Second)
	if got := strings.Join(keyBody(r.snapshot()), " "); got != "dms/hr/zeta/LOAD2.csv|3,c" {
		t.Fatalf("got %q\n%s", got, r.logText())
	}
	if strings.Contains(r.logText(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", r.logText())
	}
}

// TestOddKeys: keys with spaces, '+', '%', '=', '&', unicode and a folder
// with a space are listed, read, resumed after and tailed past.
func TestOddKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ckdir := t.TempDir()
		yaml := b.yaml() + "bucket_folder: 'my dms+x'\ncdc_path: 'chänges=1'\ntable_definition: '" + twoTables + "'\n" +
			"poll_interval: 50ms\nlate_file_check_interval: 100ms\ncheckpoint:\n  directory: " + ckdir + "\n  interval: 0s\n"
		keys := []string{"my dms+x/hr/zeta/a b.csv", "my dms+x/hr/zeta/a+b%20c.csv", "my dms+x/hr/zeta/a=b&c.csv", "my dms+x/hr/zeta/é ü.csv"}
		var want []string
		for i, k := range keys {
			b.put(t, k, []byte(fmt.Sprintf("%d,x\n", i)))
			want = append(want, fmt.Sprintf("%d,x", i))
		}
		b.put(t, "my dms+x/chänges=1/C 1+%.csv", []byte("I,zeta,hr,10,a\n"))
		want = append(want, "I,zeta,hr,10,a")
		r := startStream(t, yaml, nil)
		r.waitFor(t, len(want), 10*time.Second)
		r.stop(t)
		b.put(t, "my dms+x/chänges=1/C 2+%.csv", []byte("I,zeta,hr,11,b\n"))
		b.put(t, "my dms+x/chänges=1/C 2+%ü.csv", []byte("I,zeta,hr,12,c\n"))
		want = append(want, "I,zeta,hr,11,b", "I,zeta,hr,12,c")
		r2 := startStream(t, yaml, nil)
		r2.waitFor(t, 2, 10*time.Second)
		time.Sleep(300 * time.Millisecond) // past a late check and polls: nothing more
		r2.stop(t)
		got := append(bodies(r.snapshot()), bodies(r2.snapshot())...)
		if strings.Join(got, "|") != strings.Join(want, "|") || strings.Contains(r2.logText(), "late CDC") {
			t.Fatalf("got %q, want %q\n%s", got, want, r2.logText())
		}
	})
}

// TestRewrittenOldCDCFileNotReadAgain: "A CDC key already processed is
// never re-read, even if rewritten (high-water mark)" must hold across a
// restart too, also for a key older than the bounded record of listed keys
// (e.g. a job that copies every object onto itself to re-encrypt it).
func TestRewrittenOldCDCFileNotReadAgain(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	ckdir := t.TempDir()
	yaml := baseYAML(b, "mode: cdc\nlate_files: process\npoll_interval: 50ms\nlate_file_check_interval: 100ms\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
	n := checkpoint.SeenCap + 20
	for i := 0; i < n; i++ {
		b.put(t, fmt.Sprintf("dms/changes/CDC%05d.csv", i), []byte(fmt.Sprintf("I,zeta,hr,%d,a\n", i)))
		if i%16 == 0 {
			time.Sleep(2 * time.Millisecond) // modification times spread over several milliseconds
		}
	}
	r := startStream(t, yaml, nil)
	r.waitFor(t, n, 20*time.Second)
	time.Sleep(200 * time.Millisecond)
	r.stop(t)
	time.Sleep(5 * time.Millisecond)
	b.put(t, "dms/changes/CDC00001.csv", []byte("I,zeta,hr,1,a\n")) // rewritten in place
	r2 := startStream(t, yaml, nil)
	time.Sleep(500 * time.Millisecond) // past polls and a late check
	r2.stop(t)
	if m := r2.snapshot(); len(m) != 0 || strings.Contains(r2.logText(), "late CDC file") {
		t.Fatalf("a rewritten, already processed CDC file was read again (%d rows) or reported late:\n%s", len(m), r2.logText())
	}
}

// TestBytesDoneAfterMidFileResume: after a restart in the middle of a file,
// the table's full load still completes at 100% of its bytes (the bytes
// before the checkpoint were read by the run before).
func TestBytesDoneAfterMidFileResume(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		var sb strings.Builder
		for i := 0; i < 50; i++ {
			fmt.Fprintf(&sb, "%d,row\n", i)
		}
		b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(sb.String()))
		b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("1,a\n"))
		ckdir := t.TempDir()
		yaml := baseYAML(b, "mode: full-load\nbatch_size: 10\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
		var n atomic.Int64
		r := startStream(t, yaml, func([]got) error {
			if n.Add(1) > 2 {
				return errors.New("later")
			}
			return nil
		})
		r.waitFor(t, 20, 10*time.Second)
		r.stop(t)
		r2 := startStream(t, yaml, nil)
		r2.waitDone(t, 10*time.Second)
		if got := len(r.snapshot()) + len(r2.snapshot()); got != 51 {
			t.Fatalf("%d rows", got)
		}
		size := sb.Len()
		if want := fmt.Sprintf("table hr.zeta: full load completed 100.0%% (%d of %d bytes, 1 of 1 files, 50 rows)", size, size); !strings.Contains(r2.logText(), want) {
			t.Fatalf("want %q in the logs:\n%s", want, r2.logText())
		}
	})
}

// TestResumeWithHeaderAndCRLF: files with a BOM, a header row, CRLF row
// delimiters and quoted fields holding CRLF, read over several restarts,
// give every row once, in order, without the headers.
func TestResumeWithHeaderAndCRLF(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		var want []string
		mk := func(prefix string, n int) []byte {
			var sb strings.Builder
			sb.WriteString("\xEF\xBB\xBFid,v\r\n")
			for i := 0; i < n; i++ {
				row := fmt.Sprintf("%s%d,\"a\r\nb,%d\"", prefix, i, i)
				sb.WriteString(row + "\r\n")
				want = append(want, row)
			}
			return []byte(sb.String())
		}
		b.put(t, "dms/hr/zeta/LOAD1.csv", mk("", 25))
		b.put(t, "dms/hr/zeta/LOAD2.csv", mk("", 3))
		b.put(t, "dms/changes/CDC1.csv", mk("I,zeta,hr,", 25))
		ckdir := t.TempDir()
		yaml := baseYAML(b, "csv_row_delimiter: '\\r\\n'\nignore_header_rows: 1\ncdc_ignore_header_rows: true\nbatch_size: 4\npoll_interval: 50ms\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
		var all []string
		for run := 0; len(all) < len(want); run++ {
			if run > 30 {
				t.Fatalf("%d of %d rows after %d runs", len(all), len(want), run)
			}
			var n atomic.Int64
			r := startStream(t, yaml, func([]got) error {
				if n.Add(1) > 2 {
					return errors.New("later") // two batches per run
				}
				return nil
			})
			r.waitFor(t, min(8, len(want)-len(all)), 10*time.Second)
			r.stop(t)
			all = append(all, bodies(r.snapshot())...)
		}
		if strings.Join(all, "|") != strings.Join(want, "|") {
			t.Fatalf("got %d rows, want %d:\n%q\n%q", len(all), len(want), all, want)
		}
	})
}

// TestCDCPagination: CDC files spread over many listing pages, present at
// the start and arriving in a burst while running, are all read once, in
// order, with no late file reported.
func TestCDCPagination(t *testing.T) {
	b := newS3Backend(t)
	yaml := baseYAML(b, "mode: cdc\nlist_page_size: 7\npoll_interval: 50ms\nlate_file_check_interval: 100ms\ncheckpoint:\n  store: none\n")
	var want []string
	put := func(from, to int) {
		for i := from; i < to; i++ {
			row := fmt.Sprintf("I,zeta,hr,%d,a", i)
			b.put(t, fmt.Sprintf("dms/changes/CDC%04d.csv", i), []byte(row+"\n"))
			if i%5 == 0 {
				b.put(t, fmt.Sprintf("dms/changes/CDC%04d/", i), nil) // markers in between
			}
			want = append(want, row)
		}
	}
	put(0, 30)
	r := startStream(t, yaml, nil)
	defer r.stop(t)
	r.waitFor(t, 30, 10*time.Second)
	put(30, 75)
	r.waitFor(t, 75, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // polls and late checks: nothing more
	if got := bodies(r.snapshot()); strings.Join(got, "|") != strings.Join(want, "|") || strings.Contains(r.logText(), "late CDC") {
		t.Fatalf("got %d rows, want %d\n%s", len(got), len(want), r.logText())
	}
}

// TestCorruptCheckpointRefused: a truncated or empty checkpoint file stops
// the input with an error naming it; it never starts over silently.
func TestCorruptCheckpointRefused(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "truncated": `{"version":1,"position":{"phase":2,"seq":0,"key":"dms/chan`} {
		t.Run(name, func(t *testing.T) {
			b := &dirBackend{root: t.TempDir()}
			b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,a\n"))
			ckdir := t.TempDir()
			if err := os.WriteFile(filepath.Join(ckdir, "job.json"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			r := startStream(t, baseYAML(b, "mode: cdc\npoll_interval: 50ms\ncheckpoint:\n  directory: "+ckdir+"\n  key: job.json\n"), nil)
			defer r.stop(t)
			r.waitLog(t, "is corrupt", 5*time.Second)
			time.Sleep(200 * time.Millisecond)
			if m := r.snapshot(); len(m) != 0 || !strings.Contains(r.logText(), filepath.Join(ckdir, "job.json")) {
				t.Fatalf("%d rows; logs:\n%s", len(m), r.logText())
			}
		})
	}
}

// TestCheckpointedFileDeletedWhileStopped: the object the checkpoint is in
// the middle of is deleted while the input is stopped. The rest of its rows
// cannot be read, but that is a bad file like one deleted between listing
// and reading (logged as an error naming it, counted; bad_files decides),
// not a silent skip.
func TestCheckpointedFileDeletedWhileStopped(t *testing.T) {
	for _, phase := range []string{"full-load", "cdc"} {
		t.Run(phase, func(t *testing.T) {
			b := &dirBackend{root: t.TempDir()}
			var sb strings.Builder
			for i := 0; i < 30; i++ {
				fmt.Fprintf(&sb, "I,zeta,hr,%d,a\n", i)
			}
			key := "dms/hr/zeta/LOAD1.csv"
			mode := "full-load"
			if phase == "cdc" {
				key, mode = "dms/changes/CDC1.csv", "cdc"
			}
			b.put(t, key, []byte(sb.String()))
			next := strings.Replace(key, "1.csv", "2.csv", 1)
			b.put(t, next, []byte("I,zeta,hr,99,z\n"))
			ckdir := t.TempDir()
			yaml := baseYAML(b, "mode: "+mode+"\nbatch_size: 5\npoll_interval: 50ms\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
			var n atomic.Int64
			r := startStream(t, yaml, func([]got) error {
				if n.Add(1) > 1 {
					return errors.New("later")
				}
				return nil
			})
			r.waitFor(t, 5, 10*time.Second)
			r.stop(t)
			b.del(t, key)
			r2 := startStream(t, yaml, nil)
			defer r2.stop(t)
			r2.waitLog(t, "bad object", 5*time.Second)
			if !strings.Contains(r2.logText(), key) {
				t.Fatalf("the error should name the object:\n%s", r2.logText())
			}
			// and the input goes on with the next file (bad_files: skip)
			if m := r2.waitFor(t, 1, 5*time.Second); m[0].Key != next || len(r2.snapshot()) != 1 {
				t.Fatalf("after the deleted file: %v", keyBody(r2.snapshot()))
			}
		})
	}
}
