package s3dms

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// While the first table cannot be listed (here the bucket does not exist),
// nothing of it has been loaded: the progress log must not say the load is
// "in progress 100.0% (0 of 0 bytes...)", which reads as a finished empty
// table next to a listing error.
func TestProgressNotLoggedBeforeTheTableIsListed(t *testing.T) {
	_, ep := s3TestClient(t)
	yaml := fmt.Sprintf("bucket: no-such-bucket-%d\nendpoint: %s\nforce_path_style: true\nregion: %s\n", time.Now().UnixNano(), ep, os.Getenv("AWS_REGION")) +
		"bucket_folder: dms\ncdc_path: changes\ntable_definition: '" + twoTables + "'\nprogress_interval: 1ms\ncheckpoint:\n  store: none\n"
	r := startStream(t, yaml, nil)
	defer r.stop(t)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(r.logText(), "NoSuchBucket") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no listing error logged 3 times:\n%.3000s", r.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if logs := r.logText(); strings.Contains(logs, "full load in progress") {
		t.Fatalf("progress logged for a table not listed yet:\n%.3000s", logs)
	}
}
