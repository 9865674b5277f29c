package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// Secrets given as explicit credentials never reach the logs, even at TRACE
// level and when requests fail.
func TestSecretsNeverLogged(t *testing.T) {
	secret := testutil.MustEnv(t, "AWS_SECRET_ACCESS_KEY")
	id := testutil.MustEnv(t, "AWS_ACCESS_KEY_ID")
	files, manifest := refdata.Generate(refdata.Scaled(0.002))
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 1)
	upload(t, bucket, files)
	base := `
http: {address: ${HTTP_ADDRESS}}
input:
  aws_s3_dms:
    bucket: ` + bucket + `
    cdc_path: cdcfile
    mode: full-load
    table_definition: config/table-definition.json
    endpoint: ` + testutil.MustEnv(t, "S3_ENDPOINT") + `
    force_path_style: true
    region: us-east-1
    credentials: {id: ` + id + `, secret: ` + secret + `}
    checkpoint: {store: none}
pipeline:
  processors:
    - dms_csv_to_json:
        table_definition: config/table-definition.json
logger:
  level: TRACE
`
	good := base + `
output:
  aws_kinesis_streams:
    stream: ` + stream + `
    endpoint: ` + testutil.MustEnv(t, "KINESIS_ENDPOINT") + `
    region: us-east-1
    credentials: {id: ` + id + `, secret: ` + secret + `}
`
	bad := base + `
output:
  aws_kinesis_streams:
    stream: ` + stream + `
    endpoint: http://127.0.0.1:1
    region: us-east-1
    credentials: {id: ` + id + `, secret: ` + secret + `, token: the-session-token-secret}
`
	// Run without the secret in the environment, so only the config holds it.
	env := map[string]string{"AWS_SECRET_ACCESS_KEY": "", "AWS_ACCESS_KEY_ID": ""}
	// run runs conf until the process exits or, with until, until at
	// least minRun has passed and until holds on its output; 60s at most.
	run := func(conf string, minRun time.Duration, until func(string) bool) string {
		path := filepath.Join(t.TempDir(), "secrets.yaml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		p := start(t, env, "run", path)
		started := time.Now()
		deadline := started.Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if done, _ := p.Exited(); done {
				break
			}
			if until != nil && time.Since(started) >= minRun && until(p.Stdout.String()+p.Stderr.String()) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		p.Kill()
		return p.Stdout.String() + p.Stderr.String()
	}
	logs := run(good, 0, nil)
	// At least 4s of failing connection attempts, and at least until the
	// first failure is logged: a fixed 4s can pass on a loaded machine
	// before the process has even tried.
	failing := run(bad, 4*time.Second, func(out string) bool {
		return strings.Contains(out, "Failed to connect to aws_kinesis_streams")
	})
	if !strings.Contains(failing, "Failed to connect to aws_kinesis_streams") {
		t.Fatalf("the failing output never logged its failure, so this test proves nothing:\n%s", tail(failing, 2000))
	}
	for _, s := range []string{secret, "the-session-token-secret"} {
		for _, l := range []string{logs, failing} {
			if i := strings.Index(l, s); i >= 0 {
				t.Fatalf("secret %q found in the logs: ...%s...", s, l[max(0, i-200):min(len(l), i+100)])
			}
		}
	}
	loads := 0
	for _, e := range manifest {
		if e.Operation == "load" {
			loads++
		}
	}
	if got := len(testutil.ReadStream(t, stream)); got != loads {
		t.Fatalf("%d records reached Kinesis, want the %d full-load rows", got, loads)
	}
}
