package s3dms

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/dmsbridge/dmsbridge/plugins/csvjson" // dms_csv_to_json, the processor that rewrites in place
)

// testInPlace rewrites each message in place, as dms_csv_to_json does
// (SetBytes and MetaSetMut on the message it is given).
func init() {
	err := service.RegisterBatchProcessor("test_s3dms_in_place", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.BatchProcessor, error) {
			return inPlace{}, nil
		})
	if err != nil {
		panic(err)
	}
}

type inPlace struct{}

func (inPlace) ProcessBatch(_ context.Context, b service.MessageBatch) ([]service.MessageBatch, error) {
	for _, m := range b {
		body, _ := m.AsBytes()
		m.SetBytes([]byte("converted:" + string(body)))
		m.MetaSetMut("dms_line", int64(-1))
	}
	return []service.MessageBatch{b}, nil
}

func (inPlace) Close(context.Context) error { return nil }

// A nacked batch is redelivered as it was read, even when a processor
// rewrote its messages in place before the output refused them: with
// dms_csv_to_json the second delivery is the same DMS records, not rows
// flagged for being JSON where CSV was expected.
func TestNackRedeliveryThroughDMSProcessor(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	proc := "dms_csv_to_json:\n  table_definition: '" + twoTables + "'\n  message_format: json-unformatted\n"
	deliveries := runRefusedOnce(t, baseYAML(b, "mode: full-load\nbatch_size: 2\ncheckpoint:\n  store: none\n"), proc)
	for i, d := range deliveries { // each delivery is converted at its own time
		deliveries[i] = regexp.MustCompile(`"timestamp":"[^"]*"`).ReplaceAllString(d, `"timestamp":"T"`)
	}
	if len(deliveries) != 2 || deliveries[0] != deliveries[1] || !strings.Contains(deliveries[0], `{"data":{"id":1,"v":"a"},`) ||
		!strings.Contains(deliveries[0], `{"data":{"id":2,"v":"b"},`) || strings.Contains(strings.Join(deliveries, "\n"), "malformed") {
		t.Fatalf("deliveries:\n%s", strings.Join(deliveries, "\n"))
	}
}

// runRefusedOnce runs the input and processor into an output that refuses
// the first batch; it returns each delivery's rows as body@dms_line, with
// the error of flagged messages.
func runRefusedOnce(t *testing.T, inputYAML, procYAML string) []string {
	t.Helper()
	var deliveries []string
	refused := false
	r := startStream(t, inputYAML, func(batch []got) error {
		var rows []string
		for _, g := range batch {
			rows = append(rows, fmt.Sprintf("%s@%d%s", g.Body, g.Line, g.Err))
		}
		deliveries = append(deliveries, strings.Join(rows, "|"))
		if !refused {
			refused = true
			return errors.New("refused once")
		}
		return nil
	}, procYAML)
	r.waitDone(t, 20*time.Second)
	return deliveries
}

// The same with a processor that only rewrites body and metadata in place.
func TestNackRedeliveryAfterInPlaceProcessor(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n3,c\n"))
	deliveries := runRefusedOnce(t, baseYAML(b, "mode: full-load\nbatch_size: 3\ncheckpoint:\n  store: none\n"), "test_s3dms_in_place: {}")
	want := "converted:1,a@-1|converted:2,b@-1|converted:3,c@-1"
	if len(deliveries) != 2 || deliveries[0] != want || deliveries[1] != want {
		t.Fatalf("deliveries:\n%s\nwant twice:\n%s", strings.Join(deliveries, "\n"), want)
	}
}
