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

// ctlLabel is a message as a test sees it: the control kind (and table)
// or the body.
func ctlLabel(m *service.Message) string {
	if c, ok := m.MetaGet("dms_control"); ok {
		tb, _ := m.MetaGet("dms_table")
		return "<" + c + ":" + tb + ">"
	}
	b, _ := m.AsBytes()
	return string(b)
}

// TestChangedResumeObjectStaysRefused: a restart in the middle of a full-load
// object whose ETag changed since is refused (without
// restart_changed_files) for as long as the object stays changed: the
// engine's reconnects do not turn the refusal into a read of the table from
// its start, with a second table-start (drop-table and create-table after
// rows of the table were loaded) and the changed object read from its
// start.
func TestChangedResumeObjectStaysRefused(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n3,c\n"))
	ckdir := t.TempDir()
	yaml := baseYAML(b, "mode: full-load\nemit_table_start: true\nbatch_size: 1\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in1, _ := directInput(t, yaml)
	if err := in1.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var first []string
	for len(first) < 3 {
		batch, ack, err := in1.ReadBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range batch {
			first = append(first, ctlLabel(m))
		}
		_ = ack(ctx, nil)
	}
	if err := in1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(first, "|"); got != "<table-start:zeta>|1,a|2,b" {
		t.Fatalf("first run: %s", got)
	}
	path := filepath.Join(b.root, "dms/hr/zeta/LOAD1.csv")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a new modification time: a new ETag
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,CHANGED\n3,c\n4,d\n"))
	in2, _ := directInput(t, yaml)
	if err := in2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; attempt < 3; attempt++ {
		batch, _, err := in2.ReadBatch(ctx)
		if len(batch) > 0 {
			var got []string
			for _, m := range batch {
				got = append(got, ctlLabel(m))
			}
			t.Fatalf("attempt %d: read %q from a table whose checkpointed object changed (err %v)", attempt, got, err)
		}
		if err == nil {
			t.Fatalf("attempt %d: no error", attempt)
		}
		// the engine reconnects, then reads again
		if cerr := in2.Connect(ctx); cerr == nil || !strings.Contains(cerr.Error(), "LOAD1.csv") {
			t.Logf("attempt %d: Connect: %v", attempt, cerr)
		}
	}
	// the original put back (same bytes, same modification time): reading
	// goes on at the checkpoint, without a table-start
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n3,c\n"))
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			t.Fatal("not reading after the original was put back")
		}
		_ = in2.Connect(ctx)
		batch, ack, err := in2.ReadBatch(ctx)
		if err != nil {
			continue
		}
		var got []string
		for _, m := range batch {
			got = append(got, ctlLabel(m))
		}
		_ = ack(ctx, nil)
		if strings.Join(got, "|") != "3,c" {
			t.Fatalf("after the original was put back: %q, want the row after the checkpoint", got)
		}
		break
	}
}
