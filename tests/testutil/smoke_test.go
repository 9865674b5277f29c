package testutil

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The foundation smoke test: an object written to the S3 server and records
// written to the Kinesis server through the shared helpers read back intact.
func TestSmokeS3RoundTrip(t *testing.T) {
	bucket := NewBucket(t)
	body := []byte("101,Smith,Bob,2014-06-04,New York\n")
	PutObject(t, bucket, "hr/employee/LOAD001.csv", body)
	out, err := S3Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("hr/employee/LOAD001.csv")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(body) {
		t.Fatalf("read back %q, want %q", got, body)
	}
	// SigV4 is really checked: a wrong secret is refused.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, err := S3Client(t).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		t.Fatal("a request signed with a wrong secret was accepted: the S3 server does not check signatures")
	}
}

func TestSmokeKinesisRoundTrip(t *testing.T) {
	stream := NewStream(t, 3)
	c := KinesisClient(t)
	var entries []ktypes.PutRecordsRequestEntry
	for i := 0; i < 30; i++ {
		entries = append(entries, ktypes.PutRecordsRequestEntry{Data: []byte(fmt.Sprintf(`{"n":%d}`, i)), PartitionKey: aws.String(fmt.Sprintf("k%d", i%7))})
	}
	cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.PutRecords(cx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(res.FailedRecordCount) != 0 {
		t.Fatalf("%d records failed", aws.ToInt32(res.FailedRecordCount))
	}
	recs := ReadStream(t, stream)
	if len(recs) != 30 {
		t.Fatalf("read back %d records, want 30", len(recs))
	}
	shards := map[string]bool{}
	seen := map[string]bool{}
	lastPerKey := map[string]int{}
	for _, r := range recs {
		shards[r.Shard] = true
		seen[string(r.Data)] = true
		var n int
		if _, err := fmt.Sscanf(string(r.Data), `{"n":%d}`, &n); err != nil {
			t.Fatalf("unexpected data %q", r.Data)
		}
		if prev, ok := lastPerKey[r.PartitionKey]; ok && prev > n {
			t.Fatalf("key %s: record %d read after %d", r.PartitionKey, n, prev)
		}
		lastPerKey[r.PartitionKey] = n
	}
	if len(seen) != 30 {
		t.Fatalf("%d distinct records, want 30", len(seen))
	}
	if len(shards) < 2 {
		t.Fatalf("records landed on %d shard(s); 7 keys over 3 shards should use more", len(shards))
	}
}
