package s3dms

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// bad_files: stop must stop at the bad object even when rows of an earlier
// object are in the same batch: those rows go out, and then nothing more is
// read (the object after the bad one must never be emitted).
func TestBadFilesStopAfterRowsInTheSameBatch(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,ok\n"))
	if err := os.Symlink("nowhere.csv", filepath.Join(b.root, "dms/hr/zeta/LOAD2.csv")); err != nil {
		t.Fatal(err)
	}
	b.put(t, "dms/hr/zeta/LOAD3.csv", []byte("3,ok\n"))
	in, _ := directInput(t, baseYAML(b, "mode: full-load\nbad_files: stop\nbatch_size: 100000\npoll_interval: 1s\ncheckpoint:\n  store: none\n"))
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := readUntilErr(t, in, 5*time.Second, func(batch service.MessageBatch) {
		for _, m := range batch {
			body, _ := m.AsBytes()
			got = append(got, string(body))
		}
	})
	for _, g := range got {
		if g == "3,ok" {
			t.Fatalf("bad_files: stop went on past the bad object LOAD2.csv: %q", got)
		}
	}
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("ReadBatch after the bad object: %v, want ErrNotConnected", err)
	}
	if len(got) != 1 || got[0] != "1,ok" {
		t.Fatalf("rows emitted: %q, want the row before the bad object", got)
	}
}

// Rows read before the bad object (bad_files: stop) whose batch is nacked
// (the output failed them) are still redelivered: the stop holds back what
// comes after the bad object, not what came before it.
func TestBadFilesStopRedeliversNackedRows(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,ok\n"))
	if err := os.Symlink("nowhere.csv", filepath.Join(b.root, "dms/hr/zeta/LOAD2.csv")); err != nil {
		t.Fatal(err)
	}
	in, _ := directInput(t, baseYAML(b, "mode: full-load\nbad_files: stop\nbatch_size: 100000\npoll_interval: 1s\ncheckpoint:\n  store: none\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	batch, ack, err := in.ReadBatch(ctx)
	if err != nil || len(batch) != 1 {
		t.Fatalf("first read: %d messages, %v", len(batch), err)
	}
	if _, _, err := in.ReadBatch(ctx); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("read after the bad object: %v, want ErrNotConnected", err)
	}
	if err := in.Connect(ctx); err == nil {
		t.Fatal("Connect while stopped with nothing to redeliver succeeded")
	}
	if err := ack(ctx, errors.New("output failed")); err != nil {
		t.Fatal(err)
	}
	// What the engine does: Connect until it succeeds, then ReadBatch.
	if err := in.Connect(ctx); err != nil {
		t.Fatalf("Connect with a nacked batch to redeliver: %v", err)
	}
	batch, _, err = in.ReadBatch(ctx)
	if err != nil {
		t.Fatalf("read after the nack: %v, want the nacked row redelivered", err)
	}
	if body, _ := batch[0].AsBytes(); len(batch) != 1 || string(body) != "1,ok" {
		t.Fatalf("redelivered %d messages, first %q", len(batch), body)
	}
	if _, _, err := in.ReadBatch(ctx); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("read after the redelivery: %v, want ErrNotConnected (still stopped)", err)
	}
}
