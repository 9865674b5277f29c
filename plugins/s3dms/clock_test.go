package s3dms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCDCLagIsNeverNegative: the lag is now minus the LastModified of the
// newest processed CDC file. When that LastModified is ahead of this host's
// clock (an S3 server's clock ahead of ours, or a local file whose mtime is in
// the future: copied from a host with a clock ahead, `touch -d`), the file is
// not behind at all: the lag is 0, not a negative number of seconds in the
// progress log, the statistics and dms_cdc_lag_seconds.
func TestCDCLagIsNeverNegative(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,a\n"))
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(b.root, "dms", "changes", "CDC1.csv"), future, future); err != nil {
		t.Fatal(err)
	}
	in, logs := directInput(t, baseYAML(b, "mode: cdc\npoll_interval: 20ms\nprogress_interval: 20ms\ncheckpoint:\n  store: none\n"))
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := readAllDirect(t, in, 1)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %q, err %v", rows, err)
	}
	// The progress log line comes from the reading loop: read on until
	// it shows the processed file.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			_, ack, err := in.ReadBatch(ctx)
			if err == nil {
				_ = ack(ctx, nil)
			}
		}
	}()
	for !strings.Contains(logs.String(), "CDC: 1 files processed") {
		if ctx.Err() != nil {
			t.Fatalf("no CDC progress line with the processed file:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if lag := in.stats.snapshot().CDC.LagSeconds; lag != 0 {
		t.Errorf("lag %.1fs behind a file modified an hour ahead of this host's clock, want 0", lag)
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "CDC: 1 files processed") && !strings.Contains(l, "lag 0.0s") {
			t.Errorf("progress line %q, want lag 0.0s", l)
			break
		}
	}
}
