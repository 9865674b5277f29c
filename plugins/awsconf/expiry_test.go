package awsconf

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Temporary credentials are renewed before they expire, not at the instant
// they do: the SDK's credentials cache defaults to no expiry window, so a
// request signed in the last moments of a session reached S3 or Kinesis
// after it ended and was answered ExpiredToken, which the input reports as
// a refusal (/ready 503, logged as an error) and the output as a lost
// connection: a blip at every renewal of assumed-role or credential_process
// credentials, i.e. every hour. Checked for a role assumed with
// credentials.role and for a profile's credential_process (the SDK's
// chain): credentials expiring within the next 30 s are not handed out
// when the source can give newer ones.
func TestTemporaryCredentialsRenewedBeforeExpiry(t *testing.T) {
	expiring := func(n int64) time.Time {
		if n == 1 {
			return time.Now().Add(30 * time.Second) // the first: about to expire
		}
		return time.Now().Add(time.Hour)
	}
	t.Run("role", func(t *testing.T) {
		var calls atomic.Int64
		sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := calls.Add(1)
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<AssumedRoleUser><AssumedRoleId>AROA:s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/dms/s</Arn></AssumedRoleUser>
<Credentials><AccessKeyId>ASIA%d</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token-%d</SessionToken><Expiration>%s</Expiration></Credentials>
</AssumeRoleResult></AssumeRoleResponse>`, n, n, expiring(n).UTC().Format(time.RFC3339))
		}))
		defer sts.Close()
		t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
		cfg, err := Load(context.Background(), Config{Region: "us-east-1", ID: "a", Secret: "b", Role: "arn:aws:iam::123456789012:role/dms"})
		if err != nil {
			t.Fatal(err)
		}
		checkRenewed(t, cfg.Credentials.Retrieve)
	})
	t.Run("credential_process", func(t *testing.T) {
		dir := t.TempDir()
		count := filepath.Join(dir, "count")
		script := filepath.Join(dir, "creds.sh")
		// First run: credentials expiring in 30 s; later runs: in an hour.
		body := fmt.Sprintf(`#!/bin/sh
n=$(cat %[1]s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s
if [ $n -eq 1 ]; then exp=%[2]s; else exp=%[3]s; fi
printf '{"Version": 1, "AccessKeyId": "ASIA%%s", "SecretAccessKey": "s", "SessionToken": "token-%%s", "Expiration": "%%s"}\n' $n $n $exp
`, count, expiring(1).UTC().Format(time.RFC3339), expiring(2).UTC().Format(time.RFC3339))
		if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "config")
		if err := os.WriteFile(conf, []byte("[profile dms]\nregion = us-east-1\ncredential_process = "+script+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_CONFIG_FILE", conf)
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		cfg, err := Load(context.Background(), Config{Profile: "dms"})
		if err != nil {
			t.Fatal(err)
		}
		checkRenewed(t, cfg.Credentials.Retrieve)
	})
}

// checkRenewed retrieves credentials twice: the first answer expires in 30
// s, so the second retrieval must not hand it out again.
func checkRenewed(t *testing.T, retrieve func(context.Context) (aws.Credentials, error)) {
	t.Helper()
	for i := 0; i < 2; i++ {
		c, err := retrieve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if left := time.Until(c.Expires); c.CanExpire && left < 30*time.Second+5*time.Second && i == 1 {
			t.Fatalf("retrieval %d handed out %s, which expires in %v", i+1, c.SessionToken, left.Round(time.Second))
		}
	}
}
