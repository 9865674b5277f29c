package s3dms

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRotatedCredentialsAreUsed: credentials from the shared credentials
// file (a profile), rotated there by whatever issues them (a sidecar, a
// vault agent, a mounted secret) before the old session token expires.
// Once S3 answers ExpiredToken, the input must sign with the file's new
// credentials: it kept the client built at its first Connect, whose
// credentials (static, never expiring as far as the SDK knows) are never
// read again, so it reported the refusal forever, while the Kinesis output
// rebuilds its client at a refusal. A front to versitygw answers as S3
// does to a session token that expired.
func TestRotatedCredentialsAreUsed(t *testing.T) {
	b := newS3Backend(t)
	var expired atomic.Bool
	keyID, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	// versitygw takes no session tokens: requests that pass are signed
	// again with its root key (no token) and passed on.
	front := resigningFront(t, b, func(w http.ResponseWriter, r *http.Request) bool {
		tok := r.Header.Get("X-Amz-Security-Token")
		if tok == "" || expired.Load() && tok == "token-1" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><RequestId>R</RequestId><HostId>H</HostId></Error>`))
			return true
		}
		return false
	})
	dir := t.TempDir()
	credFile := filepath.Join(dir, "credentials")
	writeCreds := func(token string) {
		tmp := credFile + ".tmp"
		body := "[dms]\naws_access_key_id = " + keyID + "\naws_secret_access_key = " + secret + "\naws_session_token = " + token + "\n"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, credFile); err != nil {
			t.Fatal(err)
		}
	}
	writeCreds("token-1")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	yaml := strings.Replace(b.yaml(), b.ep, front.URL, 1) + "bucket_folder: dms\ncdc_path: changes\ntable_definition: '" + twoTables + "'\n" +
		"poll_interval: 50ms\ncredentials:\n  profile: dms\ncheckpoint:\n  directory: " + t.TempDir() + "\n  interval: 0s\n"
	r := startStream(t, yaml, nil)
	defer r.stop(t)
	r.waitFor(t, 1, 10*time.Second)
	expired.Store(true)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.logText(), "ExpiredToken"); {
		if time.Now().After(deadline) {
			t.Fatalf("no ExpiredToken refusal logged:\n%s", r.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	writeCreds("token-2")
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,2,b\n"))
	m := r.waitFor(t, 2, 30*time.Second)
	if got := strings.Join(bodies(m), "|"); got != "1,a|I,zeta,hr,2,b" {
		t.Fatalf("got %q\n%s", got, r.logText())
	}
}
