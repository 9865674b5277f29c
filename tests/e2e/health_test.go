package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// refusing is a reverse proxy that, while on, answers the requests refuse
// selects with status and body instead of forwarding them: an endpoint that
// answers but refuses (credentials, a policy, a deleted bucket), which no
// local stand-in can be made to do.
type refusing struct {
	*httptest.Server
	on atomic.Bool
}

func newRefusing(t *testing.T, upstream string, refuse func(*http.Request) bool, status int, contentType, body string) *refusing {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	r := &refusing{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.on.Load() && refuse(req) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// waitNotReady waits for /ready to answer 503 with every one of want in its
// body, and returns the body.
func waitNotReady(t *testing.T, p *Proc, within time.Duration, want ...string) string {
	t.Helper()
	end := time.Now().Add(within)
	for {
		code, body, _ := p.Get("/ready")
		ok := code == 503
		for _, w := range want {
			ok = ok && strings.Contains(body, w)
		}
		if ok {
			return body
		}
		if time.Now().After(end) {
			t.Fatalf("/ready after %s: %d %q, want 503 saying %q\n%s", within, code, body, want, tail(p.Stdout.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Failures that do not heal by themselves, as an operator sees them with the
// reference config: Kinesis refusing PutRecords (AccessDenied on that call
// only, DescribeStreamSummary still allowed), then S3 refusing the input
// (403 on every request). Each shows in /ready (503 naming the component and
// the refusal), in an engine counter an alert can use, in `dmsbridge tables`
// (stderr), and in the log at a bounded rate; once the refusal ends the
// pipeline goes on by itself and every row arrives.
func TestPersistentRefusalsShowInReady(t *testing.T) {
	t.Parallel()
	files, manifest := refdata.Generate(refdata.Scaled(0.005))
	full, cdc := split(files)
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	upload(t, bucket, full)
	upload(t, bucket, cdc[:1])

	kp := kinesisProxy(t) // kinesalite must never see a request aborted
	kRefuse := newRefusing(t, kp.URL(), func(r *http.Request) bool {
		return strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords")
	}, 400, "application/x-amz-json-1.1",
		`{"__type":"AccessDeniedException","message":"User: arn:aws:iam::000000000000:user/dmsbridge is not authorized to perform: kinesis:PutRecords"}`)
	sRefuse := newRefusing(t, testutil.MustEnv(t, "S3_ENDPOINT"), func(*http.Request) bool { return true }, 403, "application/xml",
		`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)

	env := pipelineEnv(t, bucket, stream, t.TempDir())
	env["KINESIS_ENDPOINT"] = kRefuse.URL
	env["S3_ENDPOINT"] = sRefuse.URL
	kRefuse.on.Store(true)
	p := start(t, env, "run", "config/s3-to-kinesis.yaml")

	// Kinesis refuses from the first write.
	waitNotReady(t, p, 30*time.Second, `"kinesis"`, `Kinesis refuses writes to stream \"`+stream+`\"`, "AccessDeniedException")
	mark := len(p.Stdout.String())
	time.Sleep(6 * time.Second)
	logged := p.Stdout.String()[mark:]
	if n := strings.Count(logged, "\n"); n > 30 {
		t.Errorf("%d log lines in 6 s of refused writes, want a few (one per back-off wait):\n%s", n, tail(logged, 3000))
	}
	if !strings.Contains(logged, "AccessDeniedException") {
		t.Errorf("the refusal is not logged while it lasts:\n%s", tail(logged, 3000))
	}
	if v := p.MustMetric(t, "output_connection_failed", `label="kinesis"`); v == 0 {
		t.Errorf("output_connection_failed{label=\"kinesis\"} did not rise while Kinesis refused writes")
	}
	out, err := exec.Command(binPath, "tables", "--url", "http://"+p.Addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "not ready: output kinesis: Kinesis refuses writes") {
		t.Errorf("dmsbridge tables while Kinesis refused writes: %v\n%s", err, out)
	}
	kRefuse.on.Store(false)
	waitReadyAgain(t, p, "Kinesis")

	// S3 refuses the input.
	sRefuse.on.Store(true)
	upload(t, bucket, cdc[1:]) // straight to versitygw: seen once S3 accepts the input again
	waitNotReady(t, p, 30*time.Second, `"s3_source"`, "s3://"+bucket+"/", "AccessDenied")
	mark = len(p.Stdout.String())
	time.Sleep(6 * time.Second)
	logged = p.Stdout.String()[mark:]
	if n := strings.Count(logged, "\n"); n > 30 {
		t.Errorf("%d log lines in 6 s of refused reads, want a few (one per back-off wait):\n%s", n, tail(logged, 3000))
	}
	if v := p.MustMetric(t, "input_connection_failed", `label="s3_source"`); v == 0 {
		t.Errorf("input_connection_failed{label=\"s3_source\"} did not rise while S3 refused the input")
	}
	sRefuse.on.Store(false)
	waitReadyAgain(t, p, "S3")

	rep := awaitDelivery(t, p, stream, manifest, 90*time.Second)
	if !rep.OK() {
		t.Fatalf("after the refusals: %s", rep)
	}
	if dl := lines(t, env["DEAD_LETTER_PATH"]); len(dl) > 0 {
		for _, l := range dl {
			if strings.Contains(l, `"stage":"aws_kinesis_streams"`) {
				t.Fatalf("a record refused by Kinesis went to the dead letter: %s", l)
			}
		}
	}
}
