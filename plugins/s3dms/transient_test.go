package s3dms

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3 reports some passing conditions with a 4xx status: a request that was
// too slow is 400 RequestTimeout, and throttling may come as SlowDown or
// Throttling with a 4xx. A retry heals them, so they take the path of a
// source that does not answer (logged, probed, read again), not the one of
// a refusal an operator must fix (logged as such, with waits growing to
// 10 s), as the input's docs promise ("other than a timeout or
// throttling"). AccessDenied and NoSuchBucket stay refusals.
func TestTransientS3CodesAreNotRefusals(t *testing.T) {
	apiErr := func(status int, code string) error {
		return fmt.Errorf("operation GetObject: %w", &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: code},
		})
	}
	for _, c := range []struct {
		status  int
		code    string
		refused bool
	}{
		{400, "RequestTimeout", false},
		{400, "SlowDown", false},
		{400, "Throttling", false},
		{400, "ThrottlingException", false},
		{403, "AccessDenied", true},
		{404, "NoSuchBucket", true},
		{301, "PermanentRedirect", true},
	} {
		err := apiErr(c.status, c.code)
		if got := refusedBySource(err); got != c.refused {
			t.Errorf("%d %s: refusedBySource %v, want %v", c.status, c.code, got, c.refused)
		}
		if got := unreachable(err); got == c.refused {
			t.Errorf("%d %s: unreachable %v, want %v", c.status, c.code, got, !c.refused)
		}
	}
}
