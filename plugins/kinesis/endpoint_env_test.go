package kinesis

import (
	"context"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// With the endpoint field empty the SDK takes the Kinesis endpoint from
// AWS_ENDPOINT_URL_KINESIS (or AWS_ENDPOINT_URL, or the shared config),
// which the field's checks never saw: a query string in it was dropped by
// the SDK's calls but sent by the output's own PutRecords path, so its
// transport errors (log, dead-letter fallback_error) would quote it. Connect
// refuses it as the endpoint field's check does, naming the variable,
// without showing the secret, and nothing is written.
func TestEndpointFromTheEnvironmentIsChecked(t *testing.T) {
	f := newFakeKinesis(t, "dms-target", 1)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", f.srv.URL+"/?X-Api-Key=Pa55w0rdXYZ")
	pc, err := outputSpec().ParseYAML(fakeYAML+"partition_key: k\ncredentials: {id: a, secret: b}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := parseOutputConfig(pc)
	if err != nil {
		t.Fatal(err)
	}
	o := newOutput(oc, service.MockResources())
	defer o.Close(context.Background())
	err = o.Connect(context.Background())
	if err == nil {
		err = o.WriteBatch(context.Background(), service.MessageBatch{service.NewMessage([]byte("x"))})
	}
	if err == nil || strings.Contains(err.Error(), "Pa55w0rdXYZ") || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL_KINESIS") {
		t.Errorf("error %v: want one naming AWS_ENDPOINT_URL_KINESIS without the secret", err)
	}
	if n := f.total(); n != 0 {
		t.Errorf("%d records written through an endpoint that was refused", n)
	}
}
