package s3dms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// Two tables whose definition order is not their lexical order.
const twoTables = `{"TableCount":"2","Tables":[
 {"TableName":"zeta","TablePath":"hr/zeta/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"},
 {"TableName":"alpha","TablePath":"hr/alpha/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"}]}`

func baseYAML(b backend, extra string) string {
	return b.yaml() + "bucket_folder: dms\ncdc_path: changes\ntable_definition: '" + twoTables + "'\n" + extra
}

// fixture uploads full-load files exercising every format feature plus CDC
// files, and returns the rows expected in order (as "key|body").
func fixture(t *testing.T, b backend, alphaFiles int) []string {
	var want []string
	add := func(key string, rows ...string) {
		for _, r := range rows {
			want = append(want, key+"|"+r)
		}
	}
	// zeta: BOM + CRLF, gzip, quoted newlines, an empty file, a directory marker
	b.put(t, "dms/hr/zeta/LOAD001.csv", []byte("\xEF\xBB\xBF1,a\r\n2,b\r\n"))
	add("dms/hr/zeta/LOAD001.csv", "1,a", "2,b")
	b.put(t, "dms/hr/zeta/LOAD002.csv.gz", gz(t, "3,\"multi\nline\"\n4,\"q\"\"uote\"\n"))
	add("dms/hr/zeta/LOAD002.csv.gz", "3,\"multi\nline\"", "4,\"q\"\"uote\"")
	b.put(t, "dms/hr/zeta/LOAD003.csv", nil)
	b.put(t, "dms/hr/zeta/LOAD003.csv.bak", []byte("5,prefix-key\n"))
	add("dms/hr/zeta/LOAD003.csv.bak", "5,prefix-key")
	b.put(t, "dms/hr/zeta/sub/LOAD004.csv", []byte("6,nested"))
	add("dms/hr/zeta/sub/LOAD004.csv", "6,nested")
	// alpha: many files (pagination when > 1000)
	for i := 0; i < alphaFiles; i++ {
		k := fmt.Sprintf("dms/hr/alpha/LOAD%05d.csv", i)
		b.put(t, k, []byte(fmt.Sprintf("%d,x\n", i)))
		add(k, fmt.Sprintf("%d,x", i))
	}
	// CDC, uploaded before the start
	b.put(t, "dms/changes/CDC00001.csv", []byte("INSERT,zeta,hr,7,c\nUPDATE,alpha,hr,0,y\n"))
	add("dms/changes/CDC00001.csv", "INSERT,zeta,hr,7,c", "UPDATE,alpha,hr,0,y")
	b.put(t, "dms/changes/CDC00002.csv", []byte("DELETE,zeta,hr,7,c\n"))
	add("dms/changes/CDC00002.csv", "DELETE,zeta,hr,7,c")
	// not under any path: ignored
	b.put(t, "dms/hr/zetaX/LOAD001.csv", []byte("no,no\n"))
	b.put(t, "other/x.csv", []byte("no,no\n"))
	return want
}

func keyBody(m []got) []string {
	out := make([]string, len(m))
	for i, g := range m {
		out[i] = g.Key + "|" + g.Body
	}
	return out
}

func TestOrderFullLoadThenCDC(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		n := 30
		if b.name() == "versitygw" {
			n = 1005 // more than one ListObjectsV2 page
		}
		want := fixture(t, b, n)
		r := startStream(t, baseYAML(b, "poll_interval: 100ms\nbatch_size: 64\nprogress_interval: 1ms\ncheckpoint:\n  store: none\n"), nil)
		defer r.stop(t)
		m := r.waitFor(t, len(want), 60*time.Second)
		if got := keyBody(m); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("order:\n got %d rows %q...\nwant %d rows %q...", len(got), got[:min(8, len(got))], len(want), want[:8])
		}
		// positions sort in processing order and are unique
		for i := 1; i < len(m); i++ {
			if m[i].Position <= m[i-1].Position {
				t.Fatalf("dms_position not increasing at %d: %q then %q", i, m[i-1].Position, m[i].Position)
			}
		}
		first := m[0]
		wantBucket := ""
		if s3b, ok := b.(*s3Backend); ok {
			wantBucket = s3b.bucket
		}
		if first.Phase != "full-load" || first.Schema != "hr" || first.Table != "zeta" || first.Line != 1 || first.Offset != 3 ||
			first.Bucket != wantBucket || first.Etag == "" || first.Position != "1/00000/dms/hr/zeta/LOAD001.csv 00000000000000000003" {
			t.Fatalf("first row metadata: %+v", first)
		}
		if _, err := time.Parse(time.RFC3339Nano, first.LastModified); err != nil {
			t.Fatalf("s3_last_modified %q: %v", first.LastModified, err)
		}
		if m[1].Line != 2 || m[1].Offset != 8 {
			t.Fatalf("second row line/offset %d/%d", m[1].Line, m[1].Offset)
		}
		q := m[3] // 4,"q""uote" after the 2-line row in the gzip file
		if q.Line != 3 || q.Offset != int64(len("3,\"multi\nline\"\n")) {
			t.Fatalf("row after quoted newline: line %d offset %d", q.Line, q.Offset)
		}
		cdc := m[len(m)-3]
		if cdc.Phase != "cdc" || cdc.Schema != "" || cdc.Table != "" || !strings.HasPrefix(cdc.Position, "2/00000/dms/changes/CDC00001.csv ") {
			t.Fatalf("cdc metadata: %+v", cdc)
		}
		// progress is logged as a percentage during the full load
		logs := r.logText()
		if !strings.Contains(logs, fmt.Sprintf("table hr.alpha: full load completed 100.0%% (140 of 140 bytes, %d of %d files, %d rows)", n, n, n)) && b.name() == "dir" {
			t.Fatalf("no completion percentage in logs:\n%.3000s", logs)
		}
		if b.name() == "versitygw" && !strings.Contains(logs, "table hr.alpha: full load in progress ") {
			t.Fatalf("no progress percentage in logs:\n%.3000s", logs)
		}
		// then the CDC status and lag, at the same interval, idle polls included
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(r.logText(), "CDC: 2 files processed, 0 pending, 0 late, 3 rows; lag ") {
			if time.Now().After(deadline) {
				t.Fatalf("no CDC status line in logs:\n%.3000s", r.logText())
			}
			time.Sleep(50 * time.Millisecond)
		}
		// statistics
		snap := Stats()["aws_s3_dms"]
		if len(snap.Tables) != 2 || snap.Tables[0].State != StateCompleted || snap.Tables[1].State != StateCompleted ||
			snap.Tables[0].FullLoadRows != 6 || snap.Tables[1].FullLoadRows != int64(n) || snap.Tables[1].FilesTotal != int64(n) ||
			snap.Tables[1].FilesDone != int64(n) || snap.Tables[0].FilesTotal != 5 || snap.CDC.FilesProcessed != 2 || snap.Phase != "cdc" {
			t.Fatalf("stats: %+v", snap)
		}
	})
}

func TestTableStartControl(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("2,b\n"))
	r := startStream(t, baseYAML(b, "mode: full-load\nemit_table_start: true\ncheckpoint:\n  store: none\n"), nil)
	if err := <-r.done; err != nil {
		t.Fatalf("full-load mode should end cleanly: %v", err)
	}
	m := r.snapshot()
	var seq []string
	for _, g := range m {
		seq = append(seq, fmt.Sprintf("%s:%s.%s:%q", g.Control, g.Schema, g.Table, g.Body))
	}
	want := []string{`table-start:hr.zeta:""`, `:hr.zeta:"1,a"`, `table-start:hr.alpha:""`, `:hr.alpha:"2,b"`}
	if strings.Join(seq, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v want %v", seq, want)
	}
	if m[0].Phase != "full-load" || m[0].Position >= m[1].Position {
		t.Fatalf("control metadata %+v", m[0])
	}
}

// TestCDCStartControl: with emit_cdc_start, the CDC phase begins with a
// cdc-start control message before any CDC row, after the full load, and
// again when a restart resumes in CDC.
func TestCDCStartControl(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	ckdir := t.TempDir()
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,2,b\n"))
	yaml := baseYAML(b, "emit_cdc_start: true\npoll_interval: 50ms\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
	seqOf := func(m []got) string {
		var seq []string
		for _, g := range m {
			seq = append(seq, fmt.Sprintf("%s:%s:%q", g.Control, g.Phase, g.Body))
		}
		return strings.Join(seq, " ")
	}
	r := startStream(t, yaml, nil)
	m := r.waitFor(t, 3, 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	r.stop(t)
	if got, want := seqOf(r.snapshot()), `:full-load:"1,a" cdc-start:cdc:"" :cdc:"I,zeta,hr,2,b"`; got != want {
		t.Fatalf("first run: %s, want %s", got, want)
	}
	if m[1].Schema != "" || m[1].Position <= m[0].Position || m[1].Position >= m[2].Position {
		t.Fatalf("cdc-start metadata %+v (rows around it %s, %s)", m[1], m[0].Position, m[2].Position)
	}
	r2 := startStream(t, yaml, nil)
	b.put(t, "dms/changes/CDC2.csv", []byte("U,zeta,hr,2,c\n"))
	r2.waitFor(t, 2, 5*time.Second)
	r2.stop(t)
	if got, want := seqOf(r2.snapshot()), `cdc-start:cdc:"" :cdc:"U,zeta,hr,2,c"`; got != want {
		t.Fatalf("after a restart in CDC: %s, want %s", got, want)
	}
}

func TestHeaderRows(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("id,v\n1,a\n"))
	b.put(t, "dms/hr/alpha/LOAD1.csv.gz", gz(t, "\xEF\xBB\xBFid,v\r\n2,b\r\n"))
	b.put(t, "dms/changes/CDC1.csv", []byte("op,t,s,id,v\nI,zeta,hr,3,c\n"))
	for _, cdcHeader := range []bool{false, true} {
		r := startStream(t, baseYAML(b, fmt.Sprintf("ignore_header_rows: 1\ncdc_ignore_header_rows: %v\npoll_interval: 50ms\ncheckpoint:\n  store: none\n", cdcHeader)), nil)
		want := []string{"1,a", "2,b", "op,t,s,id,v", "I,zeta,hr,3,c"}
		if cdcHeader {
			want = []string{"1,a", "2,b", "I,zeta,hr,3,c"}
		}
		m := r.waitFor(t, len(want), 10*time.Second)
		r.stop(t)
		if strings.Join(bodies(m), "|") != strings.Join(want, "|") {
			t.Fatalf("cdc header %v: got %q", cdcHeader, bodies(m))
		}
		if m[0].Line != 2 || m[0].Offset != 5 {
			t.Fatalf("row after header: line %d offset %d", m[0].Line, m[0].Offset)
		}
	}
}

func TestTailingAndLateFiles(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		for _, mode := range []string{"skip", "process"} {
			t.Run(mode, func(t *testing.T) {
				folder := "f-" + mode
				yaml := b.yaml() + "bucket_folder: " + folder + "\ncdc_path: changes\nmode: cdc\ntable_definition: '" + twoTables + "'\n" +
					"poll_interval: 100ms\nlate_file_check_interval: 300ms\nlate_files: " + mode + "\ncheckpoint:\n  store: none\n"
				b.put(t, folder+"/changes/CDC0002.csv", []byte("I,zeta,hr,2,b\n"))
				r := startStream(t, yaml, nil)
				defer r.stop(t)
				r.waitFor(t, 1, 10*time.Second)
				// uploaded while running: picked up
				start := time.Now()
				b.put(t, folder+"/changes/CDC0005.csv", []byte("I,zeta,hr,5,e\n"))
				r.waitFor(t, 2, 10*time.Second)
				if d := time.Since(start); d > 3*time.Second {
					t.Fatalf("pickup took %s", d)
				}
				// late: sorts before CDC0005
				b.put(t, folder+"/changes/CDC0003.csv", []byte("I,zeta,hr,3,c\n"))
				time.Sleep(200 * time.Millisecond)
				b.put(t, folder+"/changes/CDC0007.csv", []byte("I,zeta,hr,7,g\n"))
				var want []string
				if mode == "skip" {
					want = []string{"I,zeta,hr,2,b", "I,zeta,hr,5,e", "I,zeta,hr,7,g"}
				} else {
					want = []string{"I,zeta,hr,2,b", "I,zeta,hr,5,e", "I,zeta,hr,7,g", "I,zeta,hr,3,c"}
				}
				r.waitFor(t, len(want), 10*time.Second)
				var m []got
				deadline := time.Now().Add(5 * time.Second)
				for !strings.Contains(r.logText(), "CDC0003.csv") && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if mode == "process" {
					m = r.waitFor(t, 4, 5*time.Second)
					// the late file is processed once found, and its position still
					// sorts after everything emitted before it
					for i := 1; i < len(m); i++ {
						if m[i].Position <= m[i-1].Position {
							t.Fatalf("positions not increasing: %q then %q", m[i-1].Position, m[i].Position)
						}
					}
					for _, g := range m {
						if g.Body == "I,zeta,hr,3,c" && !strings.HasPrefix(g.Position, "2/00001/") {
							t.Fatalf("late row %+v", g)
						}
					}
					sort.Strings(want[2:])
					got := bodies(m)
					sort.Strings(got[2:])
					if strings.Join(got, "|") != strings.Join(want, "|") {
						t.Fatalf("got %q", bodies(m))
					}
				} else {
					time.Sleep(500 * time.Millisecond) // a late check has run: still nothing from CDC0003
					m = r.snapshot()
					if strings.Join(bodies(m), "|") != strings.Join(want, "|") {
						t.Fatalf("got %q want %q", bodies(m), want)
					}
				}
				logs := r.logText()
				if !strings.Contains(logs, "late CDC file") || !strings.Contains(logs, "CDC0003.csv") {
					t.Fatalf("no warning naming the late file in logs:\n%s", logs)
				}
				if Stats()["aws_s3_dms"].CDC.LateFiles != 1 {
					t.Fatalf("late files stat %+v", Stats()["aws_s3_dms"].CDC)
				}
			})
		}
	})
}

// TestResumeExactRow stops after some acknowledged batches and restarts: the
// second run starts at the next row (ranged GET / seek, and a gzip skip).
func TestResumeExactRow(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		var rows []string
		var plain, zipped strings.Builder
		for i := 0; i < 200; i++ {
			fmt.Fprintf(&plain, "%d,plain\n", i)
			fmt.Fprintf(&zipped, "%d,\"zip\nped\"\n", i)
		}
		b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(plain.String()))
		b.put(t, "dms/hr/zeta/LOAD2.csv.gz", gz(t, zipped.String()))
		b.put(t, "dms/changes/CDC1.csv", []byte(plain.String()))
		for _, l := range strings.SplitAfter(plain.String(), "\n") {
			if l != "" {
				rows = append(rows, strings.TrimSuffix(l, "\n"))
			}
		}
		var want []string
		want = append(want, rows...)
		for i := 0; i < 200; i++ {
			want = append(want, fmt.Sprintf("%d,\"zip\nped\"", i))
		}
		want = append(want, rows...)
		ckdir := t.TempDir()
		yaml := baseYAML(b, "batch_size: 7\npoll_interval: 50ms\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 20ms\n")
		if b.name() == "versitygw" {
			// the s3 store: each clean stop releases the claim, so the next
			// run takes over at once
			yaml = baseYAML(b, "batch_size: 7\npoll_interval: 50ms\ncheckpoint:\n  store: s3\n  interval: 20ms\n  lease: 1s\n")
		}
		var all []string
		slow := func([]got) error { time.Sleep(3 * time.Millisecond); return nil }
		runs := 0
		for len(all) < len(want) {
			runs++
			if runs > 40 {
				t.Fatalf("%d rows after %d runs", len(all), runs)
			}
			r := startStream(t, yaml, slow)
			r.waitFor(t, min(60, len(want)-len(all)), 20*time.Second)
			if len(all)+60 >= len(want) {
				r.waitFor(t, len(want)-len(all), 20*time.Second)
				time.Sleep(100 * time.Millisecond) // nothing more may come
			}
			r.stop(t)
			all = append(all, bodies(r.snapshot())...)
		}
		if runs < 4 {
			t.Fatalf("only %d runs", runs)
		}
		if strings.Join(all, "|") != strings.Join(want, "|") {
			t.Fatalf("after restarts: %d rows, want %d (no loss, no duplicate)", len(all), len(want))
		}
		if b.name() == "dir" {
			ents, _ := os.ReadDir(ckdir)
			if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "aws_s3_dms-") {
				t.Fatalf("checkpoint directory: %v", ents)
			}
		} else {
			sb := b.(*s3Backend)
			l, err := sb.client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &sb.bucket, Prefix: aws.String("dmsbridge-checkpoints/")})
			if err != nil || len(l.Contents) != 1 || !strings.HasPrefix(*l.Contents[0].Key, "dmsbridge-checkpoints/aws_s3_dms-"+sb.bucket+"-") {
				t.Fatalf("checkpoint object: %v %v", l, err)
			}
		}
	})
}

func TestCDCStartNow(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,old\n"))
	b.put(t, "dms/changes/CDC2.csv", []byte("I,zeta,hr,2,old\n"))
	ckdir := t.TempDir()
	yaml := baseYAML(b, "mode: cdc\ncdc_start: now\npoll_interval: 50ms\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 10ms\n")
	r := startStream(t, yaml, nil)
	// CDC3 is uploaded only once "now" is decided: Connect saves the
	// checkpoint with the start point before the input reads.
	files := func() []string { f, _ := filepath.Glob(filepath.Join(ckdir, "aws_s3_dms-*.json")); return f }
	var st *checkpoint.State
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if f := files(); len(f) == 1 {
			var err error
			if st, err = (&checkpoint.File{Path: f[0]}).Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st != nil && st.CDCStartSet {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint with the CDC start point after 20s (files %v)\nlogs:\n%s", files(), r.logText())
		}
	}
	if st.CDCStartAfter != "dms/changes/CDC2.csv" {
		t.Fatalf("cdc_start: now decided to start after %q, want the newest key at the start, dms/changes/CDC2.csv", st.CDCStartAfter)
	}
	b.put(t, "dms/changes/CDC3.csv", []byte("I,zeta,hr,3,new\n"))
	r.waitFor(t, 1, 5*time.Second)
	r.stop(t)
	// a restart keeps the start point decided at the first start
	b.put(t, "dms/changes/CDC4.csv", []byte("I,zeta,hr,4,new\n"))
	r2 := startStream(t, yaml, nil)
	r2.waitFor(t, 1, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	r2.stop(t)
	got := append(bodies(r.snapshot()), bodies(r2.snapshot())...)
	if strings.Join(got, "|") != "I,zeta,hr,3,new|I,zeta,hr,4,new" {
		t.Fatalf("got %q", got)
	}
}

// TestContentEncodingGzip: an object without a .gz suffix but stored with
// Content-Encoding: gzip is decompressed, also when resumed mid-file.
func TestContentEncodingGzip(t *testing.T) {
	b := newS3Backend(t)
	var sb strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&sb, "%d,z\n", i)
	}
	key := "dms/hr/zeta/LOAD1.csv"
	b.putGzipEncoded(t, key, gz(t, sb.String()))
	ckdir := t.TempDir()
	yaml := baseYAML(b, "mode: full-load\nbatch_size: 10\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 10ms\n")
	var n atomic.Int64
	r := startStream(t, yaml, func([]got) error {
		if n.Add(1) > 3 {
			return errors.New("later") // the first 30 rows are acknowledged
		}
		return nil
	})
	r.waitFor(t, 30, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	r.stop(t)
	r2 := startStream(t, yaml, nil)
	if err := <-r2.done; err != nil {
		t.Fatal(err)
	}
	got := append(bodies(r.snapshot()), bodies(r2.snapshot())...)
	want := strings.Split(strings.TrimSuffix(sb.String(), "\n"), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %d rows %q...", len(got), got[:min(5, len(got))])
	}
}

func TestResumeChangedObject(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n3,c\n"))
	ckdir := t.TempDir()
	yaml := baseYAML(b, "mode: full-load\nbatch_size: 1\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 10ms\n")
	var accepted atomic.Int64
	r := startStream(t, yaml, func([]got) error {
		if accepted.Add(1) > 1 {
			return errors.New("not now") // only the first row is acknowledged
		}
		return nil
	})
	r.waitFor(t, 1, 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	r.stop(t)
	n := len(r.snapshot())
	if n >= 3 {
		t.Fatalf("the first run read %d rows; the test needs it stopped mid-file", n)
	}
	time.Sleep(20 * time.Millisecond)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,CHANGED\n3,c\n4,d\n"))
	// fails with a clear error naming the object
	r = startStream(t, yaml, nil)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.logText(), "changed since it was checkpointed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	logs := r.logText()
	r.stop(t)
	if !strings.Contains(logs, "LOAD1.csv") || !strings.Contains(logs, "restart_changed_files") || len(r.snapshot()) != 0 {
		t.Fatalf("expected an ETag error naming the file, got %d rows and logs:\n%s", len(r.snapshot()), logs)
	}
	// with the flag it re-reads the file from the start
	r = startStream(t, yaml+"restart_changed_files: true\n", nil)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(bodies(r.snapshot()), "|"); got != "1,a|2,CHANGED|3,c|4,d" {
		t.Fatalf("got %s", got)
	}
}

// TestNackRedelivery rejects batches at random; every rejected batch comes
// back with the same rows in the same order before anything newer, and the
// last copies of the accepted rows are exactly the input, in order.
func TestNackRedelivery(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		var sb strings.Builder
		var want []string
		for i := 0; i < 300; i++ {
			fmt.Fprintf(&sb, "%d,v\n", i)
			want = append(want, fmt.Sprintf("%d,v", i))
		}
		b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(sb.String()))
		var rejected [][]string
		var delivered [][]string
		seen := map[int]bool{}
		handle := func(batch []got) error {
			delivered = append(delivered, bodies(batch))
			first := rowNum(batch[0].Body)
			if first%30 == 0 && !seen[first] { // every third batch, once
				seen[first] = true
				rejected = append(rejected, bodies(batch))
				return errors.New("downstream said no")
			}
			return nil
		}
		ckdir := t.TempDir()
		r := startStream(t, baseYAML(b, "mode: full-load\nbatch_size: 10\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 10ms\n"), handle)
		r.waitDone(t, 30*time.Second)
		if len(rejected) < 5 {
			t.Fatalf("only %d rejections", len(rejected))
		}
		// each rejected batch comes back unchanged, and only batches that were
		// already in flight (at most a few) are delivered in between
		var redelivered []int
		for i, d := range delivered {
			if first := rowNum(d[0]); first%30 != 0 || redeliveredOnce(delivered[:i], d) {
				continue
			}
			back := -1
			for j := i + 1; j < len(delivered); j++ {
				if strings.Join(delivered[j], "|") == strings.Join(d, "|") {
					back = j
					break
				}
			}
			if back < 0 {
				t.Fatalf("rejected batch %q never redelivered", d)
			}
			redelivered = append(redelivered, back)
			// Acks reach the input asynchronously: batches it emitted before
			// the nack arrived may be delivered first (a handful; more on a
			// loaded machine). TestNackGoBackN checks the exact rule.
			if back-i-1 > 16 {
				var seq []int
				for _, d := range delivered {
					seq = append(seq, rowNum(d[0]))
				}
				t.Fatalf("rejected batch %d redelivered after %d newer batches: %v", i, back-i-1, seq)
			}
		}
		if !sort.IntsAreSorted(redelivered) {
			t.Fatalf("redeliveries not in emission order: %v", redelivered)
		}
		// accepted rows: all of them; batches emitted after a rejected one
		// are re-sent after its redelivery (go-back-N), so rows may be
		// accepted more than once, but the last copies are in file order
		acc := bodies(r.snapshot())
		last := map[string]int{}
		for i, row := range acc {
			last[row] = i
		}
		lastOrder := append([]string(nil), want...)
		sort.SliceStable(lastOrder, func(i, j int) bool { return last[lastOrder[i]] < last[lastOrder[j]] })
		if len(last) != len(want) || strings.Join(lastOrder, "|") != strings.Join(want, "|") {
			t.Fatalf("accepted rows: %d distinct of %d, want all %d with their last copies in file order", len(last), len(acc), len(want))
		}
		// the checkpoint ends at the end of the file
		ents, _ := os.ReadDir(ckdir)
		data, _ := os.ReadFile(filepath.Join(ckdir, ents[0].Name()))
		if !strings.Contains(string(data), fmt.Sprintf(`"offset":%d`, sb.Len())) {
			t.Fatalf("checkpoint %s", data)
		}
	})
}

// TestS3CheckpointSecondInstanceRefused: two inputs on one S3 checkpoint.
func TestS3CheckpointSecondInstanceRefused(t *testing.T) {
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	yaml := baseYAML(b, "mode: full-load\ncheckpoint:\n  store: s3\n  key: ckpt/job1.json\n")
	pc, err := inputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := newInput(pc, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := first.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	second, _ := newInput(pc, service.MockResources())
	err = second.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "held by another running instance") || !strings.Contains(err.Error(), "ckpt/job1.json") {
		t.Fatalf("second instance: %v", err)
	}
	// After the first closes cleanly, a new instance takes over at once.
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	third, _ := newInput(pc, service.MockResources())
	if err := third.Connect(ctx); err != nil {
		t.Fatalf("after release: %v", err)
	}
	third.Close(ctx)
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		"table_definition: '" + twoTables + "'\n":                                                                                                 "exactly one of bucket and directory",
		"directory: /tmp\ntable_definition: '" + twoTables + "'\n":                                                                                "cdc_path: required",
		"directory: /tmp\nmode: full-load\ntable_definition: '{}'\n":                                                                              "table_definition",
		"directory: /tmp\nmode: full-load\nbatch_size: 0\ntable_definition: '" + twoTables + "'\n":                                                "batch_size",
		"directory: /tmp\nmode: full-load\nignore_header_rows: 2\ntable_definition: '" + twoTables + "'\n":                                        "ignore_header_rows",
		"directory: /tmp\nmode: full-load\ncsv_row_delimiter: ';'\ntable_definition: '" + twoTables + "'\n":                                       "csv_row_delimiter",
		"directory: /tmp\nmode: full-load\ncheckpoint:\n  store: s3\ntable_definition: '" + twoTables + "'\n":                                     "checkpoint.bucket",
		"bucket: b\nbucket_folder: dms\nmode: full-load\ncheckpoint:\n  store: s3\n  key: dms/hr/zeta/x\ntable_definition: '" + twoTables + "'\n": "lies under the full-load path",
	}
	for yaml, want := range cases {
		pc, err := inputSpec().ParseYAML(yaml, nil)
		if err == nil {
			_, err = newInput(pc, service.MockResources())
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: error %v, want it to mention %q", yaml, err, want)
		}
	}
}

// Benthos' lint accepts an enum value in any case, so the input reads it
// in any case: "File" used to pass lint and then keep no checkpoint at all,
// and "Full-Load" to tail the CDC folder forever.
func TestConfigEnumsAnyCase(t *testing.T) {
	yaml := "directory: /tmp\nmode: Full-Load\ncdc_start: NOW\nlate_files: Process\nbad_files: Stop\n" +
		"checkpoint:\n  store: File\ntable_definition: '" + twoTables + "'\n"
	pc, err := inputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseConf(pc)
	if err != nil {
		t.Fatal(err)
	}
	if c.mode != "full-load" || !c.cdcStartNow || !c.lateProcess || !c.badStop || c.ckStore != "file" {
		t.Fatalf("mode %q, cdc_start now %v, late_files process %v, bad_files stop %v, checkpoint.store %q",
			c.mode, c.cdcStartNow, c.lateProcess, c.badStop, c.ckStore)
	}
}

func rowNum(s string) int {
	var n int
	fmt.Sscanf(s, "%d,", &n)
	return n
}

func redeliveredOnce(before [][]string, d []string) bool {
	for _, b := range before {
		if strings.Join(b, "|") == strings.Join(d, "|") {
			return true
		}
	}
	return false
}

// nackHarness drives an input directly over 50 rows "0,v".."49,v" in
// batches of 5, checkpoint interval 0s.
func nackHarness(t *testing.T, b backend) (read func() ([]string, service.AckFunc), checkpointOffset func() int64) {
	var sb strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&sb, "%d,v\n", i)
	}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(sb.String()))
	ckdir := t.TempDir()
	in, _ := directInput(t, baseYAML(b, "mode: full-load\nbatch_size: 5\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n"))
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	read = func() ([]string, service.AckFunc) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		batch, ack, err := in.ReadBatch(rctx)
		if err != nil {
			t.Fatal(err)
		}
		var rows []string
		for _, m := range batch {
			body, _ := m.AsBytes()
			rows = append(rows, string(body))
		}
		return rows, ack
	}
	checkpointOffset = func() int64 {
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.acked.Position.Offset
	}
	return read, checkpointOffset
}

// TestNackGoBackN drives the input directly: batches 1..4 emitted, 1 and 3
// acknowledged, 2 nacked. Batch 2 and every batch emitted after it (3,
// although acknowledged, and 4) come back, in emission order, before any
// newer row (go-back-N: they were or will be written after 2's rejected
// delivery, so they are written again after its redelivery). The
// checkpoint stays at the end of batch 1 until 2's redelivery is
// acknowledged, and passes 3 only once 3's redelivery is; acknowledgements
// of the superseded first deliveries change nothing.
func TestNackGoBackN(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		read, checkpointOffset := nackHarness(t, b)
		b1, ack1 := read()
		b2, ack2 := read()
		b3, ack3 := read()
		b4, ack4 := read()
		ack1(ctx, nil)
		ack3(ctx, nil)
		ack2(ctx, errors.New("rejected"))
		if got := checkpointOffset(); got != 20 { // end of b1 ("0,v\n".."4,v\n")
			t.Fatalf("checkpoint offset %d after b1 acked, b2 nacked, b3 acked", got)
		}
		ack4(ctx, nil) // first delivery of 4, superseded: still redelivered
		r2, ackR2 := read()
		r3, ackR3 := read()
		r4, ackR4 := read()
		for i, p := range [][2][]string{{r2, b2}, {r3, b3}, {r4, b4}} {
			if strings.Join(p[0], "|") != strings.Join(p[1], "|") {
				t.Fatalf("redelivery %d: %q, want %q (b1 %q)", i+2, p[0], p[1], b1)
			}
		}
		b5, ack5 := read()
		if b5[0] != "20,v" {
			t.Fatalf("after the redeliveries: %q, want new rows from 20,v", b5)
		}
		ack5(ctx, nil)
		ackR3(ctx, nil)
		if got := checkpointOffset(); got != 20 {
			t.Fatalf("checkpoint passed the unacknowledged redelivery of b2: %d", got)
		}
		ackR2(ctx, nil)
		if got := checkpointOffset(); got != 65 { // end of b3: 10 rows of 4 bytes, 5 of 5 (r3 acked)
			t.Fatalf("checkpoint offset %d after r2, r3 acked (r4 not), want 65 (end of b3)", got)
		}
		ackR4(ctx, nil)
		if got := checkpointOffset(); got != 115 { // end of b5
			t.Fatalf("checkpoint offset %d after everything acked, want 115", got)
		}
	})
}

// TestNackGoBackNStale: a nack while redeliveries are in flight, and
// acknowledgements of superseded deliveries in any order, neither lose a
// batch nor queue one twice.
func TestNackGoBackNStale(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	ctx := context.Background()
	read, checkpointOffset := nackHarness(t, b)
	_, ack1 := read()
	b2, ack2 := read()
	b3, ack3 := read()
	ack2(ctx, errors.New("rejected")) // queue 2, 3
	ack3(ctx, errors.New("rejected")) // superseded delivery: ignored (no double queue)
	r2, ackR2 := read()
	ackR2(ctx, errors.New("rejected again")) // queue 2, 3 again
	ack1(ctx, nil)
	s2, ackS2 := read()
	s3, ackS3 := read()
	if strings.Join(r2, "|") != strings.Join(b2, "|") || strings.Join(s2, "|") != strings.Join(b2, "|") || strings.Join(s3, "|") != strings.Join(b3, "|") {
		t.Fatalf("redeliveries %q %q %q, want b2 b2 b3", r2, s2, s3)
	}
	b4, ack4 := read()
	if b4[0] != "15,v" {
		t.Fatalf("after the redeliveries: %q, want 15,v first (each batch once)", b4)
	}
	ackR2(ctx, nil) // already settled: no effect
	ackS3(ctx, nil)
	ack4(ctx, nil)
	if got := checkpointOffset(); got != 20 {
		t.Fatalf("checkpoint %d passed b2 before its redelivery was acknowledged", got)
	}
	ackS2(ctx, nil)
	if got := checkpointOffset(); got != 90 { // end of b4
		t.Fatalf("checkpoint %d, want 90", got)
	}
}

// TestLateFilesProcessAcrossRestart: a late file processed before a restart
// is remembered in the checkpoint and not processed again; a new late file
// after the restart is.
func TestLateFilesProcessAcrossRestart(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	ckdir := t.TempDir()
	yaml := baseYAML(b, "mode: cdc\npoll_interval: 50ms\nlate_file_check_interval: 200ms\nlate_files: process\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 10ms\n")
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,a\n"))
	b.put(t, "dms/changes/CDC5.csv", []byte("I,zeta,hr,5,e\n"))
	r := startStream(t, yaml, nil)
	r.waitFor(t, 2, 5*time.Second)
	b.put(t, "dms/changes/CDC3.csv", []byte("I,zeta,hr,3,c\n"))
	m := r.waitFor(t, 3, 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	r.stop(t)
	if m[2].Body != "I,zeta,hr,3,c" || !strings.HasPrefix(m[2].Position, "2/00001/") {
		t.Fatalf("late row %+v", m[2])
	}
	r2 := startStream(t, yaml, nil)
	time.Sleep(500 * time.Millisecond) // past a late check
	b.put(t, "dms/changes/CDC2.csv", []byte("I,zeta,hr,2,b\n"))
	r2.waitFor(t, 1, 5*time.Second)
	time.Sleep(400 * time.Millisecond)
	r2.stop(t)
	m2 := r2.snapshot()
	if len(m2) != 1 || m2[0].Body != "I,zeta,hr,2,b" || !strings.HasPrefix(m2[0].Position, "2/00002/") || m2[0].Position <= m[2].Position {
		t.Fatalf("after restart: %+v", m2)
	}
}

// TestLateFileReadToItsEndSurvivesCrash: a late file whose last batch ends
// exactly at its end is saved at that end before it is marked done (the
// input idles in its next ReadBatch). A crash then, and a restart, must not
// take the file for one that appeared while the input was stopped and read
// it again.
func TestLateFileReadToItsEndSurvivesCrash(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ckdir := t.TempDir()
		yaml := b.yaml() + "bucket_folder: dms\ncdc_path: changes\nmode: cdc\ntable_definition: '" + twoTables + "'\n" +
			"poll_interval: 50ms\nlate_files: process\nlate_file_check_interval: 200ms\nbatch_size: 3\n" +
			"checkpoint:\n  directory: " + ckdir + "\n  interval: 0s\n"
		b.put(t, "dms/changes/CDC0002.csv", []byte("I,zeta,hr,2,b\n"))
		b.put(t, "dms/changes/CDC0005.csv", []byte("I,zeta,hr,5,e\n"))
		// read returns the rows of one batch, or nil when none came within
		// the time given; any other error fails the test (an input that
		// cannot read must not pass for one that reads nothing again).
		read := func(in *input, within time.Duration) []string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), within)
			defer cancel()
			batch, ack, err := in.ReadBatch(ctx)
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return nil
			}
			if err != nil {
				t.Fatalf("ReadBatch: %v", err)
			}
			ack(context.Background(), nil)
			var out []string
			for _, m := range batch {
				body, _ := m.AsBytes()
				out = append(out, string(body))
			}
			return out
		}
		a, _ := directInput(t, yaml)
		if err := a.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		var first []string
		for len(first) < 2 {
			r := read(a, 5*time.Second)
			if r == nil {
				t.Fatalf("first run read only %q", first)
			}
			first = append(first, r...)
		}
		// late, and exactly batch_size rows
		b.put(t, "dms/changes/CDC0003.csv", []byte("I,zeta,hr,3,c\nI,zeta,hr,3,d\nI,zeta,hr,3,e\n"))
		if late := read(a, 5*time.Second); len(late) != 3 {
			t.Fatalf("late file rows: %q", late)
		}
		// The acknowledgement is saved by the saver goroutine (interval 0s):
		// wait for the save itself, not for a time a loaded machine can
		// overrun.
		checkpointText := func() string {
			t.Helper()
			files, _ := filepath.Glob(filepath.Join(ckdir, "aws_s3_dms-*.json"))
			if len(files) != 1 {
				t.Fatalf("checkpoint files %v", files)
			}
			st, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			return string(st)
		}
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(checkpointText(), `"key":"dms/changes/CDC0003.csv"`) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		actx, acancel := context.WithCancel(context.Background())
		defer acancel()
		go a.ReadBatch(actx) // the engine's next call, idle
		time.Sleep(300 * time.Millisecond)
		st := checkpointText()
		if !strings.Contains(st, `"key":"dms/changes/CDC0003.csv"`) {
			t.Fatalf("the case this test is about: the checkpoint at the crash is inside the late file, got %s", st)
		}

		a.releaseClaim()             // a is killed: its process no longer holds the checkpoint file
		c, _ := directInput(t, yaml) // a new process on the same checkpoint
		if err := c.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		var again []string
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
			again = append(again, read(c, 500*time.Millisecond)...)
		}
		if len(again) > 0 {
			t.Fatalf("after a crash with the late file read, acknowledged and saved, the restart read again: %q", again)
		}
		// Positive control: the restarted input reads on. A new file after
		// the high-water mark comes out, exactly its rows, and still none
		// of the late file.
		b.put(t, "dms/changes/CDC0006.csv", []byte("I,zeta,hr,6,f\nI,zeta,hr,6,g\n"))
		want := []string{"I,zeta,hr,6,f", "I,zeta,hr,6,g"}
		var after []string
		for deadline := time.Now().Add(5 * time.Second); len(after) < len(want) && time.Now().Before(deadline); {
			after = append(after, read(c, 500*time.Millisecond)...)
		}
		after = append(after, read(c, 300*time.Millisecond)...) // nothing more may come
		if strings.Join(after, "|") != strings.Join(want, "|") {
			t.Fatalf("after the restart, a new file CDC0006 gave %q, want %q", after, want)
		}
	})
}

// TestLateFilesWhileStopped: a CDC file that appears below the high-water
// mark while the input is stopped is found at the next start from the
// checkpoint's record of listed keys: reported (skip) or processed once
// (process), on S3 and a directory. Files that were there before are not
// reported.
func TestLateFilesWhileStopped(t *testing.T) {
	for _, mode := range []string{"skip", "process"} {
		t.Run(mode, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b backend) {
				ckdir := t.TempDir()
				yaml := baseYAML(b, "mode: cdc\npoll_interval: 50ms\nlate_file_check_interval: 200ms\nlate_files: "+mode+"\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 10ms\n")
				b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,a\n"))
				b.put(t, "dms/changes/CDC5.csv", []byte("I,zeta,hr,5,e\n"))
				r := startStream(t, yaml, nil)
				r.waitFor(t, 2, 5*time.Second)
				time.Sleep(100 * time.Millisecond)
				r.stop(t)

				time.Sleep(10 * time.Millisecond) // a later modification time than the record's
				b.put(t, "dms/changes/CDC3.csv", []byte("I,zeta,hr,3,c\n"))
				r2 := startStream(t, yaml, nil)
				deadline := time.Now().Add(5 * time.Second)
				for !strings.Contains(r2.logText(), "late CDC file") && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if mode == "process" {
					// reported first, then read: wait for its row rather
					// than expect it within the settling time below
					r2.waitFor(t, 1, 10*time.Second)
				}
				time.Sleep(300 * time.Millisecond) // anything more would show now
				r2.stop(t)
				logs := r2.logText()
				if n := strings.Count(logs, "late CDC file"); n != 1 || !strings.Contains(logs, "CDC3.csv") || !strings.Contains(logs, "found at this start: the run before never listed it") {
					t.Fatalf("want one warning naming CDC3.csv as arrived while stopped, got %d:\n%s", n, logs)
				}
				var bodies []string
				for _, m := range r2.snapshot() {
					bodies = append(bodies, m.Body)
				}
				want := ""
				if mode == "process" {
					want = "I,zeta,hr,3,c"
				}
				if got := strings.Join(bodies, "|"); got != want {
					t.Fatalf("after restart: %q, want %q", got, want)
				}

				// A third start finds nothing new: nothing reported or read twice.
				r3 := startStream(t, yaml, nil)
				time.Sleep(500 * time.Millisecond) // past a late check
				r3.stop(t)
				if n := len(r3.snapshot()); n != 0 || strings.Contains(r3.logText(), "late CDC file") {
					t.Fatalf("third start: %d rows, logs:\n%s", n, r3.logText())
				}
			})
		})
	}
}

// TestStatsSurviveRestart: the table statistics (state, full-load rows and
// times, CDC rows and files) go on from the checkpoint after a restart, in
// the middle of the full load and in CDC, instead of starting from zero.
func TestStatsSurviveRestart(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ckdir := t.TempDir()
		yaml := baseYAML(b, "poll_interval: 50ms\nbatch_size: 2\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
		// zeta holds more rows than the input may emit beyond the saved
		// checkpoint (4 batches of 2 with interval 0s), so the first run
		// cannot reach its end, however far it reads ahead of the refusing
		// output.
		var zeta strings.Builder
		for i := 0; i < 20; i++ {
			fmt.Fprintf(&zeta, "%d,z\n", i)
		}
		b.put(t, "dms/hr/zeta/LOAD1.csv", []byte(zeta.String()))
		b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("1,a\n2,a\n3,a\n"))
		b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,100,c\nU,alpha,hr,1,c\n"))

		// First run: stopped after 4 rows of zeta's 20 (batches of 2, all acknowledged).
		stopAfter := 4
		var mu sync.Mutex
		r := startStream(t, yaml, func(batch []got) error {
			mu.Lock()
			defer mu.Unlock()
			if stopAfter <= 0 {
				return errors.New("stopping")
			}
			stopAfter -= len(batch)
			return nil
		})
		r.waitFor(t, 4, 5*time.Second)
		time.Sleep(100 * time.Millisecond)
		first := Stats()["aws_s3_dms"].Tables[0]
		r.stop(t)
		if first.FullLoadStart == nil || first.State != StateFullLoad {
			t.Fatalf("first run, zeta: %+v", first)
		}

		// Second run: to the end of CDC.
		r2 := startStream(t, yaml, nil)
		r2.waitFor(t, 16+3+2, 5*time.Second)
		deadline := time.Now().Add(5 * time.Second)
		for Stats()["aws_s3_dms"].CDC.Rows < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // the last acknowledgement is saved
		second := Stats()["aws_s3_dms"]
		r2.stop(t)
		z, a := second.Tables[0], second.Tables[1]
		if z.FullLoadRows != 20 || z.State != StateCompleted || z.FullLoadStart == nil || !z.FullLoadStart.Equal(first.FullLoadStart.Truncate(time.Millisecond)) {
			t.Fatalf("zeta after the restart in its load: %+v (first run started %v)", z, first.FullLoadStart)
		}
		if a.FullLoadRows != 3 || a.State != StateCompleted || second.CDC.Rows != 2 || second.CDC.FilesProcessed != 1 {
			t.Fatalf("after the second run: alpha %+v, CDC %+v", a, second.CDC)
		}

		// Third run, in CDC: everything carries on; one more CDC file.
		r3 := startStream(t, yaml, nil)
		b.put(t, "dms/changes/CDC2.csv", []byte("D,zeta,hr,100,c\n"))
		r3.waitFor(t, 1, 5*time.Second)
		deadline = time.Now().Add(5 * time.Second)
		for Stats()["aws_s3_dms"].CDC.Rows < 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		third := Stats()["aws_s3_dms"]
		r3.stop(t)
		for i, tb := range third.Tables {
			want := second.Tables[i]
			if tb.State != StateCompleted || tb.FullLoadRows != want.FullLoadRows || tb.FullLoadFinish == nil || !tb.FullLoadFinish.Equal(want.FullLoadFinish.Truncate(time.Millisecond)) {
				t.Fatalf("table %d in CDC after a restart: %+v, want %+v", i, tb, want)
			}
		}
		if third.CDC.Rows != 3 || third.CDC.FilesProcessed != 2 {
			t.Fatalf("CDC after a restart: %+v", third.CDC)
		}
	})
}

// The same file reached through a symbolic link to its directory is the
// same checkpoint: the second input is refused as well. The claim named the
// file by its path as written (made absolute), so two streams whose
// checkpoint.directory differed only by a link both started and overwrote
// each other's position.
func TestSharedCheckpointFileThroughSymlinkRefused(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	ckDir := t.TempDir()
	link := filepath.Join(t.TempDir(), "ck")
	if err := os.Symlink(ckDir, link); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, _ := directInput(t, baseYAML(b, "mode: full-load\ncheckpoint:\n  directory: "+ckDir+"\n"))
	if err := first.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer first.Close(ctx)
	second, _ := directInput(t, baseYAML(b, "mode: full-load\ncheckpoint:\n  directory: "+link+"\n"))
	err := second.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "is already used by the aws_s3_dms input") {
		if err == nil {
			second.Close(ctx)
		}
		t.Fatalf("second input on the same checkpoint file through %s: %v", link, err)
	}
}

// Two inputs of one process (e.g. two streams in streams mode) on the same
// checkpoint file would overwrite each other's position, and the one
// restarted later would resume where the other stopped: the second is
// refused at Connect, naming the first; once the first is closed, the
// checkpoint is free again.
func TestSharedCheckpointFileRefused(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	yaml := baseYAML(b, "mode: full-load\ncheckpoint:\n  directory: "+t.TempDir()+"\n")
	ctx := context.Background()
	first, _ := directInput(t, yaml)
	if err := first.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	second, _ := directInput(t, yaml)
	err := second.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "is already used by the aws_s3_dms input") || !strings.Contains(err.Error(), "give each its own checkpoint.key") {
		t.Fatalf("second input on the same checkpoint file: %v", err)
	}
	// another key is fine
	other, _ := directInput(t, yaml+"  key: other\n")
	if err := other.Connect(ctx); err != nil {
		t.Fatalf("another checkpoint.key: %v", err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.Connect(ctx); err != nil {
		t.Fatalf("after the first input closed: %v", err)
	}
}
