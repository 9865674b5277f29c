package awsconf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/smithy-go"
)

func TestLoadStaticCredentials(t *testing.T) {
	cfg, err := Load(context.Background(), Config{Region: "eu-west-1", ID: "AKID", Secret: "SECRET", Token: "TOKEN", NoSDKRetries: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "AKID" || c.SecretAccessKey != "SECRET" || c.SessionToken != "TOKEN" || cfg.Region != "eu-west-1" {
		t.Fatalf("credentials %+v region %s", c, cfg.Region)
	}
	// The SDK retries nothing on its own but a request refused for the
	// host's clock, once.
	r := cfg.Retryer()
	for _, err := range []error{
		&smithy.GenericAPIError{Code: "ThrottlingException"},
		&smithy.GenericAPIError{Code: "InternalFailure"},
		&smithy.GenericAPIError{Code: "InvalidSignatureException"},
		retryableError{errors.New("connection reset")},
		context.DeadlineExceeded,
	} {
		if r.IsErrorRetryable(err) {
			t.Errorf("the SDK retries %v on its own", err)
		}
	}
	if !r.IsErrorRetryable(skewError{&smithy.GenericAPIError{Code: "InvalidSignatureException", Message: "Signature expired"}}) || r.MaxAttempts() != 2 {
		t.Errorf("a clock skew error is not retried once (retryable %v, %d attempts)", r.IsErrorRetryable(skewError{}), r.MaxAttempts())
	}
}

// skewError is what the SDK's retry middleware makes of an answer refused
// for the clock (its retryableClockSkewError).
type skewError struct{ err error }

func (e skewError) Error() string        { return fmt.Sprintf("Probable clock skew error: %v", e.err) }
func (e skewError) Unwrap() error        { return e.err }
func (e skewError) RetryableError() bool { return true }

// retryableError is an error the SDK's standard retryer would retry.
type retryableError struct{ err error }

func (e retryableError) Error() string        { return e.err.Error() }
func (e retryableError) RetryableError() bool { return true }

func TestLoadProfile(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(creds, []byte("[dms]\naws_access_key_id = PROFKEY\naws_secret_access_key = PROFSECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("[profile dms]\nregion = ap-south-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", conf)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	cfg, err := Load(context.Background(), Config{Profile: "dms"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "PROFKEY" || cfg.Region != "ap-south-1" {
		t.Fatalf("profile gave %s in %s", c.AccessKeyID, cfg.Region)
	}
}

func TestLoadAssumeRoleAndErrors(t *testing.T) {
	cfg, err := Load(context.Background(), Config{Region: "us-east-1", ID: "a", Secret: "b", Role: "arn:aws:iam::123456789012:role/dms", RoleExternalID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	cache, ok := cfg.Credentials.(*aws.CredentialsCache)
	if !ok || !cache.IsCredentialsProvider(&stscreds.AssumeRoleProvider{}) {
		t.Fatalf("role did not set an assume-role provider: %T", cfg.Credentials)
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	if _, err := Load(context.Background(), Config{ID: "a", Secret: "b"}); err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Fatalf("missing region: %v", err)
	}
}

// credentials.role assumes the role at STS's own endpoint, not at the
// component's endpoint (an S3 or Kinesis endpoint, e.g. a VPC endpoint,
// that does not serve STS); AWS_ENDPOINT_URL_STS names a stand-in STS.
func TestAssumeRoleGoesToSTSNotTheServiceEndpoint(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	serve := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if strings.Contains(string(b), "Action=AssumeRole") {
				mu.Lock()
				hits[name]++
				mu.Unlock()
			}
			w.WriteHeader(http.StatusForbidden)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	service, sts := serve("service"), serve("sts")
	for _, standIn := range []bool{false, true} {
		if standIn {
			t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
		} else {
			// the regional STS endpoint, unreachable here: the call fails
			// without reaching the service endpoint
			t.Setenv("AWS_ENDPOINT_URL_STS", "")
		}
		cfg, err := Load(context.Background(), Config{Region: "us-east-1", Endpoint: service.URL, ID: "a", Secret: "b",
			Role: "arn:aws:iam::123456789012:role/dms", NoSDKRetries: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = cfg.Credentials.Retrieve(ctx)
		cancel()
		if err == nil {
			t.Fatal("no STS grants the role here, yet credentials were retrieved")
		}
		mu.Lock()
		got := fmt.Sprint(hits)
		bad := hits["service"] != 0 || (standIn && hits["sts"] == 0)
		mu.Unlock()
		if bad {
			t.Fatalf("AWS_ENDPOINT_URL_STS set %v: AssumeRole calls %s, want none at the service endpoint", standIn, got)
		}
	}
}

// endpoint must be an absolute http(s) URL: caught at start, naming the
// field, not at the first request.
func TestEndpointValidated(t *testing.T) {
	for _, ep := range []string{"localhost:4566", "127.0.0.1:4566", "ftp://host", "http://", "https:///path"} {
		if _, err := Load(context.Background(), Config{Region: "us-east-1", Endpoint: ep, ID: "a", Secret: "b"}); err == nil || !strings.Contains(err.Error(), "endpoint: must be an absolute http(s) URL") {
			t.Errorf("endpoint %q: %v", ep, err)
		}
	}
	if _, err := Load(context.Background(), Config{Region: "us-east-1", Endpoint: "http://127.0.0.1:4566", ID: "a", Secret: "b"}); err != nil {
		t.Fatal(err)
	}
}

// A credentials.profile the shared config files lack is refused naming the
// files read, and which of them do not exist (a container without its
// mounted ~/.aws): the SDK's error names neither.
func TestLoadMissingProfileNamesTheFiles(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "no-credentials")
	if err := os.WriteFile(conf, []byte("[profile other]\nregion = eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", conf)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	_, err := Load(context.Background(), Config{Region: "us-east-1", Profile: "dms"})
	want := `credentials.profile: "dms" is not in the shared config files (` + conf + `, ` + creds + `: does not exist)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
