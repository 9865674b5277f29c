package s3dms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// TestFailingCredentialsProviderReportsNotConnected: when the credentials
// cannot be had at all (a credential_process failing, an SSO token
// expired, the instance metadata service gone), no request reaches S3, and
// the input returned the provider's error from each read: logged, but
// /ready still said all is well, unlike the Kinesis output, which reports
// itself not connected for the same failure. The input now does what it
// does when S3 refuses it: not connected, Connect naming the failure (and
// loading the AWS configuration again at each attempt) until credentials
// come again, then reading resumes at the same row.
func TestFailingCredentialsProviderReportsNotConnected(t *testing.T) {
	b := newS3Backend(t)
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken")
	script := filepath.Join(dir, "creds.sh")
	// Credentials that expire at once, so that every request asks the
	// process; it fails while the file "broken" exists.
	body := fmt.Sprintf(`#!/bin/sh
if [ -e %s ]; then echo "token service unavailable" >&2; exit 1; fi
printf '{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s", "Expiration": "%%s"}\n' "$(date -u -d '+1 second' +%%Y-%%m-%%dT%%H:%%M:%%SZ)"
`, broken, key, secret)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte("[profile dms]\ncredential_process = "+script+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", conf)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	yaml := b.yaml() + "bucket_folder: dms\ncdc_path: changes\ntable_definition: '" + twoTables + "'\npoll_interval: 50ms\n" +
		"credentials:\n  profile: dms\ncheckpoint:\n  store: none\n"
	in, _ := directInput(t, yaml)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := readAllDirect(t, in, 1)
	if err != nil || strings.Join(got, "|") != "1,a" {
		t.Fatalf("%q %v", got, err)
	}
	if err := os.WriteFile(broken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,2,b\n"))
	_, _, err = in.ReadBatch(ctx)
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("ReadBatch with a failing credentials provider: %v, want ErrNotConnected", err)
	}
	if cerr := in.Connect(ctx); cerr == nil || !strings.Contains(cerr.Error(), "credential") {
		t.Fatalf("Connect: %v, want the credentials failure", cerr)
	}
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	for {
		if ctx.Err() != nil {
			t.Fatal("not reading again after the credentials came back")
		}
		if in.Connect(ctx) != nil {
			continue
		}
		batch, ack, err := in.ReadBatch(ctx)
		if err != nil || len(batch) == 0 {
			continue
		}
		body, _ := batch[0].AsBytes()
		_ = ack(ctx, nil)
		if string(body) != "I,zeta,hr,2,b" {
			t.Fatalf("read %q", body)
		}
		return
	}
}
