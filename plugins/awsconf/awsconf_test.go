package awsconf

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
)

func TestLoadStatic(t *testing.T) {
	c, err := Load(context.Background(), Config{Region: "eu-west-3", Endpoint: "http://127.0.0.1:9", ID: "AKID", Secret: "s3cr3t", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "eu-west-3" || c.BaseEndpoint == nil || *c.BaseEndpoint != "http://127.0.0.1:9" {
		t.Fatalf("region %q endpoint %v", c.Region, c.BaseEndpoint)
	}
	creds, err := c.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKID" || creds.SecretAccessKey != "s3cr3t" || creds.SessionToken != "tok" {
		t.Fatalf("credentials %+v %v", creds, err)
	}
}

func TestLoadHalfCredentials(t *testing.T) {
	_, err := Load(context.Background(), Config{ID: "AKID"})
	if err == nil || !strings.Contains(err.Error(), "credentials.id and credentials.secret must be set together") {
		t.Fatalf("error %v", err)
	}
}

func TestLoadRoleWrapsCredentials(t *testing.T) {
	c, err := Load(context.Background(), Config{Region: "us-east-1", ID: "AKID", Secret: "s", Role: "arn:aws:iam::123456789012:role/x", RoleExternalID: "ext"})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.IsCredentialsProvider(c.Credentials, &stscreds.AssumeRoleProvider{}) {
		t.Fatalf("credentials provider %T is not an assume-role provider", c.Credentials)
	}
	plain, _ := Load(context.Background(), Config{Region: "us-east-1", ID: "AKID", Secret: "s"})
	if aws.IsCredentialsProvider(plain.Credentials, &stscreds.AssumeRoleProvider{}) {
		t.Fatal("static credentials reported as assume-role: the check above cannot fail")
	}
}

// An endpoint refused at start is quoted in the error, which reaches the log,
// the exit line and, in streams mode, the HTTP answer to POST /streams/{id}:
// a password (or a query string, e.g. a presigned token) in it must not.
func TestValidateEndpointErrorHidesSecrets(t *testing.T) {
	for _, ep := range []string{
		"ftp://user:Pa55w0rdXYZ@kinesis.example.com",
		"kinesis.example.com:443/?X-Amz-Security-Token=Pa55w0rdXYZ",
		"//user:Pa55w0rdXYZ@kinesis.example.com",
		"http://user:Pa55w0rdXYZ@",
	} {
		err := Config{Endpoint: ep}.Validate()
		if err == nil {
			t.Fatalf("endpoint %q accepted", ep)
		}
		if strings.Contains(err.Error(), "Pa55w0rdXYZ") {
			t.Errorf("endpoint %q: the error shows the secret: %v", ep, err)
		}
		if !strings.HasPrefix(err.Error(), "endpoint: ") {
			t.Errorf("endpoint %q: the error does not name the field: %v", ep, err)
		}
	}
}

// User information in an endpoint is never used (requests are signed), so it
// is refused at start rather than carried silently in the configuration.
func TestValidateEndpointRefusesUserInfo(t *testing.T) {
	err := Config{Endpoint: "https://user:Pa55w0rdXYZ@kinesis.example.com:4567"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "endpoint: must not hold user information") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "Pa55w0rdXYZ") || !strings.Contains(err.Error(), `"https://REDACTED@kinesis.example.com:4567"`) {
		t.Fatalf("error %v", err)
	}
	if err := (Config{Endpoint: "https://kinesis.example.com:4567/base"}).Validate(); err != nil {
		t.Fatalf("a plain endpoint refused: %v", err)
	}
}

// A query string or fragment in an endpoint is never used as written: the S3
// client refuses such an endpoint at every request ("Custom endpoint ... was
// not a valid URI", an error quoting it whole, logged at every retry), and
// for Kinesis the SDK drops it from its calls while the output's own
// PutRecords path sends it (so transport errors, in the log and in
// dead-letter fallback_error, quote it). It is refused at start, naming the
// field, without showing it: a query is where a proxy token would be.
func TestValidateEndpointRefusesQueryAndFragment(t *testing.T) {
	for ep, shown := range map[string]string{
		"https://kinesis.example.com:4567/?X-Api-Key=Pa55w0rdXYZ": `"https://kinesis.example.com:4567/?REDACTED"`,
		"http://127.0.0.1:4566?token=Pa55w0rdXYZ":                 `"http://127.0.0.1:4566?REDACTED"`,
		"http://127.0.0.1:4566/#Pa55w0rdXYZ":                      `"http://127.0.0.1:4566/#REDACTED"`,
	} {
		err := Config{Endpoint: ep}.Validate()
		if err == nil {
			t.Errorf("endpoint %q accepted", ep)
			continue
		}
		if !strings.HasPrefix(err.Error(), "endpoint: must not hold a query string or fragment") || !strings.Contains(err.Error(), shown) {
			t.Errorf("endpoint %q: error %v, want it to name the field and quote %s", ep, err, shown)
		}
		if strings.Contains(err.Error(), "Pa55w0rdXYZ") {
			t.Errorf("endpoint %q: the error shows the secret: %v", ep, err)
		}
	}
}
