package awsconf

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A shared-config profile may get its keys from a credential_process. When
// the process prints something the SDK cannot parse (an Expiration not in
// RFC 3339, a field of the wrong type, a stray line before the JSON), the
// SDK's error quotes the whole output: the secret access key and session
// token it holds went into the log at every retry (and into /ready's JSON).
// The error must still say what failed, without the output.
func TestCredentialProcessOutputNeverInErrors(t *testing.T) {
	for name, output := range map[string]string{
		"bad expiration": `{"Version": 1, "AccessKeyId": "ASIAPROC", "SecretAccessKey": "Pa55w0rdXYZ", "SessionToken": "T0kenXYZ", "Expiration": "tomorrow"}`,
		"stray line":     "refreshing...\n" + `{"Version": 1, "AccessKeyId": "ASIAPROC", "SecretAccessKey": "Pa55w0rdXYZ", "SessionToken": "T0kenXYZ"}`,
		"wrong type":     `{"Version": 1, "AccessKeyId": 12, "SecretAccessKey": "Pa55w0rdXYZ", "SessionToken": "T0kenXYZ"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.json")
			if err := os.WriteFile(out, []byte(output+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			conf := filepath.Join(dir, "config")
			if err := os.WriteFile(conf, []byte("[profile dms]\nregion = us-east-1\ncredential_process = cat "+out+"\n"), 0o600); err != nil {
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
			_, err = cfg.Credentials.Retrieve(context.Background())
			if err == nil {
				t.Fatal("credentials from a process output the SDK cannot parse")
			}
			if strings.Contains(err.Error(), "Pa55w0rdXYZ") || strings.Contains(err.Error(), "T0kenXYZ") {
				t.Errorf("the error shows the process output: %v", err)
			}
			if !strings.Contains(err.Error(), "credential_process") {
				t.Errorf("the error does not say the credential_process output is at fault: %v", err)
			}
		})
	}
}
