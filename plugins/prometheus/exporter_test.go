package prometheus

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/tests/testutil"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func scrape(t *testing.T, e *Exporter) string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.HandlerFunc()(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics answered %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func newTestExporter(t *testing.T, yaml string) *Exporter {
	t.Helper()
	conf, err := exporterSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newExporter(conf, service.MockResources().Logger())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestExporterServesCountersGaugesAndTimings(t *testing.T) {
	e := newTestExporter(t, `prefix: dmsb_
add_process_metrics: false
add_go_metrics: false`)
	e.NewCounterCtor("dms_csv_to_json_rows", "schema", "table", "operation")("hr", "employee", "insert").Incr(3)
	e.NewGaugeCtor("dms_table_state", "schema", "table")("hr", "employee").Set(2)
	timer := e.NewTimerCtor("kinesis.put-latency", "stream")
	timer("s1").Timing(int64(250 * time.Millisecond))
	out := scrape(t, e)
	for _, want := range []string{
		`dmsb_dms_csv_to_json_rows{operation="insert",schema="hr",table="employee"} 3`,
		`dmsb_dms_table_state{schema="hr",table="employee"} 2`,
		`dmsb_kinesis_put_latency_sum{stream="s1"} 0.25`,
		`dmsb_kinesis_put_latency{stream="s1",quantile="0.99"} 0.25`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, out)
		}
	}
	// A name registered again with other label keys is dropped, not a panic.
	e.NewCounterCtor("dms_csv_to_json_rows", "other")("x").Incr(1)
	if strings.Contains(scrape(t, e), `other="x"`) {
		t.Error("conflicting label set exported")
	}
}

func TestExporterHistogramsAndRuntimeMetrics(t *testing.T) {
	e := newTestExporter(t, `use_histogram_timing: true
histogram_buckets: [0.1, 1]`)
	e.NewTimerCtor("latency")().Timing(int64(500 * time.Millisecond))
	out := scrape(t, e)
	for _, want := range []string{`latency_bucket{le="0.1"} 0`, `latency_bucket{le="1"} 1`, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The exporter as a pipeline uses it: Benthos' own metrics with their labels.
func TestExporterInAPipeline(t *testing.T) {
	sb := service.NewStreamBuilder()
	if err := sb.SetYAML(`
input:
  generate: {count: 5, interval: "", mapping: 'root = "x"'}
output:
  drop: {}
metrics:
  prometheus:
    add_process_metrics: false
    add_go_metrics: false
`); err != nil {
		t.Fatal(err)
	}
	exp := runCapturing(t, sb)
	if exp == nil {
		t.Fatal("the prometheus exporter was not built for the pipeline")
	}
	if out := scrape(t, exp); !strings.Contains(out, `input_received{label="",path="root.input"} 5`) {
		t.Fatalf("/metrics lacks the input's count:\n%s", out)
	}
}

// Label values come from user data (a metric processor's `labels`, a stream id
// in a streams-mode URL) and may be invalid UTF-8. client_golang panics on
// them; the exporter must export the value with U+FFFD instead, for every
// metric type, and keep serving /metrics.
func TestExporterSurvivesInvalidUTF8LabelValues(t *testing.T) {
	for _, histogram := range []bool{false, true} {
		e := newTestExporter(t, fmt.Sprintf(`use_histogram_timing: %v
add_process_metrics: false
add_go_metrics: false`, histogram))
		bad := "\xff\xfe"
		noPanic := func(what string, f func()) {
			t.Helper()
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("histogram=%v: %s with an invalid UTF-8 label value panicked: %v", histogram, what, r)
				}
			}()
			f()
		}
		noPanic("counter", func() { e.NewCounterCtor("rows", "table")(bad).Incr(2) })
		noPanic("gauge", func() { e.NewGaugeCtor("state", "table")(bad).Set(7) })
		noPanic("timer", func() { e.NewTimerCtor("latency", "table")(bad).Timing(int64(time.Second)) })
		out := scrape(t, e)
		want := []string{"rows{table=\"\ufffd\"} 2", "state{table=\"\ufffd\"} 7", "latency_sum{table=\"\ufffd\"} 1"}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("histogram=%v: /metrics lacks %q:\n%s", histogram, w, out)
			}
		}
	}
}

// As a user hits it in run mode: a metric processor labelling by message
// content that is not UTF-8 must not crash the pipeline.
func TestExporterMetricProcessorWithBinaryLabel(t *testing.T) {
	sb := service.NewStreamBuilder()
	if err := sb.SetYAML(`
input:
  generate: {count: 3, interval: "", mapping: 'root = "/w==".decode("base64")'}
pipeline:
  processors:
    - metric: {type: counter, name: by_table, labels: {table: '${! content() }'}}
output:
  drop: {}
metrics:
  prometheus:
    add_process_metrics: false
    add_go_metrics: false
`); err != nil {
		t.Fatal(err)
	}
	exp := runCapturing(t, sb)
	if out := scrape(t, exp); !strings.Contains(out, "by_table{label=\"\",path=\"root.pipeline.processors.0\",table=\"\ufffd\"} 3") {
		t.Fatalf("/metrics lacks the metric processor's count:\n%s", out)
	}
}

// runCapturing runs the stream to its end and returns the exporter it made.
func runCapturing(t *testing.T, sb *service.StreamBuilder) *Exporter {
	t.Helper()
	var exp *Exporter
	orig := newExporterHook
	newExporterHook = func(e *Exporter) { exp = e }
	defer func() { newExporterHook = orig }()
	testutil.RunStream(t, sb, 10*time.Second)
	return exp
}

// histogram_buckets that are not strictly increasing were accepted at start
// and made client_golang panic at the first timing, killing the process
// mid-pipeline (exit 2 with a goroutine dump): they are refused at start,
// naming the field.
func TestExporterRefusesUnorderedHistogramBuckets(t *testing.T) {
	for _, buckets := range []string{"[1, 0.5]", "[0.1, 0.1]", "[0.5, .nan]"} {
		conf, err := exporterSpec().ParseYAML("use_histogram_timing: true\nhistogram_buckets: "+buckets, nil)
		if err != nil {
			t.Fatal(err)
		}
		var e *Exporter
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("buckets %s: panic %v", buckets, r)
				}
			}()
			e, err = newExporter(conf, service.MockResources().Logger())
			if err == nil {
				e.NewTimerCtor("latency")().Timing(int64(time.Millisecond))
			}
		}()
		if err == nil || !strings.Contains(err.Error(), "histogram_buckets") {
			t.Fatalf("buckets %s: error %v", buckets, err)
		}
	}
}

// A metric that cannot be represented (its name taken with other label keys,
// or by a metric of another type: a `metric` processor's gauge named like
// one of dmsbridge's counters) is logged once at WARN and its values dropped:
// a series that silently never appears looks like "nothing happened".
func TestExporterWarnsOnceAboutAConflictingRegistration(t *testing.T) {
	var logs strings.Builder
	conf, err := exporterSpec().ParseYAML("add_process_metrics: false\nadd_go_metrics: false", nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e, err := newExporter(conf, logger)
	if err != nil {
		t.Fatal(err)
	}
	e.NewCounterCtor("dms_bad_files", "label")("in").Incr(2)
	for range 2 {
		e.NewCounterCtor("dms_bad_files", "other")("x").Incr(1)
		e.NewGaugeCtor("dms_bad_files", "label")("in").Set(7)
		e.NewTimerCtor("dms_bad_files", "label")("in").Timing(5)
	}
	out := scrape(t, e)
	if !strings.Contains(out, `dms_bad_files{label="in"} 2`) || strings.Contains(out, "} 7") || strings.Contains(out, `other="x"`) {
		t.Errorf("the first registration must be exported alone:\n%s", out)
	}
	for _, kind := range []string{"labels [other]", "a gauge", "a timer"} {
		if n := strings.Count(logs.String(), kind); n != 1 {
			t.Errorf("%d WARN lines naming %q, want 1:\n%s", n, kind, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 3 {
		t.Errorf("%d WARN lines, want 3:\n%s", n, logs.String())
	}
}
