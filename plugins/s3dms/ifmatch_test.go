package s3dms

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// resigningFront is a front to versitygw that lets alter change a request
// (or answer it itself, returning true), then signs it again with the
// root key and passes it on: versitygw checks signatures, which a changed
// signed header would break.
func resigningFront(t *testing.T, b *s3Backend, alter func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	t.Helper()
	target, _ := url.Parse(b.ep)
	root := aws.Credentials{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}
	region := os.Getenv("AWS_REGION")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if alter(w, r) {
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host, out.Host = target.Scheme, target.Host, target.Host
		for _, h := range []string{"Authorization", "X-Amz-Security-Token", "X-Amz-Date"} {
			out.Header.Del(h)
		}
		if err := v4.NewSigner().SignHTTP(r.Context(), root, out, out.Header.Get("X-Amz-Content-Sha256"), "s3", region, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestReopenChecksTheETagTheServerSent: an object cut mid-body is reopened
// at its last whole row with a ranged GET carrying If-Match: <its ETag>,
// and the input relied on the server to refuse it (412) when the object
// had changed in between. An S3-compatible store that ignores If-Match on
// GET answers 206 with the new object's bytes from that offset, and the
// input read the middle of another object as the rest of the first,
// silently. The ETag of the answer is now compared too: the change stops
// the input at that row, as a 412 does.
func TestReopenChecksTheETagTheServerSent(t *testing.T) {
	b := newS3Backend(t)
	var orig, repl strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&orig, "%d,original row text to make the object longer\n", i)
		fmt.Fprintf(&repl, "%d,REPLACED\n", i)
	}
	key := "dms/hr/zeta/LOAD1.csv"
	b.put(t, key, []byte(orig.String()))
	front := resigningFront(t, b, func(w http.ResponseWriter, r *http.Request) bool {
		r.Header.Del("If-Match") // a store that does not honour it
		return false
	})
	var first atomic.Bool
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/LOAD1.csv") && first.CompareAndSwap(false, true) {
			// The first read is cut after 100 kB, and the object is
			// replaced before the input sees the cut and reopens it.
			defer b.put(t, key, []byte(repl.String()))
			front.Config.Handler.ServeHTTP(&cutWriter{ResponseWriter: w, left: 100000}, r)
			return
		}
		front.Config.Handler.ServeHTTP(w, r)
	}))
	defer cut.Close()
	yaml := strings.Replace(b.yaml(), b.ep, cut.URL, 1) + "bucket_folder: dms\nmode: full-load\ntable_definition: '" + twoTables + "'\ncheckpoint:\n  store: none\n"
	r := startStream(t, yaml, nil)
	defer r.stop(t)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.logText(), "changed"); {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := r.snapshot()
	for i, g := range m {
		if want := fmt.Sprintf("%d,original row text to make the object longer", i); g.Body != want {
			t.Fatalf("row %d is %q, want %q: rows of the replaced object read as the rest of the original", i, g.Body, want)
		}
	}
	if len(m) == 0 || len(m) == 20000 || !strings.Contains(r.logText(), "object changed since it was checkpointed") {
		t.Fatalf("%d rows; logs:\n%s", len(m), r.logText())
	}
}
