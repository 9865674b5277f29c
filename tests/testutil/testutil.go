// Package testutil holds the helpers dmsbridge's integration tests share: AWS
// clients for the real S3 (versitygw) and Kinesis (kinesalite) servers started
// by tests/services.sh, unique buckets and streams per test, and a reader that
// returns every record of every shard.
//
// A test that needs a server whose environment variable is missing fails with
// a message saying how to start the servers; it never skips.
package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// RunStream builds the stream and runs it until it ends by itself, failing
// the test on a build or run error or when it runs longer than within.
func RunStream(t testing.TB, sb *service.StreamBuilder, within time.Duration) {
	t.Helper()
	s, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// MustEnv returns the variable's value, failing the test when it is unset.
func MustEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: this test needs the real test servers; run it with `make test`, or start them with "+
			"`tests/services.sh start` and `source .cache/services.env`", name)
	}
	return v
}

// AWSConfig is a static-credential config for the test servers.
func AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	return aws.Config{
		Region: region,
		Credentials: credentials.NewStaticCredentialsProvider(
			MustEnv(t, "AWS_ACCESS_KEY_ID"), MustEnv(t, "AWS_SECRET_ACCESS_KEY"), ""),
	}
}

// S3Client is a path-style client for S3_ENDPOINT.
func S3Client(t testing.TB) *s3.Client {
	t.Helper()
	ep := MustEnv(t, "S3_ENDPOINT")
	return s3.NewFromConfig(AWSConfig(t), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(ep)
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// KinesisClient is a client for KINESIS_ENDPOINT.
func KinesisClient(t testing.TB) *kinesis.Client {
	t.Helper()
	return KinesisClientAt(t, MustEnv(t, "KINESIS_ENDPOINT"))
}

// KinesisClientAt is a client for the Kinesis server at ep.
func KinesisClientAt(t testing.TB, ep string) *kinesis.Client {
	t.Helper()
	return kinesis.NewFromConfig(AWSConfig(t), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(ep)
		o.HTTPClient = BufferedBody{C: awshttp.NewBuildableClient()}
	})
}

// UniqueName is prefix + a random suffix, valid as a bucket or stream name.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return strings.ToLower(prefix) + "-" + hex.EncodeToString(b)
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// NewBucket creates a unique bucket, emptied and deleted when the test ends.
func NewBucket(t testing.TB) string {
	t.Helper()
	c := S3Client(t)
	name := UniqueName("dmsb")
	if _, err := c.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	t.Cleanup(func() { DeleteBucket(t, c, name) })
	return name
}

// DeleteBucket deletes every object of the bucket, then the bucket.
func DeleteBucket(t testing.TB, c *s3.Client, name string) {
	cx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(cx)
		if err != nil {
			t.Logf("cleanup: list %s: %v", name, err)
			return
		}
		var ids []s3types.ObjectIdentifier
		for _, o := range page.Contents {
			ids = append(ids, s3types.ObjectIdentifier{Key: o.Key})
		}
		if len(ids) > 0 {
			if _, err := c.DeleteObjects(cx, &s3.DeleteObjectsInput{Bucket: aws.String(name), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}}); err != nil {
				t.Logf("cleanup: delete objects of %s: %v", name, err)
			}
		}
	}
	if _, err := c.DeleteBucket(cx, &s3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Logf("cleanup: delete bucket %s: %v", name, err)
	}
}

// PutObject uploads body under key.
func PutObject(t testing.TB, bucket, key string, body []byte) {
	t.Helper()
	_, err := S3Client(t).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
}

// NewStream creates a unique ACTIVE stream with that many shards, deleted when
// the test ends.
func NewStream(t testing.TB, shards int) string {
	t.Helper()
	return NewStreamAt(t, KinesisClient(t), shards)
}

// NewStreamAt is NewStream on the server of c.
func NewStreamAt(t testing.TB, c *kinesis.Client, shards int) string {
	t.Helper()
	name := UniqueName("dmsb")
	cx := ctx(t)
	if _, err := c.CreateStream(cx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = 500 * time.Millisecond
	})
	if err := w.Wait(cx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 30*time.Second); err != nil {
		t.Fatalf("stream %s not active: %v", name, err)
	}
	t.Cleanup(func() {
		cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = c.DeleteStream(cx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)})
	})
	return name
}

// Record is one record read back from a stream.
type Record struct {
	Shard          string
	PartitionKey   string
	Data           []byte
	SequenceNumber string
}

// ReadStream returns every record of every shard (closed shards included),
// shard by shard, each shard in sequence order.
func ReadStream(t testing.TB, stream string) []Record {
	t.Helper()
	recs, err := ReadStreamErr(ctx(t), KinesisClient(t), stream)
	if err != nil {
		t.Fatalf("read stream %s: %v", stream, err)
	}
	return recs
}

// ReadStreamErr is ReadStream for callers that handle the error.
func ReadStreamErr(cx context.Context, c *kinesis.Client, stream string) ([]Record, error) {
	var shards []ktypes.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		page, err := c.ListShards(cx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		shards = append(shards, page.Shards...)
		if page.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
	sort.Slice(shards, func(i, j int) bool { return aws.ToString(shards[i].ShardId) < aws.ToString(shards[j].ShardId) })
	var out []Record
	for _, sh := range shards {
		it, err := c.GetShardIterator(cx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, fmt.Errorf("shard iterator %s: %w", aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := c.GetRecords(cx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				return nil, fmt.Errorf("get records %s: %w", aws.ToString(sh.ShardId), err)
			}
			for _, r := range res.Records {
				out = append(out, Record{Shard: aws.ToString(sh.ShardId), PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data, SequenceNumber: aws.ToString(r.SequenceNumber)})
			}
			if len(res.Records) == 0 && aws.ToInt64(res.MillisBehindLatest) == 0 {
				break
			}
			iter = res.NextShardIterator
		}
	}
	return out, nil
}

// WaitFor polls cond every 50 ms until it is true or the timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) error {
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			return errors.New("condition not met in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// BufferedBody sends every request body from an in-memory copy. Without it, a fast answer (the proxy answers a fully
// rejected PutRecords in microseconds) races the SDK: smithy-go closes the request body as soon as the response
// arrives, while net/http's write loop still probes that body for EOF (it flushed the headers first because the body
// is not a known in-memory reader); the probe fails, the transport closes the connection, and reading the answer fails
// with "deserialization failed ... use of closed network connection" (aws/aws-sdk-go-v2#2737; the SDK's default
// retryer retries net.ErrClosed, which sends the records twice: a test that
// counts what a server received, or uses no retries, needs BufferedBody).
type BufferedBody struct {
	C interface {
		Do(*http.Request) (*http.Response, error)
	}
}

func (b BufferedBody) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		data, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	return b.C.Do(r)
}

// PluginGoroutines lists the stacks of the goroutines running code of the
// plugins (not a test's own).
func PluginGoroutines() []string {
	buf := make([]byte, 4<<20)
	var own []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "dmsbridge/plugins/") && !strings.Contains(g, "_test.go") {
			own = append(own, g)
		}
	}
	return own
}

// WaitNoPluginGoroutines fails the test unless every goroutine of the
// plugins has ended within 5 s; what names the component closed (for the
// message).
func WaitNoPluginGoroutines(t testing.TB, what string) {
	t.Helper()
	var own []string
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if own = PluginGoroutines(); len(own) == 0 || time.Now().After(end) {
			break
		}
	}
	if len(own) > 0 {
		t.Errorf("%d goroutines of the %s still running after Close:\n%s", len(own), what, strings.Join(own, "\n\n"))
	}
}
