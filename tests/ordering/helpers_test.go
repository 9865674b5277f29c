package ordering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/dmsbridge/dmsbridge/plugins/all"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
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
%s`, stream, testutil.MustEnv(t, "AWS_REGION"), testutil.MustEnv(t, "KINESIS_ENDPOINT"), testutil.MustEnv(t, "AWS_ACCESS_KEY_ID"), testutil.MustEnv(t, "AWS_SECRET_ACCESS_KEY"), extra)
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

// nackAfter wraps an output: its first `fail` batches that hold a message
// containing `match` are written to the wrapped output, then that message is
// reported failed (a batch error), as a downstream stage that fails after the
// records were written would: the input redelivers the batch.
type nackAfter struct {
	out   *service.OwnedOutput
	match string
	mu    sync.Mutex
	left  int
}

func init() {
	spec := service.NewConfigSpec().Field(service.NewOutputField("output")).Field(service.NewStringField("match")).Field(service.NewIntField("fail").Default(1))
	service.MustRegisterBatchOutput("review_nack_after", spec, func(c *service.ParsedConfig, r *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		out, err := c.FieldOutput("output")
		if err != nil {
			return nil, service.BatchPolicy{}, 0, err
		}
		match, _ := c.FieldString("match")
		n, _ := c.FieldInt("fail")
		return &nackAfter{out: out, match: match, left: n}, service.BatchPolicy{}, 1, nil
	})
}

func (n *nackAfter) Connect(context.Context) error   { return n.out.Prime() }
func (n *nackAfter) Close(ctx context.Context) error { return n.out.Close(ctx) }
func (n *nackAfter) WriteBatch(ctx context.Context, b service.MessageBatch) error {
	if err := n.out.WriteBatch(ctx, b); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, m := range b {
		if body, _ := m.AsBytes(); n.left > 0 && strings.Contains(string(body), n.match) {
			n.left--
			return service.NewBatchError(b, errors.New("failed downstream")).Failed(i, errors.New("failed downstream"))
		}
	}
	return nil
}

// indent prefixes every line of s with pre.
func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n") + "\n"
}
