package s3dms

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/plugins/checkpoint"
)

// TestCDCStartBeforeTheRestOfAResumedCDCFile: a restart whose checkpoint is
// in the middle of a CDC file begins, with emit_cdc_start, with the
// cdc-start message, before the rest of that file's rows (the documented
// order: "before any CDC row"), not after them. (Found by
// TestDiffPropertyInputToProcessor.)
func TestCDCStartBeforeTheRestOfAResumedCDCFile(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,1,a\nI,zeta,hr,2,b\nI,zeta,hr,3,c\n"))
		b.put(t, "dms/changes/CDC2.csv", []byte("I,zeta,hr,4,d\n"))
		ckdir := t.TempDir()
		st := &checkpoint.State{Position: checkpoint.Position{Phase: checkpoint.PhaseCDC, Key: "dms/changes/CDC1.csv", Offset: 14, Line: 2}}
		if err := (&checkpoint.File{Path: filepath.Join(ckdir, "job.json")}).Save(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		r := startStream(t, baseYAML(b, "emit_cdc_start: true\npoll_interval: 50ms\ncheckpoint:\n  directory: "+ckdir+"\n  key: job.json\n"), nil)
		defer r.stop(t)
		var got []string
		for _, m := range r.waitFor(t, 4, 10*time.Second) {
			got = append(got, m.Control+m.Body)
		}
		if want := "cdc-start|I,zeta,hr,2,b|I,zeta,hr,3,c|I,zeta,hr,4,d"; strings.Join(got, "|") != want {
			t.Fatalf("got %q, want %q", strings.Join(got, "|"), want)
		}
	})
}
