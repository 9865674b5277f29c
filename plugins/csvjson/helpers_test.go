package csvjson

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// fixedNow is the clock of the golden tests.
var fixedNow = time.Date(2026, 11, 28, 9, 30, 15, 123456789, time.UTC)

const fixedTS = "2026-11-28T09:30:15.123456Z"

func init() { nowFunc = func() time.Time { return fixedNow } }

// newTestProc builds the processor from YAML, as a pipeline would.
func newTestProc(t testing.TB, yaml string) *Processor {
	t.Helper()
	conf, err := processorSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	p, err := newProcessor(conf, service.MockResources())
	if err != nil {
		t.Fatalf("new processor: %v", err)
	}
	return p
}

// newLoggedProc is newTestProc with its warnings (and worse) written to the
// returned builder.
func newLoggedProc(t testing.TB, yaml string) (*Processor, *strings.Builder) {
	t.Helper()
	logs := &strings.Builder{}
	logger := service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	conf, err := processorSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	p, err := newProcessor(conf, service.MockResources(service.MockResourcesOptUseLogger(logger)))
	if err != nil {
		t.Fatalf("new processor: %v", err)
	}
	return p, logs
}

type row struct {
	body string
	meta map[string]any
}

func fullLoad(schema, table, key string, line int64, body string) row {
	return row{body, map[string]any{
		"dms_phase": "full-load", "dms_schema": schema, "dms_table": table,
		"s3_bucket": "bkt", "s3_key": key, "dms_line": line,
	}}
}

func cdc(key string, line int64, body string) row {
	return row{body, map[string]any{"dms_phase": "cdc", "s3_bucket": "bkt", "s3_key": key, "dms_line": line}}
}

func mkBatch(rows ...row) service.MessageBatch {
	var b service.MessageBatch
	for _, r := range rows {
		m := service.NewMessage([]byte(r.body))
		for k, v := range r.meta {
			m.MetaSetMut(k, v)
		}
		b = append(b, m)
	}
	return b
}

func process(t testing.TB, p *Processor, rows ...row) service.MessageBatch {
	t.Helper()
	out, err := p.ProcessBatch(context.Background(), mkBatch(rows...))
	if err != nil {
		t.Fatalf("ProcessBatch: %v", err)
	}
	if len(out) == 0 {
		return nil
	}
	if len(out) != 1 {
		t.Fatalf("ProcessBatch returned %d batches, want 1", len(out))
	}
	return out[0]
}

func body(t testing.TB, m *service.Message) string {
	t.Helper()
	b, err := m.AsBytes()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func meta(m *service.Message, k string) string {
	v, _ := m.MetaGet(k)
	return v
}

func mustOK(t testing.TB, m *service.Message) {
	t.Helper()
	if err := m.GetError(); err != nil {
		t.Fatalf("unexpected error on %q: %v", body(t, m), err)
	}
}

func mustErr(t testing.TB, m *service.Message, wantParts ...string) {
	t.Helper()
	err := m.GetError()
	if err == nil {
		t.Fatalf("want an error, got none; body %q", body(t, m))
	}
	for _, w := range wantParts {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not contain %q", err, w)
		}
	}
}
