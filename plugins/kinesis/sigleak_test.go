package kinesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// sessionToken is the session token of the static credentials below.
const sessionToken = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdoNotLog"

// invalidSignature answers as Kinesis does to a request whose signature it
// rejects: the message quotes the canonical request it expected, signed
// headers included, so x-amz-security-token and its value.
func invalidSignature(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusBadRequest)
	msg := "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n" +
		"The Canonical String for this request should have been\n'POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:" + r.Host +
		"\nx-amz-date:" + r.Header.Get("X-Amz-Date") + "\nx-amz-security-token:" + r.Header.Get("X-Amz-Security-Token") +
		"\nx-amz-target:" + r.Header.Get("X-Amz-Target") + "\n\ncontent-type;host;x-amz-date;x-amz-security-token;x-amz-target\n0123'\n\n" +
		"The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20261129T000000Z\n20261129/us-east-1/kinesis/aws4_request\n4567'\n"
	b, _ := json.Marshal(map[string]string{"__type": "InvalidSignatureException", "message": msg})
	w.Write(b)
}

// TestSignatureErrorsDoNotLeakTheSessionToken: the session token is a
// credential, yet Kinesis's InvalidSignatureException (a secret key that
// does not match the token, a proxy altering a signed header) quotes it,
// and the output put the error text as it came into its log lines, the
// Connect errors the engine logs at every attempt, and /ready's answer.
// The quoted canonical request is left out of the error; the code and the
// first sentence stay.
func TestSignatureErrorsDoNotLeakTheSessionToken(t *testing.T) {
	forEachClient(t, func(t *testing.T, clientYAML string) {
		f := newFakeKinesis(t, "dms-target", 1)
		var refuse atomic.Value // which X-Amz-Target to refuse
		refuse.Store("Kinesis_20131202.DescribeStreamSummary")
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Amz-Target") == refuse.Load().(string) {
				invalidSignature(w, r)
				return
			}
			f.serve(w, r)
		}))
		defer srv.Close()
		yaml := fakeYAML + clientYAML + "endpoint: " + srv.URL + "\ncredentials: {id: ASIAEXAMPLE, secret: wrong, token: " + sessionToken + "}\n"
		pc, err := outputSpec().ParseYAML(yaml, nil)
		if err != nil {
			t.Fatal(err)
		}
		oc, err := parseOutputConfig(pc)
		if err != nil {
			t.Fatal(err)
		}
		var logs lockedBuffer
		o := newOutput(oc, service.MockResources(service.MockResourcesOptUseLogger(service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(&logs, nil))))))
		defer o.Close(context.Background())
		check := func(what, text string) {
			t.Helper()
			if strings.Contains(text, sessionToken) || !strings.Contains(text, "InvalidSignatureException") || !strings.Contains(text, "does not match the signature you provided") {
				t.Fatalf("%s: %s", what, text)
			}
		}
		err = o.Connect(context.Background())
		if err == nil {
			t.Fatal("connected although DescribeStreamSummary was refused")
		}
		check("Connect's error", err.Error())
		refuse.Store("Kinesis_20131202.PutRecords")
		if err := o.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := o.WriteBatch(context.Background(), makeBatch(keysN(2), 4, 10, map[string]int{})); !errors.Is(err, service.ErrNotConnected) {
			t.Fatalf("WriteBatch: %v, want ErrNotConnected", err)
		}
		check("the log", logs.String())
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
