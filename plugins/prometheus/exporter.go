// Package prometheus provides the prometheus metrics exporter. Benthos v4.60.0
// core ships no Prometheus exporter; this one serves every Benthos and
// dmsbridge metric (per-table, per-shard and per-stream labels included) in the
// Prometheus text format on the service's own HTTP server at /metrics (and
// /stats), so no second port is opened.
package prometheus

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/internal/lintcheck"
)

const (
	fieldPrefix         = "prefix"
	fieldUseHistogram   = "use_histogram_timing"
	fieldBuckets        = "histogram_buckets"
	fieldProcessMetrics = "add_process_metrics"
	fieldGoMetrics      = "add_go_metrics"
)

func exporterSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Summary("Serves metrics in the Prometheus text format on the service's HTTP server at /metrics.").
		LintRule(lintcheck.Rule("prometheus", exporterSpec, lintConf)).
		Description(`
The exporter registers each Benthos metric once per label set. Timings are
exported in seconds, as summaries (p50, p90, p99) or, with `+"`use_histogram_timing`"+`,
histograms. Metric names are sanitised to the Prometheus character set
(`+"`[a-zA-Z_:][a-zA-Z0-9_:]*`"+`).

Failure modes: a metric registered twice under the same name with different
label keys, or as another kind (a counter, a gauge and a timer of one name),
cannot be represented in Prometheus; the second registration is logged once
at WARN and its values are dropped, never crashing the pipeline.
Label values that are not valid UTF-8 (e.g. a `+"`metric`"+` processor labelling by
message content, or a stream id from a URL) are exported with each run of
invalid bytes replaced by U+FFFD.

`+"`histogram_buckets`"+` that are not strictly increasing are refused when the config is linted and at
start, naming the field.

In streams mode every metric carries the `+"`stream`"+` label, so one
`+"`/metrics`"+` endpoint serves all streams.`).
		Fields(
			service.NewStringField(fieldPrefix).Default("").Description("A prefix added to every metric name, e.g. `dmsbridge_`."),
			service.NewBoolField(fieldUseHistogram).Default(false).Description("Export timings as histograms instead of summaries."),
			service.NewFloatListField(fieldBuckets).Default([]any{}).Description("Histogram buckets in seconds, strictly increasing (refused at start otherwise); empty means the Prometheus defaults.").Advanced(),
			service.NewBoolField(fieldProcessMetrics).Default(true).Description("Export process metrics (CPU seconds, RSS, open files)."),
			service.NewBoolField(fieldGoMetrics).Default(true).Description("Export Go runtime metrics (goroutines, GC, heap)."),
		)
}

func init() {
	service.MustRegisterMetricsExporter("prometheus", exporterSpec(), func(conf *service.ParsedConfig, log *service.Logger) (service.MetricsExporter, error) {
		e, err := newExporter(conf, log)
		if err == nil && newExporterHook != nil {
			newExporterHook(e)
		}
		return e, err
	})
}

// newExporterHook, when set (tests), is given every exporter built.
var newExporterHook func(*Exporter)

type vecEntry struct {
	kind   string // counter, gauge or timer
	labels []string
	vec    any // *prometheus.CounterVec, *prometheus.GaugeVec, *prometheus.SummaryVec or *prometheus.HistogramVec
}

// Exporter implements service.MetricsExporter with prometheus/client_golang.
type Exporter struct {
	log       *service.Logger
	reg       *prometheus.Registry
	prefix    string
	histogram bool
	buckets   []float64

	mu   sync.Mutex
	vecs map[string]vecEntry
	warn map[string]bool
}

func newExporter(conf *service.ParsedConfig, log *service.Logger) (*Exporter, error) {
	e := &Exporter{log: log, reg: prometheus.NewRegistry(), vecs: map[string]vecEntry{}, warn: map[string]bool{}}
	var err error
	if e.prefix, err = conf.FieldString(fieldPrefix); err != nil {
		return nil, err
	}
	if e.histogram, err = conf.FieldBool(fieldUseHistogram); err != nil {
		return nil, err
	}
	if e.buckets, err = conf.FieldFloatList(fieldBuckets); err != nil {
		return nil, err
	}
	if err := checkBuckets(e.buckets); err != nil {
		return nil, err
	}
	if len(e.buckets) == 0 {
		e.buckets = prometheus.DefBuckets
	}
	if proc, err := conf.FieldBool(fieldProcessMetrics); err != nil {
		return nil, err
	} else if proc {
		e.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if goMet, err := conf.FieldBool(fieldGoMetrics); err != nil {
		return nil, err
	} else if goMet {
		e.reg.MustRegister(collectors.NewGoCollector())
	}
	return e, nil
}

// checkBuckets refuses what client_golang panics on at the first timing,
// mid-pipeline.
func checkBuckets(buckets []float64) error {
	for i, b := range buckets {
		if math.IsNaN(b) {
			return fmt.Errorf("%s: bucket %d is NaN", fieldBuckets, i+1)
		}
		if i > 0 && b <= buckets[i-1] {
			return fmt.Errorf("%s: must be strictly increasing, got %v after %v", fieldBuckets, b, buckets[i-1])
		}
	}
	return nil
}

// lintConf is the exporter's lint rule: the checks of newExporter.
func lintConf(conf *service.ParsedConfig) error {
	buckets, err := conf.FieldFloatList(fieldBuckets)
	if err != nil {
		return err
	}
	return checkBuckets(buckets)
}

var invalidChars = regexp.MustCompile(`[^a-zA-Z0-9_:]`)

func sanitise(name string) string {
	name = invalidChars.ReplaceAllString(name, "_")
	if name != "" && name[0] >= '0' && name[0] <= '9' {
		name = "_" + name
	}
	return name
}

// vec returns the collector registered under name, creating it with mk when
// absent; nil (logged once) when the name is taken by a metric of another
// kind or with other label keys.
func (e *Exporter) vec(kind, name string, labels []string, mk func(name string, labels []string) prometheus.Collector) any {
	name = sanitise(e.prefix + name)
	clean := make([]string, len(labels))
	for i, l := range labels {
		clean[i] = sanitise(l)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ent, ok := e.vecs[name]; ok {
		if ent.kind != kind {
			if key := kind + " " + name; !e.warn[key] {
				e.warn[key] = true
				e.log.Warnf("prometheus: metric %q registered again as a %s (first as a %s); the %s is not exported", name, kind, ent.kind, kind)
			}
			return nil
		}
		if strings.Join(ent.labels, ",") != strings.Join(clean, ",") {
			if !e.warn[name] {
				e.warn[name] = true
				e.log.Warnf("prometheus: metric %q registered again with labels %v (first with %v); the second set is not exported", name, clean, ent.labels)
			}
			return nil
		}
		return ent.vec
	}
	c := mk(name, clean)
	if err := e.reg.Register(c); err != nil {
		e.log.Warnf("prometheus: metric %q: %v", name, err)
		return nil
	}
	e.vecs[name] = vecEntry{kind: kind, labels: clean, vec: c}
	return c
}

type noop struct{}

func (noop) Incr(int64)   {}
func (noop) Set(int64)    {}
func (noop) Timing(int64) {}

// NewCounterCtor implements service.MetricsExporter.
func (e *Exporter) NewCounterCtor(name string, labelKeys ...string) service.MetricsExporterCounterCtor {
	v, _ := e.vec("counter", name, labelKeys, func(n string, l []string) prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: n, Help: "Benthos counter " + n}, l)
	}).(*prometheus.CounterVec)
	return func(lv ...string) service.MetricsExporterCounter {
		if v == nil {
			return noop{}
		}
		c, err := v.GetMetricWithLabelValues(validLabelValues(lv)...)
		if err != nil {
			e.warnOnce("counter "+name, err)
			return noop{}
		}
		return counter{c}
	}
}

// NewGaugeCtor implements service.MetricsExporter.
func (e *Exporter) NewGaugeCtor(name string, labelKeys ...string) service.MetricsExporterGaugeCtor {
	v, _ := e.vec("gauge", name, labelKeys, func(n string, l []string) prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: n, Help: "Benthos gauge " + n}, l)
	}).(*prometheus.GaugeVec)
	return func(lv ...string) service.MetricsExporterGauge {
		if v == nil {
			return noop{}
		}
		g, err := v.GetMetricWithLabelValues(validLabelValues(lv)...)
		if err != nil {
			e.warnOnce("gauge "+name, err)
			return noop{}
		}
		return gauge{g}
	}
}

// NewTimerCtor implements service.MetricsExporter.
func (e *Exporter) NewTimerCtor(name string, labelKeys ...string) service.MetricsExporterTimerCtor {
	c := e.vec("timer", name, labelKeys, func(n string, l []string) prometheus.Collector {
		if e.histogram {
			return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: n, Help: "Benthos timing " + n + " (seconds)", Buckets: e.buckets}, l)
		}
		return prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: n, Help: "Benthos timing " + n + " (seconds)",
			Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001},
			MaxAge:     time.Minute,
		}, l)
	})
	return func(lv ...string) service.MetricsExporterTimer {
		var o prometheus.Observer
		var err error
		switch v := c.(type) {
		case *prometheus.HistogramVec:
			o, err = v.GetMetricWithLabelValues(validLabelValues(lv)...)
		case *prometheus.SummaryVec:
			o, err = v.GetMetricWithLabelValues(validLabelValues(lv)...)
		default:
			return noop{}
		}
		if err != nil {
			e.warnOnce("timer "+name, err)
			return noop{}
		}
		return timer{o}
	}
}

// validLabelValues returns lv with every value made valid UTF-8 (each run of
// invalid bytes becomes U+FFFD): label values come from data (a metric
// processor's labels, a stream id from a URL) and client_golang refuses, by
// panicking in WithLabelValues, values that are not UTF-8. lv itself is
// returned, without copying, when every value is valid.
func validLabelValues(lv []string) []string {
	for i, v := range lv {
		if !utf8.ValidString(v) {
			out := make([]string, len(lv))
			copy(out, lv)
			for j := i; j < len(out); j++ {
				out[j] = strings.ToValidUTF8(out[j], "\uFFFD")
			}
			return out
		}
	}
	return lv
}

// warnOnce logs, once per metric, a label set the exporter cannot export
// (e.g. a wrong number of values); its values are dropped.
func (e *Exporter) warnOnce(metric string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := "values " + metric
	if e.warn[key] {
		return
	}
	e.warn[key] = true
	e.log.Warnf("prometheus: metric %s: %v; values with these labels are not exported", metric, err)
}

// HandlerFunc is mounted by Benthos on /metrics and /stats.
func (e *Exporter) HandlerFunc() http.HandlerFunc {
	return promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}).ServeHTTP
}

// Close implements service.MetricsExporter.
func (e *Exporter) Close(context.Context) error { return nil }

type counter struct{ c prometheus.Counter }

func (c counter) Incr(n int64)          { c.c.Add(float64(n)) }
func (c counter) IncrFloat64(n float64) { c.c.Add(n) }

type gauge struct{ g prometheus.Gauge }

func (g gauge) Set(n int64)          { g.g.Set(float64(n)) }
func (g gauge) SetFloat64(n float64) { g.g.Set(n) }

type timer struct{ o prometheus.Observer }

func (t timer) Timing(ns int64) { t.o.Observe(float64(ns) / 1e9) }
