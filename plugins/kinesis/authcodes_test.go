package kinesis

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Kinesis, a JSON 1.1 service, names the authentication failures the AWS
// common errors call IncompleteSignature and MissingAuthenticationToken
// with an Exception suffix, e.g. {"__type":"IncompleteSignatureException",
// "message":"... not a valid key=value pair (missing equal-sign) in
// Authorization header"} for an access key id holding a space (rotated
// credentials pasted with whitespace), and MissingAuthenticationTokenException
// for a request that reached it unsigned. Only the suffix-less names were
// known, so these answers fell to "HTTP 400: invalid request": the request
// was split until every record failed alone, for good, and with a dead
// letter the whole batch went there although nothing was wrong with it.
// Like ExpiredTokenException, they are credential failures: the output
// reports itself not connected and writes the batch once they are fixed.
func TestJSONAuthErrorNamesAreCredentialFailures(t *testing.T) {
	for _, code := range []string{"IncompleteSignatureException", "MissingAuthenticationTokenException"} {
		t.Run(code, func(t *testing.T) {
			forEachClient(t, func(t *testing.T, clientYAML string) {
				f := newFakeKinesis(t, "dms-target", 2)
				path := filepath.Join(t.TempDir(), "dlq.jsonl")
				o := newTestOutput(t, fakeYAML+clientYAML+dlqYAML(path), f.client())
				checkClientMode(t, o, clientYAML)
				f.requestFault = func(int) (int, string, bool) { return 400, code, false }
				next := map[string]int{}
				b := makeBatch(keysN(4), 40, 10, next)
				if err := o.WriteBatch(context.Background(), b); !errors.Is(err, service.ErrNotConnected) {
					t.Fatalf("%s gave %v, want ErrNotConnected", code, err)
				}
				if d, _ := os.ReadFile(path); len(d) > 0 || o.st.deadLettered.Load() != 0 || o.st.failed.Load() != 0 {
					t.Fatalf("%d dead-lettered, %d failed: %s", o.st.deadLettered.Load(), o.st.failed.Load(), d)
				}
				f.requestFault = nil
				if err := o.Connect(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := o.WriteBatch(context.Background(), b); err != nil {
					t.Fatal(err)
				}
				if extra := checkOrder(t, f.byKey(), next, true); extra != 0 || f.total() != 40 {
					t.Fatalf("%d records written, %d copies", f.total(), extra)
				}
			})
		})
	}
}
