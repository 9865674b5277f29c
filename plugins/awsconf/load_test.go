package awsconf

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
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
	if _, ok := cfg.Retryer().(aws.NopRetryer); !ok {
		t.Fatalf("the SDK retries on its own: %T", cfg.Retryer())
	}
}

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
