package s3dms

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// manyTablesDef is a definition of n two-column tables hr.t00000, ...
func manyTablesDef(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"TableCount":"%d","Tables":[`, n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"TableName":"t%05d","TablePath":"hr/t%05d/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"}`, i, i)
	}
	b.WriteString("]}")
	return b.String()
}

// bytesPerBatch reads batches of 10 rows of one file (the first table's
// only file in the full load, or the only CDC file) from an input whose
// definition has the given number of tables, and returns the bytes
// allocated per batch, measured over the middle batches.
func bytesPerBatch(t *testing.T, mode string, tables int) uint64 {
	t.Helper()
	d := &dirBackend{root: t.TempDir()}
	var rows strings.Builder
	for i := 0; i < 3000; i++ {
		if mode == "cdc" {
			rows.WriteString("I,hr,t00000,")
		}
		fmt.Fprintf(&rows, "%d,x\n", i)
	}
	key := "dms/hr/t00000/LOAD00000001.csv"
	if mode == "cdc" {
		key = "dms/changes/20240101-000001.csv"
	}
	d.put(t, key, []byte(rows.String()))
	in := benchInput(t, d.yaml()+"bucket_folder: dms\ncdc_path: changes\nmode: "+mode+"\nbatch_size: 10\ntable_definition: '"+manyTablesDef(tables)+"'\ncheckpoint:\n  store: none\n")
	defer in.Close(context.Background())
	return allocPerBatch(t, in)
}

// TestBatchCostIndependentOfTableCount: what a batch costs does not grow
// with the number of tables in the definition. Each batch used to carry a
// copy of every table's statistics for its checkpoint (about 57 bytes per
// table): 570 KB per batch with 10,000 tables, allocated for every batch of
// the full load and of CDC however few rows it held, and kept for every
// batch awaiting acknowledgement, outside the bound on retained batches.
func TestBatchCostIndependentOfTableCount(t *testing.T) {
	for _, mode := range []string{"full-load", "cdc"} {
		small, large := bytesPerBatch(t, mode, 500), bytesPerBatch(t, mode, 2000)
		t.Logf("%s: %d bytes per batch with 500 tables, %d with 2000 (x%.2f)", mode, small, large, float64(large)/float64(small))
		if float64(large) > 1.25*float64(small) {
			t.Errorf("%s: a batch allocates %d bytes with 2000 tables, %d with 500 (x%.2f): the per-batch cost grows with the table count", mode, large, small, float64(large)/float64(small))
		}
	}
}

// TestFigureViewsKeepTheirMoment: a view of the statistics taken for a
// batch keeps the figures of that moment while the tables' figures move on
// (chunks shared between views are never changed), across chunk
// boundaries, and equals the statistics as they were.
func TestFigureViewsKeepTheirMoment(t *testing.T) {
	const n = 3*figChunk + 5
	var names [][2]string
	for i := 0; i < n; i++ {
		names = append(names, [2]string{"hr", fmt.Sprintf("t%03d", i)})
	}
	s := newStats(t.Name(), service.MockResources().Metrics(), names)
	defer s.unregister()
	// want is the figures of the moment, from the table statistics.
	want := func() *checkpoint.Figures {
		snap := s.snapshot()
		f := &checkpoint.Figures{CDCRows: snap.CDC.Rows, CDCFiles: snap.CDC.FilesProcessed, LateFiles: snap.CDC.LateFiles, NewestCDCFile: unixMs(snap.CDC.NewestFileTime)}
		for _, tb := range snap.Tables {
			f.Tables = append(f.Tables, tb.figures())
		}
		return f
	}
	type taken struct {
		v    figView
		want *checkpoint.Figures
	}
	var views []taken
	take := func() { views = append(views, taken{s.figures(), want()}) }
	take()
	for i := 0; i < n; i++ {
		s.tableState(i, StateFullLoad)
		take()
		for k := 0; k < 3; k++ {
			s.tableProgress(i, int64(i+k+1), 10, 1)
			take()
		}
		if i%7 == 3 {
			s.tableProgress(i-1, 5, 0, 0) // an earlier table's rows (not the way the input goes, but allowed)
			take()
		}
		s.tableState(i, StateCompleted)
		take()
	}
	s.cdcRows(7)
	s.cdcFileDone(time.UnixMilli(1700000000123))
	take()
	for j, tk := range views {
		got, _ := json.Marshal(tk.v.figures(0))
		exp, _ := json.Marshal(tk.want)
		if string(got) != string(exp) {
			t.Fatalf("view %d:\n got %s\nwant %s", j, got, exp)
		}
	}
}

// bytesPerBatchLateDone resumes CDC from a checkpoint that lists late
// late files already processed (the files still in the folder) and returns
// the bytes allocated per acknowledged batch of 10 rows.
func bytesPerBatchLateDone(t *testing.T, late int) uint64 {
	t.Helper()
	d := &dirBackend{root: t.TempDir()}
	ckDir := t.TempDir()
	st := &checkpoint.State{CDCStartSet: true, CDCHighWater: "dms/changes/20240101-000000.csv",
		Position: checkpoint.Position{Phase: checkpoint.PhaseCDC, Seq: late, Key: "dms/changes/20240101-000000.csv", Done: true}}
	for i := 0; i < late; i++ {
		k := fmt.Sprintf("dms/changes/20231231-%06d.csv", i)
		d.put(t, k, []byte("I,hr,zeta,1,x\n"))
		st.LateDone = append(st.LateDone, k)
	}
	d.put(t, "dms/changes/20240101-000000.csv", []byte("I,hr,zeta,1,x\n"))
	var rows strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&rows, "I,hr,zeta,%d,x\n", i)
	}
	d.put(t, "dms/changes/20240101-000001.csv", []byte(rows.String()))
	if err := (&checkpoint.File{Path: ckDir + "/ck"}).Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	in := benchInput(t, d.yaml()+"bucket_folder: dms\ncdc_path: changes\nmode: cdc\nbatch_size: 10\nlate_files: process\ntable_definition: '"+twoTables+"'\ncheckpoint:\n  store: file\n  directory: "+ckDir+"\n  key: ck\n  interval: 1h\n")
	defer in.Close(context.Background())
	return allocPerBatch(t, in)
}

// TestBatchCostIndependentOfLateFilesDone: what a batch costs does not
// grow with the number of late files processed so far (late_files:
// process). Every acknowledgement used to copy the whole list of them.
func TestBatchCostIndependentOfLateFilesDone(t *testing.T) {
	small, large := bytesPerBatchLateDone(t, 1000), bytesPerBatchLateDone(t, 4000)
	t.Logf("%d bytes per batch with 1000 late files done, %d with 4000 (x%.2f)", small, large, float64(large)/float64(small))
	if float64(large) > 1.25*float64(small) {
		t.Errorf("a batch allocates %d bytes with 4000 late files done, %d with 1000 (x%.2f): the per-batch cost grows with the late files processed", large, small, float64(large)/float64(small))
	}
}

// TestLateFilesDoneBoundedByFolder: the late files processed are
// remembered (late_done in the checkpoint) while the folder holds them, as
// every other CDC key is, not for ever: one removed from the folder (e.g.
// expired by a lifecycle rule) is forgotten at the next listing of the
// whole folder, so the checkpoint does not grow with every late file ever
// processed.
func TestLateFilesDoneBoundedByFolder(t *testing.T) {
	d := &dirBackend{root: t.TempDir()}
	ckDir := t.TempDir()
	ck := &checkpoint.File{Path: ckDir + "/ck"}
	const gone, kept = 300, 3
	st := &checkpoint.State{CDCStartSet: true, CDCHighWater: "dms/changes/CDC5.csv",
		Position: checkpoint.Position{Phase: checkpoint.PhaseCDC, Seq: gone + kept, Key: "dms/changes/CDC5.csv", Done: true}}
	for i := 0; i < gone+kept; i++ {
		k := fmt.Sprintf("dms/changes/CDC2-%03d.csv", i)
		st.LateDone = append(st.LateDone, k)
		if i >= gone {
			d.put(t, k, []byte("I,hr,zeta,2,b\n"))
		}
	}
	if err := ck.Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	d.put(t, "dms/changes/CDC5.csv", []byte("I,hr,zeta,5,e\n"))
	d.put(t, "dms/changes/CDC6.csv", []byte("I,hr,zeta,6,f\n"))
	in := benchInput(t, d.yaml()+"bucket_folder: dms\ncdc_path: changes\nmode: cdc\nlate_files: process\ntable_definition: '"+twoTables+"'\ncheckpoint:\n  store: file\n  directory: "+ckDir+"\n  key: ck\n  interval: 1h\n")
	ctx := context.Background()
	b, ack, err := in.ReadBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 1 {
		t.Fatalf("%d rows, want the one of CDC6", len(b))
	}
	if body, _ := b[0].AsBytes(); string(body) != "I,hr,zeta,6,f" {
		t.Fatalf("row %q, want CDC6's", body)
	}
	ack(ctx, nil)
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	saved, err := ck.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := st.LateDone[gone:]
	if strings.Join(saved.LateDone, " ") != strings.Join(want, " ") {
		t.Fatalf("late_done holds %d keys (%q...), want the %d late files still in the folder %q", len(saved.LateDone), saved.LateDone[:min(3, len(saved.LateDone))], len(want), want)
	}
}

// bytesPerTable reads the full load of the given number of tables, one
// file of one row each, and returns the bytes allocated per table.
func bytesPerTable(t *testing.T, tables int) uint64 {
	t.Helper()
	d := &dirBackend{root: t.TempDir()}
	for i := 0; i < tables; i++ {
		d.put(t, fmt.Sprintf("dms/hr/t%05d/LOAD00000001.csv", i), []byte(fmt.Sprintf("%d,x\n", i)))
	}
	in := benchInput(t, d.yaml()+"bucket_folder: dms\nmode: full-load\ntable_definition: '"+manyTablesDef(tables)+"'\ncheckpoint:\n  store: none\n")
	defer in.Close(context.Background())
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	rows, _ := drain(t, in, nil)
	runtime.ReadMemStats(&ms1)
	if rows != int64(tables) {
		t.Fatalf("%d rows, want %d", rows, tables)
	}
	return (ms1.TotalAlloc - ms0.TotalAlloc) / uint64(tables)
}

// TestTableCostIndependentOfTableCount: what the full load of one table
// costs the input, beyond its files, does not grow with the number of
// tables. The log line of every table completed was made from a copy of
// the statistics of every table (about 110 bytes each), so a full load of
// n tables took time and memory in n squared: 10,000 tables, 11 GB.
func TestTableCostIndependentOfTableCount(t *testing.T) {
	small, large := bytesPerTable(t, 500), bytesPerTable(t, 2000)
	t.Logf("%d bytes per table with 500 tables, %d with 2000 (x%.2f)", small, large, float64(large)/float64(small))
	if float64(large) > 1.5*float64(small) {
		t.Errorf("a table's full load allocates %d bytes with 2000 tables, %d with 500 (x%.2f): the cost per table grows with the table count", large, small, float64(large)/float64(small))
	}
}

// TestSmallFilesSmallBuffers: a full load of many small files does not
// take buffers sized for large ones for each file. Every file read from S3
// took two 256 KB prefetch chunks and a 64 KB row buffer (644 KB allocated
// per file of 10 bytes, 6.4 GB for a table of 10,000 such files); the
// buffers are now sized by the bytes the object has left.
func TestSmallFilesSmallBuffers(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		const n = 200
		for i := 0; i < n; i++ {
			b.put(t, fmt.Sprintf("dms/hr/zeta/LOAD%08d.csv", i), []byte(fmt.Sprintf("%d,a\n%d,b\n", i, i)))
		}
		in := benchInput(t, b.yaml()+"bucket_folder: dms\nmode: full-load\ntable_definition: '"+twoTables+"'\ncheckpoint:\n  store: none\n")
		defer in.Close(context.Background())
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		rows, _ := drain(t, in, nil)
		runtime.ReadMemStats(&ms1)
		if rows != 2*n {
			t.Fatalf("%d rows, want %d", rows, 2*n)
		}
		per := (ms1.TotalAlloc - ms0.TotalAlloc) / n
		t.Logf("%d bytes allocated per file", per)
		if per > 128<<10 {
			t.Errorf("%d bytes allocated per file of about 10 bytes, want at most 128 KB", per)
		}
	})
}

// allocPerBatch is the bytes allocated per batch of 10 rows read and
// acknowledged, after 20 batches of warm-up, over 200 batches.
func allocPerBatch(t *testing.T, in *input) uint64 {
	t.Helper()
	ctx := context.Background()
	read := func(n int) {
		for i := 0; i < n; i++ {
			b, ack, err := in.ReadBatch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 10 {
				t.Fatalf("batch of %d rows, want 10", len(b))
			}
			ack(ctx, nil)
		}
	}
	read(20)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	const n = 200
	read(n)
	runtime.ReadMemStats(&ms1)
	return (ms1.TotalAlloc - ms0.TotalAlloc) / n
}
