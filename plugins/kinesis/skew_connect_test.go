package kinesis

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestConnectWithSkewedClock: on a host whose clock is an hour off (a
// container after the laptop slept, NTP broken), Kinesis answers every
// request signed with the host's time "InvalidSignatureException: Signature
// expired", with its own time in Date. The SDK client learns the skew from
// that answer and signs the next call with it, but Connect built a new
// client at every attempt until one succeeded, so the skew learned by the
// failed DescribeStreamSummary was thrown away with its client and the
// output never connected (only PutRecords kept it across reconnects). The
// second Connect must succeed, and the records be written.
func TestConnectWithSkewedClock(t *testing.T) {
	forEachClient(t, func(t *testing.T, clientYAML string) {
		stream := newStream(t, 1)
		target, _ := url.Parse(mustEnv(t, "KINESIS_ENDPOINT"))
		rp := httputil.NewSingleHostReverseProxy(target)
		skew := time.Hour // Kinesis' clock is ahead of the host's
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := time.Now().Add(skew)
			signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
			if err != nil || now.Sub(signed) > 5*time.Minute || signed.Sub(now) > 5*time.Minute {
				w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"__type":"InvalidSignatureException","message":"Signature expired: `+r.Header.Get("X-Amz-Date")+` is now earlier than `+now.Add(-5*time.Minute).UTC().Format("20060102T150405Z")+`"}`)
				return
			}
			rp.ServeHTTP(w, r)
		}))
		defer srv.Close()
		yaml := strings.Replace(kinesaliteYAML(t, stream, clientYAML), mustEnv(t, "KINESIS_ENDPOINT"), srv.URL, 1)
		o := newTestOutput(t, yaml, nil)
		var err error
		for i := 0; i < 3; i++ {
			if err = o.Connect(context.Background()); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("not connected after 3 attempts: %v", err)
		}
		next := map[string]int{}
		if err := o.WriteBatch(context.Background(), makeBatch(keysN(3), 30, 10, next)); err != nil {
			t.Fatal(err)
		}
		if recs := readStream(t, stream); len(recs) != 30 {
			t.Fatalf("%d records in the stream, want 30", len(recs))
		}
	})
}
