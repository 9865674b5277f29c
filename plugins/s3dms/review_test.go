package s3dms

import (
	"strings"
	"testing"
	"time"
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
