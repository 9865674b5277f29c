package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// The reference architecture, end to end: the blog's data set (scaled down to
// keep the suite short) from versitygw through config/s3-to-kinesis.yaml into
// a 2-shard kinesalite stream, CDC files uploaded while the pipeline runs.
// Every record is read back and compared with the generator's manifest.
func TestReferencePipeline(t *testing.T) {
	testReferencePipeline(t, testutil.MustEnv(t, "KINESIS_ENDPOINT"), "json", 0.08)
}

// TestReferencePipelineCBOR: the same with the config's own protocol (cbor),
// into kinesis-mock: kinesalite truncates CBOR answers over 16 KiB.
func TestReferencePipelineCBOR(t *testing.T) {
	testReferencePipeline(t, testutil.MustEnv(t, "KINESIS_MOCK_ENDPOINT"), "", 0.015)
}

// testReferencePipeline runs the reference pipeline into the Kinesis server
// at endpoint, with KINESIS_PROTOCOL set to protocol ("": the config's
// default), on the data set at scale.
func testReferencePipeline(t *testing.T, endpoint, protocol string, scale float64) {
	files, manifest := refdata.Generate(refdata.Scaled(scale))
	full, cdc := split(files)
	bucket := testutil.NewBucket(t)
	kc := testutil.KinesisClientAt(t, endpoint)
	stream := testutil.NewStreamAt(t, kc, 2)
	upload(t, bucket, full)
	upload(t, bucket, cdc[:1]) // present at start: processed after the full load

	dir := t.TempDir()
	env := pipelineEnv(t, bucket, stream, dir)
	env["KINESIS_ENDPOINT"] = endpoint
	delete(env, "KINESIS_PROTOCOL")
	if protocol != "" {
		env["KINESIS_PROTOCOL"] = protocol
	}
	p := start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)

	loads := 0
	for _, e := range manifest {
		if e.Operation == "load" {
			loads++
		}
	}
	waitWritten(t, p, loads, 120*time.Second)
	// The rest of the CDC files arrive while it runs.
	for _, f := range cdc[1:] {
		upload(t, bucket, []refdata.File{f})
		time.Sleep(300 * time.Millisecond)
	}
	waitWritten(t, p, len(manifest), 120*time.Second)

	recs, err := testutil.ReadStreamErr(context.Background(), kc, stream)
	if err != nil {
		t.Fatal(err)
	}
	var got []refdata.Delivered
	for _, r := range recs {
		got = append(got, refdata.Delivered{PartitionKey: r.PartitionKey, Data: r.Data})
	}
	rep := refdata.Compare(manifest, got)
	if !rep.OK() || rep.Duplicates != 0 || rep.Delivered != len(manifest) {
		t.Fatalf("delivery: %s", rep)
	}
	// Record shape, as DMS writes it: data then metadata, DMS partition keys.
	var first struct {
		Data     map[string]any `json:"data"`
		Metadata map[string]any `json:"metadata"`
	}
	if err := json.Unmarshal(got[0].Data, &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"timestamp", "record-type", "operation", "partition-key-type", "schema-name", "table-name"} {
		if _, ok := first.Metadata[k]; !ok {
			t.Errorf("metadata has no %q: %s", k, got[0].Data)
		}
	}
	if !strings.HasPrefix(string(got[0].Data), `{"data":{"ingest_time":`) {
		t.Errorf("record does not start with data in column order: %.80s", got[0].Data)
	}
	perShard := map[string]int{}
	cdcKeys := map[string]bool{}
	for _, r := range recs {
		perShard[r.Shard]++
		if strings.Contains(string(r.Data), `"operation":"insert"`) || strings.Contains(string(r.Data), `"operation":"update"`) {
			cdcKeys[r.PartitionKey] = true
		}
	}
	if len(perShard) != 2 {
		t.Errorf("records on %d shards, want both: %v", len(perShard), perShard)
	}
	if len(cdcKeys) != 1 || !cdcKeys["schema01.table01"] {
		t.Errorf("CDC partition keys %v, want only schema01.table01 (DMS default)", cdcKeys)
	}
	wantProto := "PutRecords in CBOR"
	if protocol == "json" {
		wantProto = "PutRecords in JSON"
	}
	if !strings.Contains(p.Stdout.String()+p.Stderr.String(), wantProto) {
		t.Errorf("the log does not say %q", wantProto)
	}
	if dl := lines(t, dir+"/dead-letter.jsonl"); len(dl) != 0 {
		t.Errorf("%d dead letters from clean data: %s", len(dl), dl[0])
	}
	t.Logf("%s; shards %v", rep, perShard)
}
