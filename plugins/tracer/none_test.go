package tracer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/tests/testutil"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func TestStartAddsNothing(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, 1)
	got, span := Provider().Tracer("benthos").Start(ctx, "op")
	if got != ctx {
		t.Fatalf("Start wrapped the context: %v", got)
	}
	if span == nil || span.IsRecording() || span.SpanContext().IsValid() {
		t.Fatalf("Start returned %#v, want a non-recording no-op span", span)
	}
	span.SetName("x")
	span.AddEvent("e")
	span.End() // no-op, no panic
	if n := testing.AllocsPerRun(100, func() { _, _ = Provider().Tracer("benthos").Start(ctx, "op") }); n != 0 {
		t.Fatalf("Start allocates %v times, want 0", n)
	}
}

// The binary's `none` is this provider, not core's: registered under the
// same name, it wins over the core registration.
func TestRegisteredAsNone(t *testing.T) {
	var summary string
	service.GlobalEnvironment().WalkTracers(func(name string, v *service.ConfigView) {
		if name == "none" {
			if td, err := v.TemplateData(); err == nil {
				summary = td.Summary
			}
		}
	})
	if !strings.Contains(summary, "dmsbridge") {
		t.Fatalf("tracer none is not dmsbridge's: summary %q", summary)
	}
}

// A pipeline with the default tracer: every message arrives, and no stage
// has wrapped a message's context in a span layer (core's no-op provider
// adds one per stage).
func TestPipelineMessagesCarryNoSpanLayers(t *testing.T) {
	env := service.NewEnvironment()
	var mu sync.Mutex
	var seen int
	var layered []string
	err := env.RegisterProcessor("ctx_probe", service.NewConfigSpec(), func(*service.ParsedConfig, *service.Resources) (service.Processor, error) {
		return probe(func(ctx context.Context) {
			mu.Lock()
			defer mu.Unlock()
			seen++
			if s := fmt.Sprint(ctx); strings.Contains(s, "trace.") {
				layered = append(layered, s)
			}
		}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sb := env.NewStreamBuilder()
	if err := sb.SetYAML(`
input:
  generate: {count: 20, interval: "", batch_size: 5, mapping: 'root = "x"'}
pipeline:
  processors:
    - mapping: 'root = content().uppercase()'
    - ctx_probe: {}
output:
  drop: {}
`); err != nil {
		t.Fatal(err)
	}
	testutil.RunStream(t, sb, 10*time.Second)
	if seen != 20 {
		t.Fatalf("probe saw %d messages, want 20", seen)
	}
	if len(layered) > 0 {
		t.Fatalf("%d messages carry a tracing layer, e.g. %s", len(layered), layered[0])
	}
}

type probe func(context.Context)

func (p probe) Process(_ context.Context, m *service.Message) (service.MessageBatch, error) {
	p(m.Context())
	return service.MessageBatch{m}, nil
}

func (probe) Close(context.Context) error { return nil }
