// Package tracer replaces the Benthos core tracer `none` (the default) by one
// that costs nothing per message.
//
// Benthos starts a span for every message at the input and at every
// processor and output stage, even with the default `tracer: none`. Core's
// `none` is OpenTelemetry's no-op provider, whose Start still wraps the
// message's context in a new layer holding the no-op span: one allocation per
// message per stage for a span no one reads. This provider's Start returns
// the context it is given, unchanged, and a shared no-op span (Benthos still
// copies the message's part and makes a span handle per stage, whatever the
// tracer). Nothing else differs: no span is recorded or exported with either, and every span
// method is a no-op. In bench-e2e it saved about 5 % of dmsbridge's CPU per
// row (docs/benchmarks.md).
//
// It is registered under the same name, `none`, so every configuration that
// does not set a tracer (and every config that sets `tracer: none`) uses it;
// a real tracer (`open_telemetry_collector` and the like, where compiled in)
// is unaffected.
package tracer

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/redpanda-data/benthos/v4/public/service"

	// Core's `none` is registered by the pure components. Importing them
	// makes their registration run before this package's (Go initialises a
	// package's imports first), so this one replaces it whatever the order
	// of imports in the binary.
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func noneSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Summary("Do not send tracing events anywhere (the default); dmsbridge's version allocates nothing per message.").
		Description(`
Replaces Benthos core's ` + "`none`" + ` tracer. Core's is OpenTelemetry's no-op
provider, which still wraps every message's context in a layer holding a no-op
span at each stage it passes (input, each processor, each output): one
allocation per message per stage. This one hands the context back unchanged
with a shared no-op span. (Benthos itself still copies a message's part and
makes a span handle at each stage, whatever the tracer.)

Guarantees: nothing is recorded or exported, as with core's ` + "`none`" + `; span
methods (` + "`End`" + `, attributes, events) do nothing.

Failure modes: none; it takes no settings.`).
		Field(service.NewObjectField("").Default(map[string]any{}))
}

func init() {
	service.MustRegisterOtelTracerProvider("none", noneSpec(),
		func(*service.ParsedConfig) (trace.TracerProvider, error) { return Provider(), nil })
}

// Provider is the tracer provider of `tracer: none`.
func Provider() trace.TracerProvider { return provider{} }

// nopSpan is OpenTelemetry's no-op span (what SpanFromContext returns for a
// context without a span).
var nopSpan = trace.SpanFromContext(context.Background())

type provider struct{ noop.TracerProvider }

func (provider) Tracer(string, ...trace.TracerOption) trace.Tracer { return tracer{} }

type tracer struct{ noop.Tracer }

// Start returns ctx unchanged and a no-op span.
func (tracer) Start(ctx context.Context, _ string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	return ctx, nopSpan
}
