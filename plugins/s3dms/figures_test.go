package s3dms

import (
	"strings"
	"testing"
	"time"
)

// TestLateFileCountSurvivesRestart: a late CDC file skipped while the input
// is idle (no batch emitted after it) stays counted in dms_cdc_late_files
// after a restart. The checkpoint's record of listed keys holds it, so the
// next start does not report it again: the count it stored must hold it too.
// A processed late file is counted once as well.
func TestLateFileCountSurvivesRestart(t *testing.T) {
	for _, mode := range []string{"skip", "process"} {
		t.Run(mode, func(t *testing.T) { lateFileCountSurvivesRestart(t, mode) })
	}
}

func lateFileCountSurvivesRestart(t *testing.T, mode string) {
	eachBackend(t, func(t *testing.T, b backend) {
		ckdir := t.TempDir()
		yaml := baseYAML(b, "mode: cdc\npoll_interval: 50ms\nlate_file_check_interval: 200ms\nlate_files: "+mode+"\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 10ms\n")
		b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,a\n"))
		b.put(t, "dms/changes/CDC5.csv", []byte("I,zeta,hr,5,e\n"))
		r := startStream(t, yaml, nil)
		r.waitFor(t, 2, 5*time.Second)
		b.put(t, "dms/changes/CDC3.csv", []byte("I,zeta,hr,3,c\n"))
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(r.logText(), "late CDC file") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if mode == "process" {
			r.waitFor(t, 3, 5*time.Second)
		}
		if got := Stats()["aws_s3_dms"].CDC.LateFiles; got != 1 {
			t.Fatalf("before the restart: %d late files, want 1\n%s", got, r.logText())
		}
		time.Sleep(100 * time.Millisecond) // several checkpoint intervals
		r.stop(t)

		r2 := startStream(t, yaml, nil)
		defer r2.stop(t)
		time.Sleep(500 * time.Millisecond) // past a late check
		if strings.Contains(r2.logText(), "late CDC file") || len(r2.snapshot()) != 0 {
			t.Fatalf("the late file was reported again after the restart:\n%s", r2.logText())
		}
		if got := Stats()["aws_s3_dms"].CDC.LateFiles; got != 1 {
			t.Fatalf("after the restart: dms_cdc_late_files %d, want 1 (the late file reported before it)", got)
		}
	})
}
