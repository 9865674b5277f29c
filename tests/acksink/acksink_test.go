package acksink

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestSinkAcknowledgesAndCounts(t *testing.T) {
	s, err := Start("127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	var entries []ktypes.PutRecordsRequestEntry
	for i := 0; i < 500; i++ {
		entries = append(entries, ktypes.PutRecordsRequestEntry{Data: []byte(fmt.Sprintf("r%03d", i)), PartitionKey: aws.String("k")})
	}
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("x"), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 500 || aws.ToInt32(out.FailedRecordCount) != 0 || s.Records() != 500 || s.Bytes() != 2000 {
		t.Fatalf("records %d failed %d counted %d bytes %d", len(out.Records), aws.ToInt32(out.FailedRecordCount), s.Records(), s.Bytes())
	}
	ls, err := c.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("x")})
	if err != nil || len(ls.Shards) != 3 {
		t.Fatalf("list shards: %v %d", err, len(ls.Shards))
	}
	if got := aws.ToString(ls.Shards[2].HashKeyRange.EndingHashKey); got != "340282366920938463463374607431768211455" {
		t.Fatalf("last shard ends at %s", got)
	}
	sum, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("x")})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 3 {
		t.Fatalf("describe: %v", err)
	}
	resp, err := http.Post(s.URL()+"/", "text/plain", strings.NewReader("a\nb\nc"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain post: %v", err)
	}
	if s.Records() != 503 {
		t.Fatalf("after plain post: %d records", s.Records())
	}
}
