package kinesis

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/dmsbridge/dmsbridge/plugins/prometheus"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// The output's description promises "The counters are exported at 0 from the
// start (an absent series is not a zero)". kinesis_records_throttled is a
// counter per shard: a user alerting on increase(kinesis_records_throttled[5m])
// gets nothing from a series that only appears at its first throttle (the
// first increase is lost). So every open shard's series must be in /metrics,
// at 0, once the output has connected, before any throttling.
func TestThrottledCounterExportedAtZeroPerShard(t *testing.T) {
	stream := newStream(t, 2)
	sb := service.NewStreamBuilder()
	mux := http.NewServeMux()
	sb.SetHTTPMux(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if err := sb.SetLoggerYAML("level: warn"); err != nil {
		t.Fatal(err)
	}
	if err := sb.SetMetricsYAML("prometheus: {}"); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInputYAML(`
generate:
  count: 1
  interval: ""
  mapping: |
    root = "one record"
    meta dms_partition_key = "k"
`); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddOutputYAML("aws_kinesis_streams:\n" + indentYAML(kinesaliteYAML(t, stream, ""))); err != nil {
		t.Fatal(err)
	}
	st, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	defer func() {
		_ = st.StopWithin(10 * time.Second)
		<-done
	}()

	metrics := func() string {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	written := `kinesis_records_written{label="",path="root.output"} 1`
	var body string
	if err := testutil.WaitFor(30*time.Second, func() bool { body = metrics(); return strings.Contains(body, written) }); err != nil {
		t.Fatalf("%s never appeared in /metrics:\n%s", written, grepLines(body, "kinesis_"))
	}
	for _, id := range []string{"shardId-000000000000", "shardId-000000000001"} {
		want := fmt.Sprintf(`kinesis_records_throttled{label="",path="root.output",shard=%q} 0`, id)
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in /metrics:\n%s", want, grepLines(body, "kinesis_"))
		}
	}
}

func indentYAML(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
