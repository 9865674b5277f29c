package s3dms

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/dmsbridge/dmsbridge/plugins/prometheus"
)

// In streams mode the metrics exporter outlives a deleted stream, and its
// series stay in /metrics. An input whose checkpoint store was failing when
// its stream was deleted left dms_checkpoint_save_failing at 1 (and its CDC
// files pending, its lag) for the life of the process: an alert on it fired
// forever for a stream that no longer exists, and no save could ever clear
// it. Once the input is closed nothing fails, waits or lags: they read 0.
func TestClosedInputLeavesNoLiveConditionBehind(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	ckDir := filepath.Join(t.TempDir(), "ck")
	sb := service.NewStreamBuilder()
	mux := http.NewServeMux()
	sb.SetHTTPMux(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if err := sb.SetLoggerYAML("level: none"); err != nil {
		t.Fatal(err)
	}
	if err := sb.SetMetricsYAML("prometheus: {}"); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddInputYAML(fmt.Sprintf("aws_s3_dms:\n%s  bucket_folder: dms\n  cdc_path: changes\n  table_definition: '%s'\n  poll_interval: 20ms\n  checkpoint:\n    directory: %s\n    interval: 20ms\n",
		indent(b.yaml()), twoTables, ckDir)); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddOutputYAML("drop: {}"); err != nil {
		t.Fatal(err)
	}
	st, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(context.Background()) }()
	metric, waitMetric := metricReader(t, srv.URL, func() string { return "" })
	waitMetric("dms_table_state", "2")
	waitMetric("dms_checkpoint_save_failing", "0")
	breakCheckpointDir(t, ckDir)
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,2,b\n"))
	waitMetric("dms_checkpoint_save_failing", "1")
	if err := st.StopWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	<-done
	for _, m := range []string{"dms_checkpoint_save_failing", "dms_cdc_files_pending", "dms_cdc_lag_seconds"} {
		if got := metric(m); got != "0" {
			t.Errorf("after the input closed, %s is %q, want 0", m, got)
		}
	}
}
