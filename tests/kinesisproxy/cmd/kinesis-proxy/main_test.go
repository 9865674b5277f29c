package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/dmsbridge/dmsbridge/tests/kinesisproxy"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

// The command prints a URL that serves the proxy with the flags' settings, and prints its counters when stopped.
func TestRunServesUntilStopped(t *testing.T) {
	upstream := testutil.MustEnv(t, "KINESIS_ENDPOINT")
	stream := testutil.NewStream(t, 1)
	outR, outW := io.Pipe()
	var stderr strings.Builder
	stop := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"-upstream", upstream, "-records-per-second", "2", "-burst", "1s"}, outW, &stderr, stop)
		_ = outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL: %v (stderr %q)", err, stderr.String())
	}
	url := strings.TrimSpace(line)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first stdout line %q, want http://127.0.0.1:PORT", url)
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()

	c := kinesis.NewFromConfig(testutil.AWSConfig(t), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = testutil.BufferedBody{C: awshttp.NewBuildableClient()}
	})
	var entries []types.PutRecordsRequestEntry
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(k), PartitionKey: aws.String(k)})
	}
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &stream, Records: entries})
	if err != nil {
		t.Fatalf("PutRecords through the command: %v", err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 3 || out.Records[1].ErrorCode != nil ||
		aws.ToString(out.Records[2].ErrorCode) != "ProvisionedThroughputExceededException" {
		t.Errorf("with -records-per-second 2 -burst 1s: FailedRecordCount %d, want the last 3 of 5 throttled",
			aws.ToInt32(out.FailedRecordCount))
	}

	stop <- os.Interrupt
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after stop, want 0", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return within 5s of the stop signal")
	}
	js, ok := strings.CutPrefix(strings.TrimSpace(stderr.String()), "kinesis-proxy stats: ")
	var st kinesisproxy.Stats
	if !ok || json.Unmarshal([]byte(js), &st) != nil {
		t.Fatalf("stderr %q, want the stats line", stderr.String())
	}
	if st.PutRecordsRequests != 1 || st.EntriesIn != 5 || st.EntriesForwarded != 2 || st.RateLimited != 3 {
		t.Errorf("stats %+v", st)
	}
	if _, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{}); err == nil {
		t.Errorf("the proxy still answers after stop (err %v)", err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "Upstream is required"},
		{[]string{"-upstream", "http://127.0.0.1:1", "-throttle-rate", "2"}, "ThrottleRate 2 is outside [0,1]"},
		{[]string{"-upstream", "http://127.0.0.1:1", "-nosuchflag"}, "flag provided but not defined: -nosuchflag"},
		{[]string{"-upstream", "http://127.0.0.1:1", "extra"}, `unexpected arguments ["extra"]`},
	} {
		var stdout, stderr strings.Builder
		if code := run(c.args, &stdout, &stderr, nil); code != 2 {
			t.Errorf("run(%q) = %d, want 2", c.args, code)
		}
		if !strings.Contains(stderr.String(), c.want) || stdout.Len() != 0 {
			t.Errorf("run(%q): stdout %q, stderr %q, want stderr to contain %q", c.args, stdout.String(), stderr.String(), c.want)
		}
	}
}
