package e2e

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/tcpproxy"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

const outage = 30 * time.Second

// TestOutageRecovery cuts Kinesis off for 30 s in the middle of the full
// load, then S3 for 30 s (open connections, a GET among them, reset; new ones
// refused) while CDC files arrive: the process stays up, notices both outages, waits, and
// afterwards every record is on the stream in per-key order.
func TestOutageRecovery(t *testing.T) {
	// Mostly waiting (outages, restarts): runs beside the other long e2e test.
	t.Parallel()
	files, manifest := refdata.Generate(refdata.Scaled(0.02))
	full, cdc := split(files)
	loads := 0
	for _, e := range manifest {
		if e.Operation == "load" {
			loads++
		}
	}
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	upload(t, bucket, full)
	upload(t, bucket, cdc[:1])

	kp := kinesisProxy(t)
	s3u, err := url.Parse(testutil.MustEnv(t, "S3_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := tcpproxy.Start("", s3u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	// Objects arrive slowly, so a GET is under way when S3 is cut.
	sp.SetDownRate(40 << 10)

	dir := t.TempDir()
	env := pipelineEnv(t, bucket, stream, dir)
	env["KINESIS_ENDPOINT"] = kp.URL()
	env["S3_ENDPOINT"] = sp.URL()
	p := start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)

	// Kinesis down for 30 s, a tenth into the full load.
	waitWritten(t, p, loads/10, 90*time.Second)
	kp.Pause()
	// A PutRecords already past the proxy may still complete.
	time.Sleep(2 * time.Second)
	before := p.MustMetric(t, "kinesis_records_written", "")
	time.Sleep(outage - 2*time.Second)
	during := p.MustMetric(t, "kinesis_records_written", "")
	kErrors := p.MustMetric(t, "kinesis_requests", `outcome="error"`)
	kReady, kReadyBody, _ := p.Get("/ready")
	kp.Resume()
	// /ready told the Kinesis outage (after 5 s without an answer the output
	// reports itself not connected), and tells the recovery.
	if kReady != 503 || !strings.Contains(kReadyBody, "output") {
		t.Errorf("/ready at the end of the Kinesis outage: %d %q, want 503 naming the output", kReady, kReadyBody)
	}
	waitReadyAgain(t, p, "Kinesis")
	if during != before {
		t.Errorf("%.0f records written while Kinesis was unreachable", during-before)
	}
	if kErrors == 0 {
		t.Errorf("kinesis_requests{outcome=\"error\"} did not rise during the Kinesis outage")
	}
	if st := kp.Stats(); st.Dropped == 0 {
		t.Errorf("the Kinesis proxy dropped no request while paused: %+v", st)
	}
	if exited, err := p.Exited(); exited {
		t.Fatalf("dmsbridge exited during the Kinesis outage: %v", err)
	}

	// S3 down for 30 s, three tenths into the full load, at a moment an
	// object's body is flowing (objects arrive at 40 KiB/s); the other CDC
	// files arrive meanwhile and can only be seen once S3 is back.
	waitWritten(t, p, loads*3/10, 90*time.Second)
	for end, last := time.Now().Add(20*time.Second), sp.Stats().Down; time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		d := sp.Stats().Down
		if d > last {
			break
		}
		last = d
	}
	logMark := len(p.Stdout.String())
	sp.Pause()
	upload(t, bucket, cdc[1:])
	time.Sleep(outage)
	sst := sp.Stats()
	ready, readyBody, _ := p.Get("/ready")
	sp.SetDownRate(0)
	sp.Resume()
	duringS3 := p.Stdout.String()[logMark:]
	if sst.Cut == 0 || sst.Refused == 0 {
		t.Errorf("the S3 outage cut no open connection or refused no new one: %+v", sst)
	}
	// an object's body was flowing when S3 went: the input tells the cut
	// download (and later reopens it at its last complete row)
	if strings.Count(duringS3, ": reading row at line ") == 0 {
		t.Errorf("no object body was cut by the S3 outage (the test means to cut one mid-download):\n%s", tail(duringS3, 2000))
	}
	if !strings.Contains(duringS3, "level=error") || !strings.Contains(duringS3, "operation error S3") {
		t.Errorf("no S3 error logged during the S3 outage:\n%s", tail(duringS3, 2000))
	}
	if exited, err := p.Exited(); exited {
		t.Fatalf("dmsbridge exited during the S3 outage: %v", err)
	}
	// /ready told the S3 outage (the input reports itself not connected),
	// and tells the recovery.
	if ready != 503 || !strings.Contains(readyBody, "input") {
		t.Errorf("/ready at the end of the S3 outage: %d %q, want 503 naming the input", ready, readyBody)
	}
	waitReadyAgain(t, p, "S3")

	waitWritten(t, p, len(manifest), 120*time.Second)
	var rep refdata.Report
	end := time.Now().Add(30 * time.Second)
	for {
		rep = refdata.Compare(manifest, delivered(t, stream))
		if len(rep.Missing) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if !rep.OK() {
		t.Fatalf("after the outages: %s", rep)
	}
	if exited, err := p.Exited(); exited {
		t.Fatalf("dmsbridge exited: %v", err)
	}
	resends := p.MustMetric(t, "kinesis_resends_unknown_outcome", "")
	t.Logf("%s; Kinesis proxy %+v; S3 proxy %+v; kinesis errors %.0f, unknown-outcome resends %.0f; /ready at the end of the S3 outage: %d %s; S3 errors logged: %d (GetObject %d, ListObjectsV2 %d), object bodies cut: %d",
		rep, kp.Stats(), sst, kErrors, resends, ready, strings.TrimSpace(readyBody),
		strings.Count(duringS3, "operation error S3"), strings.Count(duringS3, "S3: GetObject"), strings.Count(duringS3, "S3: ListObjectsV2"), strings.Count(duringS3, ": reading row at line "))
}

// waitReadyAgain waits for /ready to answer 200 after an outage of what.
func waitReadyAgain(t *testing.T, p *Proc, what string) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		code, body, _ := p.Get("/ready")
		if code == 200 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("/ready still %d %q 30 s after %s came back", code, body, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
