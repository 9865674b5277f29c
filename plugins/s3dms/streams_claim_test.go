package s3dms

import (
	"context"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// zetaLast is twoTables with its tables in the other order: a checkpoint
// written in the full load of hr.zeta (table 1) does not match it.
const zetaLast = `{"TableCount":"2","Tables":[
 {"TableName":"alpha","TablePath":"hr/alpha/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"},
 {"TableName":"zeta","TablePath":"hr/zeta/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"}]}`

// TestS3ClaimNotKeptByFailedConnect: with the s3 store, a Connect that
// claims the checkpoint and then fails (here the checkpoint does not match
// the configuration, e.g. a stream updated through PUT /streams/{id} with
// its tables reordered) must not leave the claim standing. The engine's
// next Connect of the same input must report the same error, not "held by
// another running instance" for the lease (the input built a new owner id
// at each attempt, and was refused by its own earlier attempt), and once
// the input is closed (the stream deleted or updated again) a corrected
// input on the same key must take over at once.
func TestS3ClaimNotKeptByFailedConnect(t *testing.T) {
	b := newS3Backend(t)
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n3,c\n"))
	b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("1,a\n"))
	ck := "mode: full-load\nbatch_size: 1\ncheckpoint:\n  store: s3\n  key: ckpt/s1.json\n  lease: 30s\n"
	ctx := context.Background()
	newIn := func(def string) *input {
		t.Helper()
		pc, err := inputSpec().ParseYAML(b.yaml()+"bucket_folder: dms\ncdc_path: changes\ntable_definition: '"+def+"'\n"+ck, nil)
		if err != nil {
			t.Fatal(err)
		}
		in, err := newInput(pc, service.MockResources())
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	// A first run stops in the full load of hr.zeta, releasing its claim.
	first := newIn(twoTables)
	if err := first.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	batch, ack, err := first.ReadBatch(ctx)
	if err != nil || len(batch) != 1 {
		t.Fatalf("read: %d %v", len(batch), err)
	}
	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The tables reordered: refused, naming the mismatch, at every attempt.
	bad := newIn(zetaLast)
	for attempt := 1; attempt <= 3; attempt++ {
		err := bad.Connect(ctx)
		if err == nil || !strings.Contains(err.Error(), "does not match the configuration") {
			t.Fatalf("attempt %d: %v; want the layout mismatch", attempt, err)
		}
	}
	if err := bad.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The definition put back: the checkpoint is free, and it resumes at row 2.
	good := newIn(twoTables)
	if err := good.Connect(ctx); err != nil {
		t.Fatalf("corrected input: %v", err)
	}
	defer good.Close(ctx)
	batch, _, err = good.ReadBatch(ctx)
	if err != nil || len(batch) != 1 {
		t.Fatalf("read: %d %v", len(batch), err)
	}
	if body, _ := batch[0].AsBytes(); string(body) != "2,b" {
		t.Fatalf("resumed at %q, want 2,b", body)
	}
}
