package csvjson

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// rawMsgs keeps log messages as the processor wrote them, before a handler
// quotes them (Benthos' logfmt logger does not, on a terminal).
type rawMsgs struct {
	mu   sync.Mutex
	msgs []string
}

func (h *rawMsgs) Enabled(context.Context, slog.Level) bool { return true }
func (h *rawMsgs) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *rawMsgs) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *rawMsgs) WithGroup(string) slog.Handler      { return h }

// A bad row's error text (in the dead letter, and in any log line a
// pipeline makes of error()) and the processor's warning name the object the
// row came from. An object key holding a line break or a terminal escape
// must appear quoted and escaped there, so that whoever can write to the
// bucket cannot forge a log line or drive a reader's terminal.
func TestHostileKeyInErrorTextsAndWarnings(t *testing.T) {
	const key = "cdc/cdc_001\nlevel=error msg=\"FORGED\"\x1b[31m"
	h := &rawMsgs{}
	conf, err := processorSpec().ParseYAML("table_definition: ./testdata/reference.json\nmessage_format: json-unformatted\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcessor(conf, service.MockResources(service.MockResourcesOptUseLogger(service.NewLoggerFromSlog(slog.New(h)))))
	if err != nil {
		t.Fatal(err)
	}
	out := process(t, p, cdc(key, 3, "I,table01,schema01,2023-10-01 12:00:00,d,x,1,s"))
	if len(out) != 1 || out[0].GetError() == nil {
		t.Fatalf("want one flagged row, got %d", len(out))
	}
	const want = `s3://bkt/cdc/cdc_001\nlevel=error msg=\"FORGED\"\x1b[31m"`
	texts := append([]string{out[0].GetError().Error()}, h.msgs...)
	if len(h.msgs) == 0 {
		t.Fatal("no warning logged")
	}
	for _, s := range texts {
		if strings.ContainsAny(s, "\n\r\x1b") {
			t.Errorf("the key's control characters are written as they are:\n%s", s)
		}
		if !strings.Contains(s, want) {
			t.Errorf("%q does not name the object quoted and escaped (%s)", s, want)
		}
	}
}
