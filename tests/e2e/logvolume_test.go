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

// TestOutageLogVolume cuts S3 off for 30 s, then Kinesis for 30 s, and reads
// what the log holds meanwhile, as an operator would. Before, the engine
// logged "Failed to connect" at every reconnection attempt, one a second: 30
// to 36 ERROR lines in each 30 s outage, 86,400 a day for an outage left
// unattended. Now a lasting failure is said at once, then after 10 s and at
// growing intervals (at most a line a minute), while the attempts go on each
// second; the recovery is said once, with how long the failure lasted.
func TestOutageLogVolume(t *testing.T) {
	t.Parallel()
	files, manifest := refdata.Generate(refdata.Scaled(0.005))
	full, cdc := split(files)
	bucket := testutil.NewBucket(t)
	stream := testutil.NewStream(t, 2)
	upload(t, bucket, full)
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
	dir := t.TempDir()
	env := pipelineEnv(t, bucket, stream, dir)
	env["KINESIS_ENDPOINT"] = kp.URL()
	env["S3_ENDPOINT"] = sp.URL()
	p := start(t, env, "run", "config/s3-to-kinesis.yaml")
	p.WaitReady(t, 30*time.Second)
	loads, cdcRows := 0, 0
	for _, e := range manifest {
		if e.Operation == "load" {
			loads++
		} else if e.File == cdc[0].Key {
			cdcRows++
		}
	}
	waitWritten(t, p, loads, 90*time.Second)

	check := func(what, component string, during string) {
		t.Helper()
		said := strings.Count(during, "Failed to connect to "+component)
		errs := strings.Count(during, "level=error")
		// at once, after 10 s, after 30 s (and one more for timing)
		if said == 0 || said > 4 || errs > said+2 {
			t.Errorf("%s outage of 30 s: %d lines %q, %d at level error, want 1 to 4 and at most 2 more errors:\n%s",
				what, said, "Failed to connect to "+component, errs, tail(during, 6000))
		}
		if said > 1 && !strings.Contains(during, "failing for ") {
			t.Errorf("%s outage: the repeated line does not say for how long it has failed:\n%s", what, tail(during, 3000))
		}
	}

	mark := len(p.Stdout.String())
	sp.Pause()
	time.Sleep(outage)
	check("S3", "aws_s3_dms", p.Stdout.String()[mark:])
	mark = len(p.Stdout.String())
	sp.Resume()
	waitReadyAgain(t, p, "S3")
	if after := p.Stdout.String()[mark:]; !strings.Contains(after, "answers again: reading on (after failing for ") {
		t.Errorf("the S3 recovery is not said with the outage's length:\n%s", tail(after, 3000))
	}

	mark = len(p.Stdout.String())
	kp.Pause()
	upload(t, bucket, cdc[:1])
	time.Sleep(outage)
	check("Kinesis", "aws_kinesis_streams", p.Stdout.String()[mark:])
	mark = len(p.Stdout.String())
	kp.Resume()
	waitWritten(t, p, loads+cdcRows, 60*time.Second)
	if after := p.Stdout.String()[mark:]; !strings.Contains(after, "open shards (after failing for ") {
		t.Errorf("the Kinesis recovery is not said with the outage's length:\n%s", tail(after, 3000))
	}
}
