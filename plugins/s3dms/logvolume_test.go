package s3dms

import (
	"strings"
	"testing"
	"time"
)

// An s3 checkpoint store whose writes stall (S3 unreachable for them) lapses
// the lease, and the input reports itself not connected until a write
// confirms the claim. Before, Connect returned the lapse with a wait of at
// most 1 s, and the engine logged it at every attempt: an ERROR line a
// second for as long as the writes stalled. Now the lapse is still checked
// every second, but said at once, then after 10 s (and at growing intervals),
// with how long it has lasted; reading goes on once a write goes through.
func TestLapsedLeaseLoggedSparingly(t *testing.T) {
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	gate, ep := newCkGate(t, b.ep)
	t.Cleanup(gate.open)
	extra := "batch_size: 1\npoll_interval: 50ms\ncheckpoint:\n  store: s3\n  key: ha/job.json\n  interval: 100ms\n  lease: 1s\n"
	r := startStream(t, strings.Replace(baseYAML(b, extra), "endpoint: "+b.ep, "endpoint: "+ep, 1), nil)
	r.waitFor(t, 1, 10*time.Second)
	gate.close()
	<-gate.held
	time.Sleep(14 * time.Second) // lapsed after about 1 s: 13 s of it
	logs := r.logText()
	n := strings.Count(logs, "Failed to connect to aws_s3_dms")
	// at once, after 10 s (and one for timing)
	if n == 0 || n > 3 || !strings.Contains(logs, "ran out") {
		t.Fatalf("%d lines \"Failed to connect\" in 13 s of a lapsed lease, want 1 to 3 naming the lapse:\n%s", n, logs)
	}
	if n > 1 && !strings.Contains(logs, "failing for ") {
		t.Fatalf("the repeated line does not say for how long it has failed:\n%s", logs)
	}
	gate.open()
	b.put(t, "dms/changes/cdc1.csv", []byte("I,hr,zeta,2,b\n"))
	if got := r.waitFor(t, 2, 15*time.Second); got[1].Body != "I,hr,zeta,2,b" {
		t.Fatalf("after the writes went through: %v", got)
	}
	r.stop(t)
}
