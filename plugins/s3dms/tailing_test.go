package s3dms

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestLongTailingRetainsNoStatePerFile tails hundreds of tiny CDC files
// arriving in rounds, each round removed from the folder once processed (as
// an S3 lifecycle rule expiring processed DMS files, or a cleanup job on a
// directory, does), with a late-file check between rounds: what the input
// keeps (the keys it knows, queued files, batches kept for redelivery, the
// record of listed keys), its goroutines and its open files stay bounded by
// what the folder holds, not by how many files were ever processed.
func TestLongTailingRetainsNoStatePerFile(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		const rounds, perRound = 12, 50
		in, _ := directInput(t, baseYAML(b, "mode: cdc\npoll_interval: 1ms\nlate_file_check_interval: 1ms\nbatch_size: 50\ncheckpoint:\n  directory: "+t.TempDir()+"\n  interval: 0s\n"))
		ctx := context.Background()
		if err := in.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		key := func(i int) string { return fmt.Sprintf("dms/changes/%08d.csv", i) }
		var goroutines, fds []int
		for r := 0; r < rounds; r++ {
			for i := r * perRound; i < (r+1)*perRound; i++ {
				b.put(t, key(i), []byte(fmt.Sprintf("INSERT,zeta,hr,%d,v\n", i)))
			}
			rows, err := readAllDirect(t, in, perRound)
			if err != nil {
				t.Fatalf("round %d: %v (%d rows)", r, err, len(rows))
			}
			if want := fmt.Sprintf("INSERT,zeta,hr,%d,v", (r+1)*perRound-1); rows[len(rows)-1] != want {
				t.Fatalf("round %d ends with %q, want %q", r, rows[len(rows)-1], want)
			}
			for i := r * perRound; i < (r+1)*perRound; i++ {
				b.del(t, key(i))
			}
			// One more late check and poll over the emptied folder.
			time.Sleep(2 * time.Millisecond)
			rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			if batch, _, err := in.ReadBatch(rctx); err == nil {
				t.Fatalf("round %d: unexpected batch of %d rows", r, len(batch))
			}
			cancel()
			if r == 4 || r == rounds-1 {
				runtime.GC()
				goroutines = append(goroutines, runtime.NumGoroutine())
				fds = append(fds, openFiles(t))
			}
		}
		in.mu.Lock()
		emitted, redeliver := len(in.emitted), len(in.redeliver)
		in.mu.Unlock()
		seen := 0
		if s := in.seenSnap.Load(); s != nil {
			seen = len(s.Keys)
		}
		t.Logf("after %d files: known %d, queue %d, emitted %d, redeliver %d, seen %d, goroutines %v, open files %v",
			rounds*perRound, len(in.known), len(in.queue), emitted, redeliver, seen, goroutines, fds)
		// The folder never holds more than one round.
		if len(in.known) > perRound {
			t.Errorf("the input still knows %d CDC keys after %d files were processed and removed (the folder holds none): state grows with every file ever processed", len(in.known), rounds*perRound)
		}
		if len(in.queue) != 0 || emitted > maxUnsaved || redeliver != 0 || seen > 256 {
			t.Errorf("retained: queue %d, emitted %d, redeliver %d, seen %d", len(in.queue), emitted, redeliver, seen)
		}
		if goroutines[1] > goroutines[0]+5 {
			t.Errorf("goroutines grew from %d to %d over %d files", goroutines[0], goroutines[1], (rounds-5)*perRound)
		}
		if fds[1] > fds[0]+5 {
			t.Errorf("open files grew from %d to %d over %d files", fds[0], fds[1], (rounds-5)*perRound)
		}
	})
}

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
