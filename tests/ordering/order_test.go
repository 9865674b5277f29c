// Package ordering checks per-key order end to end across a partial failure:
// the real input, processor and Kinesis output in one stream, on kinesalite
// (the test services: tests/services.sh).
package ordering

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// The reference pipeline (aws_s3_dms -> dms_csv_to_json -> aws_kinesis_streams
// with dead_letter, threads 1, max_in_flight 1, ordering strict): batch 1 has a
// good CDC row and a bad row; the dead letter refuses its first write, so the
// output reports the bad row failed (BatchError) and the input redelivers
// batch 1. Batch 2 (later updates of the same key) is already in the pipeline
// and is written first; the input then re-sends batch 2 after batch 1 (go-back-N),
// so the last record of the key is its newest value.
func TestPartialFailureKeepsLastCopyInOrder(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "changes/cdc_001.csv",
		"U,zeta,hr,1,v1\nU,zeta,hr,notanint,bad\nU,zeta,hr,1,v2\nU,zeta,hr,1,v3\n")
	stream := testutil.NewStream(t, 1)
	in := fmt.Sprintf(`aws_s3_dms:
  directory: %q
  cdc_path: changes
  mode: cdc
  poll_interval: 100ms
  batch_size: 2
  table_definition: '%s'
  checkpoint: {store: none}
`, root, twoTables)
	proc := "dms_csv_to_json:\n  table_definition: '" + twoTables + "'\n  message_format: json-unformatted\n"
	dlName := fmt.Sprintf("dl%d", time.Now().UnixNano())
	out := kinesisOutYAML(t, stream, "  dead_letter:\n    review_dl: {name: "+dlName+", fail: 1}\n")
	s, logs := buildStream(t, in, proc, out)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	deadline := time.Now().Add(20 * time.Second)
	var recs []testutil.Record
	for time.Now().Before(deadline) {
		recs = testutil.ReadStream(t, stream)
		v, _ := dlRegistry.Load(dlName)
		if len(recs) >= 4 && v != nil && len(v.(*dlOut).snapshot()) >= 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	recs = testutil.ReadStream(t, stream)
	if err := s.StopWithin(10 * time.Second); err != nil {
		t.Log(err)
	}
	var vals []string
	for _, r := range recs {
		var j struct {
			Data struct{ V string } `json:"data"`
		}
		json.Unmarshal(r.Data, &j)
		vals = append(vals, r.PartitionKey+"="+j.Data.V)
	}
	t.Logf("stream (one shard, in order): %v", vals)
	if len(vals) == 0 || !strings.HasSuffix(vals[len(vals)-1], "=v3") {
		t.Fatalf("the last record of key hr.zeta is %v, want v3 (the newest update): a redelivered older batch overtook a newer one\nlogs:\n%s", vals[len(vals)-1], logs.String())
	}
}
