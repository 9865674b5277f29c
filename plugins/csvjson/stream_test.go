package csvjson

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// captured holds counter totals by "name{k=v,...}" over the labels of interest.
type captured struct {
	mu sync.Mutex
	m  map[string]int64
}

type capCounter struct {
	c   *captured
	key string
}

func (c capCounter) Incr(n int64) {
	c.c.mu.Lock()
	c.c.m[c.key] += n
	c.c.mu.Unlock()
}

type nopTimer struct{}

func (nopTimer) Timing(int64) {}

type capGauge struct {
	c   *captured
	key string
}

func (g capGauge) Set(n int64) {
	g.c.mu.Lock()
	g.c.m[g.key] = n
	g.c.mu.Unlock()
}

func metricKey(name string, keys, vals []string) string {
	var parts []string
	for i, k := range keys {
		switch k {
		case "schema", "table", "operation", "reason":
			parts = append(parts, k+"="+vals[i])
		}
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func (c *captured) NewCounterCtor(name string, keys ...string) service.MetricsExporterCounterCtor {
	return func(vals ...string) service.MetricsExporterCounter {
		return capCounter{c, metricKey(name, keys, vals)}
	}
}
func (c *captured) NewTimerCtor(string, ...string) service.MetricsExporterTimerCtor {
	return func(...string) service.MetricsExporterTimer { return nopTimer{} }
}
func (c *captured) NewGaugeCtor(name string, keys ...string) service.MetricsExporterGaugeCtor {
	return func(vals ...string) service.MetricsExporterGauge { return capGauge{c, metricKey(name, keys, vals)} }
}
func (c *captured) Close(context.Context) error { return nil }

// A real stream: rows in through a producer, the processor from YAML,
// messages out to a consumer; metrics counted per table, operation and
// reason.
func TestStreamMetricsAndOrder(t *testing.T) {
	env := service.NewEnvironment()
	capt := &captured{m: map[string]int64{}}
	if err := env.RegisterMetricsExporter("capture", service.NewConfigSpec(), func(*service.ParsedConfig, *service.Logger) (service.MetricsExporter, error) {
		return capt, nil
	}); err != nil {
		t.Fatal(err)
	}
	sb := env.NewStreamBuilder()
	if err := sb.SetMetricsYAML("capture: {}"); err != nil {
		t.Fatal(err)
	}
	if err := sb.SetLoggerYAML("level: none"); err != nil {
		t.Fatal(err)
	}
	send, err := sb.AddBatchProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.AddProcessorYAML("dms_csv_to_json:\n  table_definition: ./testdata/employee.json\n  message_format: json-unformatted\n"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	var errs []string
	if err := sb.AddBatchConsumerFunc(func(_ context.Context, b service.MessageBatch) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range b {
			if e := m.GetError(); e != nil {
				errs = append(errs, e.Error())
				continue
			}
			op, _ := m.MetaGet("dms_operation")
			got = append(got, op)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	in := mkBatch(
		tableStart("hr", "employee"),
		fullLoad("hr", "employee", "LOAD001.csv", 1, "101,Smith,Bob,2014-06-04,New York"),
		fullLoad("hr", "employee", "LOAD001.csv", 2, "x,Smith,Bob,2014-06-04,New York"),
		cdc("CDC00001.csv", 1, "I,employee,hr,102,Doe,Jane,2014-06-04,Paris"),
		cdc("CDC00001.csv", 2, "U,employee,hr,102,Doe,Jane,2014-06-04,Rome"),
		cdc("CDC00001.csv", 3, "X,employee,hr,102,Doe,Jane,2014-06-04,Rome"),
		cdc("CDC00001.csv", 4, "D,employee,hr,102,Doe,Jane,2014-06-04,Rome"),
	)
	if err := send(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := st.StopWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	<-done
	want := []string{"drop-table", "create-table", "load", "insert", "update", "delete"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("operations out %v, want %v", got, want)
	}
	if len(errs) != 2 || !strings.Contains(errs[0], "LOAD001.csv line 2") || !strings.Contains(errs[1], "CDC00001.csv line 3") {
		t.Fatalf("errors %q", errs)
	}
	capt.mu.Lock()
	defer capt.mu.Unlock()
	for k, v := range map[string]int64{
		"dms_csv_to_json_rows{schema=hr,table=employee,operation=load}":             1,
		"dms_csv_to_json_rows{schema=hr,table=employee,operation=insert}":           1,
		"dms_csv_to_json_rows{schema=hr,table=employee,operation=update}":           1,
		"dms_csv_to_json_rows{schema=hr,table=employee,operation=delete}":           1,
		"dms_csv_to_json_rows{schema=hr,table=employee,operation=drop-table}":       1,
		"dms_csv_to_json_rows{schema=hr,table=employee,operation=create-table}":     1,
		"dms_csv_to_json_errors{schema=hr,table=employee,reason=bad_value}":         1,
		"dms_csv_to_json_errors{schema=hr,table=employee,reason=unknown_operation}": 1,
	} {
		if capt.m[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, capt.m[k], v, capt.m)
		}
	}
	// DMS's LastUpdateTime of the table, as a unix time.
	if last := capt.m["dms_table_last_update_unix{schema=hr,table=employee}"]; last < time.Now().Add(-time.Minute).Unix() || last > time.Now().Unix() {
		t.Errorf("dms_table_last_update_unix = %d, want about %d", last, time.Now().Unix())
	}
}
