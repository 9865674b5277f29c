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
