package kinesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// switchCreds hands out static credentials until broken, then fails like a
// default chain whose instance role is gone.
type switchCreds struct{ broken atomic.Bool }

func (s *switchCreds) Retrieve(context.Context) (aws.Credentials, error) {
	if s.broken.Load() {
		return aws.Credentials{}, errors.New("no EC2 IMDS role found")
	}
	return aws.Credentials{AccessKeyID: "testkey", SecretAccessKey: "testsecret", Source: "test"}, nil
}

// A credentials provider that starts failing stops the batch with "not
// connected" on both PutRecords paths, as the spec promises: no re-sends
// counted as unknown outcome, no record failed (or dead-lettered).
func TestCredentialsProviderFailureIsNotConnected(t *testing.T) {
	for _, m := range clientModes {
		t.Run(m.name, func(t *testing.T) {
			f := newFakeKinesis(t, "dms-target", 1)
			creds := &switchCreds{}
			client := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.srv.URL), Credentials: creds, Retryer: aws.NopRetryer{}})
			o := newTestOutput(t, "\nstream: dms-target\nregion: us-east-1\nbackoff: {initial_interval: 5ms, max_interval: 20ms, max_elapsed_time: 300ms}\n"+m.yaml, client)
			checkClientMode(t, o, m.yaml)
			creds.broken.Store(true)
			b := makeBatch(keysN(2), 10, 10, map[string]int{})
			err := o.WriteBatch(context.Background(), b)
			if !errors.Is(err, service.ErrNotConnected) {
				t.Fatalf("got %v (unknown re-sends %d), want ErrNotConnected", err, o.st.unknownResends.Load())
			}
			if u, fl := o.st.unknownResends.Load(), o.st.failed.Load(); u != 0 || fl != 0 {
				t.Errorf("%d unknown-outcome re-sends, %d records failed; want 0 and 0", u, fl)
			}
		})
	}
}

// stsAndKinesis serves the fake Kinesis and, for form-encoded requests, an
// STS AssumeRole that hands out credentials expiring at once (so every
// request assumes the role again) until refuse is set, then answers 403
// AccessDenied like STS does when the trust policy no longer allows it.
func stsAndKinesis(t *testing.T, f *fakeKinesis, refuse *atomic.Bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "" {
			f.serve(w, r)
			return
		}
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
			t.Errorf("unexpected request %s %v", r.URL, r.Form)
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		if refuse.Load() {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>`+
				`<Message>User: arn:aws:iam::123456789012:user/dms is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/dms-writer</Message>`+
				`</Error><RequestId>req-1</RequestId></ErrorResponse>`)
			return
		}
		_, _ = fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>`+
			`<AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>rolesecret</SecretAccessKey><SessionToken>roletoken</SessionToken>`+
			`<Expiration>%s</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA:s</AssumedRoleId>`+
			`<Arn>arn:aws:sts::123456789012:assumed-role/dms-writer/s</Arn></AssumedRoleUser></AssumeRoleResult>`+
			`<ResponseMetadata><RequestId>req-2</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			time.Now().UTC().Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The client a real config builds (credentials.role, assumed with STS): when
// STS refuses the role (403 AccessDenied) the batch stops with "not
// connected" on both paths (not "rejected by Kinesis" per record, not
// retried as unknown outcome), and once STS assumes the role again the
// engine's reconnect and retry write every record once.
func TestAssumeRoleRefusedIsNotConnected(t *testing.T) {
	forEachClient(t, func(t *testing.T, clientYAML string) {
		f := newFakeKinesis(t, "dms-target", 1)
		var refuse atomic.Bool
		srv := stsAndKinesis(t, f, &refuse)
		t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL) // STS is not reached at endpoint
		o := newTestOutput(t, `
stream: dms-target
region: us-east-1
endpoint: `+srv.URL+`
credentials: {id: testkey, secret: testsecret, role: "arn:aws:iam::123456789012:role/dms-writer"}
backoff: {initial_interval: 5ms, max_interval: 20ms, max_elapsed_time: 300ms}
`+clientYAML, nil)
		if err := o.Connect(context.Background()); err != nil {
			t.Fatalf("connect: %v", err)
		}
		checkClientMode(t, o, clientYAML)
		refuse.Store(true)
		next := map[string]int{}
		b := makeBatch(keysN(2), 10, 10, next)
		err := o.WriteBatch(context.Background(), b)
		if !errors.Is(err, service.ErrNotConnected) {
			t.Fatalf("STS refusing the role: %v, want ErrNotConnected", err)
		}
		if u, fl := o.st.unknownResends.Load(), o.st.failed.Load(); u != 0 || fl != 0 {
			t.Errorf("%d unknown-outcome re-sends, %d records failed; want 0 and 0", u, fl)
		}
		if n := f.total(); n != 0 {
			t.Fatalf("%d records written without credentials", n)
		}
		refuse.Store(false)
		if err := o.Connect(context.Background()); err != nil {
			t.Fatalf("reconnect: %v", err)
		}
		if err := o.WriteBatch(context.Background(), b); err != nil {
			t.Fatalf("retry after reconnecting: %v", err)
		}
		if extra := checkOrder(t, f.byKey(), next, true); extra != 0 {
			t.Fatalf("%d copies", extra)
		}
	})
}
