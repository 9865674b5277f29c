package ordering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/dmsbridge/dmsbridge/plugins/all"
)

const twoTables = `{"TableCount":"2","Tables":[
 {"TableName":"zeta","TablePath":"hr/zeta/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4","ColumnIsPk":"true"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"},
 {"TableName":"alpha","TablePath":"hr/alpha/","TableOwner":"hr","TableColumns":[{"ColumnName":"id","ColumnType":"INT4","ColumnIsPk":"true"},{"ColumnName":"v","ColumnType":"STRING","ColumnLength":"50"}],"TableColumnsTotal":"2"}]}`

// dead letter test output: fails its first N writes, records the rest.
type dlOut struct {
	mu    sync.Mutex
	failN int
	calls int
	got   []string
	metas []map[string]any
}

var dlRegistry sync.Map // name -> *dlOut

func init() {
	spec := service.NewConfigSpec().Field(service.NewStringField("name")).Field(service.NewIntField("fail").Default(1))
	service.MustRegisterBatchOutput("review_dl", spec, func(c *service.ParsedConfig, r *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		name, _ := c.FieldString("name")
		n, _ := c.FieldInt("fail")
		v, _ := dlRegistry.LoadOrStore(name, &dlOut{failN: n})
		return v.(*dlOut), service.BatchPolicy{}, 1, nil
	})
}

func (d *dlOut) Connect(context.Context) error { return nil }
func (d *dlOut) Close(context.Context) error   { return nil }
func (d *dlOut) WriteBatch(_ context.Context, b service.MessageBatch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if d.calls <= d.failN {
		return errors.New("dead letter temporarily unavailable")
	}
	for _, m := range b {
		bb, _ := m.AsBytes()
		d.got = append(d.got, string(bb))
		md := map[string]any{}
		_ = m.MetaWalkMut(func(k string, v any) error { md[k] = v; return nil })
		d.metas = append(d.metas, md)
	}
	return nil
}
func (d *dlOut) snapshot() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.got...)
}

func mustEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s not set: start the test services (tests/services.sh start) and source .cache/services.env", name)
	}
	return v
}

func kc(t testing.TB) *kinesis.Client {
	return kinesis.New(kinesis.Options{Region: mustEnv(t, "AWS_REGION"), BaseEndpoint: aws.String(mustEnv(t, "KINESIS_ENDPOINT")),
		Credentials: credentials.NewStaticCredentialsProvider(mustEnv(t, "AWS_ACCESS_KEY_ID"), mustEnv(t, "AWS_SECRET_ACCESS_KEY"), "")})
}

var seq atomic.Int64

func newKStream(t testing.TB, n int) string {
	t.Helper()
	c := kc(t)
	name := fmt.Sprintf("review-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1))
	if _, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)}) })
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return name
		}
		if time.Now().After(deadline) {
			t.Fatal("stream not active")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type rec struct{ key, data string }

func readK(t testing.TB, name string) []rec {
	t.Helper()
	c := kc(t)
	ctx := context.Background()
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(ls.Shards, func(i, j int) bool { return *ls.Shards[i].ShardId < *ls.Shards[j].ShardId })
	var out []rec
	for _, s := range ls.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			r, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range r.Records {
				out = append(out, rec{*x.PartitionKey, string(x.Data)})
			}
			if len(r.Records) == 0 {
				break
			}
			iter = r.NextShardIterator
		}
	}
	return out
}

func writeFile(t testing.TB, root, key, body string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(key))
	os.MkdirAll(filepath.Dir(p), 0o755)
	tmp := filepath.Join(root, ".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func kinesisOutYAML(t testing.TB, stream, extra string) string {
	return fmt.Sprintf(`aws_kinesis_streams:
  stream: %s
  region: %s
  endpoint: %s
  credentials: {id: %s, secret: %s}
  partition_key: ${! @dms_partition_key }
  max_in_flight: 1
  ordering: strict
  shard_rate: {records_per_second: 0, bytes_per_second: 0}
  backoff: {max_elapsed_time: 0s}
%s`, stream, mustEnv(t, "AWS_REGION"), mustEnv(t, "KINESIS_ENDPOINT"), mustEnv(t, "AWS_ACCESS_KEY_ID"), mustEnv(t, "AWS_SECRET_ACCESS_KEY"), extra)
}

func buildStream(t testing.TB, input, proc, output string) (*service.Stream, *strings.Builder) {
	t.Helper()
	sb := service.NewStreamBuilder()
	logs := &lockedSB{}
	sb.SetLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := sb.AddInputYAML(input); err != nil {
		t.Fatal(err)
	}
	if proc != "" {
		if err := sb.AddProcessorYAML(proc); err != nil {
			t.Fatal(err)
		}
	}
	sb.SetThreads(1)
	if err := sb.AddOutputYAML(output); err != nil {
		t.Fatal(err)
	}
	s, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	return s, &logs.b
}

type lockedSB struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedSB) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
