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
// good CDC row and a bad row; the dead letter refuses its first write. The
// output holds batch 1 (not connected) with its good row written, and retries
// it once connected, sending only the bad row, to the dead letter: batch 2
// (later updates of the same key) waits behind it. The stream holds every
// update once, in order, and the dead letter the bad row. (Before, the output
// failed the bad row, the input redelivered batch 1 and batch 2 after it
// (go-back-N), and the stream got copies: v1 v2 v3 v1 v2 v3 or v1 v1 v2 v3,
// more for every failed retry.)
func TestDeadLetterFailureKeepsOrderWithoutCopies(t *testing.T) {
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
	values := func(recs []testutil.Record) []string {
		var vals []string
		for _, r := range recs {
			var j struct {
				Data struct{ V string } `json:"data"`
			}
			json.Unmarshal(r.Data, &j)
			vals = append(vals, r.PartitionKey+"="+j.Data.V)
		}
		return vals
	}
	// Settled: the bad row is in the dead letter and the newest update on
	// the stream.
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, _ := dlRegistry.Load(dlName)
		vals := values(testutil.ReadStream(t, stream))
		if v != nil && len(v.(*dlOut).snapshot()) >= 1 && len(vals) > 0 && vals[len(vals)-1] == "hr.zeta=v3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream did not settle with the newest update last within 30s: %v\nlogs:\n%s", vals, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A graceful stop writes whatever is still in flight; then the stream
	// is final.
	if err := s.StopWithin(10 * time.Second); err != nil {
		t.Log(err)
	}
	vals := values(testutil.ReadStream(t, stream))
	t.Logf("stream (one shard, in order): %v", vals)
	if got := strings.Join(vals, " "); got != "hr.zeta=v1 hr.zeta=v2 hr.zeta=v3" {
		t.Fatalf("the records of key hr.zeta are %v, want v1 v2 v3, each once, in order\nlogs:\n%s", vals, logs.String())
	}
	v, _ := dlRegistry.Load(dlName)
	if dl := v.(*dlOut).snapshot(); len(dl) != 1 || !strings.Contains(dl[0], "notanint") {
		t.Fatalf("dead letter holds %q, want the bad row once", dl)
	}
}

// The same pipeline with a partial failure after the records were written
// (a stage after the Kinesis write fails batch 1's second message once):
// the input redelivers batch 1, and batch 2 (later updates of the same key),
// already in the pipeline and written first, after it (go-back-N), so the
// last record of the key is its newest value.
func TestPartialFailureKeepsLastCopyInOrder(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "changes/cdc_001.csv", "U,zeta,hr,1,v1\nU,zeta,hr,1,v1b\nU,zeta,hr,1,v2\nU,zeta,hr,1,v3\n")
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
	out := "review_nack_after:\n  match: v1b\n  output:\n" + indent(kinesisOutYAML(t, stream, ""), "    ")
	s, logs := buildStream(t, in, proc, out)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	values := func(recs []testutil.Record) []string {
		var vals []string
		for _, r := range recs {
			var j struct {
				Data struct{ V string } `json:"data"`
			}
			json.Unmarshal(r.Data, &j)
			vals = append(vals, j.Data.V)
		}
		return vals
	}
	// Settled: batch 1's redelivery is written (v1 on the stream a second
	// time) and a v3 follows the last v1. Both legal interleavings end so
	// (v1 v1b v2 v3 v1 v1b v2 v3 when batch 2 was written before the nack,
	// v1 v1b v1 v1b v2 v3 when it was not); an older batch overtaking a
	// newer one ends in v1b and never settles.
	settled := func(vals []string) bool {
		lastV1, v1s := -1, 0
		for i, v := range vals {
			if v == "v1" {
				lastV1, v1s = i, v1s+1
			}
		}
		return v1s >= 2 && len(vals) > 0 && vals[len(vals)-1] == "v3" && lastV1 < len(vals)-1
	}
	deadline := time.Now().Add(30 * time.Second)
	for !settled(values(testutil.ReadStream(t, stream))) {
		if time.Now().After(deadline) {
			t.Fatalf("the stream did not settle with the newest update last within 30s: %v (an older batch overtook a newer one, or the redelivery never came)\nlogs:\n%s", values(testutil.ReadStream(t, stream)), logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.StopWithin(10 * time.Second); err != nil {
		t.Log(err)
	}
	vals := values(testutil.ReadStream(t, stream))
	t.Logf("stream (one shard, in order): %v", vals)
	if len(vals) == 0 || vals[len(vals)-1] != "v3" {
		t.Fatalf("the records of key hr.zeta end %v, want v3 last (the newest update): a redelivered older batch overtook a newer one\nlogs:\n%s", vals, logs.String())
	}
}

// An output batching policy with a count and no period, behind aws_s3_dms
// with checkpoint.interval: 0s: the input emits at most 4 batches beyond the
// saved checkpoint, and the batcher held them, unacknowledged, waiting for
// its count of 10: nothing was ever written (0 of 20 rows after 20 s). The
// output gives such a policy a period; every row arrives.
func TestCountBatchingWithoutPeriodDoesNotStall(t *testing.T) {
	root := t.TempDir()
	var rows strings.Builder
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&rows, "%d,v%d\n", i, i)
	}
	writeFile(t, root, "hr/zeta/LOAD001.csv", rows.String())
	stream := testutil.NewStream(t, 1)
	in := fmt.Sprintf(`aws_s3_dms:
  directory: %q
  cdc_path: changes
  mode: full-load-and-cdc
  poll_interval: 100ms
  batch_size: 1
  table_definition: '%s'
  checkpoint: {directory: %q, interval: 0s}
`, root, twoTables, t.TempDir())
	proc := "dms_csv_to_json:\n  table_definition: '" + twoTables + "'\n  message_format: json-unformatted\n"
	out := kinesisOutYAML(t, stream, "  batching: {count: 10}\n")
	s, logs := buildStream(t, in, proc, out)
	go func() { _ = s.Run(context.Background()) }()
	t.Cleanup(func() { _ = s.StopWithin(10 * time.Second) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := len(testutil.ReadStream(t, stream))
		if n >= 20 {
			if n != 20 {
				t.Fatalf("%d records on the stream, want 20", n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 20 rows on the stream after 20s: the batcher waits for a count the input never fills\nlogs:\n%s", n, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
